"""CLI: gcsbi jeans mock / fit / baseline at tiny sizes, and clean error exits."""

from __future__ import annotations

import json

import numpy as np

from gcsbi.cli import main


def test_mock_fit_baseline(tmp_path):
    table = tmp_path / "mock.txt"
    assert main(["jeans", "mock", "--n", "120", "--halo", "cusp", "--anisotropy", "om:0.3", "--seed", "4",
                 "--out", str(table)]) == 0
    truth = json.loads((tmp_path / "mock.txt.truth.json").read_text())
    assert truth["halo"]["gamma"] == 1.0 and truth["beta"] == "om:0.3"
    assert np.loadtxt(table).shape == (120, 5)
    out = tmp_path / "fit"
    assert main(["jeans", "fit", str(table), "--beta", "om:0.3", "--variant", "cusp", "--ensemble", "2",
                 "--steps", "3", "--n-model", "64", "--truth", str(table) + ".truth.json", "--out", str(out),
                 "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["members"] == 2 and "rho" in summary["truth"]
    assert (out / "profiles.png").is_file() and (out / "profiles.zarr").is_dir()
    bout = tmp_path / "base"
    assert main(["jeans", "baseline", str(table), "--beta", "om:0.3", "--walkers", "8", "--steps", "12",
                 "--burn", "4", "--thin", "2", "--out", str(bout), "--no-progress"]) == 0
    bsum = json.loads((bout / "summary.json").read_text())
    assert set(bsum["diagnostics"]) == {"log10_a", "log10_rho_s", "log10_r_s", "gamma"}


def test_errors_exit_1(tmp_path, capsys):
    assert main(["jeans", "fit", str(tmp_path / "none.txt"), "--out", str(tmp_path / "o")]) == 1
    assert "no such file" in capsys.readouterr().err
    bad = tmp_path / "bad.txt"
    bad.write_text("# x y v\n1 2 3\n")
    good = tmp_path / "good.txt"
    rows = np.random.default_rng(0).normal(size=(25, 3))
    good.write_text("# x y v verr\n" + "\n".join(f"{a} {b} {10 * c} 1.0" for a, b, c in rows) + "\n")
    capsys.readouterr()
    assert main(["jeans", "fit", str(good), "--beta", "om:-1", "--out", str(tmp_path / "o")]) == 1
    assert "Osipkov-Merritt" in capsys.readouterr().err
    assert main(["jeans", "mock", "--n", "1", "--out", str(tmp_path / "m.txt")]) == 1
    assert "error" in capsys.readouterr().err
    assert main(["jeans", "baseline", str(bad), "--steps", "10", "--burn", "8", "--out", str(tmp_path / "b")]) == 1
