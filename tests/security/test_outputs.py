"""Outputs never destroy the user's data, and text read from files never drives the terminal.

``gcsbi infer --out``, the demo and ``gcsbi m31 ... --out`` write whole folders: only a new or
empty one, or one gcsbi wrote itself (replaced). ``gcsbi bank create --overwrite`` deletes a
gcsbi bank and nothing else. ``gcsbi bank info`` and gcsbi's error lines print stored strings
escaped (ESC as ``\\x1b``).
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import zarr

from gcsbi.bank.store import SimulationBank
from gcsbi.cli import main
from gcsbi.errors import GcsbiFileError
from gcsbi.inference import simulate
from gcsbi.testing import ToyImageSimulator
from inference.test_cli import cli_ckpt  # noqa: F401 (the tiny checkpoint of the CLI tests; tests/ is on sys.path)
from bank.test_bank import TOY, _create  # tests/ is on sys.path

HOSTILE = "\x1b]0;pwned\x07\x1b[2J\rall chunks verified\x9b31m \u202e"
RAW = ("\x1b", "\x07", "\r", "\x9b", "\u202e")


def _tree(folder: Path) -> dict[str, bytes | None]:
    """Every path under ``folder`` with its bytes (None for folders)."""
    return {str(p.relative_to(folder)): (None if p.is_dir() else p.read_bytes()) for p in sorted(folder.rglob("*"))}


def _infer(ckpt: Path, obs: Path, out: str, *extra: str) -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return main(["infer", str(ckpt), str(obs), "--num-samples", "20", *extra, "--out", out])


@pytest.fixture(scope="module")
def obs_npy(tmp_path_factory) -> Path:
    _, x = simulate(ToyImageSimulator(size=16), 1, seed=9, stream="inference")
    path = tmp_path_factory.mktemp("obs") / "x0.npy"
    np.save(path, x[0].numpy())
    return path


# ----------------------------------------------------------------------------- gcsbi infer --out


def test_infer_out_refuses_a_folder_of_the_user(cli_ckpt, obs_npy, tmp_path, capsys):
    user = tmp_path / "k"
    user.mkdir()
    (user / "thesis.tex").write_text("t")
    before = _tree(tmp_path)
    capsys.readouterr()
    assert _infer(cli_ckpt, obs_npy, str(user)) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(user) in err and "thesis.tex" in err and "new or empty folder" in err
    assert _tree(tmp_path) == before  # the file, and no temporary folder left behind


def test_infer_out_dot_refuses_the_working_folder(cli_ckpt, obs_npy, tmp_path, monkeypatch, capsys):
    (tmp_path / "x0.npy").write_bytes(obs_npy.read_bytes())
    monkeypatch.chdir(tmp_path)
    before = _tree(tmp_path)
    capsys.readouterr()
    assert _infer(cli_ckpt, Path("x0.npy"), ".") == 1
    assert "not empty and was not written by gcsbi" in capsys.readouterr().err
    assert _tree(tmp_path) == before


def test_infer_rerun_replaces_its_own_output_only(cli_ckpt, obs_npy, tmp_path, capsys):
    import xarray as xr

    out = tmp_path / "post.zarr"
    assert _infer(cli_ckpt, obs_npy, str(out)) == 0
    assert _infer(cli_ckpt, obs_npy, str(out), "--num-samples", "30") == 0  # the second run replaces the first
    marker = json.loads(json.loads((out / "zarr.json").read_text())["attributes"]["gcsbi_output"])  # JSON text
    assert marker["kind"] == "gcsbi infer" and set(marker["names"]) == set(os.listdir(out))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the marker is a Zarr attribute: no stray file for Zarr to warn about
        assert xr.open_datatree(out, engine="zarr", consolidated=False)["posterior"]["width"].shape == (1, 30)
    assert sorted(os.listdir(tmp_path)) == ["post.zarr"]
    (out / "notes.txt").write_text("mine")  # a file the user put into gcsbi's output
    (tmp_path / "plain.txt").write_text("mine")
    before = _tree(tmp_path)
    capsys.readouterr()
    assert _infer(cli_ckpt, obs_npy, str(out)) == 1
    assert "notes.txt" in capsys.readouterr().err
    assert _infer(cli_ckpt, obs_npy, str(tmp_path / "plain.txt")) == 1
    assert _tree(tmp_path) == before


def test_output_dir_interrupted_write_leaves_the_old_output(tmp_path):
    from gcsbi.outputs import output_dir

    target = tmp_path / "out"
    with output_dir(target, kind="test") as work:
        (work / "a.txt").write_text("first")
        (work / "sub").mkdir()
    before = _tree(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        with output_dir(target, kind="test") as work:
            (work / "a.txt").write_text("half-written")
            raise KeyboardInterrupt
    assert _tree(tmp_path) == before
    with output_dir(target, kind="test") as work:  # a complete rerun replaces it, "sub" included
        (work / "b.txt").write_text("second")
    assert sorted(os.listdir(target)) == [".gcsbi-output.json", "b.txt"]
    assert sorted(os.listdir(tmp_path)) == ["out"]


def test_demo_refuses_a_folder_of_the_user_before_any_work(tmp_path, monkeypatch, capsys):
    import gcsbi.simulator.core
    from gcsbi.demo.run import main as demo

    def started(*args, **kwargs):
        raise AssertionError("the demo started working in a folder it must refuse")

    monkeypatch.setattr(gcsbi.simulator.core, "load_simulator", started)
    (tmp_path / "thesis.tex").write_text("t")
    assert demo(["--out", str(tmp_path)]) == 1
    assert "not empty and was not written by gcsbi" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["thesis.tex"]


def test_named_output_files_overwrite_only_their_own_kind(tmp_path, capsys):
    notes = tmp_path / "notes.npz"
    notes.write_text("my notes, not a numpy archive")
    results = tmp_path / "results"
    results.mkdir()
    (results / "summary.json").write_text("{}")
    capsys.readouterr()
    assert main(["snapshot", "--mass", "1e3", "--out", str(tmp_path / "notes")]) == 1
    assert "notes.npz exists and is not a .npz file" in capsys.readouterr().err
    assert main(["m31", "compare", str(tmp_path / "none.fits"), "--out", str(results)]) == 1
    assert "not empty and was not written by gcsbi" in capsys.readouterr().err
    assert notes.read_text() == "my notes, not a numpy archive" and os.listdir(results) == ["summary.json"]


# ----------------------------------------------------------------------------- gcsbi bank create --overwrite

CREATE = ["--factory", TOY, "--kwargs", '{"size": 8}', "--n", "4", "--chunk-size", "2", "--seed", "0", "--overwrite"]


@pytest.mark.parametrize("case", ["folder", "working-folder", "file", "bank-holding-a-user-file"])
def test_bank_overwrite_replaces_only_a_bank(case, tmp_path, monkeypatch, capsys):
    target = tmp_path / "target"
    if case == "file":
        target.write_text("precious")
    elif case == "bank-holding-a-user-file":
        _create(target, n=4)
        (target / "notes.txt").write_text("precious")
    else:
        target.mkdir()
        (target / "data.txt").write_text("precious")
    if case == "working-folder":
        monkeypatch.chdir(target)
    before = _tree(tmp_path)
    capsys.readouterr()
    assert main(["bank", "create", "." if case == "working-folder" else str(target), *CREATE]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "nothing was deleted" in err
    assert _tree(tmp_path) == before
    if case == "bank-holding-a-user-file":  # a bank holding only its own files is replaced
        (target / "notes.txt").unlink()
        assert main(["bank", "create", str(target), *CREATE[:-2], "1", "--overwrite"]) == 0
        assert SimulationBank.open(target).config.seed == 1
    before = _tree(tmp_path)
    with pytest.raises(GcsbiFileError, match="not a valid gcsbi simulation bank"):  # the API refuses as well
        SimulationBank.create(tmp_path, simulator_factory=TOY, n=4, chunk_size=2, seed=0, overwrite=True)
    assert _tree(tmp_path) == before


# ----------------------------------------------------------------------------- terminal escapes


def test_bank_info_prints_stored_strings_escaped(tmp_path, capsys):
    bank = _create(tmp_path / "b.zarr", n=4)
    bank.generate(progress=False)
    group = zarr.open_group(str(bank.path), mode="r+")
    group["failed"][0] = 1
    group["message"][0] = HOSTILE
    meta = json.loads((bank.path / "zarr.json").read_text())
    meta["attributes"]["gcsbi_bank"]["gcsbi_version"] = HOSTILE
    (bank.path / "zarr.json").write_text(json.dumps(meta))
    capsys.readouterr()
    assert main(["bank", "info", str(bank.path)]) == 0
    out = capsys.readouterr().out
    assert not [c for c in RAW if c in out], out
    assert out.count("\\x1b]0;pwned\\x07\\x1b[2J\\rall chunks verified\\x9b31m \\u202e") == 2  # message, version


def test_error_lines_print_escaped(tmp_path, capsys):
    assert main(["infer", str(tmp_path / f"{HOSTILE}.pt"), "x.npy"]) == 1
    err = capsys.readouterr().err
    assert not [c for c in RAW if c in err] and "\\x1b]0;pwned" in err and len(err.strip().splitlines()) == 1


def test_printable():
    from gcsbi.outputs import printable

    assert printable("a\x1b[31mb\x07\n\t\x00\x7f\x85\u200fé") == "a\\x1b[31mb\\x07\\n\\t\\x00\\x7f\\x85\\u200fé"
    assert printable("one\ntwo\r", newlines=True) == "one\ntwo\\r"
    assert printable(3.5) == "3.5"
