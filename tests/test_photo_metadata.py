"""Stored photos carry no location or camera metadata, and are still upright."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from storage.media import store_photo
from storage.models import Identity, Media
from storage.photo_clean import NotAPicture, strip_metadata

GPS_IFD = 0x8825
ORIENTATION = 0x0112


def jpeg_with_gps(orientation: int = 1, size: tuple[int, int] = (40, 20)) -> bytes:
    image = Image.new("RGB", size, (200, 30, 30))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[ORIENTATION] = orientation
    exif.get_ifd(GPS_IFD).update({1: "N", 2: (11.0, 45.0, 30.0), 3: "E", 4: (108.0, 50.0, 1.0)})
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif, quality=95)
    return out.getvalue()


def test_gps_and_camera_are_removed_and_the_picture_kept():
    original = jpeg_with_gps()
    assert Image.open(io.BytesIO(original)).getexif().get_ifd(GPS_IFD)
    cleaned = Image.open(io.BytesIO(strip_metadata(original, "image/jpeg")))
    assert not cleaned.getexif().get_ifd(GPS_IFD) and 0x010F not in cleaned.getexif()
    assert cleaned.size == (40, 20)


def test_a_rotated_phone_photo_stays_upright():
    cleaned = Image.open(io.BytesIO(strip_metadata(jpeg_with_gps(orientation=6), "image/jpeg")))
    assert cleaned.size == (20, 40) and ORIENTATION not in cleaned.getexif()


def test_png_text_chunks_are_dropped_and_clean_pictures_untouched():
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("Location", "11.75,108.83")
    out = io.BytesIO()
    Image.new("RGB", (5, 5)).save(out, format="PNG", pnginfo=info)
    assert b"Location" not in strip_metadata(out.getvalue(), "image/png")
    plain = io.BytesIO()
    Image.new("RGB", (5, 5), (1, 2, 3)).save(plain, format="PNG")
    again = Image.open(io.BytesIO(strip_metadata(plain.getvalue(), "image/png")))
    assert again.getpixel((4, 4)) == (1, 2, 3)
    jpeg = io.BytesIO()
    Image.new("RGB", (5, 5)).save(jpeg, format="JPEG")
    assert strip_metadata(jpeg.getvalue(), "image/jpeg") == jpeg.getvalue()


@pytest.mark.parametrize("data", [b"\xff\xd8\xff" + b"\x00" * 100, b"\x89PNG\r\n\x1a\nbroken"])
def test_bytes_that_only_look_like_a_picture_are_refused(data):
    with pytest.raises(NotAPicture):
        strip_metadata(data, "image/jpeg" if data.startswith(b"\xff") else "image/png")


def test_the_media_store_keeps_the_clean_file(db, tmp_path):
    with db.transaction() as session:
        identity = Identity(channel="webchat", external_id="x", consent="given")
        session.add(identity)
        session.flush()
        stored = store_photo(session, tmp_path, identity.id, jpeg_with_gps(), max_bytes=10**6)
        key = session.get_one(Media, stored.media_id).storage_key
        refused = store_photo(session, tmp_path, identity.id, b"\xff\xd8\xff" + b"\0" * 50,
                              max_bytes=10**6)
    assert refused.error == "bad_type" and refused.media_id is None
    on_disk = Image.open(tmp_path / key)
    assert not on_disk.getexif().get_ifd(GPS_IFD)
