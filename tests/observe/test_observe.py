"""Contract of the observation chain for every shipped spec, plus physics/convention checks."""

from __future__ import annotations

import numpy as np
import pytest

from gcsbi.errors import GcsbiValueError, UnknownFilterError
from gcsbi.observe import channel_names, get_observation_model, project_positions
from gcsbi.observe.instrument import ARCSEC_PER_PC_AT_1KPC, distance_modulus
from gcsbi.spec.simulator_spec import list_simulator_specs

from .conftest import plummer_stars

SPECS = list_simulator_specs()


def _cluster(rng, model, n=300):
    pos = plummer_stars(rng, n, a_pc=1.0)
    mags = rng.uniform(-2.0, 6.0, (n, 1)) + np.linspace(0.0, 0.5, len(model.filters))[None, :]
    return pos, mags, np.full(n, 0.8)


@pytest.mark.parametrize("name", SPECS)
def test_contract(name):
    model = get_observation_model(name)
    pos, mags, mass = _cluster(np.random.default_rng(0), model)
    kw = dict(distance_kpc=780.0, ellipticity=0.2, position_angle_deg=30.0, ebv=0.1, return_truth=True)
    a = model(pos, mags, model.filters, mass, rng=np.random.default_rng(5), **kw)
    b = model(pos, mags, model.filters, mass, rng=np.random.default_rng(5), **kw)
    c = model(pos, mags, model.filters, mass, rng=np.random.default_rng(6), **kw)
    h, w = model.spec.observation.size
    nb = len(model.filters)
    assert a.image.shape == (nb, h, w) and a.image.dtype == np.float32
    assert np.all(np.isfinite(a.image))
    assert a.image.tobytes() == b.image.tobytes()
    assert a.image.tobytes() != c.image.tobytes()
    assert a.clean.shape == (nb, h, w) and a.clean.dtype == np.float32 and np.all(a.clean >= -1e-3 * a.clean.max())
    assert a.mass_map.shape == (h, w) and 0 < a.mass_map.sum() <= mass.sum() + 1e-3
    x = model.transform(a.image)
    assert x.shape == (len(channel_names(model.spec)), h, w) and x.dtype == np.float32
    assert np.all(np.isfinite(x))
    # the cluster is visible: centre brighter than the corners in every band
    assert np.all(a.clean[:, h // 2 - 2 : h // 2 + 2, w // 2 - 2 : w // 2 + 2].mean(axis=(1, 2)) > a.clean[:, :4, :4].mean(axis=(1, 2)))


def test_counts_scale_with_distance_and_extinction():
    model = get_observation_model("jwst-nircam")
    pos = np.zeros((1, 3))
    mags = np.zeros((1, 3))
    kw = dict(rng=np.random.default_rng(0), return_truth=True)
    near = model(pos, mags, model.filters, distance_kpc=10.0, **kw).clean.sum(axis=(1, 2))
    far = model(pos, mags, model.filters, distance_kpc=20.0, **kw).clean.sum(axis=(1, 2))
    assert far / near == pytest.approx(np.full(3, 0.25), rel=1e-4)
    coeff = np.array([2.0, 1.0, 0.2])
    red = model(pos, mags, model.filters, distance_kpc=10.0, ebv=0.5, extinction_coeff=coeff, **kw).clean.sum(axis=(1, 2))
    assert red / near == pytest.approx(10 ** (-0.4 * coeff * 0.5), rel=1e-4)
    # absolute calibration: a star of m = ZP gives 1 e-/s (x exposure) x flux in the kernel
    b = model.spec.instrument.bands[0]
    mag_zp = np.full((1, 3), b.zeropoint_vega - distance_modulus(10.0))
    img = model(pos, mag_zp, model.filters, distance_kpc=10.0, **kw).clean[0]
    assert img.sum() == pytest.approx(b.exposure_s, rel=0.08)  # up to the PSF wings beyond the kernel


def test_projection_convention():
    # 1 pc along +y at 1 kpc -> 206.265" North (+Y); PA = 90 deg rotates North to East (-X)
    x, y = project_positions(np.array([[0.0, 1.0, 5.0]]), distance_kpc=1.0)
    assert (x[0], y[0]) == pytest.approx((0.0, ARCSEC_PER_PC_AT_1KPC))
    x, y = project_positions(np.array([[0.0, 1.0]]), distance_kpc=1.0, position_angle_deg=90.0)
    assert (x[0], y[0]) == pytest.approx((-ARCSEC_PER_PC_AT_1KPC, 0.0), abs=1e-9)
    # ellipticity: area-preserving, major axis along Y before rotation
    x, y = project_positions(np.array([[1.0, 0.0], [0.0, 1.0]]), distance_kpc=1.0, ellipticity=0.36)
    assert x[0] == pytest.approx(0.8 * ARCSEC_PER_PC_AT_1KPC) and y[1] == pytest.approx(1.25 * ARCSEC_PER_PC_AT_1KPC)
    with pytest.raises(GcsbiValueError):
        project_positions(np.zeros((2, 3)), distance_kpc=1.0, ellipticity=1.0)
    with pytest.raises(GcsbiValueError):
        project_positions(np.zeros((2, 4)), distance_kpc=1.0)


def test_input_errors():
    model = get_observation_model("jwst-nircam")
    pos = np.zeros((2, 3))
    rng = np.random.default_rng(0)
    with pytest.raises(UnknownFilterError, match="F115W"):
        model(pos, np.zeros((2, 2)), ["F070W", "F356W"], distance_kpc=10.0, rng=rng)
    with pytest.raises(GcsbiValueError):
        model(pos, np.full((2, 3), np.nan), model.filters, distance_kpc=10.0, rng=rng)
    with pytest.raises(GcsbiValueError):
        model(pos, np.zeros((2, 3)), model.filters, distance_kpc=-1.0, rng=rng)
    with pytest.raises(GcsbiValueError):
        model(pos, np.zeros((2, 3)), model.filters, distance_kpc=10.0, rng=rng, ebv=-0.1)


@pytest.mark.parametrize("case", ["empty", "single_bright", "zero_flux", "dark_inf"])
def test_extreme_inputs_are_finite(case):
    model = get_observation_model("jwst-nircam")
    nb = len(model.filters)
    pos = {"empty": np.zeros((0, 3)), "single_bright": np.zeros((1, 3))}.get(case, np.zeros((3, 3)))
    mags = {"empty": np.zeros((0, nb)), "single_bright": np.full((1, nb), -15.0),
            "zero_flux": np.full((3, nb), 80.0), "dark_inf": np.full((3, nb), np.inf)}[case]  # fmt: skip
    obs = model(pos, mags, model.filters, np.ones(len(pos)), distance_kpc=10.0, rng=np.random.default_rng(0),
                return_truth=True)  # fmt: skip
    x = model.transform(obs.image)
    for arr in (obs.image, obs.clean, obs.mass_map, x):
        assert np.all(np.isfinite(arr))
    assert x.dtype == np.float32
