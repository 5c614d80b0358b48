"""Catalogue observation model: aperture photometry, Reff, the catalogue measurement."""

from __future__ import annotations

import numpy as np
import pytest

from gcsbi.catalogue.model import CatalogueModel, catalogue_values_from_features, features
from gcsbi.catalogue.photometry import (aperture_photometry, curves_of_growth, half_light_radius, pixel_counts,
                                        radial_grid)
from gcsbi.errors import GcsbiValueError

SCALE = 0.05
THREE = ("F336W", "F475W", "F814W")


def gaussian(shape, sigma_pix, total, centre=None):
    h, w = shape
    cx, cy = ((w - 1) / 2, (h - 1) / 2) if centre is None else centre
    yy, xx = np.mgrid[0:h, 0:w]
    g = np.exp(-0.5 * ((xx - cx) ** 2 + (yy - cy) ** 2) / sigma_pix**2)
    return total * g / g.sum()


def plummer(shape, a_pix, total, oversample=5):
    """Projected Plummer profile (half-light radius = a), integrated over pixels by oversampling."""
    h, w = shape
    o = oversample
    yy, xx = np.mgrid[0:h * o, 0:w * o]
    r2 = ((xx + 0.5) / o - 0.5 - (w - 1) / 2) ** 2 + ((yy + 0.5) / o - 0.5 - (h - 1) / 2) ** 2
    s = (1 + r2 / a_pix**2) ** -2
    s = s.reshape(h, o, w, o).sum(axis=(1, 3))
    return total * s / s.sum()


def test_circle_areas():
    r = radial_grid((128, 128), SCALE)
    n = pixel_counts((128, 128), r, SCALE)
    assert r[-1] == pytest.approx(3.2)
    rpix = r / SCALE
    big = rpix > 10
    np.testing.assert_allclose(n[big], np.pi * rpix[big] ** 2, rtol=0.03)


def test_aperture_recovers_injected_flux(rng):
    shape, total, bkg = (160, 160), 5.0e4, 40.0
    clean = gaussian(shape, 4.0, total) + bkg
    var = clean + 5.0**2
    res = []
    for _ in range(60):
        img = rng.poisson(clean) + rng.normal(0, 5.0, shape)
        r = aperture_photometry(img, 1.5, SCALE, variance=var)  # 30 px = 7.5 sigma
        res.append((r.flux, r.flux_err))
    f, e = np.array(res).T
    assert abs(f.mean() - total) < 3 * f.std() / np.sqrt(len(f)) + 0.002 * total
    assert f.std() == pytest.approx(np.mean(e), rel=0.3)  # error from the noise model matches the scatter
    r = aperture_photometry(clean, 1.5, SCALE)
    assert r.flux == pytest.approx(total, rel=2e-3)  # noiseless: exact up to the Gaussian tail
    assert r.background_per_pixel == pytest.approx(bkg, rel=1e-6)


def test_aperture_errors():
    img = np.zeros((64, 64))
    with pytest.raises(GcsbiValueError, match="does not fit"):
        aperture_photometry(img, 1.5, SCALE)
    img[3, 3] = np.nan
    with pytest.raises(GcsbiValueError, match="NaN"):
        aperture_photometry(img, 0.5, SCALE)


@pytest.mark.parametrize("kind", ["gaussian", "plummer"])
def test_half_light_radius_of_known_profiles(kind):
    shape = (200, 200)
    if kind == "gaussian":
        img, expected = gaussian(shape, 6.0, 1e5), 6.0 * np.sqrt(2 * np.log(2)) * SCALE
        rap = 2.5
    else:
        # inside a finite aperture R the half-light radius of a Plummer model is a * R / sqrt(R^2 + a^2)... for
        # the half of the light *within* R: L(<r) ~ r^2/(r^2+a^2); solve L(r)=L(R)/2.
        a, rap = 8.0, 2.5
        img = plummer(shape, a, 1e5)
        rr = rap / SCALE
        expected = a * rr / np.sqrt(rr**2 + 2 * a**2) * SCALE
    img = img + 10.0  # flat background, removed by the annulus
    radii = radial_grid(shape, SCALE)
    cog = curves_of_growth(img, radii, SCALE)
    npix = pixel_counts(shape, radii, SCALE)
    reff = half_light_radius(cog, npix, radii, rap)
    assert float(reff) == pytest.approx(expected, rel=0.03)


def _profiles_of(image_stack, clean_stack, radii):
    noisy = curves_of_growth(image_stack, radii, SCALE)
    clean = curves_of_growth(clean_stack, radii, SCALE)
    return {"noisy": noisy[None], "var": np.abs(noisy[None]) + 1.0, "clean": clean[None],
            "total": clean_stack.sum(axis=(-2, -1))[None]}


def test_catalogue_model_recovers_magnitudes(rng):
    """Noiseless image in, no catalogue noise: the aperture magnitudes are those injected."""
    shape = (256, 256)
    radii = radial_grid(shape, SCALE)
    npix = pixel_counts(shape, radii, SCALE)
    zp, t = np.array([23.46, 26.15, 25.52]), np.array([1700.0, 1900.0, 1715.0])
    mags = np.array([18.0, 17.5, 16.2])
    counts = 10 ** (-0.4 * (mags - zp)) * t
    clean = np.stack([gaussian(shape, 5.0, c) for c in counts])
    prof = _profiles_of(clean + 30.0, clean, radii)
    model = CatalogueModel(systematic_mag=0.0, err_coeffs={b: (-9.0, 0.0, 0.0) for b in ("F336W", "F475W", "F814W")},
                           rounding=False)
    v = model.measure(prof, radii=radii, npix=npix, zeropoints=zp, exposure_s=t, rng=rng, rap=np.array([2.0]),
                      bands=THREE)
    np.testing.assert_allclose(v["mag"][0], mags, atol=2e-3)
    np.testing.assert_allclose(v["mag_true"][0], mags, atol=1e-6)
    assert v["reff"][0] == pytest.approx(5.0 * np.sqrt(2 * np.log(2)) * SCALE, rel=0.03)
    assert not v["upper_limit"].any()
    # default model: catalogue noise, rounding to 0.01 and a drawn Rap inside its range
    v = CatalogueModel().measure(prof, radii=radii, npix=npix, zeropoints=zp, exposure_s=t, rng=rng, bands=THREE)
    assert 0.5 <= v["rap"][0] <= 3.75
    np.testing.assert_allclose(v["mag"][0], mags, atol=0.3)
    assert np.all(v["err"][0] == np.round(v["err"][0], 2))


def test_faint_band_becomes_upper_limit(rng):
    shape = (256, 256)
    radii = radial_grid(shape, SCALE)
    npix = pixel_counts(shape, radii, SCALE)
    clean = np.stack([gaussian(shape, 5.0, c) for c in (1e-3, 1e6, 1e6)])
    prof = _profiles_of(clean, clean, radii)
    prof["var"] = prof["var"] * 0 + npix * 100.0  # 10 e- rms per pixel
    v = CatalogueModel().measure(prof, radii=radii, npix=npix, zeropoints=np.array([23.46, 26.15, 25.52]),
                                 exposure_s=np.array([1700.0, 1900.0, 1715.0]), rng=rng, rap=np.array([1.0]),
                                 bands=THREE)
    assert v["upper_limit"][0].tolist() == [True, False, False]
    assert v["err"][0, 0] == 1.0


def test_features_roundtrip_and_checks():
    mag = np.array([[17.23, 17.02, 15.64]])
    err = np.array([[0.0, 0.01, 0.02]])
    x = features(mag, err, np.array([0.62]), np.array([2.29]))
    assert x.shape == (1, 8) and x.dtype == np.float32  # 2 x 3 bands + Reff + Rap
    back = catalogue_values_from_features(x)
    np.testing.assert_allclose(back["mag"], mag, atol=1e-5)
    np.testing.assert_allclose(back["err"], [[0.005, 0.01, 0.02]], rtol=1e-5)  # 0.00 -> floor (half a rounding step)
    assert back["rap"][0] == pytest.approx(2.29, rel=1e-5)
    with pytest.raises(GcsbiValueError):
        features(mag, err[:, :2], np.array([0.6]), np.array([2.0]))
    with pytest.raises(GcsbiValueError, match="Rap"):
        features(mag, err, np.array([0.6]), np.array([0.0]))


def test_model_dict_roundtrip():
    m = CatalogueModel(systematic_mag=0.05)
    assert CatalogueModel.from_dict(m.to_dict()) == m


def test_refit_matches_shipped_coefficients(shared_data):
    from astropy.table import Table

    from gcsbi.catalogue.model import fit_catalogue_model

    fit = fit_catalogue_model(Table.read(shared_data / "m31" / "phat_ap_clusters_johnson2015.fits"))
    m = CatalogueModel()
    np.testing.assert_allclose(fit["rap_coeffs"], m.rap_coeffs, atol=2e-3)
    for b, c in m.err_coeffs.items():
        np.testing.assert_allclose(fit["err_coeffs"][b], c, atol=2e-3)
