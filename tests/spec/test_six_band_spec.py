"""The six-band PHAT spec: IR bands seen by coarser pixels, young-cluster ages, the physics version in the digest."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from gcsbi.errors import SpecError
from gcsbi.simulator import core
from gcsbi.spec.priors import NamedBoxPrior, load_prior
from gcsbi.spec.simulator_spec import load_simulator_spec


def test_ir_psf_includes_its_native_pixel():
    from gcsbi.observe.observe import _band_psf

    spec = load_simulator_spec("hst-phat6")
    assert spec.filters == ("F275W", "F336W", "F475W", "F814W", "F110W", "F160W")
    assert spec.psf.for_band("F160W").native_pixel_arcsec == pytest.approx(0.128)
    ir, _, _ = _band_psf(spec, "F160W")
    bare = dataclasses.replace(spec, psf=dataclasses.replace(spec.psf, bands=()))
    optical, _, _ = _band_psf(bare, "F160W")
    fwhm = [p.drawImage(nx=64, ny=64, scale=0.02, method="no_pixel").calculateFWHM() for p in (ir, optical)]
    assert fwhm[0] > 1.1 * fwhm[1]  # 0.128" pixels broaden the diffraction core
    assert 0.13 < fwhm[0] < 0.18  # WFC3 Instrument Handbook: F160W FWHM ~0.15" on the native pixels


def test_native_pixel_only_for_optical_psfs(tmp_path):
    from pathlib import Path

    text = Path(load_simulator_spec("hst-phat6").source).read_text()
    bad = text.replace('[psf.bands.F110W]\nnative_pixel_arcsec = 0.128',
                       '[psf.bands.F110W]\nmodel = "file"\npath = "psf.fits"\nnative_pixel_arcsec = 0.128')
    assert bad != text
    (tmp_path / "bad.toml").write_text(bad)
    with pytest.raises(SpecError, match="native_pixel_arcsec applies to model = 'optical'"):
        load_simulator_spec(tmp_path / "bad.toml")


def test_log_age_parameter_sets_age_gyr():
    sim = core.ClusterSimulator("hst-phat6", "m31-clusters")
    assert "log10_age_yr" in sim.param_names and "age_gyr" not in sim.param_names
    row = sim.prior.sample((1,)).numpy()[0]
    v = sim._values(row)
    assert v["age_gyr"] == pytest.approx(10 ** (row[sim.param_names.index("log10_age_yr")] - 9.0))


def test_age_given_twice_is_refused():
    prior = load_prior("m31-clusters")
    gc = load_prior("m31-gc")
    extra = gc.specs[gc.names.index("age_gyr")]
    both = NamedBoxPrior((*prior.specs, extra), name="both")
    with pytest.raises(SpecError, match="set the same quantity"):
        core.ClusterSimulator("hst-phat6", both)


def test_physics_version_is_part_of_the_digest(monkeypatch):
    spec = load_simulator_spec("hst-phat")
    before = core.spec_digest(spec)
    from gcsbi.simulator import parameters

    monkeypatch.setattr(parameters, "PHYSICS_VERSION", parameters.PHYSICS_VERSION + 1)
    assert core.spec_digest(spec) != before


def test_six_band_mock_is_brightest_in_the_infrared_for_an_old_cluster():
    sim = core.ClusterSimulator("hst-phat6", "m31-clusters")
    theta = sim.prior.from_dict({"distance_kpc": 780.0, "log10_mass": 5.0, "log10_age_yr": 10.05, "feh": -1.0,
                                 "log10_r_half": 0.4, "w0": 7.0, "segregation": 0.1, "ellipticity": 0.1,
                                 "position_angle": 20.0, "ebv": 0.1, "background_sb": 24.0})
    _, obs = sim.simulate_one(theta.numpy()[0], rng=np.random.default_rng(0), return_truth=True)
    zp = np.array([b.zeropoint_vega for b in sim.sim_spec.instrument.bands])
    t = np.array([b.exposure_s for b in sim.sim_spec.instrument.bands])
    mag = zp - 2.5 * np.log10(obs.clean.sum(axis=(1, 2)) / t)
    f275, f336, f475, f814, f110, f160 = mag
    assert f275 > f336 > f475 > f814 > f110 > f160  # an old population: redder is brighter
