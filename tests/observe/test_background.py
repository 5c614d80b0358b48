"""Background bank (rotation/flip/crop) and synthetic crowded field."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from gcsbi.errors import GcsbiFileError, GcsbiValueError
from gcsbi.observe import BackgroundBank, FieldBackground, luminosity_function_sampler, stellar_population_sampler


def test_bank_random_orientation_and_crop(tmp_path):
    cut = np.arange(3 * 20 * 24, dtype=np.float32).reshape(3, 20, 24)
    p = tmp_path / "cut.fits"
    fits.PrimaryHDU(cut).writeto(p)
    bank = BackgroundBank.from_files([p], n_bands=3)
    outs = [bank.sample(np.random.default_rng(s), shape=(16, 16)) for s in range(40)]
    assert all(o.shape == (3, 16, 16) and o.dtype == np.float32 for o in outs)
    # every patch is a crop of one of the 8 rotations/flips of the cutout
    views = []
    for k in range(4):
        r = np.rot90(cut, k=k, axes=(1, 2))
        views += [r, r[:, :, ::-1]]

    def matches(o):
        for v in views:
            for y0 in range(v.shape[1] - 15):
                for x0 in range(v.shape[2] - 15):
                    if np.array_equal(v[:, y0 : y0 + 16, x0 : x0 + 16], o):
                        return True
        return False

    assert all(matches(o) for o in outs[:10])
    assert len({o.tobytes() for o in outs}) > 20  # random, not constant
    a = bank.sample(np.random.default_rng(1), shape=(16, 16))
    assert a.tobytes() == bank.sample(np.random.default_rng(1), shape=(16, 16)).tobytes()


def test_bank_errors(tmp_path):
    p = tmp_path / "small.fits"
    fits.PrimaryHDU(np.zeros((3, 8, 8), np.float32)).writeto(p)
    with pytest.raises(GcsbiValueError, match="smaller"):
        BackgroundBank.from_files([p], n_bands=3).sample(np.random.default_rng(0), shape=(16, 16))
    with pytest.raises(GcsbiFileError):
        BackgroundBank.from_files([p], n_bands=2)
    with pytest.raises(GcsbiFileError):
        BackgroundBank.from_files([tmp_path / "missing.fits"], n_bands=3)


def test_field_surface_brightness_budget():
    filters = ("F475W", "F814W")
    fb = FieldBackground.build(luminosity_function_sampler(filters), filters=filters, reference_filter="F814W",
                               pool_size=5000)  # fmt: skip
    mu, dm, area = 21.0, 24.47, 100.0
    rng = np.random.default_rng(0)
    # resolved + smooth light reproduce the requested surface brightness (on average)
    tot = []
    for _ in range(200):
        mags, smooth = fb.sample(rng, surface_brightness=mu, resolved_mag_limit=26.0, distance_modulus=dm,
                                 extinction_mag=np.zeros(2), area_arcsec2=area)  # fmt: skip
        resolved = np.sum(10 ** (-0.4 * (mags[:, 1] + dm))) / area
        tot.append(resolved + smooth[1] * 10 ** (-0.4 * dm))
    sb = -2.5 * np.log10(np.mean(tot))
    assert sb == pytest.approx(mu, abs=0.05)
    # all light smooth when nothing is brighter than the limit
    mags, smooth = fb.sample(rng, surface_brightness=mu, resolved_mag_limit=-50.0, distance_modulus=dm,
                             extinction_mag=np.zeros(2), area_arcsec2=area)  # fmt: skip
    assert mags.shape == (0, 2)
    assert -2.5 * np.log10(smooth[1] * 10 ** (-0.4 * dm)) == pytest.approx(mu, abs=1e-9)


def test_stellar_population_sampler_follows_age_and_feh():
    filters = ("F475W", "F814W")
    old = stellar_population_sampler(filters, age_gyr=10.0, feh=-0.2)
    a = old(400, np.random.default_rng(0))
    assert a.shape == (400, 2) and np.all(np.isfinite(a))
    assert np.array_equal(a, old(400, np.random.default_rng(0)))
    young = stellar_population_sampler(filters, age_gyr=2.0, feh=-0.2)(400, np.random.default_rng(0))
    assert not np.array_equal(a, young)
