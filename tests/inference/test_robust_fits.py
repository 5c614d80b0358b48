"""``gcsbi infer`` on per-band FITS images and on hostile files, with the shipped hst-phat posterior.

One simulated hst-phat mock gives the raw per-band counts (e- over the exposure, sky included);
written one band per FITS file (FILTER keyword), or as one multi-extension file, the command
must rebuild exactly the simulator's 6-channel network input. Broken files must end in one
``gcsbi infer: error: ...`` line, never a traceback.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from astropy.io import fits

from gcsbi.cli import main

POSTERIOR = "hst-phat_m31-gc"
RA, DEC = 10.825944, 41.181870
FAST = ["--num-samples", "20", "--json"]


@pytest.fixture(scope="module", autouse=True)
def cached_posterior():
    """Load the shipped posterior once for the module (each CLI call would rebuild it, ~6 s)."""
    from gcsbi.inference import checkpoint

    post = checkpoint.load_posterior(POSTERIOR)
    real = checkpoint.load_posterior
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(checkpoint, "load_posterior", lambda path, **kw: post if path == POSTERIOR else real(path, **kw))
        yield post


@pytest.fixture(scope="module")
def mock():
    """(x (6, H, W), counts (3, H, W)) of one hst-phat mock, seeded."""
    from gcsbi.simulator.core import ClusterSimulator

    sim = ClusterSimulator("hst-phat", "m31-gc")
    with torch.random.fork_rng():
        torch.manual_seed(7)
        theta = sim.prior.sample((1,))
    out = sim.simulate(theta, seed=11, return_truth=True)
    return out["x"][0].numpy(), out["image"][0].numpy()


@pytest.fixture(scope="module")
def band_files(mock, tmp_path_factory):
    d = tmp_path_factory.mktemp("bands")
    counts = mock[1]
    return {b: _write(d / f"{b}.fits", fits.ImageHDU(counts[j], header=fits.Header({"FILTER": b})))
            for j, b in enumerate(["F336W", "F475W", "F814W"])}


def _write(path, *hdus):
    fits.HDUList([fits.PrimaryHDU(), *hdus]).writeto(path)
    return str(path)


def _infer(args, capsys):
    capsys.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rc = main(["infer", POSTERIOR, *args])
    return rc, capsys.readouterr()


def _summary(args, capsys):
    rc, out = _infer([*args, *FAST], capsys)
    assert rc == 0, out.err
    return json.loads(out.out)


def _one_line_error(args, capsys, match):
    capsys.readouterr()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rc = main(["infer", POSTERIOR, *args])
    out = capsys.readouterr()
    assert not [str(w.message) for w in caught]  # a shell prints each warning as more lines on stderr
    assert rc != 0
    assert "Traceback" not in out.err
    lines = out.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("gcsbi infer: error:"), out.err
    assert match in lines[0], lines[0]
    return lines[0]


def test_band_files_rebuild_the_simulator_input(mock, band_files, cached_posterior):
    from gcsbi.inference.fitsio import observation_for_posterior

    x = observation_for_posterior(list(band_files.values())[::-1], cached_posterior)
    np.testing.assert_allclose(x, mock[0], atol=1e-5)


def test_infer_band_files_any_order_and_mef(mock, band_files, tmp_path, capsys):
    f336, f475, f814 = band_files["F336W"], band_files["F475W"], band_files["F814W"]
    ref = _summary([f336, f475, f814], capsys)
    assert ref["summary"].keys() >= {"log10_mass", "age_gyr"}
    assert _summary([f814, f336, f475], capsys)["summary"] == ref["summary"]  # matched by FILTER, not order
    mef = _write(tmp_path / "mef.fits", *(fits.ImageHDU(mock[1][j], header=fits.Header({"FILTER": b}))
                                          for j, b in [(2, "F814W"), (0, "F336W"), (1, "F475W")]))
    assert _summary([mef], capsys)["summary"] == ref["summary"]
    np.save(tmp_path / "x.npy", mock[0])
    from_x = _summary([str(tmp_path / "x.npy")], capsys)["summary"]  # x itself: as before
    for name, row in ref["summary"].items():  # the simulator's x differs from the files' only by float32 rounding
        assert from_x[name]["mean"] == pytest.approx(row["mean"], rel=1e-4, abs=1e-3), name
    cube = _write(tmp_path / "x.fits", fits.ImageHDU(mock[0]))
    assert _summary([cube], capsys)["summary"] == from_x  # a FITS cube with the posterior's 6 channels is x


def test_infer_band_files_without_filter_keyword(mock, tmp_path, capsys, band_files):
    plain = [_write(tmp_path / f"{j}.fits", fits.ImageHDU(mock[1][j])) for j in range(3)]
    _one_line_error(plain, capsys, "--bands")
    ref = _summary(list(band_files.values()), capsys)
    assert _summary([*plain, "--bands", "F336W,F475W,F814W"], capsys)["summary"] == ref["summary"]


def test_infer_band_errors(mock, band_files, tmp_path, capsys):
    f336, f475, f814 = band_files["F336W"], band_files["F475W"], band_files["F814W"]
    _one_line_error([f336, f475], capsys, "missing band")
    _one_line_error([f336, f475, f475], capsys, "twice")
    two = _write(tmp_path / "two.fits", fits.ImageHDU(mock[1][0], header=fits.Header({"FILTER": "F336W"})),
                 fits.ImageHDU(mock[1][1], header=fits.Header({"FILTER": "F475W"})))
    _one_line_error([two], capsys, "F814W")
    odd = _write(tmp_path / "odd.fits", fits.ImageHDU(mock[1][2], header=fits.Header({"FILTER": "F999W"})))
    _one_line_error([f336, f475, odd], capsys, "F999W")
    _one_line_error([f336, f475, f814, "--ra", "10.8"], capsys, "--dec")
    raw_cube = _write(tmp_path / "raw.fits", fits.ImageHDU(mock[1]))
    _one_line_error([raw_cube], capsys, "one 2D image per band")


def test_per_band_images_need_a_loadable_spec(band_files):
    from types import SimpleNamespace

    from gcsbi.errors import GcsbiValueError
    from gcsbi.inference.fitsio import observation_for_posterior

    toy = SimpleNamespace(spec={"simulator": {"name": "toy"}}, x_shape=(3, 16, 16))
    with pytest.raises(GcsbiValueError, match="'toy' does not load"):
        observation_for_posterior(list(band_files.values()), toy)


def test_infer_hostile_fits(band_files, tmp_path, capsys):
    raw = open(band_files["F814W"], "rb").read()
    cut, head, junk = tmp_path / "cut.fits", tmp_path / "head.fits", tmp_path / "junk.fits"
    cut.write_bytes(raw[:len(raw) // 2])
    head.write_bytes(raw[:2 * 2880])
    junk.write_bytes(b"not a FITS file\n" * 300)
    for bad in (cut, head):
        line = _one_line_error([band_files["F336W"], band_files["F475W"], str(bad)], capsys, bad.name)
        assert "truncated" in line
        _one_line_error([str(bad)], capsys, bad.name)
    _one_line_error([str(junk)], capsys, "junk.fits")
    _one_line_error([str(tmp_path / "absent.fits")], capsys, "not found")


def _hst(path, band, *, size=160, **extra):
    """A calibrated e-/s drizzled-like image around (RA, DEC) at 0.05"/pix with HST keywords."""
    phot = {"F336W": (1.3126e-18, 3354.5), "F475W": (1.8267e-19, 4746.9), "F814W": (7.0331e-20, 8057.0)}[band]
    s = 0.05 / 3600
    h = fits.Header({"FILTER": band, "BUNIT": "ELECTRONS/S", "EXPTIME": 1000.0, "PHOTFLAM": phot[0],
                     "PHOTPLAM": phot[1], "CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRVAL1": RA, "CRVAL2": DEC,
                     "CRPIX1": size / 2 + 0.3, "CRPIX2": size / 2 - 0.6, "CD1_1": -s, "CD2_2": s})
    for k, v in extra.items():
        if v is None:
            del h[k]
        else:
            h[k] = v
    rng = np.random.default_rng(int(band[1:4]))
    return _write(path, fits.ImageHDU(rng.gamma(2.0, 0.01, (size, size)).astype(np.float32), header=h, name="SCI"))


def test_infer_resamples_real_images_with_ra_dec(tmp_path, capsys):
    files = [_hst(tmp_path / f"{b}_drc.fits", b) for b in ("F814W", "F336W", "F475W")]
    _one_line_error(files, capsys, "--ra")  # 160x160 at its own WCS: not on the 128x128 grid
    out = _summary([*files, "--ra", str(RA), "--dec", str(DEC)], capsys)
    assert "log10_mass" in out["summary"]
    _one_line_error([*files, "--ra", str(RA + 180.0), "--dec", str(-DEC)], capsys, "outside the image")
    bad = _hst(tmp_path / "abc.fits", "F814W", EXPTIME="abc")
    _one_line_error([files[1], files[2], bad, "--ra", str(RA), "--dec", str(DEC)], capsys, "EXPTIME")
    nowcs = _hst(tmp_path / "nowcs.fits", "F814W", CTYPE1=None, CTYPE2=None)
    _one_line_error([files[1], files[2], nowcs, "--ra", str(RA), "--dec", str(DEC)], capsys, "WCS")
