"""Hostile input to the simulator, its specs and ``gcsbi simulate``: clear one-line errors, no tracebacks.

The heavy part of a simulation (:meth:`ClusterSimulator.simulate_one`) is replaced by a cheap stand-in
wherever a test only needs to know whether, and with what, the simulator would run.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gcsbi.cli import main
from gcsbi.errors import GcsbiFileError, GcsbiValueError, SpecError
from gcsbi.spec.priors import load_prior
from gcsbi.simulator.core import load_simulator
from gcsbi.spec.simulator_spec import load_simulator_spec, simulator_dir

BINARY = b"\xff\xfe\x00garbage"


@pytest.fixture(scope="module")
def sim():
    return load_simulator("hst-phat", prior="m31-gc")


@pytest.fixture
def fake_sim(sim, monkeypatch):
    """``sim`` whose per-row simulation draws one uniform image from the row's generator and records the row."""
    rows: list[np.ndarray] = []

    def fake_one(row, *, rng, return_truth=False):
        rows.append(np.array(row))
        return rng.random(sim.output_shape).astype(np.float32), None

    monkeypatch.setattr(sim, "simulate_one", fake_one)
    sim.rows = rows
    return sim


def _theta(sim, **overrides: float) -> torch.Tensor:
    mid = {s.name: 0.5 * (s.low + s.high) for s in sim.prior.specs}
    return sim.prior.from_dict({**mid, **overrides})


def _one_error_line(err: str, prefix: str) -> str:
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(prefix), err
    return lines[0]


# ------------------------------------------------------------------ theta outside the prior


def test_theta_outside_prior_is_refused_before_simulating(fake_sim):
    theta = torch.cat([_theta(fake_sim), _theta(fake_sim, log10_mass=8.0)])
    for call in (fake_sim, fake_sim.simulate):
        with pytest.raises(GcsbiValueError, match=r"row 1: log10_mass = 8 .*m31-gc.*\[4, 6\.7\].*allow_outside_prior"):
            call(theta, seed=0)
    assert fake_sim.rows == []


def test_theta_outside_prior_counts_the_other_offenders(fake_sim):
    theta = _theta(fake_sim, log10_mass=8.0, age_gyr=20.0, distance_kpc=10.0)
    with pytest.raises(GcsbiValueError, match="2 more"):
        fake_sim(theta, seed=0)


def test_allow_outside_prior_opt_out(fake_sim):
    theta = _theta(fake_sim, log10_mass=6.71)
    x = fake_sim(theta, seed=0, allow_outside_prior=True)
    assert x.shape == (1, *fake_sim.output_shape) and x.dtype == torch.float32
    out = fake_sim.simulate(theta, seed=0, allow_outside_prior=True)
    assert torch.equal(out["x"], x)
    assert len(fake_sim.rows) == 2
    assert fake_sim.rows[0][fake_sim.param_names.index("log10_mass")] == pytest.approx(6.71, abs=1e-6)


def test_prior_bounds_themselves_are_inside(fake_sim):
    prior = fake_sim.prior
    x = fake_sim(torch.stack([prior.low, prior.high]), seed=0)
    assert x.shape[0] == 2


# ------------------------------------------------------------------ seeds


@pytest.mark.parametrize("seed", [1.5, 2.0, True, False, -1, "3", np.float64(3.0), [1]])
def test_bad_seeds_are_refused(fake_sim, seed):
    with pytest.raises(GcsbiValueError, match=r"^seed must be a non-negative integer \(or None\), got "):
        fake_sim(_theta(fake_sim), seed=seed)
    assert fake_sim.rows == []


@pytest.mark.parametrize("seed", [np.int64(3), np.uint32(3), torch.tensor(3)])
def test_integer_like_seeds_equal_the_python_int(fake_sim, seed):
    theta = _theta(fake_sim)
    assert torch.equal(fake_sim(theta, seed=seed), fake_sim(theta, seed=3))


@pytest.mark.parametrize("seed", [0, 2**63, 2**64 - 1, 2**80, None])
def test_large_and_none_seeds_work(fake_sim, seed):
    assert torch.isfinite(fake_sim(_theta(fake_sim), seed=seed)).all()


# ------------------------------------------------------------------ gcsbi simulate


@pytest.mark.parametrize("argv, needle", [
    (["-n", "-2"], "argument -n"),
    (["-n", "0"], "argument -n"),
    (["-n", "two"], "argument -n"),
    (["-n", "1", "--seed", "-1"], "argument --seed"),
    (["-n", "1", "--seed", str(2**64)], "argument --seed"),
    (["-n", "1", "--workers", "0"], "argument --workers"),
])
def test_simulate_cli_refuses_bad_counts(argv, needle, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["simulate", *argv])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"gcsbi simulate: error: {needle}")
    assert "positive integer" in last or "non-negative integer" in last


def test_series_stays_inside_any_prior():
    from gcsbi.simulator.cli import series_theta

    for prior_name in ("m31-gc", "milky-way-gc"):
        prior = load_prior(prior_name)
        for series in ("distance", "age"):
            theta = series_theta(prior, series)
            assert len(theta) >= 2 and bool(prior.in_support(theta).all()), (prior_name, series)
    theta = series_theta(load_prior("m31-gc"), "distance")
    assert theta[:, 0].tolist() == [700.0, 740.0, 780.0, 820.0, 850.0]  # the paper's series where it fits


# ------------------------------------------------------------------ hostile TOML files


@pytest.mark.parametrize("content", [BINARY, "distance = 5".encode("utf-16")])
def test_binary_toml_is_a_spec_error_naming_the_file(tmp_path, content):
    bad = tmp_path / "bad.toml"
    bad.write_bytes(content)
    for load in (load_simulator_spec, load_prior, load_simulator):
        with pytest.raises(SpecError, match="bad.toml.*UTF-8"):
            load(bad)
    with pytest.raises(SpecError, match="bad.toml"):
        load_simulator("hst-phat", prior=bad)


def test_truncated_toml_is_a_spec_error(tmp_path):
    text = (simulator_dir() / "hst-phat.toml").read_text()
    bad = tmp_path / "cut.toml"
    bad.write_text(text[: len(text) // 2] + '\n[instrument.bands.F814W\nexposure_s = "')
    with pytest.raises(SpecError, match="cut.toml: invalid TOML"):
        load_simulator(bad)


def test_spec_table_of_wrong_type_is_a_spec_error(tmp_path):
    bad = tmp_path / "bands.toml"
    bad.write_text('[instrument]\ntelescope = "x"\npixel_scale_arcsec = 0.05\nfilters = ["F814W"]\n'
                   'bands = {F814W = 3}\n')
    with pytest.raises(SpecError, match=r"instrument\.bands\.F814W.*must be a table"):
        load_simulator_spec(bad)


@pytest.mark.parametrize("entry", ["low = true\nhigh = 6", 'low = 4\nhigh = "6"'])
def test_prior_bounds_must_be_numbers(tmp_path, entry):
    bad = tmp_path / "prior.toml"
    bad.write_text(f"[parameters.log10_mass]\n{entry}\n")
    with pytest.raises(SpecError, match="numeric"):
        load_prior(bad)


def test_directory_named_like_a_spec_is_a_file_error(tmp_path):
    folder = tmp_path / "folder.toml"
    folder.mkdir()
    with pytest.raises(GcsbiFileError, match="folder.toml"):
        load_prior(folder)


@pytest.mark.parametrize("flag", ["--spec", "--prior"])
def test_simulate_cli_binary_toml_is_one_line(tmp_path, capsys, flag):
    bad = tmp_path / "bad.toml"
    bad.write_bytes(BINARY)
    assert main(["simulate", flag, str(bad), "-n", "1"]) == 1
    line = _one_error_line(capsys.readouterr().err, "gcsbi simulate: error:")
    assert str(bad) in line
