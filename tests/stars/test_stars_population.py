"""StellarPopulation: sampling invariants, expectations, mass function, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gcsbi.cli import main
from gcsbi.errors import GcsbiValueError, UnknownFilterError
from gcsbi.stars import FILTERS, Phase, StarSample, StellarPopulation


@pytest.fixture(scope="module")
def pop() -> StellarPopulation:
    return StellarPopulation(age_gyr=12.0, feh=-1.5)


def test_sample_invariants(pop):
    s = pop.sample(current_mass=1e5, rng=np.random.default_rng(0), max_faint_particles=500)
    assert isinstance(s, StarSample) and s.filters == FILTERS
    assert s.abs_mag.shape == (len(s), len(FILTERS))
    assert s.total_mass == pytest.approx(1e5, rel=1e-9)
    faint = s.weight > 1.0
    assert 2 <= faint.sum() <= 500
    dark = np.isin(s.phase, [Phase.NS, Phase.BH])
    assert dark.any() and np.all(np.isinf(s.abs_mag[dark])) and np.all(np.isfinite(s.abs_mag[~dark]))
    assert {Phase.MS, Phase.RGB, Phase.CHEB, Phase.WD} <= set(np.unique(s.phase).tolist())
    # faint particles are stratified: each covers a narrow current-mass range
    ms = faint & (s.phase == Phase.MS)
    assert np.all(np.diff(np.sort(s.current_mass[ms])) > 0)
    assert 2.4 < s.n_stars / 1e5 < 3.4  # ~2.9 stars per M_sun (Kroupa from 0.1 M_sun, 12 Gyr)


def test_same_seed_same_bytes(pop):
    a = pop.sample(2e4, np.random.default_rng(5))
    b = pop.sample(2e4, np.random.default_rng(5))
    for k in ("initial_mass", "current_mass", "weight", "phase", "abs_mag"):
        assert getattr(a, k).tobytes() == getattr(b, k).tobytes()


def test_evolve_single_stars(pop):
    ms = np.geomspace(0.1, 0.7, 40)
    ev = pop.evolve(ms)
    assert isinstance(ev, StarSample) and len(ev) == ms.size and np.all(ev.weight == 1.0)
    assert np.all(ev.phase == Phase.MS) and np.allclose(ev.current_mass, ms, rtol=1e-3)
    v = ev.abs_mag[:, FILTERS.index("V")]
    assert np.all(np.isfinite(ev.abs_mag)) and np.all(np.diff(v) < 0)  # brighter up the main sequence
    alive = pop.evolve(np.linspace(0.1, pop.turnoff_mass, 400))
    assert np.all(alive.phase <= Phase.TPAGB) and np.all(np.isfinite(alive.abs_mag))
    v_to = alive.abs_mag[alive.phase == Phase.MS, FILTERS.index("V")].min()
    wd = pop.evolve(np.linspace(1.001 * pop.turnoff_mass, 7.99, 50))
    assert np.all(wd.phase == Phase.WD) and np.all((wd.current_mass > 0.5) & (wd.current_mass < 1.4))
    assert np.all(np.isfinite(wd.abs_mag)) and np.all(wd.abs_mag[:, FILTERS.index("V")] > v_to + 3)
    # NS/BH: dark; retention is not applied (every star comes back, in input order)
    none_kept = StellarPopulation(age_gyr=12.0, feh=-1.5, ns_retention=0.0, bh_retention=0.0)
    dark = none_kept.evolve(np.array([30.0, 9.0, 0.5, 19.9, 100.0]))
    assert list(dark.phase) == [Phase.BH, Phase.NS, Phase.MS, Phase.NS, Phase.BH]
    np.testing.assert_allclose(dark.current_mass[[0, 1, 3, 4]], [12.0, 1.4, 1.4, 40.0])
    d = dark.phase != Phase.MS
    assert np.all(np.isinf(dark.abs_mag[d])) and np.all(np.isnan(dark.log_l[d])) and np.all(np.isnan(dark.log_teff[d]))
    # young population: massive stars still alive are not remnants
    young = StellarPopulation(age_gyr=0.005, feh=0.0).evolve(np.array([25.0]))
    assert young.phase[0] < Phase.WD and np.isfinite(young.abs_mag).all()
    for bad in (np.array([np.nan]), np.array([-1.0]), np.ones((2, 2))):
        with pytest.raises(GcsbiValueError):
            pop.evolve(bad)


def test_evolve_reproduces_individual_stars_of_sample(pop):
    s = pop.sample(1e5, np.random.default_rng(0))
    ind = s.weight == 1.0
    assert ind.sum() > 1000 and np.isin(s.phase[ind], [Phase.NS, Phase.BH]).any()
    ev = pop.evolve(s.initial_mass[ind])
    for k in ("initial_mass", "current_mass", "weight", "phase", "log_teff", "log_g", "log_l", "abs_mag"):
        np.testing.assert_array_equal(getattr(ev, k), getattr(s, k)[ind])


def test_small_cluster_mass_conserved(pop):
    s = pop.sample(50.0, np.random.default_rng(1))
    assert s.total_mass == pytest.approx(50.0, abs=2.0)


def test_expectation_matches_mean_of_samples(pop):
    exp = pop.expected_integrated_magnitudes(current_mass=1e5)
    flux = np.mean([10 ** (-0.4 * pop.sample(1e5, np.random.default_rng(i)).integrated_magnitudes()["V"]) for i in range(20)])
    assert abs(-2.5 * np.log10(flux) - exp["V"]) < 0.05


def test_mass_to_light_in_literature_range(pop):
    assert 1.5 < pop.mass_to_light("V") < 2.5
    with pytest.raises(UnknownFilterError):
        pop.mass_to_light("K")


def test_present_day_mass_function(pop):
    edges = np.array([0.0, 0.3, 0.6, 0.9, 1.5, 200.0])
    mean, frac = pop.present_day_mass_function(edges)
    assert frac.sum() == pytest.approx(1.0, abs=1e-6)
    assert np.all((mean >= edges[:-1]) & (mean <= edges[1:]))
    assert frac[3] > 0  # heavy WDs (Cummings IFMR up to ~1.3 M_sun) and NSs
    more_bh = StellarPopulation(age_gyr=12.0, feh=-1.5, bh_retention=1.0).present_day_mass_function(edges)[1]
    assert more_bh[-1] > frac[-1]


def test_reddening_and_young_population():
    young = StellarPopulation(age_gyr=0.05, feh=0.0, filters=("B", "V"))
    s = young.sample(1e4, np.random.default_rng(2))
    m0, m1 = s.integrated_magnitudes(), s.integrated_magnitudes(ebv=0.3)
    assert (m1["B"] - m1["V"]) - (m0["B"] - m0["V"]) == pytest.approx(0.3, abs=0.04)
    assert young.expected_integrated_magnitudes()["B"] - young.expected_integrated_magnitudes()["V"] < 0.3


@pytest.mark.parametrize(
    "kwargs",
    [dict(age_gyr=30.0, feh=-1.0), dict(age_gyr=12.0, feh=1.0), dict(age_gyr=12.0, feh=-1.0, imf="x"),
     dict(age_gyr=12.0, feh=-1.0, ns_retention=1.5), dict(age_gyr=12.0, feh=-1.0, split_mass=500.0)],
)
def test_validation(kwargs):
    with pytest.raises(GcsbiValueError):
        StellarPopulation(**kwargs)


def test_unknown_filter():
    with pytest.raises(UnknownFilterError):
        StellarPopulation(age_gyr=12.0, feh=-1.0, filters=("V", "Hα"))


def test_sample_argument_errors(pop):
    with pytest.raises(GcsbiValueError):
        pop.sample(-1.0, np.random.default_rng(0))
    with pytest.raises(GcsbiValueError):
        pop.sample(1e3, 0)


def test_cli_json(capsys):
    assert main(["population", "--age", "12", "--feh", "-1.5", "--mass", "1e4", "--seed", "0", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["magnitudes"]) == set(FILTERS)
    assert "absolute" in out["magnitude_system"]
    assert out["n_particles"] < out["n_stars"]
    assert 1.5 < out["ml_v"] < 2.5


def test_cli_table_and_error(capsys):
    assert main(["population", "--age", "12", "--feh", "-1.5", "--mass", "1e4"]) == 0
    assert "ABSOLUTE" in capsys.readouterr().out
    assert main(["population", "--age", "40", "--feh", "-1.5", "--mass", "1e4"]) == 1
