"""Photos lose their location and camera metadata before they are stored.

A photo taken on a phone carries EXIF: GPS coordinates of the house where a meeting was held,
the phone's make and serial, the time. None of it is needed to count an activity, and the
programme's photos show women and children, so it is removed from every stored photo. The
picture is turned upright first (the EXIF orientation is what phones use to rotate it), then
written again without metadata; Pillow's own decoder also refuses files that only look like
pictures.
"""

from __future__ import annotations

import io
import logging
import warnings

from PIL import Image, ImageOps, UnidentifiedImageError

log = logging.getLogger(__name__)

# Larger than any phone camera; a "decompression bomb" (a tiny file that unpacks into
# gigabytes) is refused instead of eating the worker's memory.
MAX_PIXELS = 64_000_000
_FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP", "image/gif": "GIF"}
_METADATA_KEYS = ("exif", "xmp", "XML:com.adobe.xmp", "comment", "photoshop", "dpi")


class NotAPicture(ValueError):
    """Bytes that start like a picture but do not decode as one."""


def strip_metadata(data: bytes, content_type: str) -> bytes:
    """The same picture without EXIF, XMP or text chunks; unchanged when it carries none."""
    pil_format = _FORMATS.get(content_type)
    if pil_format is None:
        raise NotAPicture(content_type)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            if image.width * image.height > MAX_PIXELS:
                raise NotAPicture("too many pixels")
            image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError,
            Image.DecompressionBombWarning) as exc:
        raise NotAPicture(str(exc)) from None
    if pil_format == "GIF":
        return data  # GIF has no EXIF; its comment blocks are dropped by nothing we rely on
    # PNG is lossless, so it is always written again: ancillary chunks of any name (text,
    # eXIf, private ones) may hold metadata. A JPEG or WebP is written again only when it
    # carries metadata, since re-encoding them costs quality.
    carries = bool(image.getexif()) or any(k in image.info for k in _METADATA_KEYS)
    if pil_format != "PNG" and not carries:
        return data
    upright = ImageOps.exif_transpose(image)
    out = io.BytesIO()
    options: dict[str, object] = {}
    if image.info.get("icc_profile"):
        options["icc_profile"] = image.info["icc_profile"]  # colours, not metadata
    if pil_format == "JPEG":
        if upright is image:
            options["quality"] = "keep"  # same quantisation tables: no visible loss
        else:
            options["quality"] = 90
        if upright.mode not in ("RGB", "L", "CMYK"):
            upright = upright.convert("RGB")
    elif pil_format == "WEBP":
        options["quality"] = 90
    upright.save(out, format=pil_format, **options)
    return out.getvalue()
