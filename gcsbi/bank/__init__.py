"""Simulation banks: (theta, x) pairs on disk in Zarr v3, resumable and parallel.

``store`` (:class:`SimulationBank`: create, generate, verify, load), ``format`` (the stored
config), ``chunks`` (computing one chunk), ``factory`` (which simulators a bank may run),
``lock`` (one writer at a time), ``workers`` (local processes and Dask), ``dataset`` (a torch
``Dataset`` over a bank) and ``cli`` (``gcsbi bank``).
"""

from __future__ import annotations

from .chunks import chunk_seeds
from .dataset import BankDataset
from .factory import build_simulator
from .format import BankConfig
from .store import SimulationBank

__all__ = ["BankConfig", "SimulationBank", "BankDataset", "chunk_seeds", "build_simulator"]
