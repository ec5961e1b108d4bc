"""HEIC copies are encoded at x265's default effort, not libheif's slower one."""

from __future__ import annotations

from typing import ClassVar

from filegate.inspect import images
from filegate.inspect.base import Sample


def test_heic_copies_use_the_medium_x265_preset() -> None:
    sample = Sample(path="x.heic", size=1, detected_type="image/heic", extension="heic")
    job = images._Job(sample, images.Limits(), images._FORMATS["image/heic"], lossless=False)
    options = images._encoder_options(_Stub(), job)
    assert options == {"format": "HEIF", "quality": 90, "enc_params": {"preset": "medium"}}


def test_other_formats_get_no_x265_parameters() -> None:
    sample = Sample(path="x.avif", size=1, detected_type="image/avif", extension="avif")
    job = images._Job(sample, images.Limits(), images._FORMATS["image/avif"], lossless=False)
    assert "enc_params" not in images._encoder_options(_Stub(), job)


class _Stub:
    info: ClassVar[dict[str, object]] = {}
