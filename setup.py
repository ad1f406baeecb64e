"""Packaging for spikedyn-brian.

The repository keeps the design card's top-level layout (``spikedyn_brian/``,
``models/``, ``protocols/``, ``analysis/``) but installs everything under the
single ``spikedyn_brian`` namespace, so that nothing shadows common top-level
names such as ``models`` or ``analysis`` in site-packages:

=================  ==============================
folder             import name
=================  ==============================
spikedyn_brian/    ``spikedyn_brian``
models/            ``spikedyn_brian.models``
analysis/          ``spikedyn_brian.analysis``
protocols/         ``spikedyn_brian.protocols``
=================  ==============================
"""
from setuptools import setup

setup(
    name="spikedyn-brian",
    version="0.1.0",
    description=(
        "SpikeDyn (Putra & Shafique, DAC 2021) and the Diehl & Cook 2015 baseline "
        "in Brian2: unsupervised, continual digit learning with a compiled engine"
    ),
    # Python 3.11 only for the GeNN environment (brian2genn needs brian2 < 2.6,
    # numpy < 2): `make genn-venv`. Everything else runs on Python >= 3.12.
    python_requires=">=3.11",
    packages=[
        "spikedyn_brian",
        "spikedyn_brian.config",
        "spikedyn_brian.devices",
        "spikedyn_brian.models",
        "spikedyn_brian.analysis",
        "spikedyn_brian.protocols",
    ],
    package_dir={
        "spikedyn_brian": "spikedyn_brian",
        "spikedyn_brian.models": "models",
        "spikedyn_brian.analysis": "analysis",
        "spikedyn_brian.protocols": "protocols",
    },
    package_data={"spikedyn_brian.protocols": ["*.toml", "tuned/*.toml", "orders/*.toml",
                                             "reference/*.toml"],
                  "spikedyn_brian.devices": ["templates/*.cpp"]},
    install_requires=[
        "brian2==2.10.1; python_version >= '3.12'",
        "brian2>=2.5.4,<2.6; python_version < '3.12'",
        "numpy>=1.26,<2.4; python_version >= '3.12'",
        "numpy>=1.26,<2; python_version < '3.12'",
        "scipy>=1.11",
        "xarray>=2024.1",
        "netCDF4>=1.6",
        "tqdm>=4.60",
        "matplotlib>=3.8",
        "mlxtend>=0.23",
        "dask[distributed]>=2024.1",
        "optuna>=3.6",
        "pooch>=1.8",
    ],
    extras_require={
        # pytest-xdist: the quick lane (make test-fast) runs on every core.
        "test": ["pytest>=8", "pytest-xdist>=3.5", "hypothesis>=6.100", "nbclient>=0.10",
                 "nbformat>=5.9", "ipykernel>=6.29"],
        # brian2cuda pins brian2 == 2.10.1; curand comes from NVIDIA's wheel.
        "cuda": ["brian2cuda==1.0b1", "nvidia-curand>=10.3"],
        # In the Python 3.11 environment of `make genn-venv` only.
        "genn": ["brian2genn==1.7.0; python_version < '3.12'", "cython<3.1"],
    },
    entry_points={"console_scripts": ["spikedyn = spikedyn_brian.cli:main"]},
)
