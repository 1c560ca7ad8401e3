"""Image data in: every reader round-trips a file the test writes; damaged files fail clearly."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vaekit import DataError
from vaekit.images import ImageData, load_images, read_idx, write_idx


def idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file by hand: 00 00, the type code (08 = uint8), the rank, the sizes, the values."""
    assert array.dtype == np.uint8
    return bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


@pytest.fixture(scope="module")
def pixels() -> np.ndarray:
    return np.random.RandomState(0).randint(0, 256, size=(7, 5, 6)).astype(np.uint8)


# -- IDX ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("gz", [True, False])
def test_idx_images_round_trip_with_the_label_file_beside_them(tmp_path, pixels, gz):
    suffix = ".gz" if gz else ""
    labels = np.arange(7, dtype=np.uint8) % 3
    for name, array in (("train-images-idx3-ubyte", pixels), ("train-labels-idx1-ubyte", labels)):
        content = idx_bytes(array)
        (tmp_path / (name + suffix)).write_bytes(gzip.compress(content) if gz else content)
    data = load_images(tmp_path / f"train-images-idx3-ubyte{suffix}")
    assert isinstance(data, ImageData) and len(data) == 7 and data.image_shape == (1, 5, 6)
    assert data.images.dtype == np.float32
    np.testing.assert_array_equal(data.images[:, 0] * 255, pixels)
    np.testing.assert_array_equal(data.labels, labels)
    assert data.labels.dtype == np.int64 and data.files is None


def test_idx_labels_can_be_given_and_are_optional(tmp_path, pixels):
    (tmp_path / "digits.idx3-ubyte").write_bytes(idx_bytes(pixels))
    (tmp_path / "my-labels.idx1").write_bytes(idx_bytes(np.full(7, 4, dtype=np.uint8)))
    assert load_images(tmp_path / "digits.idx3-ubyte").labels is None
    data = load_images(tmp_path / "digits.idx3-ubyte", labels=tmp_path / "my-labels.idx1")
    assert data.labels.tolist() == [4] * 7


def test_write_idx_and_read_idx_round_trip_every_type(tmp_path):
    for dtype in (np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64):
        array = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
        write_idx(tmp_path / "a.idx.gz", array)
        back = read_idx(tmp_path / "a.idx.gz")
        assert back.dtype == dtype
        np.testing.assert_array_equal(back, array)


def test_idx_with_a_corrupt_magic_number_names_the_file(tmp_path, pixels):
    path = tmp_path / "bad-images-idx3-ubyte"
    path.write_bytes(b"\x12\x34" + idx_bytes(pixels)[2:])
    with pytest.raises(
        DataError, match=r"bad-images-idx3-ubyte: not an IDX file \(its magic number is 12 34"
    ):
        load_images(path)


def test_idx_shorter_than_its_header_says_names_the_file(tmp_path, pixels):
    path = tmp_path / "short-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(pixels)[:-10]))
    with pytest.raises(
        DataError, match=r"short-images-idx3-ubyte.gz: the IDX header announces 7x5x6"
    ) as info:
        load_images(path)
    assert "truncated" in str(info.value) and "download" in str(info.value)


def test_truncated_gzip_names_the_file(tmp_path, pixels):
    path = tmp_path / "cut-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(pixels))[:-12])
    with pytest.raises(DataError, match=r"cut-images-idx3-ubyte.gz: is a damaged or truncated gzip file"):
        load_images(path)


def test_idx_labels_of_another_length_are_refused(tmp_path, pixels):
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(idx_bytes(pixels))
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(5, dtype=np.uint8)))
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte: holds 5 labels but .* holds 7 images"):
        load_images(tmp_path / "t10k-images-idx3-ubyte")


# -- NPY / NPZ ----------------------------------------------------------------------------------
def test_npz_with_images_and_labels_round_trips(tmp_path, pixels):
    y = np.array([0, 1, 1, 0, 1, 0, 0], dtype=np.float64)  # ADBench stores y as floats
    np.savez(tmp_path / "data.npz", X=pixels, y=y)
    data = load_images(tmp_path / "data.npz")
    np.testing.assert_array_equal(data.images[:, 0] * 255, pixels)
    assert data.labels.dtype == np.int64 and data.labels.tolist() == y.astype(int).tolist()


def test_npz_with_a_single_array_and_text_labels(tmp_path, pixels):
    np.savez(tmp_path / "one.npz", images=pixels)
    assert load_images(tmp_path / "one.npz").labels is None
    np.savez(tmp_path / "named.npz", X=pixels, y=np.array(list("abcabca")))
    data = load_images(tmp_path / "named.npz")
    assert data.class_names == ["a", "b", "c"] and data.labels.tolist() == [0, 1, 2, 0, 1, 2, 0]


def test_npy_3d_and_4d_arrays_in_either_channel_order(tmp_path):
    rng = np.random.RandomState(1)
    grey = rng.randint(0, 256, size=(4, 9, 8)).astype(np.uint8)
    np.save(tmp_path / "grey.npy", grey)
    np.testing.assert_array_equal(load_images(tmp_path / "grey.npy").images[:, 0] * 255, grey)

    rgb = rng.rand(4, 9, 8, 3).astype(np.float32)  # channels last, floats in [0, 1]
    np.save(tmp_path / "last.npy", rgb)
    np.save(tmp_path / "first.npy", rgb.transpose(0, 3, 1, 2))
    for name in ("last.npy", "first.npy"):
        data = load_images(tmp_path / name)
        assert data.image_shape == (3, 9, 8)
        np.testing.assert_array_equal(data.images, rgb.transpose(0, 3, 1, 2))


def test_arrays_are_converted_and_resized_on_request(tmp_path):
    rgb = np.random.RandomState(2).rand(3, 3, 10, 12).astype(np.float32)
    np.save(tmp_path / "rgb.npy", rgb)
    grey = load_images(tmp_path / "rgb.npy", grayscale=True).images
    np.testing.assert_allclose(
        grey[:, 0], 0.299 * rgb[:, 0] + 0.587 * rgb[:, 1] + 0.114 * rgb[:, 2], atol=1e-6
    )
    small = load_images(tmp_path / "rgb.npy", size=(5, 6))
    assert small.image_shape == (3, 5, 6) and small.images.min() >= 0 and small.images.max() <= 1


def test_float_pixels_outside_the_unit_interval_are_refused(tmp_path):
    np.save(tmp_path / "wide.npy", np.full((2, 4, 4), 3.5, dtype=np.float32))
    with pytest.raises(DataError, match=r"wide.npy: float pixels run from 3.5 to 3.5; .* \[0, 1\]"):
        load_images(tmp_path / "wide.npy")


# -- folders of image files ---------------------------------------------------------------------
def save_image(path: Path, array: np.ndarray) -> None:
    """PNG or JPEG by the suffix; the folder is made."""
    path.parent.mkdir(parents=True, exist_ok=True)
    options = {"quality": 95, "subsampling": 0} if path.suffix == ".jpg" else {}
    Image.fromarray(array).save(path, **options)


def test_folder_of_grey_pngs_round_trips_exactly(tmp_path, pixels):
    for i, image in enumerate(pixels):
        save_image(tmp_path / "pngs" / f"{i:02d}.png", image)
    (tmp_path / "pngs" / "notes.txt").write_text("not an image, ignored")
    data = load_images(tmp_path / "pngs")
    assert data.image_shape == (1, 5, 6) and data.labels is None and data.class_names is None
    np.testing.assert_array_equal(np.rint(data.images[:, 0] * 255), pixels)
    assert [Path(f).name for f in data.files] == [f"{i:02d}.png" for i in range(7)]


def smooth_rgb(seed: int, h: int = 16, w: int = 16) -> np.ndarray:
    """A smooth colour picture, which JPEG keeps within a few grey levels."""
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    phase = np.random.RandomState(seed).rand(3)
    planes = [0.5 + 0.4 * np.sin(2 * np.pi * (xx + yy + p)) for p in phase]
    return (np.stack(planes, axis=-1) * 255).round().astype(np.uint8)


def test_class_subfolders_of_png_and_jpeg_give_labels(tmp_path):
    expected = {}
    for k, cls in enumerate(["cat", "dog"]):
        for i in range(3):
            array = smooth_rgb(10 * k + i)
            suffix = ".jpg" if i == 1 else ".png"
            save_image(tmp_path / "pets" / cls / f"{i}{suffix}", array)
            expected[f"{cls}/{i}{suffix}"] = array
    data = load_images(tmp_path / "pets")
    assert data.class_names == ["cat", "dog"] and data.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert data.image_shape == (3, 16, 16)
    for file, image in zip(data.files, data.images, strict=True):
        original = expected["/".join(Path(file).parts[-2:])] / 255
        if file.endswith(".jpg"):  # lossy: close on average
            assert np.abs(image.transpose(1, 2, 0) - original).mean() < 0.02
        else:
            np.testing.assert_allclose(image.transpose(1, 2, 0), original, atol=1e-6)


def test_mixed_sizes_and_modes_come_out_as_one_size_and_mode(tmp_path):
    folder = tmp_path / "mixed"
    save_image(folder / "a.png", np.full((10, 12), 200, dtype=np.uint8))  # grey
    save_image(folder / "b.png", smooth_rgb(0, 10, 12))  # colour
    save_image(folder / "c.png", np.zeros((20, 20), dtype=np.uint8))  # another size
    data = load_images(folder)  # one colour image: all RGB; the most common size: 10 x 12
    assert data.image_shape == (3, 10, 12)
    np.testing.assert_allclose(data.images[0], 200 / 255, atol=1e-6)  # grey to RGB repeats the grey
    assert load_images(folder, grayscale=True).image_shape == (1, 10, 12)
    assert load_images(folder, size=(8, 8)).image_shape == (3, 8, 8)
    assert load_images(folder / "c.png", grayscale=False).image_shape == (3, 20, 20)  # a single file


def test_an_unreadable_image_names_the_file(tmp_path, pixels):
    folder = tmp_path / "some-broken"
    for i, image in enumerate(pixels[:3]):
        save_image(folder / f"{i}.png", image)
    good = (folder / "0.png").read_bytes()
    (folder / "truncated.png").write_bytes(good[: len(good) // 2])
    (folder / "garbage.jpg").write_bytes(b"this is no JPEG")
    with pytest.raises(DataError, match="2 image file") as info:
        load_images(folder)
    message = str(info.value)
    assert "garbage.jpg" in message and "truncated.png" in message and "skip_unreadable=True" in message
    with pytest.raises(DataError, match=r"garbage.jpg: cannot be read as an image \(UnidentifiedImageError"):
        load_images(folder / "garbage.jpg")


def test_skip_unreadable_leaves_them_out_and_lists_them(tmp_path, pixels):
    folder = tmp_path / "classes"
    save_image(folder / "a" / "0.png", pixels[0])
    save_image(folder / "b" / "1.png", pixels[1])
    save_image(folder / "b" / "2.png", pixels[2])
    (folder / "a" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n nothing more")
    data = load_images(folder, skip_unreadable=True)
    assert [Path(f).name for f in data.unreadable] == ["broken.png"]
    assert [Path(f).name for f in data.files] == ["0.png", "1.png", "2.png"]
    assert data.labels.tolist() == [0, 1, 1] and len(data) == 3


def test_folder_errors_say_what_to_do(tmp_path, pixels):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty: holds no image files"):
        load_images(tmp_path / "empty")
    save_image(tmp_path / "both" / "top.png", pixels[0])
    save_image(tmp_path / "both" / "cls" / "inner.png", pixels[1])
    with pytest.raises(DataError, match=r"both image files .* and class sub-folders"):
        load_images(tmp_path / "both")
    with pytest.raises(DataError, match="no such file or folder"):
        load_images(tmp_path / "missing")
    (tmp_path / "table.csv").write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match=r"table.csv: unknown kind of image data"):
        load_images(tmp_path / "table.csv")


FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")


@pytest.mark.skipif(
    not FASHION_MNIST.exists(), reason="the Debian package dataset-fashion-mnist is not installed"
)
def test_fashion_mnist_from_its_debian_package():
    data = load_images(FASHION_MNIST)
    assert data.images.shape == (10000, 1, 28, 28) and data.images.dtype == np.float32
    assert data.images.min() == 0 and data.images.max() == 1
    assert sorted(np.unique(data.labels).tolist()) == list(range(10))
