"""The CNF light profile (issue 26 item 2): tabulated profiles, the ensemble in the free-form kernel, the cache,
and a rough known answer (the issue's targets, 10^4 stars, are measured by bench/jeans_cnf_light.py)."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest

from gcsbi_jeans.core.light import LightProfile
from gcsbi_jeans.core.light_cache import cache_folder, cache_key, load_ensemble, save_ensemble
from gcsbi_jeans.core.light_table import LightEnsemble, TabulatedLight
from gcsbi_jeans.core.mocks import MockConfig, make_mock, plummer_positions
from gcsbi_jeans.errors import JeansValueError, JeansWarning
from gcsbi_jeans.freeform.model import FreeformConfig, JeansKernel
from gcsbi_jeans.jflow.config import LightConfig

A = 0.25


def _plummer_table(a: float = A, bg: float = 0.0) -> TabulatedLight:
    lr = np.linspace(math.log(a * 1e-3), math.log(a * 1e3), 241)
    return TabulatedLight(lr, np.log(LightProfile((a,), (1.0,)).density(np.exp(lr))), background_fraction=bg)


def test_tabulated_profile_matches_the_analytic_plummer():
    tab, exact = _plummer_table(), LightProfile((A,), (1.0,))
    r = A * np.geomspace(0.01, 50, 40)
    assert np.allclose(tab.density(r), exact.density(r), rtol=2e-3)
    assert np.allclose(tab.surface(r), exact.surface(r), rtol=2e-3)
    assert np.allclose(tab.cdf2d(r), exact.cdf2d(r), atol=1e-3)
    assert np.allclose(tab.mass_fraction(r), exact.mass_fraction(r), atol=1e-3)
    assert tab.half_light_radius() == pytest.approx(A, rel=1e-3)


def test_tabulated_profile_refuses_bad_tables():
    lr = np.linspace(-3, 3, 50)
    with pytest.raises(JeansValueError, match="must be finite"):
        TabulatedLight(lr, np.where(lr > 0, np.nan, 0.0))
    with pytest.raises(JeansValueError, match="must increase"):
        TabulatedLight(lr[::-1], -lr)
    with pytest.raises(JeansValueError, match="background_fraction"):
        TabulatedLight(lr, -lr**2, background_fraction=1.5)


def test_ensemble_is_the_members_mixture():
    ens = LightEnsemble((_plummer_table(0.2), _plummer_table(0.3)))
    r = np.geomspace(0.01, 3, 20)
    assert np.allclose(ens.density(r), 0.5 * (ens.members[0].density(r) + ens.members[1].density(r)))
    assert 0.2 < ens.half_light_radius() < 0.3
    assert ens.to_dict()["members"] == 2


def test_freeform_kernel_marginalises_over_light_members():
    stars, _ = make_mock(MockConfig(n=120, seed=4))
    ens = LightEnsemble((_plummer_table(0.2), _plummer_table(0.35)))
    cfg = FreeformConfig(nodes=4, walkers=32, steps=100, burn=50, thin=10, converge=False)
    k = JeansKernel(stars, ens, cfg)
    assert k.names[-1] == "light_member" and k.n_light == 2
    lo, hi = k.bounds()
    assert lo[-1] == 0.0 and 1.99 < hi[-1] < 2.0
    theta = 0.5 * (lo + hi)
    rows = np.stack([theta, theta])
    rows[0, -1], rows[1, -1] = 0.3, 1.7
    assert list(k.light_index(rows)) == [0, 1]
    s2 = k.evaluate(rows)["sigma_los2_R"]
    assert not np.allclose(s2[0], s2[1])  # each row uses its own member's nu and Sigma
    assert np.allclose(k.nu_k[1], ens.members[1].density(k.r)) and np.allclose(k.Sigma_k[1], k.A @ k.nu_k[1])
    twin = rows.copy()
    twin[0, -1] = 1.2  # the same member as row 1: the same profiles
    assert np.allclose(k.evaluate(twin)["sigma_los2_R"][0], s2[1])
    # one profile: no extra parameter
    assert "light_member" not in JeansKernel(stars, LightProfile((0.25,), (1.0,)), cfg).names


def test_cache_round_trip_and_integrity(tmp_path):
    ens = LightEnsemble((_plummer_table(0.2, 0.1), _plummer_table(0.3)), info={"variant": "cored"})
    R = plummer_positions(500, A, seed=1)
    key = cache_key(R, np.ones_like(R), LightConfig().fit_settings(), R_max=None, seed=0)
    assert key != cache_key(R, np.ones_like(R), LightConfig(members=3).fit_settings(), R_max=None, seed=0)
    assert key != cache_key(R * 1.0001, np.ones_like(R), LightConfig().fit_settings(), R_max=None, seed=0)
    assert key == cache_key(R.copy(), np.ones_like(R), LightConfig(cache_dir="x").fit_settings(), R_max=None, seed=0)
    assert cache_folder(str(tmp_path)) is None  # not created unless asked
    folder = cache_folder(str(tmp_path), create=True)
    save_ensemble(folder, key, ens)
    back = load_ensemble(folder, key)
    assert back is not None and back.info["cache"] == "hit" and back.info["variant"] == "cored"
    r = np.geomspace(0.01, 2, 10)
    assert np.allclose(back.density(r), ens.density(r)) and back.members[0].background_fraction == 0.1
    # a flipped byte in the arrays: ignored with a warning
    npz = folder / f"{key}.npz"
    blob = bytearray(npz.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    npz.write_bytes(bytes(blob))
    with pytest.warns(JeansWarning, match="SHA-256"):
        assert load_ensemble(folder, key) is None
    # a JSON that lies about the sizes
    save_ensemble(folder, key, ens)
    meta = json.loads((folder / f"{key}.json").read_text())
    (folder / f"{key}.json").write_text(json.dumps({**meta, "points": meta["points"] + 1}))
    with pytest.warns(JeansWarning, match="shape"):
        assert load_ensemble(folder, key) is None


def test_cache_never_writes_into_a_folder_it_did_not_create(tmp_path):
    (tmp_path / "light-cnf-v1").mkdir()
    with pytest.warns(JeansWarning, match="did not create"):
        assert cache_folder(str(tmp_path), create=True) is None
    assert list((tmp_path / "light-cnf-v1").iterdir()) == []


@pytest.mark.parametrize("bad", [{"model": "king"}, {"members": 0}, {"lr": -1.0}, {"variant": "x"},
                                 {"fit_quantile": 0.2}])
def test_light_config_refuses_bad_values(bad):
    with pytest.raises(JeansValueError, match=r"^light \w+ must"):
        LightConfig(**bad)


def _max_dex(prof, truth, r_half, lo, hi):
    r = r_half * np.geomspace(lo, hi, 30)
    return float(np.max(np.abs(np.log10(prof.density(r) / truth(r)))))


def test_cnf_light_smoke_plummer():
    """Fast version (2000 stars, short training, 2 members): a rough known answer only."""
    from gcsbi_jeans.jflow.light import fit_cnf_light

    R = plummer_positions(2000, A, seed=3)
    cfg = LightConfig(members=2, pretrain_steps=100, steps=120, member_steps=40, variant="cored", cache=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ens = fit_cnf_light(R, config=cfg, seed=0)
    assert ens.half_light_radius() == pytest.approx(A, rel=0.1)
    truth = LightProfile((A,), (1.0,)).density
    assert _max_dex(ens, truth, A, 0.5, 3.0) < 0.15
    assert ens.info["variant"] == "cored" and len(ens.members) == 2
