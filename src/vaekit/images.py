"""Image data in: IDX files (MNIST, Fashion-MNIST), NPY/NPZ arrays and folders of PNG/JPEG images.

Every reader gives an :class:`ImageData`: float32 pixels in [0, 1] shaped
(n, channels, height, width), and the labels when the source has them (an IDX label file, the
NPZ key ``y``, or one sub-folder per class). Every error names the file and says what to do.
"""

from __future__ import annotations

import gzip
import logging
import math
import os
import struct
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vaekit.errors import DataError
from vaekit.io import npz_data_key

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
ARRAY_SUFFIXES = (".npy", ".npz")
# IDX type codes (http://yann.lecun.com/exdb/mnist/): the third byte of the magic number.
IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
GREY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R 601-2, as Pillow's convert("L")


@dataclass
class ImageData:
    """Images and what is known about them.

    images : float32 (n, channels, height, width), values in [0, 1].
    labels : (n,) class indices (or the label values of the file), or None.
    class_names : the name of each class index (the sub-folders of a folder), or None.
    files : for a folder, the path of each image, in order; None otherwise.
    unreadable : with ``skip_unreadable=True``, the image files that did not open (left out).
    """

    images: np.ndarray
    labels: np.ndarray | None = None
    class_names: list[str] | None = None
    files: list[str] | None = None
    unreadable: list[str] = field(default_factory=list)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(channels, height, width)."""
        return tuple(int(s) for s in self.images.shape[1:])

    def __len__(self) -> int:
        return int(self.images.shape[0])


def load_images(
    path: str | os.PathLike,
    size: tuple[int, int] | None = None,
    grayscale: bool | None = None,
    *,
    labels: str | os.PathLike | None = None,
    skip_unreadable: bool = False,
) -> ImageData:
    """Read images from an IDX file, an NPY/NPZ file, a folder of images or one image file.

    Parameters
    ----------
    path : an IDX file (gzipped or not, e.g. ``train-images-idx3-ubyte.gz``; its label file
        ``train-labels-idx1-ubyte.gz`` is picked up from beside it), an NPY file or an NPZ file
        (the key ``X``, or its only array, and the labels ``y`` if present) holding (n, h, w),
        (n, h, w, c) or (n, c, h, w) arrays, a folder of PNG/JPEG images (one sub-folder per
        class gives the labels) or a single image file.
    size : ``(height, width)`` to resize every image to. By default a folder's images are
        brought to the most common size among them, and arrays keep theirs.
    grayscale : True converts to one grey channel, False to RGB; None keeps grey images grey
        and makes a folder RGB as soon as one of its images is in colour.
    labels : an IDX label file to use instead of the one found beside an IDX image file.
    skip_unreadable : for a folder, leave out the image files that do not open and list them in
        ``ImageData.unreadable`` instead of raising an error that names them.

    Integer pixels (0..255; 0..65535 for 16-bit) are scaled to [0, 1]; float pixels must be
    in [0, 1] already. A 2-D array of n rows of side * side values is read as n square grey
    images (flattened MNIST); an alpha channel is dropped.
    """
    path = Path(path)
    if size is not None:
        size = _check_size(size)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder; check the path")
    if path.is_dir():
        return _read_folder(path, size, grayscale, skip_unreadable)
    name = path.name.lower()
    stem = name[:-3] if name.endswith(".gz") else name
    suffix = Path(stem).suffix
    if suffix in IMAGE_SUFFIXES:
        data = _read_image_files(path.parent, [path], None, None, size, grayscale, skip_unreadable=False)
        data.files = [str(path)]
        return data
    if suffix in ARRAY_SUFFIXES:
        images, y = _read_array_file(path)
    elif "idx" in stem or suffix == ".ubyte":
        images, y = _read_idx_images(path, labels)
    else:
        raise DataError(
            f"{path}: unknown kind of image data ({suffix or 'no extension'}); load_images reads "
            "IDX files (MNIST), NPY/NPZ arrays, PNG/JPEG files and folders of them"
        )
    images = _convert_channels(images, grayscale)
    if size is not None and images.shape[2:] != size:
        images = _resize_array(images, size)
    class_names = None
    if y is not None:
        y, class_names = _labels(y, path)
    return ImageData(images=images, labels=y, class_names=class_names)


def _check_size(size: Sequence[int]) -> tuple[int, int]:
    try:
        h, w = (int(s) for s in size)
    except (TypeError, ValueError):
        raise DataError(f"size={size!r}: give (height, width), e.g. (28, 28)") from None
    if h < 1 or w < 1:
        raise DataError(f"size={size!r}: height and width must be >= 1")
    return h, w


# -- IDX ----------------------------------------------------------------------------------------
def _read_bytes(path: Path) -> bytes:
    """The content of ``path``, decompressed if it is gzipped (recognised by its first bytes)."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror or type(exc).__name__})") from None
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(
            f"{path}: is a damaged or truncated gzip file ({type(exc).__name__}: {exc}); "
            "download or copy it again"
        ) from None


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """The array in an IDX file (gzipped or not), checked against its header."""
    path = Path(path)
    raw = _read_bytes(path)
    magic = raw[:4]
    if len(magic) < 4 or magic[:2] != b"\x00\x00" or magic[2] not in IDX_DTYPES or magic[3] == 0:
        raise DataError(
            f"{path}: not an IDX file (its magic number is {magic.hex(' ') or 'missing'}, but an IDX "
            "file starts with 00 00, a type code such as 08 and the number of dimensions); the "
            "file is corrupt or of another format: download it again or give the right file"
        )
    ndim = magic[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: the IDX header is cut short ({len(raw)} bytes); download the file again")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(IDX_DTYPES[magic[2]])
    expected = header + math.prod(dims) * dtype.itemsize
    if len(raw) != expected:
        raise DataError(
            f"{path}: the IDX header announces {'x'.join(map(str, dims))} values of type {dtype.name} "
            f"({expected} bytes) but the file holds {len(raw)} bytes; it is truncated or damaged: "
            "download or copy it again"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write ``array`` as an IDX file (gzipped when ``path`` ends in ``.gz``)."""
    array = np.asarray(array)
    codes = {np.dtype(v).newbyteorder("="): k for k, v in IDX_DTYPES.items()}
    if array.dtype not in codes:
        raise DataError(f"{path}: IDX stores {sorted(str(d) for d in codes)}, not {array.dtype}")
    big = array.astype(array.dtype.newbyteorder(">"))
    content = bytes([0, 0, codes[array.dtype], array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    content += big.tobytes()
    path = Path(path)
    path.write_bytes(gzip.compress(content) if path.name.endswith(".gz") else content)


def _label_file_beside(path: Path) -> Path | None:
    """``train-images-idx3-ubyte.gz`` -> ``train-labels-idx1-ubyte.gz`` (or without ``.gz``)."""
    name = path.name
    if "images" not in name or "idx3" not in name:
        return None
    guess = name.replace("images", "labels").replace("idx3", "idx1")
    for candidate in (guess, guess.removesuffix(".gz"), guess + ".gz"):
        if (path.parent / candidate).is_file():
            return path.parent / candidate
    return None


def _read_idx_images(path: Path, labels: str | os.PathLike | None) -> tuple[np.ndarray, np.ndarray | None]:
    array = read_idx(path)
    if array.ndim == 1:
        raise DataError(f"{path}: holds 1-D labels, not images; give the images file (…-images-idx3-…)")
    images = _as_nchw(array, path)
    label_path = Path(labels) if labels is not None else _label_file_beside(path)
    if label_path is None:
        return images, None
    if not label_path.is_file():
        raise DataError(f"{label_path}: no such label file; check the path or leave labels out")
    y = read_idx(label_path)
    if y.ndim != 1:
        raise DataError(
            f"{label_path}: holds a {y.ndim}-D array; an IDX label file holds one label per image"
        )
    if len(y) != len(images):
        raise DataError(
            f"{label_path}: holds {len(y)} labels but {path} holds {len(images)} images; give the "
            "label file that belongs to these images"
        )
    return images, y


# -- NPY / NPZ ----------------------------------------------------------------------------------
def _read_array_file(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    y = None
    try:
        if path.suffix.lower() == ".npy":
            array = np.load(path, allow_pickle=False)
        else:
            with np.load(path, allow_pickle=False) as archive:
                key = npz_data_key(archive, path)
                array = archive[key]
                if key == "X" and "y" in archive:
                    y = archive["y"]
    except DataError:
        raise
    except Exception as exc:  # numpy and zipfile errors for damaged files
        raise DataError(
            f"{path}: cannot be read as {path.suffix[1:].upper()} ({type(exc).__name__}: {exc}); is "
            "the file complete and of that type?"
        ) from None
    if array.dtype.kind not in "biuf":
        raise DataError(f"{path}: holds {array.dtype} values; images must be numbers")
    images = _as_nchw(array, path)
    if y is not None:
        y = np.asarray(y).reshape(-1) if np.ndim(y) == 2 and 1 in np.shape(y) else np.asarray(y)
        if y.ndim != 1 or len(y) != len(images):
            raise DataError(
                f"{path}: 'y' has shape {y.shape} but 'X' holds {len(images)} images; 'y' must "
                "hold one label per image"
            )
    return images, y


# -- arrays to (n, c, h, w) in [0, 1] -----------------------------------------------------------
def _as_nchw(array: np.ndarray, source: object) -> np.ndarray:
    """(n, h, w), (n, h, w, c), (n, c, h, w) or (n, side*side) -> float32 (n, c, h, w) in [0, 1]."""
    if array.ndim == 2:
        side = math.isqrt(array.shape[1])
        if side * side != array.shape[1] or side < 2:
            raise DataError(
                f"{source}: holds a table of shape {array.shape}, not images; images are (n, h, w), "
                "(n, h, w, c) or (n, c, h, w) arrays (read a table with vaekit.read_table)"
            )
        logger.info("%s: rows of %d values read as %dx%d grey images", source, array.shape[1], side, side)
        array = array.reshape(-1, side, side)
    if array.ndim == 3:
        array = array[:, None]
    elif array.ndim == 4:
        first, last = array.shape[1] in (1, 2, 3, 4), array.shape[3] in (1, 2, 3, 4)
        if last:
            array = array.transpose(0, 3, 1, 2)
        elif not first:
            raise DataError(
                f"{source}: a 4-D array of shape {array.shape} has no channel axis of 1 or 3 "
                "first (n, c, h, w) or last (n, h, w, c)"
            )
    else:
        raise DataError(
            f"{source}: holds an array of shape {array.shape}; images are (n, h, w), (n, h, w, c) "
            "or (n, c, h, w) arrays"
        )
    if array.shape[0] == 0:
        raise DataError(f"{source}: holds no images")
    if array.shape[1] in (2, 4):  # grey + alpha, RGB + alpha: drop the alpha channel
        array = array[:, : array.shape[1] - 1]
    return _unit_range(array, source)


def _unit_range(array: np.ndarray, source: object) -> np.ndarray:
    """Integer pixels 0..255 (0..65535 for 16-bit) and booleans to [0, 1]; floats must be there."""
    kind = array.dtype.kind
    if kind == "b":
        return array.astype(np.float32)
    if kind == "f" and not np.isfinite(array).all():
        raise DataError(f"{source}: holds NaN or infinite pixel values; fix or drop those images")
    low, high = float(array.min()), float(array.max())
    if kind in "iu":
        top = 65535.0 if array.dtype.itemsize >= 2 and high > 255 else 255.0
        if low < 0 or high > top:
            raise DataError(
                f"{source}: integer pixels run from {low:g} to {high:g}, outside 0..{top:g}; give "
                "8-bit (0..255) or 16-bit (0..65535) images"
            )
        return (array.astype(np.float32) / np.float32(top)).astype(np.float32)
    if low < 0 or high > 1:
        raise DataError(
            f"{source}: float pixels run from {low:g} to {high:g}; float images must be in [0, 1] "
            "(divide 0..255 values by 255, or store them as uint8)"
        )
    return np.ascontiguousarray(array, dtype=np.float32)


def _convert_channels(images: np.ndarray, grayscale: bool | None) -> np.ndarray:
    if grayscale is True and images.shape[1] == 3:
        return np.einsum("nchw,c->nhw", images, LUMA)[:, None].clip(0, 1).astype(np.float32)
    if grayscale is False and images.shape[1] == 1:
        return np.repeat(images, 3, axis=1)
    return images


def _resize_array(images: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    h, w = size
    out = np.empty((*images.shape[:2], h, w), dtype=np.float32)
    for i, image in enumerate(images):
        for c, plane in enumerate(image):
            resized = Image.fromarray(plane, mode="F").resize((w, h), Image.Resampling.BILINEAR)
            out[i, c] = np.asarray(resized)
    return out.clip(0, 1)


def _labels(y: np.ndarray, source: object) -> tuple[np.ndarray, list[str] | None]:
    """Integer labels as int64; text labels as indices into their sorted names."""
    if y.dtype.kind in "US":
        names, index = np.unique(y.astype(str), return_inverse=True)
        return index.astype(np.int64), [str(n) for n in names]
    if y.dtype.kind == "f" and np.isfinite(y).all() and (y == np.round(y)).all():
        return y.astype(np.int64), None
    if y.dtype.kind in "biu":
        return y.astype(np.int64), None
    if y.dtype.kind == "f":
        return y, None
    raise DataError(f"{source}: labels of type {y.dtype} are not numbers or text")


# -- folders of image files ---------------------------------------------------------------------
def _image_files(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES
    )


def _read_folder(path: Path, size, grayscale, skip_unreadable: bool) -> ImageData:
    top = _image_files(path)
    classes = [
        (d, _image_files(d)) for d in sorted(path.iterdir()) if d.is_dir() and not d.name.startswith(".")
    ]
    classes = [(d, files) for d, files in classes if files]
    if classes and top:
        raise DataError(
            f"{path}: holds both image files ({top[0].name}, ...) and class sub-folders "
            f"({classes[0][0].name}, ...); put every image in its class folder, or use a folder "
            "with no sub-folders for unlabelled images"
        )
    if classes:
        files = [f for _, fs in classes for f in fs]
        labels = np.concatenate([np.full(len(fs), k, dtype=np.int64) for k, (_, fs) in enumerate(classes)])
        class_names = [d.name for d, _ in classes]
    else:
        files, labels, class_names = top, None, None
    if not files:
        raise DataError(
            f"{path}: holds no image files ({', '.join(IMAGE_SUFFIXES)}), neither directly nor in "
            "one sub-folder per class; check the path"
        )
    return _read_image_files(path, files, labels, class_names, size, grayscale, skip_unreadable)


def _read_image_files(
    where: Path,
    files: list[Path],
    labels: np.ndarray | None,
    class_names: list[str] | None,
    size: tuple[int, int] | None,
    grayscale: bool | None,
    skip_unreadable: bool,
) -> ImageData:
    from PIL import Image

    opened, kept, unreadable = [], [], []
    for i, file in enumerate(files):
        try:
            with Image.open(file) as image:
                image.load()  # decode now: a truncated file opens, but fails here
                opened.append(image.copy())
            kept.append(i)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:  # Pillow's failures
            unreadable.append((file, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"))
    if unreadable and not skip_unreadable:
        shown = "; ".join(f"{file} ({reason})" for file, reason in unreadable[:10])
        more = f" and {len(unreadable) - 10} more" if len(unreadable) > 10 else ""
        if len(files) == 1:
            file, reason = unreadable[0]
            raise DataError(
                f"{file}: cannot be read as an image ({reason}); is the file complete and of that type?"
            )
        raise DataError(
            f"{where}: {len(unreadable)} image file(s) cannot be read: {shown}{more}; delete or "
            "replace them, or pass skip_unreadable=True to leave them out"
        )
    if not opened:
        raise DataError(f"{where}: none of its {len(files)} image file(s) can be read")
    if unreadable:
        logger.warning("%s: left out %d unreadable image file(s)", where, len(unreadable))

    if grayscale is None:
        grayscale = all(image.mode in GREY_MODES for image in opened)
    if size is None:
        (w, h), _ = Counter(image.size for image in opened).most_common(1)[0]
        size = (h, w)
    h, w = size
    n_resized = sum(image.size != (w, h) for image in opened)
    if n_resized:
        logger.info("%s: resized %d of %d images to %dx%d", where, n_resized, len(opened), h, w)
    images = np.stack([_pixels(image, grayscale, (w, h)) for image in opened])
    return ImageData(
        images=images,
        labels=labels[kept] if labels is not None else None,
        class_names=class_names,
        files=[str(files[i]) for i in kept],
        unreadable=[str(file) for file, _ in unreadable],
    )


def _pixels(image, grayscale: bool, size: tuple[int, int]) -> np.ndarray:
    """One Pillow image as float32 (channels, height, width) in [0, 1], at ``size`` = (w, h)."""
    from PIL import Image

    if grayscale and image.mode in ("I", "I;16", "I;16B", "I;16L"):  # 16-bit grey keeps its depth
        image = Image.fromarray(np.asarray(image, dtype=np.float32) / 65535.0, mode="F")
    elif grayscale:
        image = image.convert("L")
    else:
        image = image.convert("RGB")
    if image.size != size:
        image = image.resize(size, Image.Resampling.BILINEAR)
    array = np.asarray(image, dtype=np.float32)
    if image.mode != "F":
        array = array / 255.0
    array = array.clip(0, 1)
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)
