"""The JFlow route never returns a non-positive rho or a falling M(<r) silently: members unphysical where the
data are are dropped with a warning, fewer than half valid raises, and a physical ensemble passes untouched."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from gcsbi_jeans.core.beta import parse_beta
from gcsbi_jeans.core.grids import data_radius_range
from gcsbi_jeans.errors import JeansRuntimeError, JeansValueError, JeansWarning
from gcsbi_jeans.jflow.config import FitConfig, FlowConfig
from gcsbi_jeans.jflow.fit import EnsembleResult, fit_ensemble, screen_members
from gcsbi_jeans.jflow.solve import format_radii, profile_validity

A = 0.3
R_GRID = np.geomspace(0.01, 10.0, 40)
DATA = (0.05, 3.0)  # the radii the (synthetic) data cover, kpc
INSIDE = (R_GRID >= DATA[0]) & (R_GRID <= DATA[1])


def _plummer(m0: float = 1e8, r: np.ndarray = R_GRID) -> dict[str, np.ndarray]:
    """Physical profiles of one member: Plummer mass and density, their log slope, and a flat n."""
    mass = m0 * r**3 / (r**2 + A**2) ** 1.5
    rho = 3 * m0 / (4 * math.pi * A**3) * (1 + (r / A) ** 2) ** -2.5
    return {"mass": mass, "rho": rho, "slope": -5 * r**2 / (r**2 + A**2), "n": np.ones_like(r)}


def _stack(members: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.stack([m[k] for m in members]) for k in members[0]}


def _idx(lo: float, hi: float) -> np.ndarray:
    return np.flatnonzero((R_GRID >= lo) & (R_GRID <= hi))


def _physical_inside(ens_profiles: dict[str, np.ndarray], inside: np.ndarray) -> bool:
    """Independent check (plain numpy, not profile_validity): rho > 0 and M increasing at the given radii."""
    rho, mass = ens_profiles["rho"][:, inside], ens_profiles["mass"][:, inside]
    return bool(np.all(rho > 0) and np.all(mass > 0) and np.all(np.diff(mass, axis=1) > 0))


def test_validity_finds_negative_rho_and_falling_mass_where_they_are():
    good = _plummer()
    neg = _plummer()
    j_neg = _idx(0.2, 0.4)
    neg["rho"][j_neg] *= -1.0  # a known negative-density region inside the data
    fall = _plummer()
    j = _idx(0.5, 3.0)[3]
    fall["mass"][j + 1] = 0.9 * fall["mass"][j]  # M(<r) decreases over one grid interval; rho stays > 0
    outer = _plummer()
    j_out = np.flatnonzero(R_GRID > 5.0)
    outer["rho"][j_out] = -1.0  # unphysical only beyond the data
    outer["mass"][j_out] = outer["mass"][j_out[0] - 1] * np.linspace(0.99, 0.9, j_out.size)
    nan = _plummer()
    nan["rho"][_idx(1.0, 1.2)[0]] = np.nan
    zero_m = _plummer()
    zero_m["mass"][: _idx(DATA[0], 1)[1] + 1] = 0.0  # M(<r) = 0 from the centre to the second radius inside
    p = _stack([good, neg, fall, outer, nan, zero_m])
    v = profile_validity(R_GRID, p["rho"], p["mass"], r_range=DATA)
    assert v.valid.tolist() == [True, False, False, True, False, False]
    assert v.reasons[0] == v.reasons[3] == ""
    assert v.reasons[1] == f"rho <= 0 at r = {R_GRID[j_neg[0]]:.3g}-{R_GRID[j_neg[-1]]:.3g} kpc"
    assert v.reasons[2] == f"M(<r) decreases at r = {R_GRID[j]:.3g}-{R_GRID[j + 1]:.3g} kpc"
    assert v.reasons[4].startswith("non-finite rho or M at r = ") and "rho <= 0" not in v.reasons[4]
    assert "M(<r) <= 0" in v.reasons[5] and "M(<r) decreases" in v.reasons[5]
    # bad marks the unphysical points anywhere; only those inside the data decide validity
    assert np.array_equal(np.flatnonzero(v.bad[1]), j_neg)
    assert np.array_equal(np.flatnonzero(v.bad[2]), [j, j + 1])
    assert np.array_equal(np.flatnonzero(v.bad[3]), np.arange(j_out[0] - 1, R_GRID.size))
    assert not v.bad[0].any() and not v.bad_inside[3].any() and np.array_equal(v.inside, INSIDE)
    # the grid's order does not matter
    perm = np.random.default_rng(3).permutation(R_GRID.size)
    w = profile_validity(R_GRID[perm], p["rho"][:, perm], p["mass"][:, perm], r_range=DATA)
    assert w.valid.tolist() == v.valid.tolist() and w.reasons == v.reasons
    assert np.array_equal(w.bad, v.bad[:, perm])
    # without a data range every radius counts: the outer member is then invalid too
    assert profile_validity(R_GRID, p["rho"], p["mass"]).valid.tolist() == [True, False, False, False, False, False]
    with pytest.raises(JeansValueError):
        profile_validity(R_GRID, p["rho"], p["mass"][:, :-1])


def test_format_radii_gives_runs_of_neighbouring_grid_points():
    r = np.array([0.1, 0.2, 0.3, 0.4, 0.5])
    assert format_radii(r, [True, True, False, True, False]) == "0.1-0.2, 0.4"
    assert format_radii(r[::-1], [False, True, False, True, True]) == "0.1-0.2, 0.4"
    assert format_radii(r, np.zeros(5, bool)) == ""


def test_a_physical_ensemble_passes_untouched():
    p = _stack([_plummer(m) for m in (0.8e8, 1e8, 1.3e8, 2e8)])
    before = {k: v.copy() for k, v in p.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning fails the test
        kept, rejected, valid, reasons, masked = screen_members(R_GRID, p, DATA)
    assert valid.tolist() == [True] * 4 and reasons == [""] * 4 and not masked.any()
    assert all(kept[k].tobytes() == before[k].tobytes() for k in before)
    assert all(p[k].tobytes() == before[k].tobytes() for k in before)  # the input is not modified either
    assert all(v.shape == (0, R_GRID.size) for v in rejected.values())


def test_an_unphysical_member_is_dropped_with_a_warning_that_says_where():
    members = [_plummer(m) for m in (0.8e8, 1e8, 1.3e8, 2e8)]
    j_neg = _idx(0.2, 0.4)
    members[2]["rho"][j_neg] = -5.0
    with pytest.warns(JeansWarning) as caught:
        kept, rejected, valid, reasons, masked = screen_members(R_GRID, _stack(members), DATA)
    where = f"{R_GRID[j_neg[0]]:.3g}-{R_GRID[j_neg[-1]]:.3g}"
    assert [str(w.message) for w in caught] == [
        f"JFlow: dropped 1 of 4 ensemble members, rho <= 0 or M(<r) not increasing inside the data (0.05-3 kpc), "
        f"at r = {where} kpc; the bands use the other 3"]
    assert valid.tolist() == [True, True, False, True] and reasons[2] == f"rho <= 0 at r = {where} kpc"
    assert np.array_equal(kept["rho"], np.stack([members[k]["rho"] for k in (0, 1, 3)]))
    assert np.array_equal(rejected["rho"], members[2]["rho"][None])
    assert _physical_inside(kept, INSIDE)


def test_beyond_the_data_unphysical_values_become_nan_with_a_warning():
    members = [_plummer(m) for m in (0.8e8, 1e8, 1.3e8)]
    j_out = np.flatnonzero(R_GRID > 5.0)
    members[1]["rho"][j_out] = -1.0
    with pytest.warns(JeansWarning, match=r"beyond the data \(outside 0.05-3 kpc\) 1 of 3 kept members") as caught:
        kept, _, valid, _, masked = screen_members(R_GRID, _stack(members), DATA)
    assert len(caught) == 1 and valid.all()
    assert np.array_equal(np.flatnonzero(masked[1]), j_out) and not masked[[0, 2]].any()
    for key in ("rho", "mass", "slope"):
        assert np.all(np.isnan(kept[key][1, j_out]))
        assert np.array_equal(kept[key][1, ~masked[1]], members[1][key][~masked[1]])
    assert np.array_equal(kept["n"][1], members[1]["n"])  # n(r) is fitted directly, not derived: kept


def test_fewer_than_half_valid_raises_with_what_to_do():
    members = [_plummer(m) for m in (0.8e8, 1e8, 1.3e8, 2e8)]
    for k in (0, 1, 2):
        members[k]["mass"][_idx(0.1, 2.0)] *= np.linspace(1.0, 0.5, _idx(0.1, 2.0).size)
    with pytest.raises(JeansRuntimeError) as err:
        screen_members(R_GRID, _stack(members), DATA)
    msg = str(err.value)
    assert "\n" not in msg and "3 of 4 ensemble members" in msg and "fit freeform" in msg
    assert "more stars" in msg and "larger --ensemble" in msg
    # exactly half valid is kept (with a warning)
    members[1] = _plummer(1e8)
    with pytest.warns(JeansWarning, match="dropped 2 of 4"):
        kept, *_ = screen_members(R_GRID, _stack(members), DATA)
    assert kept["rho"].shape == (2, R_GRID.size)


def test_old_style_ensemble_result_still_builds():
    ens = EnsembleResult(radius=R_GRID, R=R_GRID[:5], profiles={}, wall_s=np.zeros(0), losses=[], config=FitConfig(),
                         beta_spec="iso", bootstrap=True)
    assert ens.member_valid.size == 0 and ens.member_reason == [] and ens.data_range is None and ens.n_valid == 0


TINY = dict(sigma_hidden=8, n_model=128, lr=2e-2)


@pytest.mark.parametrize("beta, variant, steps, members", [
    ("iso", "cored", 40, 4),  # seeded: 3 of 4 members physical on this mock (one dropped)
    ("om:0.3", "cusp", 5, 2),  # untrained and a wrong beta: rho <= 0 inside the data in every member
])
def test_fit_ensemble_returns_only_physical_members_or_raises(tiny_mock, beta, variant, steps, members):
    stars, _ = tiny_mock
    cfg = FitConfig(flow=FlowConfig(variant=variant, hidden=8, ode_steps=4), steps=steps, seed=0, **TINY)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            ens = fit_ensemble(stars, parse_beta(beta), cfg, members=members, progress=False)
        except JeansRuntimeError as exc:
            assert "ensemble members" in str(exc) and "fit freeform" in str(exc)
            return
    lo, hi = data_radius_range(stars)
    inside = (ens.radius >= lo) & (ens.radius <= hi)
    assert ens.data_range == (lo, hi) and inside.sum() >= 10
    assert ens.member_valid.size == members and ens.profiles["rho"].shape == (ens.n_valid, ens.radius.size)
    assert 2 * ens.n_valid >= members and _physical_inside(ens.profiles, inside)
    said = [str(w.message) for w in caught if issubclass(w.category, JeansWarning) and "dropped" in str(w.message)]
    if ens.n_valid < members:
        assert said == [said[0]] and f"dropped {members - ens.n_valid} of {members}" in said[0]
        assert not _physical_inside(ens.rejected_profiles, inside)  # what was dropped really was unphysical
        assert all(bool(r) != v for r, v in zip(ens.member_reason, ens.member_valid))
    else:
        assert said == []


def test_fit_ensemble_wires_the_check_per_member(tiny_mock, monkeypatch):
    """fit_ensemble screens what jeans_profiles returns, member by member (profiles injected: no training)."""
    import gcsbi_jeans.jflow.fit as fit_mod

    stars, _ = tiny_mock
    calls = []

    def fake_profiles(model, radii):
        calls.append(1)
        p = _plummer(1e8, np.asarray(radii))
        if len(calls) == 2:  # the second member: negative density at the middle of the data
            p["rho"][radii.size // 2] = -1.0
        return p

    monkeypatch.setattr(fit_mod, "jeans_profiles", fake_profiles)
    cfg = FitConfig(flow=FlowConfig(hidden=4, ode_steps=2), sigma_hidden=4, steps=1, n_model=8, seed=0)
    radius = np.geomspace(*data_radius_range(stars), 9)
    with pytest.warns(JeansWarning, match=f"dropped 1 of 3 .* at r = {radius[4]:.3g} kpc"):
        ens = fit_ensemble(stars, parse_beta("iso"), cfg, members=3, radius=radius, progress=False, keep_models=True)
    assert ens.member_valid.tolist() == [True, False, True] and ens.n_valid == 2
    assert ens.member_reason[1] == f"rho <= 0 at r = {radius[4]:.3g} kpc"
    assert ens.profiles["rho"].shape == (2, 9) and ens.rejected_profiles["rho"].shape == (1, 9)
    assert ens.profiles["sigma_los_R"].shape == (2, ens.R.size)  # every profile of the member is dropped
    assert len(ens.models) == len(ens.losses) == ens.wall_s.size == 3


def test_data_radius_range_is_the_weighted_5_95_percent_quantile(tiny_mock):
    stars, _ = tiny_mock
    lo, hi = data_radius_range(stars)
    frac = [np.sum(stars.weight[stars.R <= x]) / stars.weight.sum() for x in (lo, hi)]
    assert 0.05 <= frac[0] < 0.05 + 2 / stars.n and 0.95 <= frac[1] < 0.95 + 2 / stars.n
