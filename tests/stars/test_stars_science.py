"""Slow science checks: fast scheme vs every-star sampling, integrated colours vs real clusters."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from gcsbi.stars import StellarPopulation
from gcsbi.stars.population import sample_every_star

pytestmark = pytest.mark.slow


def _bench():
    path = Path(__file__).resolve().parents[2] / "bench" / "bench_population.py"
    spec = importlib.util.spec_from_file_location("bench_population", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_fast_scheme_matches_every_star_sampling():
    pop = StellarPopulation(age_gyr=12.0, feh=-1.5)
    n = 250
    full = np.array([sample_every_star(pop, 2e4, np.random.default_rng(i)).integrated_magnitudes()["F336W"] for i in range(n)])
    fast = np.array([pop.sample(2e4, np.random.default_rng(10**6 + i)).integrated_magnitudes()["F336W"] for i in range(n)])
    se = np.sqrt((full.var() + fast.var()) / n)
    assert abs(fast.mean() - full.mean()) < max(0.01, 3 * se)
    assert 0.8 < fast.std() / full.std() < 1.25


def test_colours_against_real_clusters(shared_data):
    bench = _bench()
    model = bench.model_colours()
    harris = bench.harris_check(model)
    assert harris["bv"]["n"] >= 30 and abs(harris["bv"]["median"]) <= 0.05
    assert abs(harris["vi"]["median"]) <= 0.05
    assert 0.0 < harris["ub"]["median"] < 0.15  # MIST's own U-B is ~0.08 bluer than the Milky Way GCs
    m31 = bench.m31_check(model)
    fitted = m31["fitted_ebv"]
    assert fitted["F336W-F475W"]["n"] >= 80
    # PHAT colours of Caldwell's old clusters with E(B-V) fitted per cluster (was -0.17 in F336W-F475W)
    for colour in ("F275W-F336W", "F336W-F475W", "F475W-F814W", "F814W-F110W", "F110W-F160W"):
        assert abs(fitted[colour]["median"]) <= 0.05, (colour, fitted[colour])
