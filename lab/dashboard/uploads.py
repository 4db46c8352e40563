"""An image a person uploads, checked and made to fit the model, with a notice per change.

:func:`read_upload` refuses more than :data:`MAX_UPLOAD_BYTES`, then hands the bytes to
:func:`lab.data.images.read_image` (the CLI's reader) with ``fit=True`` and at most
:data:`MAX_UPLOAD_PIXELS` pixels: it refuses, with one sentence each, anything that is not a
PNG or JPEG by its content (:data:`UPLOAD_FORMATS`), too many pixels (read from the header,
before any pixel is decoded: a decompression bomb is refused, not decoded), an animation and
files that fail to decode; it converts, saying so in :attr:`Upload.notices`: EXIF rotation, 16
to 8 bits, colour to gray or gray to colour, a dropped alpha channel (composited on black),
another aspect ratio (centre crop), another size (resize). Inverted colours (MNIST digits are
white on black) are optional, here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lab.core.errors import LabError
from lab.data.images import IMAGE_FORMATS, MAX_PIXELS, read_image

#: what an upload must be by its content (the CLI's formats)
UPLOAD_FORMATS: tuple[str, ...] = tuple(IMAGE_FORMATS)
#: file name endings the upload widget offers
UPLOAD_SUFFIXES = ("png", "jpg", "jpeg")
#: uploads larger than this are refused (``server.maxUploadSize`` in .streamlit/config.toml is 2 MB)
MAX_UPLOAD_BYTES = 2 * 1024 * 1024
#: pixel count above which an upload is refused before decoding (lab.data.images.MAX_PIXELS is the CLI's)
MAX_UPLOAD_PIXELS = min(MAX_PIXELS, 2048 * 2048)


@dataclass
class Upload:
    """The image as the model takes it (uint8 [C, H, W]) and what was done to get there."""

    x: np.ndarray
    name: str
    original_size: tuple[int, int]  # (width, height)
    original_mode: str
    notices: list[str] = field(default_factory=list)


def read_upload(data: bytes, name: str, input_shape: tuple[int, ...] | list[int], *, invert: bool = False) -> Upload:
    """Check and convert uploaded bytes to the model's ``input_shape`` (C, H, W); LabError if unusable."""
    if len(data) > MAX_UPLOAD_BYTES:
        raise LabError(f"{name!r} is {len(data) / 1e6:.1f} MB; uploads are limited to {MAX_UPLOAD_BYTES / 1e6:.1f} MB")
    res = read_image(bytes(data), input_shape, name=name, fit=True, max_pixels=MAX_UPLOAD_PIXELS,
                     max_bytes=MAX_UPLOAD_BYTES)  # fmt: skip
    x, notices = res.x, list(res.notes)
    if invert:
        x = np.ascontiguousarray(255 - x)
        notices.append("inverted the colours")
    return Upload(x=x, name=name, original_size=res.original_size, original_mode=res.original_mode, notices=notices)


def looks_inverted(x: np.ndarray, dataset: str) -> bool:
    """True for a mostly light gray image on MNIST-like data (whose digits are white on black)."""
    return x.shape[0] == 1 and dataset in ("mnist", "fashion-mnist") and float(np.mean(x)) > 127
