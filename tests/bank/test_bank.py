"""Simulation bank: determinism across workers/resumes, failures, corruption, loaders, CLI."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import gcsbi.bank.store as bank_mod
from gcsbi.bank.store import SimulationBank, chunk_seeds
from gcsbi.errors import GcsbiFileError, GcsbiValueError
from gcsbi.testing.toy import ToyImageSimulator

TOY = "gcsbi.testing.toy:ToyImageSimulator"
FLAKY = "test_bank:FlakyToy"  # its folder is on sys.path (no __init__.py)
N, CHUNK, SEED = 45, 8, 7  # 6 chunks, the last one partial


class FlakyToy(ToyImageSimulator):
    """Toy that raises for wide blobs and returns NaN for red ones; optional sleep per call."""

    def __call__(self, theta: torch.Tensor, *, seed: int | None = None) -> torch.Tensor:
        time.sleep(float(os.environ.get("GCSBI_TEST_BANK_SLEEP", "0")))
        if (theta[:, 1] > 2.6).any():
            raise ValueError("blob too wide")
        x = super().__call__(theta, seed=seed)
        x[theta[:, 2] > 0.35] = float("nan")
        return x


def _create(path: Path, *, factory: str = TOY, n: int = N, seed: int = SEED) -> SimulationBank:
    return SimulationBank.create(path, simulator_factory=factory, factory_kwargs={"size": 8}, n=n,
                                 chunk_size=CHUNK, seed=seed)


def _arrays(bank: SimulationBank) -> dict[str, np.ndarray]:
    g = bank._group
    return {k: np.asarray(g[k][:]) for k in ("theta", "x", "failed", "message", "done")}


def _assert_same(a: SimulationBank, b: SimulationBank) -> None:
    ra, rb = _arrays(a), _arrays(b)
    for k in ra:
        if k == "message":
            assert list(ra[k]) == list(rb[k])
        else:
            assert ra[k].tobytes() == rb[k].tobytes(), k


@pytest.fixture
def trust_flaky(monkeypatch):
    """FLAKY is not one of gcsbi's own factories: trust it (inherited by subprocesses)."""
    monkeypatch.setenv("GCSBI_TRUSTED_FACTORIES", FLAKY)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> SimulationBank:
    bank = _create(tmp_path_factory.mktemp("ref") / "ref.zarr")
    assert bank.generate(progress=False) == 6
    return bank


# ----------------------------------------------------------------------------- create / config


def test_config_is_stored_in_attrs(reference):
    reopened = SimulationBank.open(reference.path)
    cfg = reopened._group.attrs["gcsbi_bank"]
    assert cfg["simulator_factory"] == TOY and cfg["factory_kwargs"] == {"size": 8}
    assert (cfg["n"], cfg["chunk_size"], cfg["seed"]) == (N, CHUNK, SEED)
    assert cfg["param_names"] == ["log10_flux", "width", "colour"]
    assert cfg["output_shape"] == [3, 8, 8]
    assert [p["name"] for p in cfg["prior"]["parameters"]] == cfg["param_names"]
    assert cfg["gcsbi_version"] and cfg["simulator_spec"]["simulator"]["size"] == 8
    assert reopened.n_chunks == 6 and reopened.is_complete and reopened.missing_chunks() == []


def test_load_contents_are_valid(reference):
    theta, x = reference.load()
    assert theta.shape == (N, 3) and x.shape == (N, 3, 8, 8)
    assert theta.dtype == x.dtype == torch.float32
    prior = ToyImageSimulator(size=8).prior
    assert prior.in_support(theta).all() and torch.isfinite(x).all()
    # row 9 is row 1 of chunk 1: reproduce it from the documented seeds
    t_seed, s_seed = chunk_seeds(SEED, 1)
    g = torch.Generator().manual_seed(t_seed)
    expect = prior.low + (prior.high - prior.low) * torch.rand((CHUNK, 3), generator=g)
    torch.testing.assert_close(theta[CHUNK : 2 * CHUNK], expect, rtol=0, atol=0)
    torch.testing.assert_close(x[CHUNK : 2 * CHUNK], ToyImageSimulator(size=8)(expect, seed=s_seed))


def test_seeds_differ_between_chunks_and_banks(tmp_path, reference):
    assert len({chunk_seeds(SEED, i) for i in range(100)}) == 100
    other = _create(tmp_path / "other.zarr", seed=SEED + 1)
    other.generate(progress=False)
    assert not torch.equal(other.load()[0], reference.load()[0])


@pytest.mark.parametrize("kwargs, match", [
    ({"simulator_factory": "gcsbi.testing.toy.ToyImageSimulator"}, "module:function"),
    ({"simulator_factory": "gcsbi.nope:Sim"}, "cannot import"),
    ({"factory_kwargs": {"size": object()}}, "JSON"),
    ({"n": 0}, "n must be"),
    ({"chunk_size": 2.5}, "chunk_size must be"),
    ({"seed": -1}, "seed must be"),
])
def test_create_rejects_bad_arguments(tmp_path, kwargs, match):
    args = {"simulator_factory": TOY, "factory_kwargs": {"size": 8}, "n": 10, "chunk_size": 4, "seed": 0}
    with pytest.raises(GcsbiValueError, match=match):
        SimulationBank.create(tmp_path / "b.zarr", **{**args, **kwargs})


def test_create_refuses_to_overwrite(tmp_path, reference):
    path = tmp_path / "b.zarr"
    _create(path)
    with pytest.raises(GcsbiFileError, match="already exists"):
        _create(path)
    bank = SimulationBank.create(path, simulator_factory=TOY, factory_kwargs={"size": 8}, n=3, chunk_size=2,
                                 seed=0, overwrite=True)
    assert bank.n == 3


# ----------------------------------------------------------------------------- determinism / resume


def test_order_of_chunks_does_not_matter(tmp_path, reference):
    bank = _create(tmp_path / "b.zarr")
    assert bank.generate(chunks=[5, 2], progress=False) == 2
    assert bank.missing_chunks() == [0, 1, 3, 4]
    assert bank.load()[0].shape == (CHUNK + 5, 3)  # partial bank: only finished chunks
    with pytest.raises(GcsbiValueError, match="incomplete"):
        bank.load(only_done=False)
    assert bank.generate(progress=False) == 4
    assert bank.generate(progress=False) == 0  # nothing left, nothing recomputed
    _assert_same(bank, reference)


def test_two_worker_processes_give_identical_bytes(tmp_path, reference):
    bank = _create(tmp_path / "b.zarr")
    t0 = time.perf_counter()
    assert bank.generate(workers=2, progress=False) == 6
    print(f"2 local workers: {time.perf_counter() - t0:.2f} s (includes worker start-up)")
    _assert_same(bank, reference)


def test_dask_scheduler_gives_identical_bytes(tmp_path, reference):
    distributed = pytest.importorskip("distributed")
    bank = _create(tmp_path / "b.zarr")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster:
        with pytest.raises(GcsbiValueError, match="not both"):
            bank.generate(workers=2, scheduler=cluster.scheduler_address)
        assert bank.generate(scheduler=cluster.scheduler_address, progress=False) == 6
    _assert_same(bank, reference)


def test_keyboard_interrupt_then_resume(tmp_path, reference, monkeypatch):
    bank = _create(tmp_path / "b.zarr")
    real, calls = bank_mod._compute_and_write, []

    def interrupted(path, chunk, *trusted):
        if len(calls) == 3:
            raise KeyboardInterrupt
        calls.append(chunk)
        return real(path, chunk, *trusted)

    monkeypatch.setattr(bank_mod, "_compute_and_write", interrupted)
    with pytest.raises(KeyboardInterrupt):
        bank.generate(progress=False)
    monkeypatch.undo()
    assert SimulationBank.open(bank.path).done_chunks().sum() == 3
    assert bank.generate(progress=False) == 3  # only the missing ones
    _assert_same(bank, reference)


def test_half_written_chunk_is_recomputed(tmp_path, reference):
    bank = _create(tmp_path / "b.zarr")
    bank.generate(progress=False)
    lo, hi = bank.config.chunk_bounds(3)
    bank._group["x"][lo:hi] = 123.0  # a worker died after writing x, before the done flag
    bank._group["failed"][lo:hi] = 1
    bank.invalidate([3])
    assert bank.missing_chunks() == [3]
    assert bank.generate(progress=False) == 1
    _assert_same(bank, reference)


def test_killed_process_then_resume(tmp_path, reference, trust_flaky):
    """SIGKILL a real ``generate`` half-way; the rerun loses and duplicates nothing."""
    path = tmp_path / "b.zarr"
    bank = SimulationBank.create(path, simulator_factory=FLAKY, factory_kwargs={"size": 8}, n=N,
                                 chunk_size=CHUNK, seed=SEED)
    env = {**os.environ, "GCSBI_TEST_BANK_SLEEP": "0.25",
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), str(Path(__file__).parents[1]), os.environ.get("PYTHONPATH", "")])}
    code = ("import torch; torch.set_num_threads(1); from gcsbi.bank import SimulationBank; "
            f"SimulationBank.open({str(path)!r}).generate(progress=False)")
    proc = subprocess.Popen([sys.executable, "-c", code], env=env)
    try:
        deadline = time.monotonic() + 60
        while bank.done_chunks().sum() < 2:
            assert proc.poll() is None and time.monotonic() < deadline, "generation never got going"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    done = int(bank.done_chunks().sum())
    assert 2 <= done < 6
    assert bank.generate(progress=False) == 6 - done
    full = SimulationBank.create(tmp_path / "full.zarr", simulator_factory=FLAKY, factory_kwargs={"size": 8}, n=N,
                                 chunk_size=CHUNK, seed=SEED)
    full.generate(progress=False)
    _assert_same(bank, full)


# ----------------------------------------------------------------------------- failures


def test_failed_rows_are_recorded_not_stored_as_nan(tmp_path, reference, trust_flaky):
    bank = SimulationBank.create(tmp_path / "b.zarr", simulator_factory=FLAKY, factory_kwargs={"size": 8},
                                 n=N, chunk_size=CHUNK, seed=SEED)
    bank.generate(progress=False)
    a = _arrays(bank)
    theta = a["theta"]
    expect = (theta[:, 1] > 2.6) | (theta[:, 2] > 0.35)
    assert expect.any() and not expect.all()
    np.testing.assert_array_equal(a["failed"].astype(bool), expect)
    assert np.isfinite(a["x"]).all() and (a["x"][expect] == 0).all()
    assert all("blob too wide" in m for m in a["message"][theta[:, 1] > 2.6])
    assert all("non-finite" in m for m in a["message"][(theta[:, 2] > 0.35) & (theta[:, 1] <= 2.6)])
    log = bank._group.attrs["failures"]
    assert bank._group.attrs["n_failed"] == len(log) == expect.sum()
    assert [e["row"] for e in log] == list(np.flatnonzero(expect))
    # rows of chunks that did not fail keep the batch's bytes
    ok_chunks = [c for c in range(6) if not expect[c * CHUNK : (c + 1) * CHUNK].any()]
    assert ok_chunks
    ref = _arrays(reference)
    for c in ok_chunks:
        sl = slice(c * CHUNK, min((c + 1) * CHUNK, N))
        assert a["x"][sl].tobytes() == ref["x"][sl].tobytes()
    # loaders skip failed rows unless asked
    theta_ok, x_ok = bank.load()
    assert len(theta_ok) == (~expect).sum() and torch.isfinite(x_ok).all()
    assert len(bank.load(include_failed=True)[0]) == N
    assert len(bank.dataset()) == (~expect).sum()
    assert bank.info()["rows_failed"] == expect.sum()


def test_wrong_output_shape_aborts(tmp_path):
    bank = _create(tmp_path / "b.zarr")
    bank._group.attrs["gcsbi_bank"] = {**bank._group.attrs["gcsbi_bank"], "factory_kwargs": {"size": 6}}
    # the stored shape says 8x8, the simulator now makes 6x6: a contract violation, not a row failure
    bank2 = SimulationBank.open(bank.path)
    with pytest.raises(bank_mod.GcsbiRuntimeError, match="shape"):
        bank2.generate(progress=False)
    assert bank2.missing_chunks() == list(range(6))


# ----------------------------------------------------------------------------- corruption


def test_missing_and_foreign_stores(tmp_path):
    with pytest.raises(GcsbiFileError, match="not found"):
        SimulationBank.open(tmp_path / "nope.zarr")
    (tmp_path / "empty").mkdir()
    with pytest.raises(GcsbiFileError, match="not a"):
        SimulationBank.open(tmp_path / "empty")
    import zarr

    zarr.open_group(str(tmp_path / "plain.zarr"), mode="w")
    with pytest.raises(GcsbiFileError, match="not a gcsbi simulation bank"):
        SimulationBank.open(tmp_path / "plain.zarr")


def test_broken_metadata_and_missing_array(tmp_path):
    bank = _create(tmp_path / "b.zarr")
    bank.generate(progress=False)
    (bank.path / "zarr.json").write_text("{not json")
    with pytest.raises(GcsbiFileError, match="not a readable"):
        SimulationBank.open(bank.path)
    bank = _create(tmp_path / "c.zarr")
    import shutil

    shutil.rmtree(bank.path / "done")
    with pytest.raises(GcsbiFileError, match="'done' is missing"):
        SimulationBank.open(bank.path)


def test_damaged_chunk_is_detected_and_repaired(tmp_path, reference):
    bank = _create(tmp_path / "b.zarr")
    bank.generate(progress=False)
    shard = bank.path / "x" / "c" / "2" / "0" / "0" / "0"
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(GcsbiFileError, match="chunk 2"):
        bank.load()
    assert bank.verify() == [2]
    bank.invalidate(bank.verify())
    assert bank.generate(progress=False) == 1 and bank.verify() == []
    _assert_same(bank, reference)


def test_lost_chunk_files_are_recomputed(tmp_path, reference):
    bank = _create(tmp_path / "b.zarr")
    bank.generate(progress=False)
    (bank.path / "theta" / "c" / "4" / "0").unlink()
    with pytest.raises(GcsbiFileError, match="missing"):
        bank.load()
    assert bank.generate(progress=False) == 1
    _assert_same(bank, reference)


# ----------------------------------------------------------------------------- loaders, CLI


def test_dataset_matches_load_and_pickles(reference):
    theta, x = reference.load()
    ds = pickle.loads(pickle.dumps(reference.dataset()))
    loader = torch.utils.data.DataLoader(ds, batch_size=16, shuffle=False)
    t2, x2 = (torch.cat(parts) for parts in zip(*loader))
    assert torch.equal(t2, theta) and torch.equal(x2, x)


def test_cli_create_generate_info(tmp_path, capsys, reference):
    from gcsbi.cli import main

    path = str(tmp_path / "cli.zarr")
    common = ["--factory", TOY, "--kwargs", '{"size": 8}', "--n", str(N), "--chunk-size", str(CHUNK)]
    assert main(["bank", "create", path, *common, "--seed", str(SEED)]) == 0
    assert main(["bank", "generate", path, "--no-progress"]) == 0
    assert "6/6 chunks done" in capsys.readouterr().out
    _assert_same(SimulationBank.open(path), reference)
    assert main(["bank", "info", path, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["chunks_done"] == 6 and info["rows_failed"] == 0
    assert main(["bank", "info", path]) == 0 and "chunks done" in capsys.readouterr().out
    assert main(["bank", "create", path, *common, "--seed", "1"]) == 1  # exists
    assert "already exists" in capsys.readouterr().err
    assert main(["bank", "create", str(tmp_path / "x.zarr"), "--factory", TOY, "--kwargs", "[1",
                 "--n", "4", "--seed", "0"]) == 1
    assert main(["bank", "info", str(tmp_path / "missing.zarr")]) == 1
    assert main(["bank"]) == 2


@pytest.mark.slow
def test_dask_worker_processes(tmp_path, reference):
    """Real Dask worker processes (separate interpreters writing to the shared store)."""
    distributed = pytest.importorskip("distributed")
    bank = _create(tmp_path / "b.zarr")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        assert bank.generate(scheduler=cluster.scheduler_address, progress=False) == 6
    _assert_same(bank, reference)
