"""Shared test fixtures: one thread per process, explicit seeds, shared data path."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

try:  # torch is optional for most stages; keep tests to one thread (2-core machine)
    import torch

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover
    torch = None

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _isolated_rng_state():
    """Fork torch's and numpy's global RNG state around every test and seed both with 0.

    No test sees another's draws or leaves state behind, and a draw a test forgot to seed is
    still the same in every run and in any test order.
    """
    state = np.random.get_state()
    np.random.seed(0)
    try:
        if torch is None:
            yield
        else:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                yield
    finally:
        np.random.set_state(state)


@pytest.fixture
def shared_data() -> Path:
    """Path to ``../shared/data``; skips the test when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"reference data folder not found: {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


@pytest.fixture
def torch_seed():
    """Seed torch inside a forked RNG state so no global state leaks between tests."""
    if torch is None:
        pytest.skip("torch not installed")
    with torch.random.fork_rng():
        torch.manual_seed(0)
        yield
