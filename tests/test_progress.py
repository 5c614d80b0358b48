"""Progress bars: on stderr for every long command, none at all with ``--no-progress``."""

from __future__ import annotations

import argparse
import json
import warnings

import pytest
import torch

from gcsbi.cli import build_parser, main

TOY = "gcsbi.testing.toy:ToyImageSimulator"
TRAIN = ["--spec", TOY, "--embedding", "small-cnn", "--features", "8", "--max-epochs", "2",
         "--stop-after-epochs", "2", "--batch-size", "64", "--x-pool", "2", "--num-bins", "6",
         "--hidden-features", "12", "--num-transforms", "2"]
#: Every command that shows progress bars, as the words that name it on the command line.
WITH_PROGRESS = [("simulate",), ("bank", "create"), ("bank", "generate"), ("bank", "repair"), ("bank", "info"),
                 ("train",), ("infer",), ("calibrate",), ("m31", "infer"), ("m31", "batch")]


def _subparser(parser: argparse.ArgumentParser, words: tuple[str, ...]) -> argparse.ArgumentParser:
    for word in words:
        action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = action.choices[word]
    return parser


@pytest.mark.parametrize("words", WITH_PROGRESS + [("jeans", "fit", "freeform"), ("jeans", "fit", "jflow"),
                                                   ("jeans", "baseline")], ids=" ".join)
def test_every_long_command_takes_no_progress(words):
    if words[0] == "jeans":
        pytest.importorskip("gcsbi_jeans")
    p = _subparser(build_parser([words[0]]), words)
    action = p._option_string_actions.get("--no-progress")
    assert action is not None and action.dest == "no_progress", words
    assert "stderr" in action.help


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    capsys.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rc = main(argv)
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


@pytest.fixture(scope="module")
def toy_ckpt(tmp_path_factory):
    out = tmp_path_factory.mktemp("progress") / "toy.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["train", "--simulations", "200", *TRAIN, "--out", str(out), "--no-progress"]) == 0
    return out


def test_train_shows_simulations_and_epochs(tmp_path, capsys):
    rc, out, err = _run(["train", "--simulations", "200", *TRAIN, "--out", str(tmp_path / "a.pt")], capsys)
    assert rc == 0
    assert "simulating" in err and "200/200" in err and "epoch" in err
    assert out.startswith("trained ") and "Training neural network" not in out  # sbi's own print became the bar
    rc, out, err = _run(["train", "--simulations", "200", *TRAIN, "--out", str(tmp_path / "b.pt"),
                         "--no-progress"], capsys)
    assert rc == 0 and err == "" and out.startswith("trained ")


def test_calibrate_shows_simulations_and_draws(toy_ckpt, capsys):
    argv = ["calibrate", str(toy_ckpt), "--spec", TOY, "--n-held-out", "30", "--num-posterior-samples", "20",
            "--no-c2st", "--json"]
    rc, out, err = _run(argv, capsys)
    assert rc == 0 and json.loads(out)["n_held_out"] == 30
    assert "held-out simulations" in err and "30/30" in err and "posterior draws" in err
    rc, out, err = _run(argv + ["--no-progress"], capsys)
    assert rc == 0 and err == "" and json.loads(out)["n_held_out"] == 30


def test_infer_progress(toy_ckpt, tmp_path, capsys):
    import numpy as np

    from gcsbi.inference import simulate
    from gcsbi.testing import ToyImageSimulator

    _, x = simulate(ToyImageSimulator(size=16), 2, seed=9, stream="inference")
    np.save(tmp_path / "obs.npy", x.numpy())
    rc, out, err = _run(["infer", str(toy_ckpt), str(tmp_path / "obs.npy"), "--num-samples", "30", "--json"], capsys)
    assert rc == 0 and "OOD test" in err
    rc, out, err = _run(["infer", str(toy_ckpt), str(tmp_path / "obs.npy"), "--num-samples", "30", "--json",
                         "--no-progress"], capsys)
    assert rc == 0 and err == "" and "summary" in json.loads(out)


class _Prior:
    def sample(self, shape):
        return torch.rand((*shape, 2))


class _PerMock:
    """A simulator whose call advances the caller's bar once per row."""

    prior = _Prior()

    def __init__(self):
        self.bars = []

    def __call__(self, theta, *, seed, progress=False):
        self.bars.append(progress)
        for _ in theta:
            if progress:
                progress.update(1)
        return torch.zeros((len(theta), 1))


def test_seeded_simulation_bar(capsys):
    from gcsbi.inference.seeding import simulate

    sim = _PerMock()
    theta, x = simulate(sim, 5, seed=0, batch_size=2, progress=True, desc="held-out")
    err = capsys.readouterr().err
    assert "held-out" in err and "5/5" in err and len(sim.bars) == 3 and all(hasattr(b, "update") for b in sim.bars)
    theta2, x2 = simulate(sim, 5, seed=0, batch_size=2)  # no bar: same numbers, nothing printed
    assert torch.equal(theta, theta2) and sim.bars[-1] is False and capsys.readouterr().err == ""

    def plain(theta, *, seed):  # no progress keyword: the bar advances per batch
        return torch.zeros((len(theta), 1))

    plain.prior = _Prior()
    simulate(plain, 5, seed=0, batch_size=2, progress=True)
    assert "5/5" in capsys.readouterr().err


def test_epoch_progress_reads_sbi_prints(capsys):
    from gcsbi.inference import sbi_compat

    with sbi_compat.epoch_progress():
        for epoch in (1, 2, 3):  # the way sbi prints its epoch counter when show_progress_bars=True
            print("\r", f"Training neural network. Epochs trained: {epoch}", end="")
        print("\n Neural network successfully converged after 3 epochs.", end="")
    captured = capsys.readouterr()
    assert captured.out == "" and "training" in captured.err and "3epoch" in captured.err.replace(" ", "")


def test_simulate_progress(tmp_path, capsys):
    rc, out, err = _run(["simulate", "-n", "1", "--out", str(tmp_path / "a.npz")], capsys)
    assert rc == 0 and "simulating" in err and "1/1" in err
    rc, out, err = _run(["simulate", "-n", "1", "--out", str(tmp_path / "a.npz"), "--json", "--no-progress"], capsys)
    assert rc == 0 and err == "" and json.loads(out)["n"] == 1
