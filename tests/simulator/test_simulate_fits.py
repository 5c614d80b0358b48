"""``gcsbi simulate --fits DIR``: per-band FITS images that ``gcsbi infer`` turns back into the same x."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from gcsbi.cli import main

BANDS = ("F336W", "F475W", "F814W")


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    """One hst-phat mock written as .npz (theta, x) and as per-band FITS images, without progress bars."""
    work = tmp_path_factory.mktemp("fits")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no library warnings in normal use
        rc = main(["simulate", "--spec", "hst-phat", "-n", "1", "--seed", "3", "--out", str(work / "mock.npz"),
                   "--fits", str(work / "fits"), "--no-progress"])
    assert rc == 0
    return work


def test_files_and_headers(simulated):
    from astropy.io import fits
    from astropy.wcs import WCS

    from gcsbi.simulator.fits_images import PLACEHOLDER_RA_DEC
    from gcsbi.spec.simulator_spec import load_simulator_spec

    folder = simulated / "fits"
    assert sorted(p.name for p in folder.glob("*.fits")) == [f"mock000_{b}.fits" for b in sorted(BANDS)]
    assert json.loads((folder / ".gcsbi-output.json").read_text())["kind"] == "gcsbi simulate --fits"
    spec = load_simulator_spec("hst-phat")
    mock = np.load(simulated / "mock.npz")
    names = [str(n) for n in mock["names"]]
    for band in spec.instrument.bands:
        with fits.open(folder / f"mock000_{band.filter}.fits") as hdul:
            assert len(hdul) == 1
            h, data = hdul[0].header, hdul[0].data
            assert data.dtype == np.dtype(">f4") and data.shape == tuple(spec.observation.size)
            assert h["FILTER"] == band.filter and h["BUNIT"] == "ELECTRONS"
            assert h["EXPTIME"] == band.exposure_s and h["ZP_VEGA"] == band.zeropoint_vega
            assert h["SKYSUB"] == pytest.approx(band.sky_e)
            assert h["SEED"] == 3 and h["MOCK"] == 0 and h["SIMSPEC"] == "hst-phat" and h["PRIOR"] == "m31-gc"
            theta = [h[f"THETA {n}"] for n in names]
            assert np.array_equal(np.float32(theta), mock["theta"][0])
            wcs = WCS(h)
            assert wcs.celestial.wcs.ctype[0] == "RA---TAN"
            centre = wcs.pixel_to_world((data.shape[1] - 1) / 2, (data.shape[0] - 1) / 2)
            assert (centre.ra.deg % 360, centre.dec.deg) == pytest.approx(PLACEHOLDER_RA_DEC, abs=1e-9)
            scale = np.abs(np.diag(wcs.pixel_scale_matrix)) * 3600
            assert scale == pytest.approx([spec.instrument.pixel_scale_arcsec] * 2)


def test_fits_round_trip_to_the_same_x(simulated):
    """Read back with the function ``gcsbi infer`` uses: x as simulated, up to float32 rounding."""
    from gcsbi.inference import load_posterior
    from gcsbi.inference.fitsio import observation_for_posterior

    post = load_posterior("hst-phat_m31-gc")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x = observation_for_posterior(sorted((simulated / "fits").glob("*.fits")), post)
    ref = np.load(simulated / "mock.npz")["x"][0]
    assert x.shape == ref.shape == tuple(post.x_shape)
    np.testing.assert_allclose(x, ref, rtol=1e-6, atol=1e-5)


def test_cli_simulate_then_infer(simulated, capsys):
    capsys.readouterr()
    files = [str(p) for p in sorted((simulated / "fits").glob("*.fits"))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a posterior-edge warning of this mock is gcsbi's own, not the point here
        rc = main(["infer", "hst-phat_m31-gc", *files, "--num-samples", "50", "--json", "--no-progress"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    out = json.loads(captured.out)
    assert "log10_mass" in out["summary"] and out["attrs"]["num_samples"] == 50
    assert "%|" not in captured.err and "it/s" not in captured.err  # --no-progress: no bar


def test_position_and_refusals(tmp_path, capsys):
    from astropy.io import fits
    from astropy.wcs import WCS

    from gcsbi.simulator.fits_images import write_fits_images
    from gcsbi.spec.simulator_spec import load_simulator_spec

    spec = load_simulator_spec("hst-phat")
    images = np.full((2, 3, *spec.observation.size), 100.0, dtype=np.float32)
    paths = write_fits_images(tmp_path, images, np.zeros((2, 2)), spec=spec, names=("a", "b"), seed=1,
                              ra=370.5, dec=41.25)
    assert [p.name for p in paths][:3] == [f"mock000_{b}.fits" for b in BANDS] and len(paths) == 6
    h = fits.getheader(tmp_path / "mock001_F814W.fits")
    assert (h["CRVAL1"], h["CRVAL2"], h["MOCK"]) == (10.5, 41.25, 1) and "placeholder" not in str(h)
    assert WCS(h).has_celestial
    capsys.readouterr()
    assert main(["simulate", "-n", "1", "--ra", "10"]) == 1
    assert "--fits" in capsys.readouterr().err
    assert main(["simulate", "-n", "1", "--fits", str(tmp_path / "new"), "--ra", "10"]) == 1
    assert "both --ra and --dec" in capsys.readouterr().err
    assert main(["simulate", "-n", "1", "--fits", str(tmp_path / "new"), "--ra", "10", "--dec", "95"]) == 1
    assert "[-90, 90]" in capsys.readouterr().err
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    assert main(["simulate", "-n", "1", "--fits", str(mine)]) == 1  # refused before simulating
    assert "not written by gcsbi" in capsys.readouterr().err
    assert (mine / "notes.txt").read_text() == "keep" and not (tmp_path / "new").exists()
