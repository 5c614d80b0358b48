"""The light profile's uniform-field (background) term: known answers on contaminated and clean Plummer samples."""

from __future__ import annotations

import re

import numpy as np
import pytest

from gcsbi_jeans.core.light import LightProfile, fit_light
from gcsbi_jeans.core.mocks import plummer_positions
from gcsbi_jeans.errors import JeansValueError

A = 0.25  # kpc; a Plummer sphere's projected half-light radius equals its scale radius


def _contaminated(n: int = 10_000, fraction: float = 0.3, edge: float = 8 * A, seed: int = 11):
    """Plummer members inside a disc of radius ``edge`` plus a uniform field, ``fraction`` of the sample."""
    rng = np.random.default_rng(seed)
    members = plummer_positions(n, A, seed=seed)
    members = members[members < edge]
    n_field = int(round(fraction / (1 - fraction) * members.size))
    field = edge * np.sqrt(rng.uniform(0.0, 1.0, n_field))  # uniform per unit area inside the disc
    return rng.permutation(np.concatenate([members, field])), n_field / (members.size + n_field)


def test_background_term_recovers_members_of_a_contaminated_sample():
    R, f_true = _contaminated()
    edge = 8 * A
    prof = fit_light(R, R_max=edge, seed=0)  # default 'auto' must keep the field
    assert prof.half_light_radius() == pytest.approx(A, rel=0.05)  # measured 0.2508 (+0.3%)
    assert prof.background_fraction == pytest.approx(f_true, abs=0.03)  # measured 0.292 (true 0.300)
    r = np.geomspace(0.1, 1.0, 20)  # members' 3D density, 0.4-4 scale radii
    truth = LightProfile(a=(A,), w=(1.0,)).density(r)
    assert np.max(np.abs(np.log10(prof.density(r) / truth))) < 0.1
    # without the field term the same sample's profile is far too extended (measured R_1/2 = 3.1 a)
    plain = fit_light(R, R_max=edge, seed=0, background="none")
    assert plain.background_fraction == 0.0
    assert plain.half_light_radius() > 1.5 * A


def test_clean_sample_keeps_the_pure_plummer_fit():
    R = plummer_positions(10_000, A, seed=5)
    fitted = fit_light(R, seed=0, background="fit")
    assert 0.0 <= fitted.background_fraction < 0.02  # measured 9e-5
    assert fitted.half_light_radius() == pytest.approx(A, rel=0.03)  # measured 0.2491
    plain = fit_light(R, seed=0, background="none")
    auto = fit_light(R, seed=0)
    assert auto == plain and auto.background_fraction == 0.0  # 'auto' drops an insignificant field
    assert auto.half_light_radius() == pytest.approx(A, rel=0.03)  # measured 0.2490


@pytest.mark.parametrize("bad", ["yes", "AUTO", "", None, 1])
def test_fit_light_refuses_an_unknown_background_option(bad):
    R = plummer_positions(200, A, seed=1)
    message = f"background must be one of 'auto', 'fit', 'none', got {bad!r}"
    with pytest.raises(JeansValueError, match=re.escape(message)):
        fit_light(R, background=bad)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_fit_light_refuses_a_bad_edge(bad):
    with pytest.raises(JeansValueError, match="R_max must be a finite radius > 0"):
        fit_light(plummer_positions(200, A, seed=1), R_max=bad)


def test_light_profile_background_fraction_field():
    prof = LightProfile(a=(0.3,), w=(1.0,))
    assert prof.background_fraction == 0.0 and prof.to_dict()["background_fraction"] == 0.0
    d = LightProfile(a=(0.1, 0.5), w=(0.4, 0.6), background_fraction=0.25).to_dict()
    again = LightProfile(a=tuple(d["a"]), w=tuple(d["w"]), background_fraction=d["background_fraction"])
    assert again == LightProfile(a=(0.1, 0.5), w=(0.4, 0.6), background_fraction=0.25)
    for bad in (1.0, -0.1, float("nan"), "0.2"):
        with pytest.raises(JeansValueError, match=r"background_fraction must be in \[0, 1\)"):
            LightProfile(a=(0.3,), w=(1.0,), background_fraction=bad)
