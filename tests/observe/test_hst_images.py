"""Real HST cutouts: FITS files written with genuine HST header conventions, resampled to the simulator grid."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from gcsbi.observe.hst_images import read_hst_cutouts, read_hst_image
from gcsbi.errors import GcsbiValueError
from gcsbi.spec.simulator_spec import load_simulator_spec

RA, DEC = 10.825944, 41.181870  # B165
# (instrument, detector, filter keywords, PHOTFLAM, PHOTPLAM, native scale, suffix): ACS/WFC and WFC3/UVIS values
BANDS = {
    "F336W": ("WFC3", "UVIS", {"FILTER": "F336W"}, 1.3126e-18, 3354.5, 0.0396, "drz"),
    "F475W": ("ACS", "WFC", {"FILTER1": "F475W", "FILTER2": "CLEAR2L"}, 1.8267e-19, 4746.9, 0.05, "drc"),
    "F814W": ("ACS", "WFC", {"FILTER1": "CLEAR1L", "FILTER2": "F814W"}, 7.0331e-20, 8057.0, 0.05, "drc"),
}
RATE = {"F336W": 50.0, "F475W": 400.0, "F814W": 900.0}  # e-/s of the injected source
OFFSET = (0.4, -0.3)  # arcsec (east, north) of the source from (RA, DEC)


def write_hst(path, band, *, rotation_deg=0.0, size=300, bunit="ELECTRONS/S", exptime=1234.0, nan_box=False,
              photometry=True, drop=()):
    inst, det, filt, flam, plam, scale, _ = BANDS[band]
    ph = fits.Header()
    ph.update(TELESCOP="HST", INSTRUME=inst, DETECTOR=det, EXPTIME=exptime, TEXPTIME=exptime,
              ROOTNAME="jb1d01010", PROPOSID=12058, TARGNAME="M31-B12-F04", **filt)
    sh = fits.Header()
    th = np.deg2rad(rotation_deg)
    s = scale / 3600.0
    cd = s * np.array([[-np.cos(th), np.sin(th)], [np.sin(th), np.cos(th)]])
    sh.update(EXTNAME="SCI", EXTVER=1, CTYPE1="RA---TAN", CTYPE2="DEC--TAN", CRVAL1=RA, CRVAL2=DEC,
              CRPIX1=size / 2 + 3.3, CRPIX2=size / 2 - 7.1, CD1_1=cd[0, 0], CD1_2=cd[0, 1], CD2_1=cd[1, 0],
              CD2_2=cd[1, 1], BUNIT=bunit)
    if photometry:
        sh.update(PHOTFLAM=flam, PHOTPLAM=plam, PHOTZPT=-21.1, PHOTMODE=f"{inst} {det} {band}")
    for k in drop:
        ph.remove(k, ignore_missing=True)
        sh.remove(k, ignore_missing=True)
    from astropy.wcs import WCS

    w = WCS(sh)
    c = np.cos(np.deg2rad(DEC))
    x0, y0 = w.all_world2pix([[RA + OFFSET[0] / 3600 / c, DEC + OFFSET[1] / 3600]], 0)[0]
    yy, xx = np.mgrid[0:size, 0:size]
    sig = 0.08 / scale
    g = np.exp(-0.5 * ((xx - x0) ** 2 + (yy - y0) ** 2) / sig**2)
    rate = RATE[band] * g / g.sum()
    data = {"ELECTRONS/S": rate, "ELECTRONS": rate * exptime, "COUNTS/S": rate / 2.0}.get(bunit, rate)
    if nan_box:
        data[int(y0) - 3:int(y0) + 3, int(x0) - 3:int(x0) + 3] = np.nan
    fits.HDUList([fits.PrimaryHDU(header=ph), fits.ImageHDU(data.astype(np.float32), header=sh),
                  fits.ImageHDU(np.ones((size, size), np.float32), name="WHT")]).writeto(path)
    return path


@pytest.fixture
def files(tmp_path):
    return {b: write_hst(tmp_path / f"hst_12058_01_{BANDS[b][0].lower()}_{b.lower()}_{BANDS[b][6]}.fits", b,
                         rotation_deg=30.0 if b == "F336W" else 0.0) for b in BANDS}


def test_read_headers(files):
    for b, p in files.items():
        img = read_hst_image(p)
        assert img.band == b
        assert img.exptime == 1234.0
        assert img.pixel_scale_arcsec == pytest.approx(BANDS[b][5], rel=1e-6)
        assert img.data.sum() == pytest.approx(RATE[b] * 1234.0, rel=1e-5)  # e-/s -> e-
    spec = load_simulator_spec("hst-phat")
    for band in spec.instrument.bands:  # PHOTFLAM/PHOTPLAM + AB-Vega offset reproduce the spec's Vega zero points
        assert read_hst_image(files[band.filter]).zeropoint_vega == pytest.approx(band.zeropoint_vega, abs=0.03)


def test_cutouts_on_simulator_grid(files):
    spec = load_simulator_spec("hst-phat")
    image, info = read_hst_cutouts(files, RA, DEC)
    h, w = spec.observation.size
    assert image.shape == (3, h, w) and image.dtype == np.float32
    yy, xx = np.mgrid[0:h, 0:w]
    for j, band in enumerate(spec.instrument.bands):
        img = image[j] - band.sky_e
        zp = info["bands"][band.filter]["zeropoint_vega"]
        expected = RATE[band.filter] * 10 ** (-0.4 * (zp - band.zeropoint_vega)) * band.exposure_s
        assert img.sum() == pytest.approx(expected, rel=0.01)  # flux conserved through resampling
        cx, cy = (img * xx).sum() / img.sum(), (img * yy).sum() / img.sum()
        # east is left (-x), north is up (+y) on the simulator grid
        assert cx == pytest.approx((w - 1) / 2 - OFFSET[0] / 0.05, abs=0.15)
        assert cy == pytest.approx((h - 1) / 2 + OFFSET[1] / 0.05, abs=0.15)


def test_units_and_zero_point_keywords(tmp_path):
    p = write_hst(tmp_path / "a_flt.fits", "F814W", bunit="ELECTRONS")
    assert read_hst_image(p).data.sum() == pytest.approx(RATE["F814W"] * 1234.0, rel=1e-5)
    p = write_hst(tmp_path / "b.fits", "F814W", bunit="COUNTS/S")
    with pytest.raises(GcsbiValueError, match="gain"):
        read_hst_image(p)
    assert read_hst_image(p, gain=2.0).data.sum() == pytest.approx(RATE["F814W"] * 1234.0, rel=1e-5)
    p = write_hst(tmp_path / "c_drz.fits", "F814W", drop=("BUNIT",))  # pipeline drizzle product: e-/s
    img = read_hst_image(p)
    assert img.data.sum() == pytest.approx(RATE["F814W"] * 1234.0, rel=1e-5) and "no BUNIT" in img.notes[0]
    p = write_hst(tmp_path / "d.fits", "F814W", drop=("BUNIT",))
    with pytest.raises(GcsbiValueError, match="BUNIT"):
        read_hst_image(p)
    p = write_hst(tmp_path / "e.fits", "F814W", photometry=False)
    with pytest.raises(GcsbiValueError, match="zero point"):
        read_hst_image(p)
    with fits.open(p, mode="update") as h:
        h[1].header["ZP"] = 25.5
    assert read_hst_image(p).zeropoint_vega == 25.5
    assert read_hst_image(p, zeropoint_vega=25.0).zeropoint_vega == 25.0
    p = write_hst(tmp_path / "f.fits", "F814W", bunit="JY/BEAM")
    with pytest.raises(GcsbiValueError, match="BUNIT"):
        read_hst_image(p)


def test_bad_inputs(files, tmp_path):
    with pytest.raises(GcsbiValueError, match=r"missing band.*F336W"):
        read_hst_cutouts({b: p for b, p in files.items() if b != "F336W"}, RA, DEC)
    with pytest.raises(GcsbiValueError, match="outside the image|fall off"):
        read_hst_cutouts(files, RA + 0.1, DEC)
    with pytest.raises(GcsbiValueError, match="fall off the image"):
        read_hst_cutouts(files, RA, DEC + 6.0 / 3600)  # stamp half off the 300-pixel image
    nan = dict(files, F814W=write_hst(tmp_path / "nan_drc.fits", "F814W", nan_box=True))
    with pytest.raises(GcsbiValueError, match="NaN"):
        read_hst_cutouts(nan, RA, DEC)
    with pytest.raises(GcsbiValueError, match="EXPTIME"):
        read_hst_image(write_hst(tmp_path / "g.fits", "F814W", exptime=0.0))
    with pytest.raises(GcsbiValueError, match="twice"):
        read_hst_cutouts([files["F475W"], files["F475W"], files["F814W"]], RA, DEC)


@pytest.mark.slow
def test_image_mode_observation(files):
    from gcsbi.observe.hst_images import observation_from_cutouts

    x = observation_from_cutouts(files, RA, DEC)
    spec = load_simulator_spec("hst-phat")
    assert x.shape[1:] == tuple(spec.observation.size) and np.all(np.isfinite(x))
