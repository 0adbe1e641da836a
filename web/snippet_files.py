"""Serving the snippet files (abtest.js and the modules it loads) to other people's sites.

Flask's static route would send them with ``no-cache`` and no compression. These files are
fetched on every page view of every site that pastes the snippet, so they are read once at
startup, gzipped once (level 9), and answered with:

* the gzip body when the request's Accept-Encoding allows it, ``Vary: Accept-Encoding`` always;
* a weak ETag (the same for both codings: the same content) and ``304`` on ``If-None-Match``;
* ``Cache-Control: public, max-age=300, stale-while-revalidate=86400``. Sites paste a fixed URL,
  so the name cannot carry a content hash: a long max-age would keep a fix or a new feature away
  from visitors for as long. Five minutes is as long as the snippet caches its config anyway;
  after that, a browser may use its copy for a day while it revalidates in the background (a
  304 of a few hundred bytes), so no page view waits for abtest.js after the first.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path

from flask import Flask, Response, request

FILES = ("abtest.js", "abtest-study.js", "abtest-vitals.js", "abtest-survey.js")  # also what web.build_snippet builds
CACHE_CONTROL = "public, max-age=300, stale-while-revalidate=86400"


@dataclass(frozen=True, slots=True)
class SnippetFile:
    body: bytes
    gzipped: bytes
    etag: str  # without the W/ and the quotes


def read_file(path: Path) -> SnippetFile:
    """The file with its gzip body (mtime 0: the same bytes on every start) and its ETag."""
    body = path.read_bytes()
    return SnippetFile(body, gzip.compress(body, compresslevel=9, mtime=0), hashlib.sha256(body).hexdigest()[:20])


def _answer(file: SnippetFile) -> Response:
    response = Response(mimetype="text/javascript")
    response.set_etag(file.etag, weak=True)
    response.headers["Cache-Control"] = CACHE_CONTROL
    response.vary.add("Accept-Encoding")
    response.access_control_allow_origin = "*"  # fetchable by any site (preloads, CORS-mode loads)
    if request.if_none_match.contains_weak(file.etag):
        response.status_code = 304
        return response
    if request.accept_encodings["gzip"] > 0:
        response.set_data(file.gzipped)
        response.headers["Content-Encoding"] = "gzip"
    else:
        response.set_data(file.body)
    return response


def register(app: Flask) -> None:
    """Routes /static/<name> for the snippet files, ahead of Flask's static route."""
    static = Path(app.static_folder or "")
    for name in FILES:
        if not (static / name).is_file():
            continue
        file = read_file(static / name)
        app.add_url_rule(f"/static/{name}", endpoint=f"snippet_file:{name}",
                         view_func=lambda file=file: _answer(file), methods=["GET"])
