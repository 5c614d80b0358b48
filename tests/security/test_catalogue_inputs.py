"""Catalogue mode (``gcsbi m31``) refuses inputs it cannot honour.

* prior options reaching outside the posterior's training box are refused with the allowed range;
* catalogue rows with unphysical values are refused by ``infer`` and skipped, with the reason in
  ``status``, by ``batch``, for the shipped catalogue and for a user table alike;
* the ``--out`` help texts name exactly the files the commands write.

Uses the toy catalogue posterior of ``tests/catalogue/test_inference.py`` (m31-gc prior: age 1-14
Gyr, E(B-V) 0-0.5) and the PHAT catalogue shipped in the package.
"""

from __future__ import annotations

import importlib.util
import re
import warnings
from pathlib import Path

import numpy as np
import pytest

from gcsbi.errors import GcsbiValueError, OutOfDistributionWarning, PriorEdgeWarning


def _catalogue_tests():
    path = Path(__file__).resolve().parents[1] / "catalogue" / "test_inference.py"
    spec = importlib.util.spec_from_file_location("_catalogue_test_inference_fixtures", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


toy_posterior = _catalogue_tests().toy_posterior  # module-scoped fixture: a 3-band toy NPE


@pytest.fixture
def ckpt(toy_posterior, tmp_path, monkeypatch):
    monkeypatch.delenv("GCSBI_SHARED_DATA", raising=False)  # the catalogue shipped in the package
    path = tmp_path / "toy.pt"
    toy_posterior.save(path)
    return path


def _x():
    from gcsbi.catalogue.model import features

    return features(np.array([[17.0, 16.8, 15.5]]), np.array([[0.01, 0.01, 0.02]]), np.array([0.5]),
                    np.array([2.0]))[0]


def _run(capsys, *argv):
    from gcsbi.cli import main

    rc = main(["m31", *argv])
    out, err = capsys.readouterr()
    return rc, out, err


# ---------------------------------------------------------------------------- prior options

@pytest.mark.parametrize("option, value, message", [
    ("--age-range", "1,100", "age range 1-100 Gyr lies outside the training prior m31-gc: allowed 1-14 Gyr"),
    ("--age-range", "0.1,5", "allowed 1-14 Gyr"),
    ("--ebv-range", "0,3", "E(B-V) range 0-3 mag lies outside the training prior m31-gc: allowed 0-0.5 mag"),
    ("--ebv-prior", "2,0.1", "E(B-V) prior mean 2 mag lies outside the training prior m31-gc: allowed 0-0.5 mag"),
])
def test_infer_refuses_prior_options_outside_the_training_box(ckpt, capsys, tmp_path, option, value, message):
    rc, out, err = _run(capsys, "infer", "B165", "--posterior", str(ckpt), "--num-samples", "50", option, value,
                        "--out", str(tmp_path / "o"))
    assert rc == 1, out
    assert err.strip().count("\n") == 0 and message in err
    assert not (tmp_path / "o").exists()  # nothing labelled with a prior it did not use


def test_batch_refuses_prior_options_outside_the_training_box(ckpt, capsys, tmp_path):
    table = _user_table(tmp_path / "mine.fits")
    rc, _, err = _run(capsys, "batch", "--sample", "all", "--catalogue", str(table), "--posterior", str(ckpt),
                      "--num-samples", "20", "--no-progress", "--age-range", "1,100", "--out", str(tmp_path / "r.ecsv"))
    assert rc == 1 and "allowed 1-14 Gyr" in err and err.strip().count("\n") == 0
    assert not (tmp_path / "r.ecsv").exists()


def test_library_refuses_and_accepts_by_the_training_box(toy_posterior):
    from gcsbi.catalogue.inference import infer_catalogue, infer_cluster
    from gcsbi.catalogue.priors import prior_choice

    with pytest.raises(GcsbiValueError, match="allowed 1-14 Gyr"):
        infer_cluster(_x(), toy_posterior, prior=prior_choice(age_gyr=(1.0, 100.0)), num_samples=20, check_ood=False)
    with pytest.raises(GcsbiValueError, match="allowed 0-0.5 mag"):
        infer_catalogue([], toy_posterior, prior=prior_choice(ebv=(0.0, 0.9)), progress=False)
    with pytest.raises(GcsbiValueError, match="seed must be an integer >= 0"):
        infer_cluster(_x(), toy_posterior, num_samples=20, seed=-1, check_ood=False)
    dt = infer_cluster(_x(), toy_posterior, prior=prior_choice(age_gyr=(2.0, 14.0)), num_samples=50, seed=1,
                       check_ood=False)  # the box edge itself is inside
    assert "age 2-14 Gyr" in dt.attrs["prior"]
    age = np.asarray(dt["posterior"]["age_gyr"].values)
    assert age.min() >= 2.0 and age.max() <= 14.0


# ---------------------------------------------------------------------------- unphysical rows

B165 = {"APID": 166, "AltID": "B165-G218", "F336W": 17.23, "e_F336W": 0.0, "F475W": 17.02, "e_F475W": 0.0,
        "F814W": 15.64, "e_F814W": 0.02, "Reff": 0.62, "Rap": 2.29}


@pytest.mark.parametrize("change, message", [
    ({"Reff": -1.0}, "APID 166: effective radius Reff must be finite and > 0 arcsec, got -1"),
    ({"Reff": 0.0}, "Reff must be finite and > 0 arcsec, got 0"),
    ({"Reff": np.inf}, "Reff must be finite and > 0 arcsec, got inf"),
    ({"e_F814W": -0.1}, "error e_F814W must be finite and >= 0 mag (NaN if not given), got -0.1"),
    ({"e_F814W": np.inf}, "error e_F814W must be finite and >= 0 mag (NaN if not given), got inf"),
    ({"F475W": np.inf}, "magnitude F475W must be finite (NaN if not observed), got inf"),
    ({"F336W": -np.inf}, "magnitude F336W must be finite (NaN if not observed), got -inf"),
])
def test_unphysical_row_is_refused_naming_field_and_value(toy_posterior, change, message):
    from gcsbi.catalogue.inference import infer_cluster

    with pytest.raises(GcsbiValueError) as exc:
        infer_cluster({**B165, **change}, toy_posterior, num_samples=20, check_ood=False)
    assert message in str(exc.value) and "\n" not in str(exc.value)


def _user_table(path):
    """Six shipped PHAT rows as a user FITS table, four of them broken, with Caldwell-like columns."""
    from gcsbi.catalogue.catalogues import read_phat_catalogue

    t = read_phat_catalogue()
    apid = np.asarray(t["APID"])
    s = t[[int(np.flatnonzero(apid == a)[0]) for a in (166, 1, 2, 3, 4, 5)]].copy()
    s["Reff"][0] = -1.0
    s["e_F814W"][1] = -0.1
    s["F475W"][2] = np.inf
    s["Reff"][3] = 0.0
    s["caldwell_log_mass"], s["caldwell_feh"], s["caldwell_ebv"] = np.full(6, 5.0), np.full(6, -1.0), np.full(6, 0.1)
    s.write(path, overwrite=True)
    return path


def test_infer_refuses_a_user_catalogue_row_with_negative_reff(ckpt, capsys, tmp_path):
    table = _user_table(tmp_path / "mine.fits")
    rc, out, err = _run(capsys, "infer", "B165", "--catalogue", str(table), "--posterior", str(ckpt),
                        "--num-samples", "50")
    assert rc == 1 and "ood_flag" not in out
    assert err.strip() == "gcsbi m31: error: APID 166: effective radius Reff must be finite and > 0 arcsec, got -1"


def test_batch_skips_unphysical_rows_with_the_reason(ckpt, capsys, tmp_path):
    from astropy.table import Table

    table = _user_table(tmp_path / "mine.fits")
    rc, out, _ = _run(capsys, "batch", "--sample", "all", "--catalogue", str(table), "--posterior", str(ckpt),
                      "--num-samples", "50", "--no-progress", "--out", str(tmp_path / "r.ecsv"))
    assert rc == 0 and "2 of 6 clusters inferred" in out
    res = Table.read(tmp_path / "r.ecsv")
    status = dict(zip(np.asarray(res["APID"]).tolist(), np.asarray(res["status"]).astype(str)))
    assert status[166] == "skipped: APID 166: effective radius Reff must be finite and > 0 arcsec, got -1"
    assert status[1].startswith("skipped: APID 1: error e_F814W") and "-0.1" in status[1]
    assert status[2].startswith("skipped: APID 2: magnitude F475W") and "inf" in status[2]
    assert status[3] == "skipped: APID 3: effective radius Reff must be finite and > 0 arcsec, got 0"
    assert status[4].startswith("ok") and status[5].startswith("ok")
    skipped = np.char.startswith(np.asarray(res["status"]).astype(str), "skipped")
    assert np.all(np.isnan(np.asarray(res["log10_mass_p50"], float)[skipped]))


# ---------------------------------------------------------------------------- help texts

_FILE = re.compile(r"\b[\w-]+\.(?:csv|png|nc|json|fits|ecsv|zarr|h5|hdf5|npz|txt|pt)\b")


def _written(folder):
    """Files a command wrote into ``folder``, less gcsbi's hidden bookkeeping (its output marker)."""
    return {p.name for p in folder.iterdir() if not p.name.startswith(".")}


def _out_help(capsys, action):
    from gcsbi.cli import main

    with pytest.raises(SystemExit):
        main(["m31", action, "--help"])
    text = capsys.readouterr().out
    line = next(ln for ln in text.splitlines() if ln.strip().startswith("--out OUT"))
    return set(_FILE.findall(line))


def test_help_names_exactly_the_files_written(ckpt, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")  # one line per option
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OutOfDistributionWarning)
        warnings.simplefilter("ignore", PriorEdgeWarning)
        rc, _, err = _run(capsys, "infer", "B165", "--posterior", str(ckpt), "--num-samples", "50",
                          "--out", str(tmp_path / "infer"))
    assert rc == 0, err
    written = _written(tmp_path / "infer")
    assert {"summary.csv", "posterior.png"} <= written
    assert _out_help(capsys, "infer") == written

    table = _user_table(tmp_path / "mine.fits")
    assert _run(capsys, "batch", "--sample", "all", "--catalogue", str(table), "--posterior", str(ckpt),
                "--num-samples", "50", "--no-progress", "--out", str(tmp_path / "batch" / "r.ecsv"))[0] == 0
    assert _written(tmp_path / "batch") == {"r.ecsv"}
    assert _run(capsys, "compare", str(tmp_path / "batch" / "r.ecsv"), "--out", str(tmp_path / "cmp"))[0] == 0
    compare_written = _written(tmp_path / "cmp")
    assert _out_help(capsys, "compare") == compare_written

    from gcsbi.cli import main

    with pytest.raises(SystemExit):
        main(["m31", "--help"])
    overview = set(re.findall(r"DIR/([\w.-]+)", capsys.readouterr().out))
    assert overview == written | compare_written
