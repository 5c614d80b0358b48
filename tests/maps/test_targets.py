"""Known answers for the map targets: apertures, half radii, luminosities, masks, annuli."""

from __future__ import annotations

import numpy as np
import pytest

from gcsbi.errors import GcsbiValueError
from gcsbi.maps.metrics import annulus_ratios, coverage, mass_pixels, pixel_errors
from gcsbi.maps.targets import (SUMMARY_NAMES, Photometry, asinh_to_clean, clean_to_asinh, enclosed, half_radius,
                                log_mass, radial_grid, summaries)

PHOT = Photometry(zeropoint=25.0, exposure_s=100.0, extinction_coeff=1.5, sun_abs_mag=4.5, noise_scale=(3.0, 5.0),
                  band=1, pixel_scale_arcsec=0.1, bands=("A", "B"))


def _disc(shape, radius, value=1.0):
    return np.where(radial_grid(shape) <= radius, value, 0.0)


def test_radial_grid_is_centred():
    r = radial_grid((4, 6))
    assert r.shape == (4, 6)
    np.testing.assert_allclose(r[1, 2], np.hypot(0.5, 0.5))
    np.testing.assert_allclose(r, r[::-1, ::-1])


def test_enclosed_and_half_radius_of_a_uniform_disc():
    disc = _disc((81, 81), 30.0)[None]
    total = disc.sum()
    got = enclosed(disc, np.array([[10.0, 30.0, 100.0]]))[0]
    np.testing.assert_allclose(got[1:], total)
    np.testing.assert_allclose(got[0] / total, (10 / 30) ** 2, rtol=0.05)
    # half the area of a disc of radius 30 lies inside 30 / sqrt(2)
    np.testing.assert_allclose(half_radius(disc), [30 / np.sqrt(2)], rtol=0.02)


def test_half_radius_of_an_empty_map_is_nan():
    assert np.isnan(half_radius(np.zeros((1, 8, 8))))[0]


def test_luminosity_of_the_sun_at_10_pc():
    # the Sun at 10 pc without extinction has m = M_sun; counts/t = 10^(-0.4 (m - zp))
    counts = PHOT.exposure_s * 10 ** (-0.4 * (PHOT.sun_abs_mag - PHOT.zeropoint))
    np.testing.assert_allclose(PHOT.luminosity(np.array([counts]), distance_kpc=[0.01], ebv=[0.0]), [1.0])
    # 1 mag of extinction dims it by 2.512: the same counts then mean 2.512 times the luminosity
    np.testing.assert_allclose(PHOT.luminosity(np.array([counts]), distance_kpc=[0.01], ebv=[1 / 1.5]),
                               [10**0.4])


def test_asinh_round_trip_and_log_mass_floor():
    c = np.random.default_rng(0).normal(0, 50, (2, 4, 4))
    np.testing.assert_allclose(asinh_to_clean(clean_to_asinh(c, (3.0, 5.0)), (3.0, 5.0)), c, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(log_mass(np.array([0.0, 0.99])), [-2.0, 0.0], atol=1e-6)


def test_summaries_of_a_constant_mass_to_light_cluster():
    """Mass following the light exactly: M/L the same in every aperture and the mass half-radius = R_h."""
    shape = (65, 65)
    r = radial_grid(shape)
    light = np.exp(-r / 6.0)
    counts = np.stack([light, light])[None] * 1e4
    lum = PHOT.luminosity(counts[:, 1], distance_kpc=[10.0], ebv=[0.2])
    mass = 2.5 * lum
    s = summaries(mass, counts, distance_kpc=np.array([10.0]), ebv=np.array([0.2]), photometry=PHOT)[0]
    j = {n: i for i, n in enumerate(SUMMARY_NAMES)}
    for key in ("log10_ml_fov", "log10_ml_0.5rh", "log10_ml_1rh", "log10_ml_2rh"):
        np.testing.assert_allclose(s[j[key]], np.log10(2.5), atol=1e-5)
    np.testing.assert_allclose(s[j["log10_rh_mass_over_light"]], 0.0, atol=1e-6)
    assert s[j["log10_mass_0.5rh"]] < s[j["log10_mass_1rh"]] < s[j["log10_mass_2rh"]] <= s[j["log10_mass_fov"]]
    np.testing.assert_allclose(10 ** s[j["log10_mass_1rh"]] / 10 ** s[j["log10_mass_fov"]], 0.5, atol=0.02)


def test_summaries_reject_mismatched_maps():
    with pytest.raises(GcsbiValueError, match="one grid"):
        summaries(np.ones((1, 8, 8)), np.ones((1, 2, 9, 9)), distance_kpc=[1.0], ebv=[0.0], photometry=PHOT)


def test_mass_pixels_hold_ninety_percent():
    m = np.zeros((10, 10))
    m[5, 5], m[5, 6], m[0, 0] = 80.0, 15.0, 5.0
    keep = mass_pixels(m, 0.9)
    assert keep.sum() == 2 and keep[5, 5] and keep[5, 6]


def test_pixel_errors_are_zero_for_a_perfect_prediction():
    m = np.random.default_rng(1).gamma(2.0, 3.0, (2, 8, 8))
    med, rel = pixel_errors(log_mass(m), m)
    np.testing.assert_allclose(med, 0.0, atol=1e-6)
    np.testing.assert_allclose(rel, 0.0, atol=1e-5)
    med, rel = pixel_errors(log_mass(m) + np.log10(1.2), m)  # 20% too heavy (floor aside)
    assert np.all(np.abs(med - np.log10(1.2)) < 1e-3) and np.all(np.abs(rel - 0.2) < 0.01)


def test_annulus_ratios_and_coverage():
    true = np.ones((3, 2, 16, 16))
    ratios = annulus_ratios(true * 0.5, true)
    np.testing.assert_allclose(ratios, 0.5)
    rng = np.random.default_rng(2)
    truth = rng.normal(size=(4000, len(SUMMARY_NAMES)))
    draws = rng.normal(size=(400, 4000, len(SUMMARY_NAMES)))
    cov = coverage(draws, truth)  # calibrated by construction
    assert all(abs(v["0.68"] - 0.68) < 0.03 and abs(v["0.95"] - 0.95) < 0.015 for v in cov.values())
    cov = coverage(0.5 * draws, truth)  # intervals half as wide: under-covered, and the check sees it
    assert all(v["0.68"] < 0.45 for v in cov.values())


def test_pixelwise_coverage_sees_a_bias():
    from gcsbi.maps.metrics import pixelwise_coverage

    m = np.random.default_rng(3).gamma(2.0, 3.0, (5, 16, 16))
    radius = np.full(5, 6.0)
    sig = np.full(m.shape, 0.01)
    assert pixelwise_coverage(log_mass(m), sig, m, radius)["0.68"] == 1.0
    assert pixelwise_coverage(log_mass(2 * m), sig, m, radius)["0.95"] == 0.0
