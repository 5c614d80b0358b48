"""One wild star or a duplicated table must not wreck a Jeans fit: a robust systemic velocity, a contamination
component in the free-form likelihood, refusals (naming the row) elsewhere, duplicate and heavy-tail flags."""

from __future__ import annotations

import json
import warnings
from dataclasses import replace

import numpy as np
import pytest

from gcsbi_jeans.baseline import BaselineConfig, fit_baseline
from gcsbi_jeans.cli import main
from gcsbi_jeans.core.beta import parse_beta
from gcsbi_jeans.core.io import StarTable, check_fit_sample, read_stars, write_table
from gcsbi_jeans.core.light import LightProfile
from gcsbi_jeans.errors import JeansValueError, JeansWarning
from gcsbi_jeans.freeform import FreeformConfig, JeansKernel, fit_freeform
from gcsbi_jeans.jflow.config import FitConfig
from gcsbi_jeans.jflow.fit import fit_ensemble, fit_model

WILD = 17  # 0-based index of the star given 9999 km/s: data row 18 of the written table
SMALL = FreeformConfig(walkers=24, steps=200, burn=100, thin=4, nodes=4, converge=False)


@pytest.fixture(scope="module")
def tables(tiny_mock, tmp_path_factory):
    """The 200-star mock written as a table, and the same table with one star's velocity set to 9999 km/s."""
    stars, _ = tiny_mock
    d = tmp_path_factory.mktemp("outliers")
    write_table(d / "clean.txt", stars)
    v = stars.v.copy()
    v[WILD] = 9999.0
    write_table(d / "wild.txt", replace(stars, v=v))
    return d / "clean.txt", d / "wild.txt"


@pytest.fixture
def no_fitting(monkeypatch):
    """Fail the test if a JFlow model is built or emcee is started (the refusal must come first)."""
    import gcsbi_jeans.baseline.model as baseline
    import gcsbi_jeans.jflow.fit as fit

    def boom(*args, **kwargs):
        raise AssertionError("a fit was started")

    monkeypatch.setattr(fit, "JeansFlowModel", boom)
    monkeypatch.setattr(baseline.emcee, "EnsembleSampler", boom)


def _one_line(capsys, sub: str) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"gcsbi-jeans {sub}: error: "), err
    return lines[0]


# ------------------------------------------------------------------ systemic velocity


def test_systemic_velocity_ignores_a_star_at_9999_kms(tables):
    clean, wild = (read_stars(p) for p in tables)
    assert abs(clean.vsys - np.mean(clean.v + clean.vsys)) < 1e-9  # clean sample: the plain (efficient) mean
    assert abs(wild.vsys - clean.vsys) < 0.5  # a plain mean moves by (9999 - v) / 200 ~ 50 km/s
    keep = np.arange(wild.n) != WILD
    assert wild.vsys == pytest.approx(np.mean(wild.v[keep] + wild.vsys), abs=1e-9)


def test_plumcoreom_systemic_velocity_is_still_the_mean(shared_data):
    """A strongly leptokurtic clean sample (kurtosis ~5, members out to 9 dispersions) loses no star."""
    f = shared_data / "dsph/gaia_challenge/PlumCoreOm/gs010_bs050_rcrs025_rarc100_core_0400mpc3_df_10000_0_err.dat"
    st = read_stars(f, verr=2.0)
    assert st.vsys == pytest.approx(np.loadtxt(f)[:, 5].mean(), abs=1e-9)
    check_fit_sample(st)  # no gross outlier


# ------------------------------------------------------------------ the free-form fit


def test_freeform_rho_at_rhalf_is_unmoved_by_a_star_at_9999_kms(tables):
    clean, wild = (read_stars(p) for p in tables)
    light = LightProfile(a=(0.25,), w=(1.0,))  # the mock's Plummer light (fitting it takes ~10 s)
    rh = light.half_light_radius()
    kw = dict(beta=parse_beta("iso"), light=light, radius=np.array([rh]), n_draws=200, progress=False)
    a = fit_freeform(clean, SMALL, **kw)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        b = fit_freeform(wild, SMALL, **kw)
    ra, rb = (np.median(np.log10(r.profiles["rho"][:, 0])) for r in (a, b))
    assert abs(rb - ra) < 0.1  # the plain Gaussian likelihood moved it by +3.5 dex
    said = [str(w.message) for w in caught if issubclass(w.category, JeansWarning)]
    assert said == ["1 gross velocity outlier (beyond 10 robust dispersions): data row 18; modelled by the "
                    "contamination component (outlier_frac)"]
    assert "outlier_frac" not in a.names and b.names[-1] == "outlier_frac"  # clean data: the plain likelihood
    assert b.outliers["field_at_map"] == "data row 18"
    assert b.outliers["outlier_frac"]["median"] < 0.05
    # the inferred LOS velocity shape is that of the clean sample: the field component, not the members' tails,
    # takes the wild star (kurtosis 196 if the members had to hold it)
    ka, kb = ([med for _, med, _ in r.velocity_shape["kurtosis_q16_median_q84"]] for r in (a, b))
    assert np.max(np.abs(np.subtract(kb, ka))) < 1.0, (ka, kb)


def test_contamination_component_reduces_to_the_plain_likelihood(tiny_mock):
    stars, _ = tiny_mock
    light = LightProfile(a=(0.25,), w=(1.0,))
    theta = np.array([[8.0, 0.5, 1.0, 2.0, 3.0]])
    plain = JeansKernel(stars, light, FreeformConfig(nodes=4, velocity_shape="gaussian"), beta=parse_beta("iso"))
    mixed = JeansKernel(stars, light, FreeformConfig(nodes=4, velocity_shape="gaussian", outliers="uniform"),
                        beta=parse_beta("iso"))
    assert plain.ndim == 5 and mixed.names[-1] == "outlier_frac"
    np.testing.assert_allclose(mixed.log_likelihood(np.column_stack([theta, [[0.0]]])), plain.log_likelihood(theta),
                               rtol=1e-12)
    assert np.all(mixed.member_probability(np.column_stack([theta, [[0.0]]])) == 1.0)
    assert np.isinf(mixed.log_prior(np.column_stack([theta, [[0.6]]]))[0])  # eps prior: uniform on [0, 0.5]
    v = stars.v.copy()
    v[WILD] = 9999.0
    wild = JeansKernel(replace(stars, v=v), light, FreeformConfig(nodes=4, velocity_shape="gaussian"),
                       beta=parse_beta("iso"))
    assert wild.names[-1] == "outlier_frac"  # 'auto' switches the component on
    p = wild.member_probability(np.array([[8.3, 0.5, 1.0, 2.0, 3.0, 0.01]]))[0]  # near this mock's MAP
    assert p[WILD] < 1e-6 and np.all(np.delete(p, WILD) > 0.5)


@pytest.mark.parametrize("bad", [dict(outliers="maybe"), dict(outlier_frac=(0.0, 0.7)),
                                 dict(outlier_frac=(-0.1, 0.5)), dict(outliers="none", outlier_frac=(0.0, 0.2))])
def test_config_refuses_bad_outlier_settings(bad):
    with pytest.raises(JeansValueError, match="outlier"):
        FreeformConfig(**bad)


def test_freeform_with_outliers_none_refuses_naming_the_row(tables, no_fitting):
    wild = read_stars(tables[1])
    with pytest.raises(JeansValueError, match=r"data row 18: v = 9999 km/s.*> 10 robust dispersions"):
        fit_freeform(wild, FreeformConfig(**{**SMALL.to_dict(), "outliers": "none"}), beta=parse_beta("iso"),
                     progress=False)


# ------------------------------------------------------------------ the other routes refuse


def test_jflow_and_baseline_refuse_the_wild_star_naming_its_row(tables, no_fitting):
    wild = read_stars(tables[1])
    r = np.geomspace(0.05, 1.0, 5)
    msg = r"1 star is a gross velocity outlier \(data row 18\).*v = 9999 km/s"
    with pytest.raises(JeansValueError, match=msg):
        fit_model(wild, parse_beta("iso"), FitConfig(steps=1, n_model=8), progress=False)
    with pytest.raises(JeansValueError, match=msg):
        fit_ensemble(wild, parse_beta("iso"), FitConfig(steps=1, n_model=8), members=1, progress=False)
    with pytest.raises(JeansValueError, match=msg):
        fit_baseline(wild, parse_beta("iso"), BaselineConfig(walkers=8, steps=4, burn=2, thin=1), radius=r, R=r,
                     progress=False)


@pytest.mark.parametrize("args", [["baseline"], ["fit", "jflow"], ["fit", "--outliers", "none"]])
def test_cli_refuses_the_wild_star_in_one_line(tables, tmp_path, capsys, args, no_fitting):
    out = tmp_path / "out"
    assert main([*args, str(tables[1]), "--out", str(out), "--no-progress"]) == 1
    assert "data row 18: v = 9999 km/s" in _one_line(capsys, args[0])
    assert not out.exists()


def test_cli_freeform_models_the_wild_star_and_reports_it(tables, tmp_path, capsys):
    out = tmp_path / "ff"
    assert main(["fit", str(tables[1]), "--walkers", "24", "--mcmc-steps", "60", "--no-converge", "--nodes", "4",
                 "--out", str(out), "--no-progress"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["gcsbi-jeans fit: warning: 1 gross velocity outlier (beyond 10 robust dispersions): data row 18; "
                   "modelled by the contamination component (outlier_frac)"]
    summary = json.loads((out / "summary.json").read_text())
    assert abs(summary["vsys"] - read_stars(tables[0]).vsys) < 0.5
    assert summary["outliers"]["model"] == "uniform" and summary["outliers"]["flagged"] == "data row 18"
    assert "outlier_frac" in summary["diagnostics"] and len(summary["warnings"]) == 1


# ------------------------------------------------------------------ duplicated stars


def _table(path, x, y, v):
    np.savetxt(path, np.column_stack([x, y, v, np.ones_like(v)]), header="x y v verr", fmt="%.8g")
    return path


def test_table_of_one_star_copied_25_times_is_refused(tmp_path, capsys, no_fitting):
    one = _table(tmp_path / "dup.txt", np.full(25, 0.1), np.full(25, -0.2), np.full(25, 31.5))
    stars = read_stars(one)
    with pytest.raises(JeansValueError, match=r"24 of the 25 stars repeat another row exactly .*data rows 1, 2, 3, 4"):
        check_fit_sample(stars)
    for args in (["fit"], ["fit", "jflow"], ["baseline"]):
        assert main([*args, str(one), "--out", str(tmp_path / "o"), "--no-progress"]) == 1
        assert "repeat another row exactly" in _one_line(capsys, args[0])
    assert not (tmp_path / "o").exists()


def test_table_duplicated_wholesale_is_refused(tiny_mock, no_fitting):
    stars, _ = tiny_mock
    base = stars.select(np.arange(40))
    twice = StarTable(x=np.tile(base.x, 25), y=np.tile(base.y, 25), v=np.tile(base.v, 25),
                      verr=np.tile(base.verr, 25), weight=np.ones(1000))
    msg = r"960 of the 1000 stars .*40 distinct stars copied.*stars 0, 40, 80, 120"
    with pytest.raises(JeansValueError, match=msg):
        fit_freeform(twice, SMALL, beta=parse_beta("iso"), progress=False)


def test_a_few_duplicates_warn_naming_the_rows(tables, tmp_path, capsys):
    data = np.loadtxt(tables[0])
    data = np.vstack([data, data[[4, 9]]])  # rows 5 and 10 appear again as rows 201 and 202
    path = tmp_path / "few.txt"
    np.savetxt(path, data, header="x y v verr p", fmt="%.8g")
    stars = read_stars(path)
    with pytest.warns(JeansWarning, match=r"2 of the 202 stars .*data rows 5, 201; data rows 10, 202"):
        check_fit_sample(stars)
    capsys.readouterr()
    out = tmp_path / "base"
    assert main(["baseline", str(path), "--walkers", "8", "--steps", "6", "--burn", "2", "--thin", "2", "--out",
                 str(out), "--no-progress"]) == 0
    err = [ln for ln in capsys.readouterr().err.splitlines() if "gcsbi-jeans" in ln]
    assert len(err) == 1 and err[0].startswith("gcsbi-jeans baseline: warning: 2 of the 202 stars repeat")
    assert json.loads((out / "summary.json").read_text())["warnings"] == [err[0].split("warning: ", 1)[1]]


def test_bootstrap_resamples_and_subsets_are_not_flagged(tables):
    stars = read_stars(tables[0])
    with warnings.catch_warnings():
        warnings.simplefilter("error", JeansWarning)
        fit_ensemble(stars, parse_beta("iso"), FitConfig(steps=1, n_model=8), members=1, progress=False)
        sub = stars.select(np.arange(100, 150))
        check_fit_sample(sub)
    sub.v[5] = 9999.0
    with pytest.raises(JeansValueError, match="data row 106"):  # rows follow the subset
        check_fit_sample(sub)


# ------------------------------------------------------------------ heavy tails


def test_extreme_kurtosis_is_flagged(tiny_mock):
    """Members with 5% of the velocities scaled up 8x (moderate contaminants, none a gross outlier) give a
    kurtosis the tempering cannot absorb: a warning naming the worst star."""
    stars, _ = tiny_mock
    light = LightProfile(a=(0.25,), w=(1.0,))
    rng = np.random.default_rng(3)
    theta = np.array([8.0, 0.5, 1.0, 2.0, 3.0])
    k = JeansKernel(stars, light, FreeformConfig(nodes=4), beta=parse_beta("iso"))
    s = np.sqrt(k.evaluate(theta[None])["sigma_los2_R"] @ k.P.T + k.e2)[0]
    z = rng.normal(0, 1, s.size)
    k.v2 = (z * s) ** 2
    k.set_tempering(theta)
    assert k.kurtosis["heavy_tails"] == [False]
    z[::20] *= 8.0
    k.v2 = (z * s) ** 2
    with pytest.warns(JeansWarning, match=r"velocity kurtosis .* exceeds 21 .*star \d+"):
        k.set_tempering(theta)
    assert k.kurtosis["heavy_tails"] == [True] and k.kurtosis["kappa"][0] > 21
