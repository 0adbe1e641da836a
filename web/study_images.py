"""First-click screens over HTTP: served to participants, uploaded through the admin API.

``GET /study-images/<name>`` is public (participants have no login) and safe to be: a name is
the hash of the image's content, so it can only be learnt from a study that shows it, and only
names of the store's own shape are looked up (:mod:`abtest.studies.images`). Because the content
behind a name never changes, the answer may be cached for a year.

``POST /api/v1/images`` takes the image as the ``file`` field of a multipart form or as the raw
body, whatever type it declares: the store decides by the content. The app refuses bodies over
2 MB everywhere; this route alone allows an image's 5 MB (plus room for the form's own lines).
"""

from __future__ import annotations

from flask import Blueprint, abort, current_app, jsonify, request, send_file, url_for
from werkzeug.exceptions import RequestEntityTooLarge

from abtest.errors import ValidationError
from abtest.studies.images import MAX_BYTES, ImageStore, ImageTooLarge, store_for, too_large
from web.auth import token_required
from web.extensions import csrf

study_images = Blueprint("study_images", __name__)

CACHE_CONTROL = "public, max-age=31536000, immutable"
_FORM_OVERHEAD = 64 * 1024  # a multipart body's boundaries and part headers around the file
_DRAIN_LIMIT = 4 * MAX_BYTES  # a refused body up to this size is read, so its sender sees the 413


def image_store() -> ImageStore:
    return store_for(current_app.extensions["abtest.settings"].instance_path)


def image_url(name: str) -> str:
    """Where a stored image is served, for templates and API answers."""
    return url_for("study_images.image", name=name)


@study_images.get("/study-images/<name>")
def image(name: str):  # type: ignore[no-untyped-def]
    store = image_store()
    path = store.path(name)
    if path is None:
        abort(404, description="No such image.")
    response = send_file(path, mimetype=store.media_type(name), conditional=True, etag=True, max_age=31536000)
    response.headers["Cache-Control"] = CACHE_CONTROL
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _uploaded() -> bytes:
    """The image's bytes from the request: the form's ``file`` field, or else the raw body."""
    if request.mimetype == "multipart/form-data":
        request.max_content_length = MAX_BYTES + _FORM_OVERHEAD
        upload = request.files.get("file")
        if upload is None:
            raise ValidationError("is missing: send the image as the form field 'file'", field="image")
        return upload.read(MAX_BYTES + 1)  # one byte over is enough to say it is too large
    request.max_content_length = MAX_BYTES
    return request.get_data(cache=False)


def _drain() -> None:
    """Read and drop a refused body, up to :data:`_DRAIN_LIMIT`. A client sends the whole body
    before it reads the answer; a server that answers and closes without reading it leaves that
    client with a broken pipe instead of the 413 that says why. Reads no more than the body's
    declared length (beyond it a plain socket would wait for bytes that never come), and a body
    of unknown length only when the server marks where it ends (``wsgi.input_terminated``)."""
    stream = request.environ.get("wsgi.input")
    length = request.content_length
    if stream is None or (length is None and not request.environ.get("wsgi.input_terminated")):
        return
    remaining = min(length if length is not None else _DRAIN_LIMIT, _DRAIN_LIMIT)
    while remaining > 0:
        chunk = stream.read(min(64 * 1024, remaining))
        if not chunk:
            break
        remaining -= len(chunk)


@study_images.post("/api/v1/images")
@csrf.exempt  # token-authenticated, never cookie-authenticated (as web.api)
@token_required()
def upload():  # type: ignore[no-untyped-def]
    """Store a PNG or JPEG screen: 201 with its name, size and URL; 400 naming ``image`` for
    anything else, 413 for one over 5 MB."""
    try:
        stored = image_store().save(_uploaded())
    except RequestEntityTooLarge:
        _drain()
        error: ValidationError = too_large(request.content_length)
        return jsonify(error=error.to_dict()), 413
    except ImageTooLarge as exc:
        return jsonify(error=exc.to_dict()), 413
    except ValidationError as exc:
        return jsonify(error=exc.to_dict()), 400
    return jsonify(image=stored.name, width=stored.width, height=stored.height, url=image_url(stored.name)), 201
