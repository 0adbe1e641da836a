"""The screens of first-click tests: PNG and JPEG images kept by content in ``<instance>/images/``.

An image is named by its own bytes (the first 32 hex digits of their SHA-256), so the same
upload twice is one file, a name never changes meaning (it can be cached forever), and a name is
all a study definition needs to carry. Only names of that exact shape are ever turned into a
path, so no request can reach another file. What an image *is* is decided by Pillow reading its
content, never by a file name or a declared type; its size in pixels is read from the header and
checked before anything is decoded, so a small file that would unpack into gigabytes (a
decompression bomb) is refused cheaply.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import re
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps

from abtest.errors import ValidationError

MAX_BYTES = 5 * 1024 * 1024
MAX_SIDE = 8000
MAX_PIXELS = 40_000_000
FOLDER = "images"
# Pillow's format name → the extension the store writes and the type it is served as. A JPEG
# with several pictures in it (phones write these) is "MPO" to Pillow and a JPEG to browsers.
_KINDS = {"PNG": (".png", "image/png"), "JPEG": (".jpg", "image/jpeg"), "MPO": (".jpg", "image/jpeg")}
MEDIA_TYPES = {".png": "image/png", ".jpg": "image/jpeg"}
NAME_PATTERN = re.compile(r"[0-9a-f]{32}\.(?:png|jpg)")
_MB = 1024 * 1024


class ImageTooLarge(ValidationError):
    """An image over :data:`MAX_BYTES`: still a validation error, but the web layer answers 413."""

    status = 413
    code = "request_entity_too_large"


@dataclass(frozen=True)
class StoredImage:
    name: str
    width: int
    height: int


def megabytes(size: int) -> str:
    """To a tenth, but rounded up near the limit, so a size over it never reads as the limit ("5.1 MB", not "5.0")."""
    tenths = round(size * 10 / _MB)
    if size > MAX_BYTES and tenths * _MB <= MAX_BYTES * 10:
        tenths = math.ceil(size * 10 / _MB)
    return f"{tenths / 10:.1f} MB"


def too_large(size: int | None = None) -> ImageTooLarge:
    said = f"is {megabytes(size)}" if size is not None else "is too large"
    return ImageTooLarge(f"{said}; the limit is {MAX_BYTES // _MB} MB", field="image")


def _not_an_image() -> ValidationError:
    return ValidationError("is not a PNG or JPEG image", field="image")


def _check_pixels(width: int, height: int) -> None:
    if max(width, height) > MAX_SIDE:
        raise ValidationError(f"is {width} × {height} px; at most {MAX_SIDE} px a side", field="image")
    if width * height > MAX_PIXELS:
        raise ValidationError(f"is {width} × {height} px, {width * height / 1e6:.0f} million pixels; at most "
                              f"{MAX_PIXELS // 1_000_000} million", field="image")


def identify(content: bytes) -> tuple[str, int, int]:
    """The extension, width and height of a PNG or JPEG image, or a ValidationError naming ``image``.

    Order matters: the header gives format and size without decoding; only an image within the
    limits is verified (PNG checksums) and then decoded once, so a truncated or corrupt file is
    refused here instead of showing as a broken picture to participants.
    """
    if len(content) > MAX_BYTES:
        raise too_large(len(content))
    if not content:
        raise ValidationError("is empty: no image was sent", field="image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(content), formats=["PNG", "JPEG"]) as probe:
                kind, (width, height) = probe.format, probe.size
                if kind not in _KINDS:
                    raise _not_an_image()
                _check_pixels(width, height)
                probe.verify()
            with Image.open(io.BytesIO(content), formats=["PNG", "JPEG"]) as image:  # verify() spends its file
                image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ValidationError(f"is too many pixels to open; at most {MAX_PIXELS // 1_000_000} million "
                              f"and {MAX_SIDE} px a side", field="image") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError) as exc:
        raise _not_an_image() from exc
    return _KINDS[kind][0], width, height


def normalized(content: bytes, extension: str) -> tuple[bytes, int, int]:
    """The image as participants must see it, re-encoded: turned upright by its EXIF orientation
    (a phone photo is stored sideways with a flag saying so; targets are drawn on what the browser
    shows, so the stored pixels must be those) and without its metadata (EXIF carries the camera's
    GPS position, and these images are public). Its colour profile is kept."""
    with Image.open(io.BytesIO(content), formats=["PNG", "JPEG"]) as image:
        text = getattr(image, "text", None) or {}
        if not image.getexif() and not text and not any(k in image.info for k in ("exif", "xmp", "XML:com.adobe.xmp")):
            return content, image.width, image.height  # nothing to turn or strip: the bytes as they came
        upright = ImageOps.exif_transpose(image)
        icc = image.info.get("icc_profile")
        out = io.BytesIO()
        extra = {"icc_profile": icc} if icc else {}
        if extension == ".png":
            upright.save(out, format="PNG", **extra)
        else:
            rgb = upright if upright.mode in ("RGB", "L", "CMYK") else upright.convert("RGB")
            rgb.save(out, format="JPEG", quality=92, **extra)
        return out.getvalue(), upright.width, upright.height


class ImageStore:
    """Images in one folder, each under a name made from its content (see the module's docstring)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def save(self, content: bytes) -> StoredImage:
        """Store ``content`` (checked by :func:`identify`) as :func:`normalized`; the same bytes
        again give the same name."""
        extension, _width, _height = identify(content)
        content, width, height = normalized(content, extension)
        name = hashlib.sha256(content).hexdigest()[:32] + extension
        target = self.folder / name
        if not target.exists():
            self.folder.mkdir(parents=True, exist_ok=True)
            # Written beside its final place and renamed: a reader never sees half an image, and
            # two saves of the same bytes at once both end in the same complete file.
            fd, temporary = tempfile.mkstemp(dir=self.folder, prefix=".upload-", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(content)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(temporary, target)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
        return StoredImage(name, width, height)

    def path(self, name: str) -> Path | None:
        """Where a stored image is; None for a name the store does not make or does not hold."""
        if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
            return None
        path = self.folder / name
        return path if path.is_file() else None

    def info(self, name: str) -> StoredImage | None:
        """A stored image's size in pixels (read from its header), or None when there is no such image."""
        path = self.path(name)
        if path is None:
            return None
        try:
            with Image.open(path) as image:
                width, height = image.size
        except (OSError, SyntaxError, ValueError):
            return None
        return StoredImage(name, width, height)

    @staticmethod
    def media_type(name: str) -> str:
        """The Content-Type a stored image is served with (its name says what the store found)."""
        return MEDIA_TYPES[Path(name).suffix]


def store_for(instance_path: Path) -> ImageStore:
    return ImageStore(Path(instance_path) / FOLDER)


def import_file(store: ImageStore, path: Path) -> StoredImage:
    """Store the image file a TOML definition names (``abtest sync``), checked as an upload is."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise ValidationError(f"is not a file: {path}", field="image")
        if size > MAX_BYTES:  # refused before reading it all
            raise too_large(size)
        content = path.read_bytes()
    except FileNotFoundError:
        raise ValidationError(f"no such file: {path}", field="image") from None
    except OSError as exc:
        raise ValidationError(f"cannot read {path}: {exc.strerror or exc}", field="image") from None
    return store.save(content)
