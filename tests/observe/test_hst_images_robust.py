"""Hostile and unusual HST FITS inputs: one-line gcsbi errors, multi-extension files, images on the grid.

Every file is a tiny synthetic image with HST header conventions (a Gaussian source of known
e-/s, PHOTFLAM/PHOTPLAM, EXPTIME, a TAN WCS), so each check runs in well under a second.
"""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from gcsbi.observe.hst_images import observation_from_cutouts, read_hst_cutouts, read_hst_image, read_hst_images
from gcsbi.errors import GcsbiFileError, GcsbiValueError, UnknownFilterError
from gcsbi.observe.transforms import sky_levels, transform
from gcsbi.spec.simulator_spec import load_simulator_spec

RA, DEC = 10.825944, 41.181870
SPEC = load_simulator_spec("hst-phat")
GRID = tuple(SPEC.observation.size)
# band -> (filter keywords, PHOTFLAM, PHOTPLAM): WFC3/UVIS F336W, ACS/WFC F475W and F814W
PHOT = {"F336W": ({"FILTER": "F336W"}, 1.3126e-18, 3354.5),
        "F475W": ({"FILTER1": "F475W", "FILTER2": "CLEAR2L"}, 1.8267e-19, 4746.9),
        "F814W": ({"FILTER1": "CLEAR1L", "FILTER2": "F814W"}, 7.0331e-20, 8057.0)}
RATE = {"F336W": 50.0, "F475W": 400.0, "F814W": 900.0}  # e-/s of the source


def science_hdu(band, *, size=GRID, scale=0.05, filters=True, wcs=True, name="SCI", **extra):
    """One calibrated (e-/s) image HDU with a Gaussian source at the centre."""
    filt, flam, plam = PHOT[band]
    h = fits.Header()
    if filters:
        h.update(**filt)
    h.update(BUNIT="ELECTRONS/S", EXPTIME=1000.0, PHOTFLAM=flam, PHOTPLAM=plam, PHOTZPT=-21.1)
    if wcs:
        s = scale / 3600.0
        h.update(CTYPE1="RA---TAN", CTYPE2="DEC--TAN", CRVAL1=RA, CRVAL2=DEC, CRPIX1=(size[1] + 1) / 2,
                 CRPIX2=(size[0] + 1) / 2, CD1_1=-s, CD1_2=0.0, CD2_1=0.0, CD2_2=s)
    h.update(**extra)
    yy, xx = np.mgrid[0:size[0], 0:size[1]]
    g = np.exp(-0.5 * ((xx - (size[1] - 1) / 2) ** 2 + (yy - (size[0] - 1) / 2) ** 2) / 2.0**2)
    return fits.ImageHDU((RATE[band] * g / g.sum()).astype(np.float32), header=h, name=name)


def write(path, *hdus, primary=None):
    fits.HDUList([fits.PrimaryHDU(header=primary), *hdus]).writeto(path)
    return path


@pytest.fixture
def grid_files(tmp_path):
    return {b: write(tmp_path / f"{b.lower()}.fits", science_hdu(b)) for b in PHOT}


def test_truncated_and_header_only_fits(grid_files, tmp_path):
    raw = grid_files["F814W"].read_bytes()
    cut = tmp_path / "cut.fits"
    cut.write_bytes(raw[:len(raw) // 2])
    head = tmp_path / "head.fits"
    head.write_bytes(raw[:2 * 2880])  # primary and SCI headers, no data
    for bad in (cut, head):
        with pytest.raises(GcsbiFileError, match=rf"{bad.name}.*truncated"):
            read_hst_image(bad)
        with pytest.raises(GcsbiFileError, match=bad.name):
            read_hst_cutouts(dict(grid_files, F814W=bad))
    junk = tmp_path / "junk.fits"
    junk.write_bytes(b"SIMPLE  = nonsense" + bytes(range(256)) * 4)
    with pytest.raises(GcsbiFileError, match="junk.fits"):
        read_hst_image(junk)


@pytest.mark.parametrize("key", ["EXPTIME", "PHOTFLAM", "CCDGAIN"])
def test_non_numeric_header_value(tmp_path, key):
    extra = {key: "abc"} if key != "CCDGAIN" else {"CCDGAIN": "abc", "BUNIT": "COUNTS/S"}
    p = write(tmp_path / "a.fits", science_hdu("F814W", **extra))
    with pytest.raises(GcsbiValueError, match=rf"a.fits.*{key}.*'abc'"):
        read_hst_image(p)


def test_wcs_problems(grid_files, tmp_path):
    no_wcs = write(tmp_path / "nowcs.fits", science_hdu("F336W", wcs=False))
    with pytest.raises(GcsbiValueError, match="nowcs.fits: no celestial WCS"):
        read_hst_cutouts(dict(grid_files, F336W=no_wcs), RA, DEC)
    assert read_hst_cutouts(dict(grid_files, F336W=no_wcs))[0].shape == (3, *GRID)  # on the grid: no WCS needed
    bad = write(tmp_path / "badwcs.fits", science_hdu("F814W", CTYPE1="RA---FOO", CTYPE2="DEC--FOO"))
    with pytest.raises(GcsbiValueError, match=r"badwcs.fits.*WCS") as info:
        read_hst_image(bad)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("ra, dec", [(RA + 180.0, -DEC), (RA, 95.0)])
def test_position_off_the_image(grid_files, ra, dec):
    with pytest.raises(GcsbiValueError, match="outside the image|Dec"):
        read_hst_cutouts(grid_files, ra, dec)


def test_multi_extension_file_gives_every_band(grid_files, tmp_path):
    mef = write(tmp_path / "mef.fits", *(science_hdu(b, name=f"IMG{j}") for j, b in enumerate(["F814W", "F336W",
                                                                                                    "F475W"])))
    images = read_hst_images(mef)
    assert [im.band for im in images] == ["F814W", "F336W", "F475W"]
    with pytest.raises(GcsbiValueError, match="3 images"):
        read_hst_image(mef)  # never silently the first band
    np.testing.assert_allclose(read_hst_cutouts(mef)[0], read_hst_cutouts(grid_files)[0], rtol=1e-6)
    two = write(tmp_path / "two.fits", science_hdu("F336W", name="A"), science_hdu("F475W", name="B"))
    with pytest.raises(GcsbiValueError, match=r"missing band.*F814W"):
        read_hst_cutouts(two)


def test_grid_images_need_no_resampling(grid_files):
    """Calibrated e-/s stamps on the simulator grid: rescaled to the spec's zero point and exposure, plus sky."""
    image, info = read_hst_cutouts(grid_files)
    assert image.shape == (3, *GRID)
    for j, band in enumerate(SPEC.instrument.bands):
        zp = info["bands"][band.filter]["zeropoint_vega"]
        expected = RATE[band.filter] * 10 ** (-0.4 * (zp - band.zeropoint_vega)) * band.exposure_s
        assert (image[j] - band.sky_e).sum() == pytest.approx(expected, rel=1e-5)
    x = observation_from_cutouts(grid_files)
    np.testing.assert_array_equal(x, transform(image, SPEC, sky=sky_levels(SPEC)))


def test_simulator_counts_are_taken_as_is(tmp_path):
    """Images without BUNIT/PHOTFLAM/ZP keywords are the simulator's own e- counts (sky included)."""
    rng = np.random.default_rng(0)
    counts = rng.poisson(50.0, size=(3, *GRID)).astype(np.float32)
    paths = [write(tmp_path / f"{b}.fits", fits.ImageHDU(counts[j], header=fits.Header({"FILTER": b})))
             for j, b in enumerate(SPEC.filters)]
    image, info = read_hst_cutouts(paths[::-1])
    np.testing.assert_array_equal(image, counts)
    assert "simulator" in info["bands"]["F336W"]["notes"][0]
    with pytest.raises(GcsbiValueError, match="calibrat"):
        read_hst_cutouts(paths, RA, DEC)  # resampling needs the calibration keywords


def test_band_identification_errors(grid_files, tmp_path):
    plain = [write(tmp_path / f"p{j}.fits", science_hdu(b, filters=False)) for j, b in enumerate(SPEC.filters)]
    with pytest.raises(GcsbiValueError, match=r"p0.fits.*no FILTER.*bands"):
        read_hst_cutouts(plain)
    by_order, _ = read_hst_cutouts(plain, bands=["F336W", "F475W", "F814W"])
    np.testing.assert_array_equal(by_order, read_hst_cutouts(grid_files)[0])
    with pytest.raises(GcsbiValueError, match="2 band"):
        read_hst_cutouts(plain, bands=["F336W", "F475W"])
    files = [grid_files[b] for b in SPEC.filters]
    with pytest.raises(GcsbiValueError, match=r"F475W.*FILTER.*F336W"):
        read_hst_cutouts(files, bands=["F475W", "F336W", "F814W"])  # disagrees with the FILTER keywords
    odd = write(tmp_path / "odd.fits", science_hdu("F814W", FILTER1="CLEAR1L", FILTER2="F999W"))
    with pytest.raises(UnknownFilterError, match=r"odd.fits.*F999W.*hst-phat"):
        read_hst_cutouts([grid_files["F336W"], grid_files["F475W"], odd])
    with pytest.raises(GcsbiValueError, match="twice"):
        read_hst_cutouts([grid_files["F336W"], grid_files["F475W"], grid_files["F475W"]])
    big = write(tmp_path / "big.fits", science_hdu("F814W", size=(200, 200)))
    with pytest.raises(GcsbiValueError, match=r"big.fits.*200x200.*128x128.*RA"):
        read_hst_cutouts([grid_files["F336W"], grid_files["F475W"], big])
    nan = write(tmp_path / "nan.fits", science_hdu("F814W"))
    with fits.open(nan, mode="update") as h:
        h[1].data[5:8, 5:8] = np.nan
    with pytest.raises(GcsbiValueError, match=r"nan.fits.*9 NaN"):
        read_hst_cutouts([grid_files["F336W"], grid_files["F475W"], nan])
