"""CLI: gcsbi jeans mock / fit / baseline at tiny sizes, and clean error exits."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gcsbi_jeans.cli import main


def test_mock_fit_baseline(tmp_path):
    table = tmp_path / "mock.txt"
    assert main(["mock", "--n", "120", "--halo", "cusp", "--anisotropy", "om:0.3", "--seed", "4",
                 "--out", str(table)]) == 0
    truth = json.loads((tmp_path / "mock.txt.truth.json").read_text())
    assert truth["halo"]["gamma"] == 1.0 and truth["beta"] == "om:0.3"
    assert np.loadtxt(table).shape == (120, 5)
    out = tmp_path / "fit"
    assert main(["fit", "jflow", str(table), "--beta", "om:0.3", "--variant", "cusp", "--ensemble", "2",
                 "--steps", "40", "--n-model", "128", "--truth", str(table) + ".truth.json", "--out", str(out),
                 "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["members"] == 2 and summary["members_valid"] == 2 and "rho" in summary["truth"]
    assert (out / "profiles.png").is_file() and (out / "profiles.zarr").is_dir()
    bout = tmp_path / "base"
    assert main(["baseline", str(table), "--beta", "om:0.3", "--walkers", "8", "--steps", "12",
                 "--burn", "4", "--thin", "2", "--out", str(bout), "--no-progress"]) == 0
    bsum = json.loads((bout / "summary.json").read_text())
    assert set(bsum["diagnostics"]) == {"log10_a", "log10_rho_s", "log10_r_s", "gamma"}


def test_errors_exit_1(tmp_path, capsys):
    assert main(["fit", str(tmp_path / "none.txt"), "--out", str(tmp_path / "o")]) == 1
    assert "no such file" in capsys.readouterr().err
    bad = tmp_path / "bad.txt"
    bad.write_text("# x y v\n1 2 3\n")
    good = tmp_path / "good.txt"
    rows = np.random.default_rng(0).normal(size=(25, 3))
    good.write_text("# x y v verr\n" + "\n".join(f"{a} {b} {10 * c} 1.0" for a, b, c in rows) + "\n")
    capsys.readouterr()
    assert main(["fit", str(good), "--beta", "om:-1", "--out", str(tmp_path / "o")]) == 1
    assert "Osipkov-Merritt" in capsys.readouterr().err
    assert main(["mock", "--n", "1", "--out", str(tmp_path / "m.txt")]) == 1
    assert "error" in capsys.readouterr().err
    assert main(["baseline", str(bad), "--steps", "10", "--burn", "8", "--out", str(tmp_path / "b")]) == 1


def test_freeform_fit_with_inferred_beta_stellar_mass_and_jfactor(tmp_path):
    table = tmp_path / "mock.txt"
    assert main(["mock", "--n", "150", "--seed", "5", "--out", str(table)]) == 0
    out = tmp_path / "ff"
    assert main(["fit", str(table), "--beta", "infer", "--stellar-mass", "1e5", "--distance", "80", "--jfactor",
                 "--walkers", "24", "--mcmc-steps", "60", "--no-converge", "--nodes", "4",
                 "--truth", str(table) + ".truth.json",
                 "--out", str(out), "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["method"] == "freeform" and summary["beta"] == "inferred:bvh"
    assert {"beta_tilde_0", "gamma_4"} <= set(summary["diagnostics"]) and "shape_f" not in summary["diagnostics"]
    assert summary["velocity_shape"]["model"] == "inferred" and len(summary["velocity_shape"]["R_bin_median_kpc"]) == 3
    assert 10 < summary["log10_J_0.5deg"]["median"] < 30
    # the headline numbers and the sampler's verdict
    for key in ("rho_dm_150pc", "mass_r_half", "beta_r_half"):
        assert summary[key]["q16"] <= summary[key]["median"] <= summary[key]["q84"]
    assert summary["rhat_max"] >= 1.0 and summary["ess_bulk_min"] > 0 and summary["converged"] is False
    assert 0.0 <= summary["sampler"]["J_infinite_fraction"] <= 1.0
    from gcsbi_jeans.core.export import load_datatree

    dt = load_datatree(out / "profiles.zarr")
    assert "log10_J_0.5deg" in dt["posterior"].data_vars and float(dt["posterior"]["rho"].min()) > 0


def test_freeform_cli_refuses_inconsistent_options(tmp_path, capsys):
    table = tmp_path / "mock.txt"
    assert main(["mock", "--n", "60", "--seed", "5", "--out", str(table)]) == 0
    capsys.readouterr()
    assert main(["fit", str(table), "--jfactor", "--out", str(tmp_path / "a")]) == 1
    assert "--jfactor needs --distance" in capsys.readouterr().err
    assert main(["fit", "jflow", str(table), "--beta", "infer", "--out", str(tmp_path / "b")]) == 1
    assert "--beta infer needs" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def _all_parsers(parser):
    import argparse

    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _all_parsers(sub)


def test_fit_routes_and_their_options():
    import argparse

    from gcsbi_jeans.cli import _freeform_config, add_parser, build_parser

    parser = build_parser()
    # 'fit DATA' runs the default route; options may come before DATA
    for argv in (["fit", "d.txt", "--out", "o"], ["fit", "--outliers", "none", "d.txt", "--out", "o"],
                 ["fit", "freeform", "d.txt", "--out", "o"]):
        args = parser.parse_args(argv)
        assert args.jeans_route == "freeform" and args.data == "d.txt" and args.func.__name__ == "cmd_fit_freeform"
    # --steps: emcee steps (freeform, --mcmc-steps an alias), thin and burn follow it
    cfg = _freeform_config(parser.parse_args(["fit", "d.txt", "--mcmc-steps", "600", "--out", "o"]))
    assert (cfg.steps, cfg.thin, cfg.burn, cfg.max_steps) == (600, 6, 300, 40000)
    cfg = _freeform_config(parser.parse_args(["fit", "d.txt", "--steps", "60", "--no-converge", "--shape-bins", "2",
                                              "--node-span", "0.2", "5", "--out", "o"]))
    assert (cfg.steps, cfg.thin, cfg.burn, cfg.converge, cfg.shape_bins, cfg.node_span) == \
        (60, 1, 30, False, 2, (0.2, 5.0))
    # ... and Adam steps per bootstrap fit for jflow, whose options are FitConfig's (flow ones nested)
    args = parser.parse_args(["fit", "jflow", "d.txt", "--steps", "50", "--variant", "cusp", "--n-model", "64",
                              "--no-bootstrap", "--out", "o"])
    assert args.jeans_route == "jflow" and args.steps == 50 and args.flow_variant == "cusp" and not args.bootstrap
    with pytest.raises(SystemExit):  # a freeform option is not a jflow one
        parser.parse_args(["fit", "jflow", "d.txt", "--walkers", "8", "--out", "o"])
    # every option of every command says what it does; --steps says which steps
    for p in _all_parsers(parser):
        for action in p._actions:
            if action.option_strings:
                assert action.help, (p.prog, action.option_strings)
    helps = {p.prog: p.format_help() for p in _all_parsers(parser)}
    assert "emcee steps" in helps["gcsbi-jeans fit freeform"]
    assert "Adam optimiser steps" in helps["gcsbi-jeans fit jflow"]
    assert not any("JFlow + emcee baseline" in h for h in helps.values())
    # mounted as 'gcsbi jeans' (gcsbi's own parser class), the same
    top = argparse.ArgumentParser(prog="gcsbi")
    add_parser(top.add_subparsers(dest="command"))
    args = top.parse_args(["jeans", "fit", "--outliers", "none", "d.txt", "--out", "o"])
    assert args.jeans_route == "freeform" and args.outliers == "none" and args.jeans_prog == "gcsbi jeans"


def test_method_option_still_selects_the_route(tmp_path, capsys):
    table = tmp_path / "mock.txt"
    assert main(["mock", "--n", "60", "--seed", "5", "--out", str(table)]) == 0
    capsys.readouterr()
    assert main(["fit", str(table), "--method", "jflow", "--beta", "infer", "--out", str(tmp_path / "b")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0] == ("gcsbi-jeans fit: warning: --method is deprecated; the route is a sub-command: "
                      "'gcsbi-jeans fit jflow DATA ...'")
    assert err[1].startswith("gcsbi-jeans fit: error: --beta infer needs the free-form route") and len(err) == 2
