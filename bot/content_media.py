"""Uploads for the content library: photos made small enough for every platform on upload.

Zalo OA accepts images up to 1 MB (the smallest limit among the platforms we send to), so a
larger photo is scaled down and re-encoded as JPEG with Pillow when it is added, never refused
when it is sent.
"""

from __future__ import annotations

import io

from storage.media import sniff

MAX_IMAGE_BYTES = 1024 * 1024  # Zalo OA
MAX_SIDE = 2048


def prepare_upload(data: bytes, *, max_bytes: int = MAX_IMAGE_BYTES) -> tuple[bytes, str]:
    """The bytes to store and a note on what was done ('' when nothing)."""
    if sniff(data) is None or len(data) <= max_bytes:
        return data, ""
    from PIL import Image, ImageOps

    with Image.open(io.BytesIO(data)) as opened:
        image = ImageOps.exif_transpose(opened).convert("RGB")
    image.thumbnail((MAX_SIDE, MAX_SIDE))
    quality = 85
    while True:
        out = io.BytesIO()
        image.save(out, "JPEG", quality=quality, optimize=True)
        if out.tell() <= max_bytes or (quality <= 40 and min(image.size) <= 320):
            break
        if quality > 40:
            quality -= 10
        else:
            image.thumbnail((int(image.width * 0.75), int(image.height * 0.75)))
    result = out.getvalue()
    return result, (f"photo of {len(data)} bytes made smaller: {len(result)} bytes, "
                    f"{image.width}×{image.height}")
