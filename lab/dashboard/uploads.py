"""An image a person uploads, checked and made to fit the model, with a notice per change.

:func:`read_upload` refuses, with one sentence each: more than :data:`MAX_UPLOAD_BYTES`,
anything Pillow does not identify as one of :data:`UPLOAD_FORMATS` (PNG, JPEG), more than
:data:`MAX_UPLOAD_PIXELS` pixels (read from the header, before any pixel is decoded: a
decompression bomb is refused, not decoded), and files that fail to decode. It converts,
saying so in :attr:`Upload.notices`: EXIF rotation, colour to gray or gray to colour, a
dropped alpha channel (composited on black), another aspect ratio (centre crop), another
size (resize), and optionally inverted colours (MNIST digits are white on black).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lab.errors import LabError
from lab.samples import IMAGE_FORMATS, MAX_PIXELS

#: what Pillow must identify an upload as (the CLI's formats)
UPLOAD_FORMATS: tuple[str, ...] = tuple(IMAGE_FORMATS)
#: file name endings the upload widget offers
UPLOAD_SUFFIXES = ("png", "jpg", "jpeg")
#: uploads larger than this are refused (``server.maxUploadSize`` in .streamlit/config.toml is 2 MB)
MAX_UPLOAD_BYTES = 2 * 1024 * 1024
#: pixel count above which an upload is refused before decoding (lab.samples.MAX_PIXELS is the CLI's)
MAX_UPLOAD_PIXELS = min(MAX_PIXELS, 2048 * 2048)


@dataclass
class Upload:
    """The image as the model takes it (uint8 [C, H, W]) and what was done to get there."""

    x: np.ndarray
    name: str
    original_size: tuple[int, int]  # (width, height)
    original_mode: str
    notices: list[str] = field(default_factory=list)


def _open(data: bytes, name: str) -> Any:
    from PIL import Image, UnidentifiedImageError

    try:
        img = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise LabError(f"{name!r} is not an image Pillow can read; upload a PNG or JPEG") from None
    except Image.DecompressionBombError:
        raise LabError(f"{name!r} has too many pixels to decode safely; upload a smaller image") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise LabError(f"{name!r} cannot be read as an image ({exc})") from None
    return img


def _centre_crop(img: Any, w: int, h: int) -> tuple[Any, bool]:
    """Crop ``img`` to the aspect ratio w:h around its centre; (image, whether it cropped)."""
    iw, ih = img.size
    if iw * h == ih * w:
        return img, False
    if iw * h > ih * w:  # too wide
        nw = max(1, round(ih * w / h))
        left = (iw - nw) // 2
        return img.crop((left, 0, left + nw, ih)), True
    nh = max(1, round(iw * h / w))
    top = (ih - nh) // 2
    return img.crop((0, top, iw, top + nh)), True


def read_upload(data: bytes, name: str, input_shape: tuple[int, ...] | list[int], *, invert: bool = False) -> Upload:
    """Check and convert uploaded bytes to the model's ``input_shape`` (C, H, W); LabError if unusable."""
    from PIL import Image, ImageOps

    c, h, w = (int(v) for v in input_shape)
    if c not in (1, 3):
        raise LabError(f"the model takes {c}-channel images; uploads work for 1 (gray) and 3 (RGB) channels")
    if len(data) == 0:
        raise LabError(f"{name!r} is empty")
    if len(data) > MAX_UPLOAD_BYTES:
        raise LabError(f"{name!r} is {len(data) / 1e6:.1f} MB; uploads are limited to {MAX_UPLOAD_BYTES / 1e6:.1f} MB")
    img = _open(data, name)
    with img:
        if img.format not in UPLOAD_FORMATS:
            raise LabError(f"{name!r} is a {img.format} image; upload a PNG or JPEG")
        iw, ih = img.size
        if iw * ih > MAX_UPLOAD_PIXELS:
            raise LabError(f"{name!r} is {iw}x{ih} pixels ({iw * ih:,}); at most {MAX_UPLOAD_PIXELS:,} pixels are "
                           "accepted (large images are refused before decoding)")  # fmt: skip
        if getattr(img, "n_frames", 1) > 1:
            raise LabError(f"{name!r} is an animation; upload a single image")
        mode = img.mode
        notices: list[str] = []
        try:
            img.load()
            upright = ImageOps.exif_transpose(img)
        except Image.DecompressionBombError:
            raise LabError(f"{name!r} is too large to decode safely") from None
        except (OSError, SyntaxError, ValueError) as exc:
            raise LabError(f"{name!r} is damaged and cannot be decoded ({exc})") from None
        if upright.size != img.size:
            notices.append("rotated as its EXIF orientation says")
    if "A" in upright.mode or upright.mode == "P" and "transparency" in upright.info:
        rgba = upright.convert("RGBA")
        base = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        upright = Image.alpha_composite(base, rgba)
        notices.append("dropped the transparency (transparent pixels became black)")
    if c == 1:
        if upright.mode not in ("L", "1", "I", "I;16", "F"):
            notices.append(f"converted from {mode} colour to grayscale, as the model takes 1 channel")
        pic = upright.convert("L")
    else:
        if upright.mode in ("L", "1", "I", "I;16", "F", "LA"):
            notices.append(f"converted from {mode} grayscale to RGB, as the model takes 3 channels")
        pic = upright.convert("RGB")
    pic, cropped = _centre_crop(pic, w, h)
    if cropped:
        notices.append(f"cropped around the centre from {iw}x{ih} to {pic.size[0]}x{pic.size[1]} to match the "
                       f"model's {w}:{h} aspect ratio")  # fmt: skip
    if pic.size != (w, h):
        notices.append(f"resized from {pic.size[0]}x{pic.size[1]} to {w}x{h} pixels, the size the model takes")
        pic = pic.resize((w, h), Image.Resampling.LANCZOS)
    arr = np.asarray(pic, dtype=np.uint8)
    arr = arr[None] if c == 1 else arr.transpose(2, 0, 1)
    if invert:
        arr = 255 - arr
        notices.append("inverted the colours")
    return Upload(x=np.ascontiguousarray(arr), name=name, original_size=(iw, ih), original_mode=mode, notices=notices)


def looks_inverted(x: np.ndarray, dataset: str) -> bool:
    """True for a mostly light gray image on MNIST-like data (whose digits are white on black)."""
    return x.shape[0] == 1 and dataset in ("mnist", "fashion-mnist") and float(np.mean(x)) > 127
