"""The one image decode path: every PIL mode to RGB, EXIF orientation, corrupt scans, bombs,
hidden and ``._`` files, and the ``verify`` command."""
import io

import numpy as np
import pytest
from PIL import Image

from fgh_tutorial.cli import main
from fgh_tutorial.data.verify import dataset_files
from fgh_tutorial.data.images import BadImageError, check_images, list_images, open_image
from fgh_tutorial.data.real import image_folder


def _save(image, path, fmt=None, **kw):
    image.save(path, fmt, **kw)
    return path


def _ramp(h=8, w=8):
    return np.arange(h * w, dtype=np.float64).reshape(h, w) / (h * w - 1)  # 0 .. 1


MODES = {  # mode -> (image, file format, expected grey level of the last pixel)
    "1": (lambda: Image.fromarray(_ramp() > 0.5), "PNG", 255),
    "L": (lambda: Image.fromarray((_ramp() * 255).round().astype(np.uint8)), "PNG", 255),
    "LA": (lambda: Image.merge("LA", [Image.new("L", (8, 8), 0), Image.new("L", (8, 8), 0)]), "PNG", 255),
    "P": (lambda: Image.fromarray((_ramp() * 255).astype(np.uint8)).convert("RGB").quantize(16), "PNG", None),
    "RGBA": (lambda: Image.new("RGBA", (8, 8), (10, 20, 30, 255)), "PNG", None),
    "CMYK": (lambda: Image.new("CMYK", (8, 8), (0, 0, 0, 0)), "JPEG", 255),
    "I;16": (lambda: Image.fromarray((_ramp() * 65535).round().astype(np.uint16)), "PNG", 255),
    "I": (lambda: Image.fromarray((_ramp() * 65535).round().astype(np.int32)), "TIFF", 255),
    "F": (lambda: Image.fromarray(_ramp().astype(np.float32)), "TIFF", 255),
}


@pytest.mark.parametrize("mode", list(MODES))
def test_every_mode_becomes_rgb(tmp_path, mode):
    make, fmt, last = MODES[mode]
    image = make()
    assert image.mode == mode
    path = _save(image, tmp_path / f"x.{fmt.lower()}", fmt)
    with Image.open(path) as raw:
        assert raw.mode.startswith(mode[0])  # the file really holds that kind of mode
    rgb = open_image(path)
    assert rgb.mode == "RGB" and rgb.size == (8, 8)
    px = np.asarray(rgb)
    assert np.array_equal(px[..., 0], px[..., 1]) or mode in ("P", "RGBA")
    if last is not None:
        assert px[-1, -1, 0] == last
    if mode in ("I;16", "I", "F"):  # scaled, not clipped to white: a ramp stays a ramp
        assert px[0, 0, 0] == 0 and abs(int(px[4, 0, 0]) - round(32 / 63 * 255)) <= 1
        assert len(np.unique(px[..., 0])) > 32
    if mode == "RGBA":
        assert tuple(px[0, 0]) == (10, 20, 30)


def test_sixteen_bit_is_scaled_not_clipped(tmp_path):
    a = np.full((4, 4), 32768, np.uint16)
    path = _save(Image.fromarray(a), tmp_path / "half.png")
    assert Image.open(path).convert("RGB").getpixel((0, 0)) == (255, 255, 255)  # what PIL alone does
    assert open_image(path).getpixel((0, 0)) == (128, 128, 128)


def test_transparency_composited_on_white(tmp_path):
    rgba = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    assert open_image(_save(rgba, tmp_path / "clear.png")).getpixel((0, 0)) == (255, 255, 255)
    p = Image.new("P", (4, 4), 0)
    p.putpalette([0, 0, 0] * 256)
    p.info["transparency"] = 0
    assert open_image(_save(p, tmp_path / "p.png", transparency=0)).getpixel((0, 0)) == (255, 255, 255)


def test_exif_orientation_is_applied(tmp_path):
    image = Image.new("RGB", (40, 20), (200, 0, 0))
    image.paste((0, 0, 200), (0, 0, 20, 20))  # left half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    path = _save(image, tmp_path / "phone.jpg", "JPEG", exif=exif, quality=95)
    shown = open_image(path)
    assert shown.size == (20, 40)  # portrait, as the camera meant it
    top = np.asarray(shown)[2, 10]
    assert top[2] > 150 and top[0] < 80  # the blue half is on top after the rotation


def _jpeg(rng=None, size=64):
    rng = rng or np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray((rng.random((size, size, 3)) * 255).astype(np.uint8)).save(buf, "JPEG", quality=90)
    return bytearray(buf.getvalue())


def test_corrupt_jpeg_scan_is_caught(tmp_path):
    data = _jpeg()
    start = data.index(b"\xff\xda") + 300
    data[start:start + 200] = bytes(200)  # zeros in the scan: PIL decodes it silently into a damaged picture
    path = tmp_path / "scan.jpg"
    path.write_bytes(bytes(data))
    with Image.open(path) as im:
        im.load()  # no complaint from PIL
    with pytest.raises(BadImageError, match=r"scan\.jpg: cannot decode image \(Corrupt JPEG data"):
        open_image(path)
    assert open_image(path, check=False).size == (64, 64)
    assert [p for p, _ in check_images([path], progress=False)] == [path]


@pytest.mark.parametrize("content, reason", [
    (b"not an image at all", "not an image file of a format PIL reads"),
    (None, "Premature end of JPEG file"),
])
def test_bad_files_are_named(tmp_path, content, reason):
    path = tmp_path / "bad.jpg"
    path.write_bytes(content if content is not None else bytes(_jpeg())[:900])
    with pytest.raises(BadImageError, match=f"bad.jpg: cannot decode image .*{reason}"):
        open_image(path)


def test_missing_folder_and_bytes_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="image file not found: .*nope.png"):
        open_image(tmp_path / "nope.png")
    with pytest.raises(FileNotFoundError, match="is a folder"):
        open_image(tmp_path)
    with pytest.raises(BadImageError, match="'notes.txt': cannot decode"):
        open_image(b"hello", "'notes.txt'")
    with pytest.raises(TypeError, match="source must be a path or the bytes"):
        open_image(3)


def test_decompression_bomb_is_a_clear_error(tmp_path, monkeypatch):
    big = _save(Image.new("RGB", (30, 30)), tmp_path / "big.png")  # 900 pixels
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 500)  # 900 > limit: PIL warns
    with pytest.raises(BadImageError, match="big.png: 30 x 30 = 900 pixels is over the decompression-bomb limit of 500"):
        open_image(big)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 900 > 2 x limit: PIL raises
    with pytest.raises(BadImageError, match="big.png: .*decompression bomb"):
        open_image(big)


def _folder(root, bad=()):
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        for i in range(3):
            _save(Image.new("RGB", (16, 16), (40 * i, 0, 0)), root / c / f"{i}.png")
        (root / c / "._0.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble")  # macOS resource fork
        (root / c / ".hidden.png").write_bytes(b"junk")
    (root / ".Trash").mkdir()
    (root / ".Trash" / "x.png").write_bytes(b"junk")
    for rel in bad:
        (root / rel).write_bytes(bytes(_jpeg())[:700])
    return root


def test_hidden_and_resource_fork_files_are_not_images(tmp_path):
    root = _folder(tmp_path / "imgs")
    assert [p.name for p in list_images(root / "a")] == ["0.png", "1.png", "2.png"]
    assert len(list_images(root, recursive=True)) == 6
    ds = image_folder(root, "train", test_fraction=0.34)
    assert all(not p.name.startswith(".") for p, _ in ds.samples)
    assert len(dataset_files(root)) == 6


def test_verify_command(tmp_path, capsys):
    root = _folder(tmp_path / "imgs")
    assert main(["verify", "--data", str(root), "--quiet"]) == 0
    assert "all 6 image files" in capsys.readouterr().out
    (root / "b" / "1.png").write_bytes(bytes(_jpeg())[:700])
    data = _jpeg()
    start = data.index(b"\xff\xda") + 300
    data[start:start + 200] = bytes(200)
    (root / "a" / "2.jpg").write_bytes(bytes(data))
    assert main(["verify", "--data", str(root), "--quiet"]) == 2
    out, err = capsys.readouterr()
    assert "b/1.png: cannot decode image" in out and "a/2.jpg: cannot decode image (Corrupt JPEG data" in out
    assert err.strip().splitlines() == [err.strip()] and err.startswith("error: 2 of 7 image files cannot be decoded")
    assert main(["verify", "--data", str(tmp_path / "nowhere")]) == 2
    assert "no such folder" in capsys.readouterr().err
