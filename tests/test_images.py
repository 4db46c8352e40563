"""The one image reader (:mod:`lab.data.images`): from bytes (the dashboard's path) and through the
real ``lab`` console script (``--image``), where every bad file is one sentence and exit 2."""

from __future__ import annotations

import functools
import io
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import assert_user_error, run_lab
from PIL import Image

from lab.core.errors import LabError
from lab.data.images import MAX_PIXELS, read_image

GRAY = (1, 28, 28)
RGB = (3, 28, 28)


def encode(img: Image.Image, fmt: str = "PNG", **kwargs: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def noise(size: tuple[int, int] = (28, 28), mode: str = "L") -> Image.Image:
    shape = (size[1], size[0]) if mode == "L" else (size[1], size[0], len(mode))
    return Image.fromarray(np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8), mode)


@functools.cache
def bomb_png(width: int = 20000, height: int = 20000) -> bytes:
    """A valid 1-bit PNG of width x height black pixels, a few tens of kB on disk (written by hand:
    Pillow would hold every pixel in memory to save it)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte + packed bits
    z = zlib.compressobj(9)
    idat = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def truncated_png() -> bytes:
    data = encode(noise())
    return data[: len(data) // 2]


# ---------------------------------------------------------------- from bytes


def test_a_gray_png_of_the_right_size_is_read_as_is() -> None:
    img = noise()
    r = read_image(encode(img), GRAY, name="digit.png")
    assert r.x.shape == GRAY and r.x.dtype == np.uint8 and r.notes == []
    assert np.array_equal(r.x[0], np.asarray(img)) and r.format == "PNG" and r.original_mode == "L"


@pytest.mark.parametrize(
    ("data", "shape", "notes"),
    [
        (encode(Image.new("RGBA", (28, 28), (255, 0, 0, 0))), GRAY,
         ["dropped the transparency (transparent pixels became black)",
          "converted from RGBA colour to grayscale, as the model takes 1 channel"]),
        (encode(Image.new("RGB", (28, 28), (9, 90, 200))), GRAY,
         ["converted from RGB colour to grayscale, as the model takes 1 channel"]),
        (encode(Image.new("L", (28, 28), 7)), RGB, ["converted from L grayscale to RGB, as the model takes 3 channels"]),
        (encode(Image.new("P", (28, 28), 3)), RGB, ["converted from P (palette) to RGB, as the model takes 3 channels"]),
        (encode(Image.new("RGBA", (28, 28), (1, 2, 3, 255))), RGB,
         ["dropped the transparency (transparent pixels became black)"]),
        (encode(Image.fromarray(np.full((28, 28), 65535, np.uint16))), GRAY, ["reduced from 16 to 8 bits per channel"]),
    ],
)  # fmt: skip
def test_each_conversion_is_a_note(data: bytes, shape: tuple[int, int, int], notes: list[str]) -> None:
    r = read_image(data, shape, name="pic.png")
    assert r.x.shape == shape and r.x.dtype == np.uint8
    assert r.notes == notes


def test_transparent_pixels_become_black_and_16_bit_is_scaled_not_clipped() -> None:
    assert int(read_image(encode(Image.new("RGBA", (28, 28), (255, 255, 255, 0))), GRAY).x.max()) == 0
    half = np.full((28, 28), 32896, np.uint16)  # 128 * 257
    assert int(read_image(encode(Image.fromarray(half)), GRAY).x[0, 0, 0]) == 128


def test_exif_orientation_is_applied_and_noted_before_the_size_check() -> None:
    img = Image.new("L", (20, 28), 50)
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 degrees: 20 wide x 28 high becomes 28 x 20
    data = encode(img, "JPEG", exif=exif)
    r = read_image(data, (1, 20, 28), name="phone.jpg")
    assert r.x.shape == (1, 20, 28) and r.notes == ["rotated as its EXIF orientation says"]
    with pytest.raises(LabError, match="28x20 pixels once turned upright"):
        read_image(data, (1, 28, 20), name="phone.jpg")


def test_fit_crops_and_resizes_with_notes() -> None:
    r = read_image(encode(noise((100, 50))), GRAY, name="wide.png", fit=True)
    assert r.x.shape == GRAY and r.original_size == (100, 50)
    assert r.notes == ["cropped around the centre from 100x50 to 50x50 to match the model's 28:28 aspect ratio",
                       "resized from 50x50 to 28x28 pixels, the size the model takes"]  # fmt: skip


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "image 'f.png' is empty; expected a PNG or JPEG file"),
        (b"just some text", "image 'f.png' is not an image this lab reads: its content is neither PNG nor JPEG"),
        (encode(noise(), "GIF"), "image 'f.png' is a GIF image; expected a PNG or JPEG"),
        (encode(noise(), "BMP"), "image 'f.png' is a BMP image; expected a PNG or JPEG"),
        (encode(noise(), "TIFF"), "image 'f.png' is a TIFF image; expected a PNG or JPEG"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "image 'f.png' ends inside its PNG header; expected a complete PNG file"),
        (truncated_png(), "image 'f.png' is damaged and cannot be decoded (image file is truncated"),
        (encode(noise((28, 28), "RGB"), "JPEG")[:900], "image 'f.png' is damaged and cannot be decoded"),
        (encode(noise((32, 30))), "image 'f.png' is 32x30 pixels but the model takes 28x28; resize it first"),
    ],
)
def test_refusals_are_one_sentence_naming_the_file(data: bytes, words: str) -> None:
    with pytest.raises(LabError) as err:
        read_image(data, GRAY, name="f.png")
    message = str(err.value)
    assert message.startswith(words), message
    assert "\n" not in message and message.count(". ") == 0


def test_a_model_with_another_channel_count_is_refused() -> None:
    with pytest.raises(LabError, match="it takes 4-channel images"):
        read_image(encode(noise()), (4, 28, 28), name="f.png")


def test_a_bomb_is_refused_from_its_header_and_pillow_never_warns(monkeypatch: pytest.MonkeyPatch) -> None:
    data = bomb_png()
    assert len(data) < 100_000
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a DecompressionBombWarning would fail the test
        with pytest.raises(LabError, match=r"is 20000x20000 pixels \(400,000,000\); at most 16,777,216 pixels"):
            read_image(data, GRAY, name="bomb.png")
        with pytest.raises(LabError, match="at most 4 pixels"):
            read_image(encode(noise()), GRAY, name="f.png", max_pixels=4)
        # Pillow's global limit is neither used nor changed: a tiny one refuses nothing here
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
        assert read_image(encode(noise((60, 40))), GRAY, fit=True).x.shape == GRAY
    assert MAX_PIXELS == 4096 * 4096


def test_an_animation_is_refused() -> None:
    frames = [noise(), Image.new("L", (28, 28), 9)]
    data = encode(frames[0], save_all=True, append_images=frames[1:])  # an APNG
    with pytest.raises(LabError, match="is an animation \\(2 frames\\); expected a single image"):
        read_image(data, GRAY, name="f.png")


def test_a_path_is_read_like_its_bytes(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(encode(noise()))
    r = read_image(tmp_path / "a.png", GRAY)
    assert r.name == str(tmp_path / "a.png") and r.x.shape == GRAY
    with pytest.raises(LabError, match="does not exist; expected a PNG or JPEG file"):
        read_image(tmp_path / "missing.png", GRAY)
    with pytest.raises(LabError, match="is not a file"):
        read_image(tmp_path, GRAY)
    with pytest.raises(LabError, match="image files up to 0 MB are read"):
        read_image(tmp_path / "a.png", GRAY, max_bytes=10)


# ---------------------------------------------------------------- through the CLI


def _explain(run: Path, image: Path, out: Path) -> object:
    return run_lab("explain", "--model", str(run), "--method", "saliency", "--quick", "--image", str(image),
                   "--out", str(out))  # fmt: skip


@pytest.mark.parametrize(
    ("filename", "content", "fragment"),
    [
        ("bomb.png", bomb_png(), "bomb.png' is 20000x20000 pixels (400,000,000); at most 16,777,216 pixels"),
        ("cut.png", truncated_png(), "cut.png' is damaged and cannot be decoded (image file is truncated"),
        ("notes.png", b"these are my notes, not a picture\n", "notes.png' is not an image this lab reads"),
        ("anim.gif", encode(noise(), "GIF"), "anim.gif' is a GIF image; expected a PNG or JPEG"),
        ("win.png", encode(noise(), "BMP"), "win.png' is a BMP image; expected a PNG or JPEG"),
        ("big.png", encode(noise((32, 32))), "big.png' is 32x32 pixels but the model takes 28x28; resize it first"),
        ("missing.png", None, "missing.png' does not exist; expected a PNG or JPEG file"),
    ],
)
def test_cli_bad_image_files_exit_2_with_one_sentence(trained_fastnet, tmp_path: Path, filename: str,
                                                      content: bytes | None, fragment: str) -> None:  # fmt: skip
    path = tmp_path / filename
    if content is not None:
        path.write_bytes(content)
    proc = _explain(trained_fastnet.run, path, tmp_path / "out")
    assert_user_error(proc, fragment)
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (tmp_path / "out").exists()


def test_cli_attack_refuses_a_bomb_too(trained_fastnet, tmp_path: Path) -> None:
    (tmp_path / "bomb.png").write_bytes(bomb_png())
    proc = run_lab("attack", "--model", str(trained_fastnet.run), "--attack", "fgsm", "--eps", "0.1",
                   "--image", str(tmp_path / "bomb.png"), "--out", str(tmp_path / "out"))  # fmt: skip
    assert_user_error(proc, "20000x20000 pixels")
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_cli_reads_an_rgba_png_for_a_gray_model_and_says_so(trained_fastnet, tmp_path: Path) -> None:
    gray = (trained_fastnet.x[0, 0].numpy() * 255).round().astype(np.uint8)
    rgba = np.dstack([gray, gray, gray, np.full_like(gray, 255)])
    path = tmp_path / "digit.png"
    Image.fromarray(rgba, "RGBA").save(path)
    proc = _explain(trained_fastnet.run, path, tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    notes = [line for line in proc.stderr.splitlines() if line.startswith("note:")]
    assert notes == [f"note: {path}: dropped the transparency (transparent pixels became black)",
                     f"note: {path}: converted from RGBA colour to grayscale, as the model takes 1 channel"]  # fmt: skip
    assert (tmp_path / "out" / "explanations.json").exists()
