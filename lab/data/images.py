"""One image a user hands in (a file path from the CLI, uploaded bytes from the dashboard),
checked from its header before any pixel is decoded, and made into what a model takes, with a
note per conversion.

:func:`read_image` refuses, with one :class:`~lab.core.errors.LabError` sentence naming the file: a
missing, empty or oversized file; content that is not PNG or JPEG (:data:`IMAGE_FORMATS`, told
by its first bytes, whatever the file's name; GIF, BMP, TIFF and WebP are named); a damaged
header; more than ``max_pixels`` pixels (read from the header before decoding, so a
decompression bomb is refused, never decoded; Pillow's own bomb check, which reads a global
limit and may only warn, is never reached); an animation; data that fails to decode (truncated,
corrupt); a model that takes neither 1 nor 3 channels; and, unless ``fit``, a size other than
the model's. It converts, saying so in :attr:`ImageRead.notes`: EXIF orientation, 16 to 8 bits,
transparency (composited on black), colour to grayscale, grayscale or palette to RGB, and with
``fit`` another aspect ratio (centre crop) or size (resize).
"""

from __future__ import annotations

import io
import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, JpegImagePlugin, PngImagePlugin

from lab.core.errors import LabError

#: image formats accepted from users (Pillow's names), told apart by their first bytes
IMAGE_FORMATS: tuple[str, ...] = ("PNG", "JPEG")
#: refuse decoding anything larger than this many pixels (decompression bombs)
MAX_PIXELS = 4096 * 4096
#: refuse reading image files larger than this
MAX_FILE_BYTES = 64 * 1024 * 1024
#: modes whose pixels are gray (converting them to RGB repeats one channel)
GRAY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})
#: modes with more than 8 bits per pixel, scaled to 8-bit gray
HIGH_DEPTH_MODES = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N", "F"})

_OPENERS: dict[str, type[ImageFile.ImageFile]] = {
    "PNG": PngImagePlugin.PngImageFile,
    "JPEG": JpegImagePlugin.JpegImageFile,
}
_FLIPS = (2, 4)  # EXIF orientations that mirror; 3, 5-8 rotate (5 and 7 also mirror)


@dataclass
class ImageRead:
    """The image as the model takes it (uint8 [C, H, W]) and what was done to get there."""

    x: np.ndarray
    name: str
    format: str  # "PNG" | "JPEG"
    original_size: tuple[int, int]  # (width, height), from the header
    original_mode: str  # Pillow's mode, e.g. "RGBA", "L", "P", "I;16"
    notes: list[str] = field(default_factory=list)


def read_image(source: str | os.PathLike[str] | bytes, input_shape: Sequence[int], *, name: str | None = None,
               fit: bool = False, max_pixels: int = MAX_PIXELS, max_bytes: int = MAX_FILE_BYTES) -> ImageRead:  # fmt: skip
    """Read a PNG/JPEG (a path, or its bytes) as uint8 [C, H, W] for a model taking ``input_shape``.

    ``name`` is how messages call the image (default: the path). Another size than the model's
    is refused unless ``fit``, which crops around the centre to the model's aspect ratio and
    resizes. Every refusal is a LabError of one sentence naming the image.
    """
    if isinstance(source, bytes):
        label = name or "image"
        data = source
    else:
        label = name or str(source)
        data = _read_file(Path(source), label, max_bytes)
    c, h, w = (int(v) for v in input_shape)
    if c not in (1, 3):
        raise LabError(f"image {label!r} cannot go to this model: it takes {c}-channel images, and image files "
                       "work for 1 (gray) and 3 (RGB) channels")  # fmt: skip
    img, fmt = _open_header(data, label)
    with img:
        iw, ih = img.size
        _check_size(img, label, max_pixels)
        if not fit and sorted((iw, ih)) != sorted((w, h)):
            raise LabError(f"image {label!r} is {iw}x{ih} pixels but the model takes {w}x{h}; resize it first")
        mode = img.mode
        upright, notes = _decode(img, label, fmt)
    deep = fmt == "PNG" and data[24:25] == b"\x10"  # the IHDR chunk's bit depth
    pic = _to_channels(upright, mode, c, notes, deep)
    if fit:
        pic = _fit(pic, w, h, notes)
    elif pic.size != (w, h):
        raise LabError(f"image {label!r} is {pic.size[0]}x{pic.size[1]} pixels once turned upright as its EXIF "
                       f"orientation says, but the model takes {w}x{h}; resize it first")  # fmt: skip
    arr = np.asarray(pic, dtype=np.uint8)
    arr = arr[None] if c == 1 else arr.transpose(2, 0, 1)
    return ImageRead(x=np.ascontiguousarray(arr), name=label, format=fmt, original_size=(iw, ih),
                     original_mode=mode, notes=notes)  # fmt: skip


def _read_file(path: Path, label: str, max_bytes: int) -> bytes:
    """The file's bytes; LabError if it is missing, not a file, too large or unreadable."""
    try:
        if not path.exists():
            raise LabError(f"image {label!r} does not exist; expected a PNG or JPEG file")
        if not path.is_file():
            raise LabError(f"image {label!r} is not a file; expected a PNG or JPEG file")
        size = path.stat().st_size
        if size > max_bytes:
            raise LabError(f"image {label!r} is {size / 1e6:.1f} MB; image files up to {max_bytes / 1e6:.0f} MB "
                           "are read")  # fmt: skip
        with open(path, "rb") as fh:
            return fh.read(max_bytes + 1)
    except OSError as exc:
        raise LabError(f"image {label!r} cannot be read ({exc.strerror or _why(exc)})") from None


def sniff_format(data: bytes) -> str | None:
    """The image format the first bytes of ``data`` announce ("PNG", "JPEG", "GIF", ...), or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if data[:2] == b"BM" and int.from_bytes(data[14:18], "little") in (12, 16, 40, 52, 56, 64, 108, 124):
        return "BMP"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def decode_image(data: bytes, label: str, *, max_pixels: int = MAX_PIXELS) -> tuple[Image.Image, str]:
    """Every pixel of a PNG or JPEG decoded, after the header checks of :func:`read_image`
    (format told by content, at most ``max_pixels`` pixels, a single frame): the loaded image
    as the file stores it (not turned upright, not converted) and its format. One LabError
    sentence naming ``label`` otherwise. The image-folder datasets read their files with it."""
    img, fmt = _open_header(data, label)
    _check_size(img, label, max_pixels)
    try:
        img.load()
    except Exception as exc:  # noqa: BLE001 - any decoding failure (a bomb error included) is the file's
        img.close()
        raise LabError(f"image {label!r} is damaged and cannot be decoded ({_why(exc)}); expected a complete "
                       f"{fmt} file") from None  # fmt: skip
    return img, fmt


def _check_size(img: Image.Image, label: str, max_pixels: int) -> None:
    """LabError for more than ``max_pixels`` pixels or more than one frame (read from the header)."""
    iw, ih = img.size
    if iw * ih > max_pixels:
        raise LabError(f"image {label!r} is {iw}x{ih} pixels ({iw * ih:,}); at most {max_pixels:,} pixels are "
                       "accepted (large images are refused before decoding)")  # fmt: skip
    frames = int(getattr(img, "n_frames", 1))
    if frames > 1:
        raise LabError(f"image {label!r} is an animation ({frames} frames); expected a single image")


def _open_header(data: bytes, label: str) -> tuple[Image.Image, str]:
    """Parse the header only (no pixel is decoded): the lazily loading image and its format."""
    if not data:
        raise LabError(f"image {label!r} is empty; expected a PNG or JPEG file")
    fmt = sniff_format(data)
    if fmt is None:
        raise LabError(f"image {label!r} is not an image this lab reads: its content is neither PNG nor JPEG, "
                       "whatever its name")  # fmt: skip
    if fmt not in IMAGE_FORMATS:
        raise LabError(f"image {label!r} is a {fmt} image; expected a PNG or JPEG")
    try:
        # the format's own class, not Image.open: no global bomb limit, warning or other format is involved
        return _OPENERS[fmt](io.BytesIO(data)), fmt
    except Exception as exc:  # noqa: BLE001 - Pillow raises many kinds on a bad header
        if isinstance(exc.__cause__ or exc, (EOFError, IndexError, struct.error)):  # Pillow wraps them in SyntaxError
            raise LabError(f"image {label!r} ends inside its {fmt} header; expected a complete {fmt} file") from None
        raise LabError(f"image {label!r} has a damaged {fmt} header ({_why(exc)}); expected a valid {fmt} "
                       "file") from None  # fmt: skip


def _decode(img: Image.Image, label: str, fmt: str) -> tuple[Image.Image, list[str]]:
    """Decode every pixel (a truncated or corrupt file fails here) and turn it upright (EXIF)."""
    try:
        img.load()
        orientation = int(img.getexif().get(0x0112, 1) or 1)
        upright = ImageOps.exif_transpose(img)
    except Exception as exc:  # noqa: BLE001 - any decoding failure (a bomb error included) is the file's
        raise LabError(f"image {label!r} is damaged and cannot be decoded ({_why(exc)}); expected a complete "
                       f"{fmt} file") from None  # fmt: skip
    notes: list[str] = []
    if orientation in _FLIPS:
        notes.append("mirrored as its EXIF orientation says")
    elif 2 < orientation <= 8:
        notes.append("rotated as its EXIF orientation says")
    return upright, notes


def _to_channels(img: Image.Image, mode: str, c: int, notes: list[str], deep: bool) -> Image.Image:
    """``img`` as 8-bit "L" (c=1) or "RGB" (c=3); ``mode`` is the file's and ``deep`` says it has
    16 bits per channel (Pillow reduces 16-bit colour itself), for the notes."""
    if img.mode in HIGH_DEPTH_MODES:  # 16-bit gray: scale 0..65535 to 0..255 (Pillow's convert clips)
        scaled = np.clip(np.rint(np.asarray(img, dtype=np.float64) / 257.0), 0, 255).astype(np.uint8)
        img = Image.fromarray(scaled)
        deep = True
    if deep:
        notes.append("reduced from 16 to 8 bits per channel")
    if "A" in img.mode or "a" in img.mode or "transparency" in img.info:
        rgba = img.convert("RGBA")
        img = Image.alpha_composite(Image.new("RGBA", rgba.size, (0, 0, 0, 255)), rgba)
        notes.append("dropped the transparency (transparent pixels became black)")
    shown = {"P": "P (palette)", "1": "1-bit"}.get(mode, mode)
    gray = mode in GRAY_MODES
    if c == 1:
        if not gray:
            notes.append(f"converted from {shown} colour to grayscale, as the model takes 1 channel")
        return img.convert("L")
    if gray:
        notes.append(f"converted from {shown} grayscale to RGB, as the model takes 3 channels")
    elif mode not in ("RGB", "RGBA", "RGBa"):
        notes.append(f"converted from {shown} to RGB, as the model takes 3 channels")
    return img.convert("RGB")


def _fit(img: Image.Image, w: int, h: int, notes: list[str]) -> Image.Image:
    """Crop around the centre to the aspect ratio w:h, then resize to w x h, noting each."""
    iw, ih = img.size
    if iw * h != ih * w:
        if iw * h > ih * w:  # too wide
            nw = max(1, round(ih * w / h))
            left = (iw - nw) // 2
            img = Image.fromarray(np.asarray(img)[:, left : left + nw])  # not Image.crop: no global bomb check
        else:
            nh = max(1, round(iw * h / w))
            top = (ih - nh) // 2
            img = Image.fromarray(np.asarray(img)[top : top + nh])
        notes.append(f"cropped around the centre from {iw}x{ih} to {img.size[0]}x{img.size[1]} to match the "
                     f"model's {w}:{h} aspect ratio")  # fmt: skip
    if img.size != (w, h):
        notes.append(f"resized from {img.size[0]}x{img.size[1]} to {w}x{h} pixels, the size the model takes")
        img = img.resize((w, h), Image.Resampling.LANCZOS)
    return img


def _why(exc: BaseException) -> str:
    """A one-line reason from an exception (its first line, or its type's name)."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
