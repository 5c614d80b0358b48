"""Fixtures of the gcsbi-jeans tests (stand-alone: nothing from gcsbi's own test suite)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
torch.set_num_threads(1)

# ../shared/data beside the repository (the repository is jeans/.., so three levels up)
SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _isolated_rng_state():
    """Fork torch's and numpy's global RNG state around every test and seed both with 0."""
    state = np.random.get_state()
    np.random.seed(0)
    try:
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
    with torch.random.fork_rng():
        torch.manual_seed(0)
        yield


@pytest.fixture(scope="session")
def tiny_mock():
    from gcsbi_jeans.core.mocks import MockConfig, make_mock

    return make_mock(MockConfig(n=200, halo="core", anisotropy="iso", seed=11))
