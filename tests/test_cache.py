"""The build cache: listing and cleaning, never a build in use."""

import fcntl
import os
import time

import pytest

from spikedyn_brian import cli
from spikedyn_brian.cache import cache_info, clean_cache


def _build(root, name, megabytes=1, age_days=0.0, extra=()):
    directory = root / name
    directory.mkdir(parents=True)
    (directory / "main").write_bytes(b"\0" * int(megabytes * 1e6))
    for file in extra:
        (directory / file).write_bytes(b"")
    stamp = time.time() - age_days * 86400
    for path in [*directory.iterdir(), directory]:
        os.utime(path, (stamp, stamp))
    return directory


def test_info_lists_builds_newest_first(tmp_path):
    _build(tmp_path, "old", 2, age_days=10)
    _build(tmp_path, "new", 1)
    entries = cache_info(tmp_path)
    assert [e.path.name for e in entries] == ["new", "old"]
    assert entries[1].bytes == 2_000_000 and 9.9 < entries[1].age_days < 10.1
    assert cache_info(tmp_path / "missing") == []


def test_clean_removes_old_builds_and_keeps_those_in_use(tmp_path):
    _build(tmp_path, "old", age_days=10)
    _build(tmp_path, "new")
    _build(tmp_path, "running", age_days=10, extra=["main-results-1-abc"])  # a run's binary
    locked = _build(tmp_path, "locked", age_days=10, extra=[".build.lock"])
    with open(locked / ".build.lock") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        removed, in_use = clean_cache(tmp_path, older_than_days=5)
    assert [e.path.name for e in removed] == ["old"]
    assert sorted(e.path.name for e in in_use) == ["locked", "running"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["locked", "new", "running"]
    with pytest.raises(ValueError, match="older_than_days"):
        clean_cache(tmp_path, older_than_days=-1)


def test_cache_commands(tmp_path, capsys):
    _build(tmp_path, "one", 3)
    assert cli.main(["cache", "info", "--build-dir", str(tmp_path)]) == 0
    assert "1 builds, 3.0 MB" in capsys.readouterr().out
    assert cli.main(["cache", "clean", "--build-dir", str(tmp_path)]) == 0
    assert "removed 1 builds (3.0 MB)" in capsys.readouterr().out
    assert not any(tmp_path.iterdir())
    assert cli.main(["cache", "clean", "--older-than", "-2", "--build-dir", str(tmp_path)]) == 2


@pytest.mark.parametrize("days", ["nan", "NaN", "-nan", "inf", "-inf", "Infinity", "-1",
                                  "-0.5", "1e999"])
def test_clean_refuses_bad_ages_and_removes_nothing(days, tmp_path, capsys):
    _build(tmp_path, "one", age_days=30)
    _build(tmp_path, "two")
    assert cli.main(["cache", "clean", f"--older-than={days}", "--build-dir", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "nothing was removed" in error, error
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one", "two"]


@pytest.mark.parametrize("days", [float("nan"), float("inf"), -1e-9, "3", None, True])
def test_clean_cache_refuses_bad_ages_from_python(days, tmp_path):
    _build(tmp_path, "one", age_days=30)
    with pytest.raises(ValueError, match="nothing was removed"):
        clean_cache(tmp_path, older_than_days=days)
    assert [p.name for p in tmp_path.iterdir()] == ["one"]
