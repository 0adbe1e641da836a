"""First-click screens: the content-addressed image store and its two routes (issue 19)."""

from __future__ import annotations

import io
import json
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

from abtest.accounts import create_token
from abtest.errors import ValidationError
from abtest.studies import images
from abtest.studies.images import MAX_BYTES, ImageStore, StoredImage, import_file, store_for


def picture(fmt: str = "PNG", size: tuple[int, int] = (40, 30), color: str = "teal") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format=fmt)
    return buffer.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims ``width`` × ``height`` pixels: a valid signature and IHDR, one tiny IDAT.
    Decoding it would allocate width × height bytes; the store must refuse it from the header."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    return store_for(tmp_path)


def refusal(store: ImageStore, content: bytes) -> str:
    with pytest.raises(ValidationError) as caught:
        store.save(content)
    assert caught.value.field == "image"
    return caught.value.message


# ---- the store -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt, extension", [("PNG", ".png"), ("JPEG", ".jpg")])
def test_saves_png_and_jpeg_by_content(store, tmp_path, fmt, extension):
    content = picture(fmt, (120, 80))
    stored = store.save(content)
    assert stored.name.endswith(extension) and images.NAME_PATTERN.fullmatch(stored.name)
    assert (stored.width, stored.height) == (120, 80)
    assert store.path(stored.name) == tmp_path / "images" / stored.name
    assert store.path(stored.name).read_bytes() == content
    assert store.info(stored.name) == StoredImage(stored.name, 120, 80)


def test_the_same_bytes_give_the_same_name_and_one_file(store, tmp_path):
    content = picture()
    first, second = store.save(content), store.save(content)
    assert first == second
    assert [p.name for p in (tmp_path / "images").iterdir()] == [first.name]  # no second file, no temp left
    assert store.save(picture(color="red")).name != first.name


def test_a_jpeg_named_png_is_still_a_jpeg(store, tmp_path):
    source = tmp_path / "screen.png"
    source.write_bytes(picture("JPEG"))
    assert import_file(store, source).name.endswith(".jpg")


@pytest.mark.parametrize("content", [
    picture("GIF"),
    picture("BMP"),
    b"just some text, not a picture\n",
    b"\x89PNG\r\n\x1a\n" + b"truncated",
    picture("PNG")[:-30],  # cut short: the checksums (verify) or the decoder notice
    picture("JPEG", (200, 200))[:300],
])
def test_anything_but_png_or_jpeg_content_is_refused(store, content):
    assert refusal(store, content) == "is not a PNG or JPEG image"


def test_empty_content_is_refused(store):
    assert "empty" in refusal(store, b"")


def test_a_text_file_renamed_png_is_refused_by_content(store, tmp_path):
    fake = tmp_path / "x.png"
    fake.write_text("<svg>not an image at all</svg>")
    with pytest.raises(ValidationError) as caught:
        import_file(store, fake)
    assert caught.value.message == "is not a PNG or JPEG image" and caught.value.field == "image"
    assert not (tmp_path / "images").exists() or not any((tmp_path / "images").iterdir())


def test_over_the_byte_limit_is_refused_in_megabytes(store, tmp_path):
    too_big = b"\x89PNG" + b"\0" * int(7.2 * 1024 * 1024)
    message = refusal(store, too_big)
    assert message == "is 7.2 MB; the limit is 5 MB"
    with pytest.raises(ValidationError) as caught:
        store.save(b"\0" * (MAX_BYTES + 1))
    assert caught.value.message == "is 5.1 MB; the limit is 5 MB"  # rounded up: never "5.0 MB"
    big_file = tmp_path / "huge.jpg"
    big_file.write_bytes(too_big)
    with pytest.raises(ValidationError, match="7.2 MB"):
        import_file(store, big_file)


def test_over_the_side_limit_is_refused_in_pixels(store):
    assert refusal(store, picture("PNG", (9000, 300))) == "is 9000 × 300 px; at most 8000 px a side"
    assert store.save(picture("PNG", (8000, 10))).width == 8000


def test_too_many_pixels_are_refused(store):
    assert "million pixels" in refusal(store, png_header_only(7000, 7000))


def test_a_decompression_bomb_is_refused_from_its_header_without_decoding(store, monkeypatch):
    decoded = []
    real_load = Image.Image.load

    def spy(self):  # type: ignore[no-untyped-def]
        decoded.append(self.size)
        return real_load(self)

    monkeypatch.setattr(Image.Image, "load", spy)
    from PIL import PngImagePlugin
    monkeypatch.setattr(PngImagePlugin.PngImageFile, "load", spy)
    bomb = png_header_only(60_000, 60_000)  # 3.6 G pixels in 100 bytes
    assert len(bomb) < 200
    message = refusal(store, bomb)
    assert "px" in message or "pixels" in message
    assert decoded == []
    assert "million pixels" in refusal(store, png_header_only(7999, 7999))  # under MAX_SIDE, over MAX_PIXELS
    assert decoded == []


@pytest.mark.parametrize("name", [
    "../etc/passwd", "..%2Fetc%2Fpasswd", "/etc/passwd", "", "abc.png", "A" * 32 + ".png",
    "0" * 32 + ".gif", "0" * 32 + ".png/../x", "0" * 32 + ".PNG", "0" * 31 + ".png", "0" * 32 + ".png\n",
])
def test_malformed_or_unknown_names_are_none(store, name):
    store.save(picture())
    assert store.path(name) is None and store.info(name) is None


def test_unknown_well_formed_name_is_none(store):
    assert store.info("0" * 32 + ".png") is None and store.path("0" * 32 + ".jpg") is None


def test_import_file_names_a_missing_file(store, tmp_path):
    missing = tmp_path / "screens" / "home.png"
    with pytest.raises(ValidationError) as caught:
        import_file(store, missing)
    assert caught.value.field == "image" and caught.value.message == f"no such file: {missing}"
    with pytest.raises(ValidationError, match="not a file"):
        import_file(store, tmp_path)


def test_import_file_stores_what_save_would(store, tmp_path):
    content = picture("PNG", (64, 48))
    source = tmp_path / "home.png"
    source.write_bytes(content)
    assert import_file(store, source) == store.save(content)


# ---- the routes --------------------------------------------------------------------------------------------------


@pytest.fixture
def secret(session):  # type: ignore[no-untyped-def]
    token = create_token(session, "secret", "images").secret
    public = create_token(session, "public", "site").secret
    session.commit()
    return {"sk": {"Authorization": f"Bearer {token}"}, "pk": {"Authorization": f"Bearer {public}"}}


def test_upload_as_form_then_serve_with_cache_headers(client, secret, app):
    content = picture("PNG", (320, 200))
    response = client.post("/api/v1/images", headers=secret["sk"],
                           data={"file": (io.BytesIO(content), "home.png")}, content_type="multipart/form-data")
    assert response.status_code == 201, response.get_data(as_text=True)
    body = response.get_json()
    assert body["width"] == 320 and body["height"] == 200
    assert body["url"] == f"/study-images/{body['image']}"
    with app.test_request_context():
        from web.study_images import image_url
        assert image_url(body["image"]) == body["url"]
    served = client.get(body["url"])
    assert served.status_code == 200 and served.data == content
    assert served.headers["Content-Type"] == "image/png"
    assert served.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert "Set-Cookie" not in served.headers
    again = client.get(body["url"], headers={"If-None-Match": served.headers["ETag"]})
    assert again.status_code == 304


def test_upload_as_raw_jpeg_body(client, secret):
    content = picture("JPEG", (50, 60))
    response = client.post("/api/v1/images", headers=secret["sk"], data=content, content_type="image/jpeg")
    assert response.status_code == 201
    name = response.get_json()["image"]
    assert name.endswith(".jpg")
    served = client.get(f"/study-images/{name}")
    assert served.headers["Content-Type"] == "image/jpeg" and served.data == content


def test_an_image_over_the_app_wide_limit_but_under_5_mb_is_accepted(client, secret):
    noise = Image.effect_noise((1500, 1000), 120).convert("RGB")  # incompressible: about 4.5 MB as PNG
    buffer = io.BytesIO()
    noise.save(buffer, format="PNG", compress_level=0)
    content = buffer.getvalue()
    assert 2 * 1024 * 1024 < len(content) <= MAX_BYTES
    response = client.post("/api/v1/images", headers=secret["sk"],
                           data={"file": (io.BytesIO(content), "noise.png")}, content_type="multipart/form-data")
    assert response.status_code == 201, response.get_data(as_text=True)


@pytest.mark.parametrize("headers, status", [({}, 401), ({"Authorization": "Bearer sk_nope"}, 401)])
def test_upload_needs_a_secret_token(client, headers, status):
    response = client.post("/api/v1/images", headers=headers, data=picture(), content_type="image/png")
    assert response.status_code == status
    assert response.get_json()["error"]["field"] == "Authorization"


def test_a_public_key_cannot_upload(client, secret):
    response = client.post("/api/v1/images", headers=secret["pk"], data=picture(), content_type="image/png")
    assert response.status_code == 403


def form(field: str, content: bytes, filename: str) -> dict[str, object]:
    return {"data": {field: (io.BytesIO(content), filename)}, "content_type": "multipart/form-data"}


@pytest.mark.parametrize("request_body", [  # made per test: the client closes the form's files
    lambda: form("file", b"hello, I am text", "x.png"),
    lambda: form("file", picture("GIF"), "x.gif"),
    lambda: form("other", picture(), "x.png"),
    lambda: {"data": b"hello, I am text", "content_type": "image/png"},
    lambda: {"data": b"", "content_type": "image/png"},
], ids=["text-as-png", "gif", "no-file-field", "raw-text", "raw-empty"])
def test_a_non_image_or_missing_file_is_400_naming_image(client, secret, request_body):
    response = client.post("/api/v1/images", headers=secret["sk"], **request_body())
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["field"] == "image" and error["message"]


@pytest.mark.parametrize("as_form", [True, False])
def test_six_megabytes_is_413_json(client, secret, as_form):
    six = b"\x89PNG\r\n\x1a\n" + b"\0" * (6 * 1024 * 1024)
    if as_form:
        response = client.post("/api/v1/images", headers=secret["sk"],
                               data={"file": (io.BytesIO(six), "big.png")}, content_type="multipart/form-data")
    else:
        response = client.post("/api/v1/images", headers=secret["sk"], data=six, content_type="image/png")
    assert response.status_code == 413
    assert response.mimetype == "application/json"
    error = response.get_json()["error"]
    assert error["field"] == "image" and "the limit is 5 MB" in error["message"]


def test_a_form_just_over_5_mb_is_413_too(client, secret):
    # Within the form's allowance for boundaries, but the file itself is over the limit.
    content = b"\x89PNG\r\n\x1a\n" + b"\0" * MAX_BYTES
    response = client.post("/api/v1/images", headers=secret["sk"],
                           data={"file": (io.BytesIO(content), "big.png")}, content_type="multipart/form-data")
    assert response.status_code == 413 and response.get_json()["error"]["field"] == "image"


@pytest.mark.parametrize("name", ["0" * 32 + ".png", "nothing.png", "..%2F..%2Fsecret_key", "secret_key"])
def test_unknown_or_malformed_image_names_are_404(client, name):
    assert client.get(f"/study-images/{name}").status_code == 404


def test_the_instance_folder_is_not_reachable(client, app):
    (Path(app.instance_path) / "images").mkdir(exist_ok=True)
    assert client.get("/study-images/../secret_key").status_code == 404
    assert client.get("/study-images/%2E%2E%2Fsecret_key").status_code == 404


def test_a_real_server_lets_the_sender_of_6_mb_read_the_413(tmp_path):
    """Under gunicorn a refused body left unread ends in a broken pipe for a client still sending it
    (http.client, fetch): the route reads it first, so the JSON answer arrives."""
    import http.client

    from tests.live_server import abtest_env, live_server, run_abtest

    env = abtest_env(tmp_path, f"sqlite:///{tmp_path / 'x.db'}")
    assert run_abtest(env, "db", "upgrade").returncode == 0
    made = run_abtest(env, "token", "create", "--name", "images")
    token = made.stdout.strip().splitlines()[-1]
    six = b"\x89PNG\r\n\x1a\n" + b"\0" * (6 * 1024 * 1024)
    with live_server(env, workers=1) as server:
        connection = http.client.HTTPConnection(server.url.removeprefix("http://"), timeout=30)
        connection.request("POST", "/api/v1/images", body=six,
                           headers={"Authorization": f"Bearer {token}", "Content-Type": "image/png"})
        answer = connection.getresponse()
        assert answer.status == 413
        assert json.loads(answer.read())["error"]["field"] == "image"
        connection.close()


def test_a_phone_photo_is_stored_upright_and_without_its_metadata(tmp_path):
    """A JPEG stored sideways with EXIF orientation 6 (turn 90° clockwise) and a GPS tag: browsers
    draw it upright, so the store keeps it upright (targets are drawn on what is shown) and drops
    the metadata, since the image is public."""
    raw = Image.new("RGB", (400, 200), "white")
    raw.paste((255, 0, 0), (0, 0, 40, 40))  # a red corner, top left as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation
    exif[0x8825] = {1: "N", 2: (52.0, 31.0, 12.0)}  # GPS info
    out = io.BytesIO()
    raw.save(out, format="JPEG", exif=exif, quality=95)
    stored = images.ImageStore(tmp_path / "images").save(out.getvalue())
    assert (stored.width, stored.height) == (200, 400)
    with Image.open(tmp_path / "images" / stored.name) as kept:
        assert not kept.getexif() and "exif" not in kept.info
        assert kept.getpixel((180, 20))[0] > 200 and kept.getpixel((20, 20))[1] > 200  # red now top right
