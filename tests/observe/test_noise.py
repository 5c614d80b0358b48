"""Poisson + read noise statistics and determinism."""

from __future__ import annotations

import numpy as np
import pytest

from gcsbi.errors import GcsbiValueError
from gcsbi.observe.noise import add_noise


def test_flat_field_mean_and_variance():
    lam, rn = 400.0, 6.0
    expected = np.full((2, 200, 200), lam)
    out = add_noise(expected, read_noise_e=np.array([rn, 0.0]), rng=np.random.default_rng(3))
    assert out.dtype == np.float32
    n = out[0].size
    # mean and variance of Poisson(lam) + N(0, rn^2); tolerances ~5 sigma
    assert out[0].mean() == pytest.approx(lam, abs=5 * np.sqrt((lam + rn**2) / n))
    assert out[0].var() == pytest.approx(lam + rn**2, rel=5 * np.sqrt(2.0 / n))
    assert out[1].var() == pytest.approx(lam, rel=5 * np.sqrt(2.0 / n))
    assert np.all(out[1] == np.round(out[1]))  # pure Poisson -> integers


def test_noise_deterministic_and_seed_dependent():
    e = np.full((1, 16, 16), 50.0)
    a = add_noise(e, read_noise_e=3.0, rng=np.random.default_rng(1))
    b = add_noise(e, read_noise_e=3.0, rng=np.random.default_rng(1))
    c = add_noise(e, read_noise_e=3.0, rng=np.random.default_rng(2))
    assert a.tobytes() == b.tobytes()
    assert a.tobytes() != c.tobytes()


def test_noise_off_and_bad_input():
    e = np.full((1, 4, 4), 7.5)
    assert np.all(add_noise(e, read_noise_e=0.0, rng=np.random.default_rng(0), poisson=False) == 7.5)
    with pytest.raises(GcsbiValueError):
        add_noise(np.full((1, 2, 2), np.nan), read_noise_e=0.0, rng=np.random.default_rng(0))
    with pytest.raises(GcsbiValueError):
        add_noise(e, read_noise_e=1.0, rng=np.random.RandomState(0))
