"""Simulation bank under hostile files, concurrent runs, kills and bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import gcsbi.bank.store as bank_mod
from gcsbi.bank.store import SimulationBank
from gcsbi.cli import main
from gcsbi.errors import GcsbiFileError, GcsbiRuntimeError, GcsbiValueError
from proc_utils import wait_gone
from gcsbi.testing.toy import ToyImageSimulator
from test_bank import CHUNK, FLAKY, N, SEED, TOY, _assert_same, _create  # same folder, on sys.path

SLOW = "test_bank_robust:SlowToy"
TESTS = os.pathsep.join([str(Path(__file__).parent), str(Path(__file__).parents[1])])  # test_bank*, proc_utils


class SlowToy(ToyImageSimulator):
    """The toy (same bytes), sleeping ``GCSBI_TEST_BANK_SLEEP`` seconds per call."""

    def __call__(self, theta: torch.Tensor, *, seed: int | None = None) -> torch.Tensor:
        time.sleep(float(os.environ.get("GCSBI_TEST_BANK_SLEEP", "0")))
        return super().__call__(theta, seed=seed)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> SimulationBank:
    bank = _create(tmp_path_factory.mktemp("ref") / "ref.zarr")
    bank.generate(progress=False)
    return bank


@pytest.fixture
def no_trusted_env(monkeypatch):
    monkeypatch.delenv("GCSBI_TRUSTED_FACTORIES", raising=False)


def _one_error_line(err: str) -> str:
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gcsbi bank: error:"), err
    return lines[0]


def _set_factory(path: Path, factory: str, kwargs: dict) -> None:
    """Edit the factory stored in a bank's zarr.json, as a hostile sender of the bank would."""
    meta_path = path / "zarr.json"
    meta = json.loads(meta_path.read_text())
    meta["attributes"]["gcsbi_bank"].update(simulator_factory=factory, factory_kwargs=kwargs)
    meta_path.write_text(json.dumps(meta))


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([TESTS, os.environ.get("PYTHONPATH", "")]),
            "OMP_NUM_THREADS": "1", **extra}


# ----------------------------------------------------------------------------- 1. untrusted factories


@pytest.fixture
def hostile(tmp_path, no_trusted_env) -> tuple[Path, Path]:
    """A finished toy bank whose stored factory was replaced by ``os:system("touch pwned")``."""
    bank = _create(tmp_path / "hostile.zarr")
    bank.generate(progress=False)
    bank.invalidate([5])  # something left to generate
    marker = tmp_path / "pwned"
    _set_factory(bank.path, "os:system", {"command": f"touch {marker}"})
    return bank.path, marker


def test_hostile_factory_is_not_run_by_cli(hostile, capsys):
    path, marker = hostile
    assert main(["bank", "generate", str(path), "--no-progress"]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert "os:system" in line and "not trusted" in line and "--trust-factory" in line
    assert "GCSBI_TRUSTED_FACTORIES" in line
    assert not marker.exists()
    assert main(["bank", "info", str(path), "--json"]) == 0  # reading a bank runs no factory
    assert json.loads(capsys.readouterr().out)["simulator_factory"] == "os:system"
    assert not marker.exists()


@pytest.mark.parametrize("action", ["simulator", "generate", "generate_2_workers", "train"])
def test_hostile_factory_is_not_run_by_api(hostile, action, tmp_path, capsys):
    path, marker = hostile
    bank = SimulationBank.open(path)  # opening and reading are safe...
    assert bank.load()[0].shape == (N - 5, 3)
    with pytest.raises(GcsbiValueError, match="not trusted"):  # ...running the factory is not
        if action == "simulator":
            bank.simulator()
        elif action == "generate":
            bank.generate(progress=False)
        elif action == "generate_2_workers":
            bank.generate(workers=2, progress=False)
        else:
            rc = main(["train", str(path), "--out", str(tmp_path / "p.pt"), "--max-epochs", "1"])
            assert rc == 1
            raise GcsbiValueError(capsys.readouterr().err)
    assert not marker.exists()
    assert bank.missing_chunks() == [5]


@pytest.mark.parametrize("factory, kwargs", [
    # gcsbi functions that import or delete what their arguments name are not simulator factories
    ("gcsbi.inference.cli:resolve_simulator", {"spec": "os:system", "kwargs": {"command": "touch {marker}"}}),
    ("gcsbi.bank:build_simulator", {"factory": "os:system", "kwargs": {"command": "touch {marker}"}}),
    ("gcsbi.cli:main", {"argv": ["bank", "create", "{victim}", "--factory", TOY, "--n", "1", "--seed", "0",
                                 "--overwrite"]}),
    ("gcsbi.bank:SimulationBank.create", {"path": "{victim}", "simulator_factory": TOY, "n": 1,
                                          "chunk_size": 1, "seed": 0, "overwrite": True}),
])
def test_gcsbi_gadgets_are_not_trusted(hostile, factory, kwargs):
    path, marker = hostile
    victim = marker.parent / "victim"
    victim.mkdir()
    (victim / "precious.txt").write_text("keep me")
    text = json.dumps(kwargs).replace("{marker}", str(marker)).replace("{victim}", str(victim))
    _set_factory(path, factory, json.loads(text))
    with pytest.raises(GcsbiValueError, match="not trusted"):
        SimulationBank.open(path).generate(progress=False)
    assert not marker.exists() and (victim / "precious.txt").read_text() == "keep me"


def test_trusting_a_factory(tmp_path, monkeypatch, no_trusted_env, capsys):
    with pytest.raises(GcsbiValueError, match="not trusted"):
        _create(tmp_path / "a.zarr", factory=FLAKY)
    assert not (tmp_path / "a.zarr").exists()
    # keyword
    bank = SimulationBank.create(tmp_path / "a.zarr", simulator_factory=FLAKY, factory_kwargs={"size": 8}, n=N,
                                 chunk_size=CHUNK, seed=SEED, trust_factory=True)
    assert bank.generate(chunks=[0], progress=False) == 1  # the bank keeps the trust it was created with
    again = SimulationBank.open(bank.path)
    with pytest.raises(GcsbiValueError, match="not trusted"):
        again.generate(progress=False)
    assert again.generate(chunks=[1], progress=False, trust_factory=True) == 1
    assert SimulationBank.open(bank.path, trust_factory=True).simulator().output_shape == (3, 8, 8)
    # environment variable (inherited by worker processes)
    monkeypatch.setenv("GCSBI_TRUSTED_FACTORIES", f"gcsbi.simulator:load_simulator, {FLAKY}")
    assert SimulationBank.open(bank.path).generate(chunks=[2, 3], workers=2, progress=False) == 2
    monkeypatch.delenv("GCSBI_TRUSTED_FACTORIES")
    # command line
    assert main(["bank", "generate", str(bank.path), "--no-progress"]) == 1
    assert "not trusted" in _one_error_line(capsys.readouterr().err)
    assert main(["bank", "generate", str(bank.path), "--no-progress", "--trust-factory"]) == 0
    assert SimulationBank.open(bank.path).is_complete
    assert main(["bank", "create", str(tmp_path / "c.zarr"), "--factory", FLAKY, "--kwargs", '{"size": 8}',
                 "--n", "4", "--seed", "0"]) == 1
    assert main(["bank", "create", str(tmp_path / "c.zarr"), "--factory", FLAKY, "--kwargs", '{"size": 8}',
                 "--n", "4", "--seed", "0", "--trust-factory"]) == 0


# ----------------------------------------------------------------------------- 2. one generate at a time


def test_second_generate_is_refused_while_one_runs(tmp_path, reference, monkeypatch):
    bank = SimulationBank.create(tmp_path / "b.zarr", simulator_factory=SLOW, factory_kwargs={"size": 8}, n=N,
                                 chunk_size=CHUNK, seed=SEED, trust_factory=True)
    code = ("from gcsbi.bank import SimulationBank; "
            f"SimulationBank.open({str(bank.path)!r}, trust_factory=True).generate(progress=False)")
    proc = subprocess.Popen([sys.executable, "-c", code], env=_env(GCSBI_TEST_BANK_SLEEP="3"))
    calls = []
    monkeypatch.setattr(bank_mod, "_compute_and_write", lambda *a, **k: calls.append(a))
    try:
        deadline = time.monotonic() + 60
        while bank.done_chunks().sum() < 1:
            assert proc.poll() is None and time.monotonic() < deadline, "generation never got going"
            time.sleep(0.05)
        with pytest.raises(GcsbiRuntimeError, match=f"being generated by another process \\(pid {proc.pid}\\)"):
            bank.generate(progress=False, trust_factory=True)
        with pytest.raises(GcsbiRuntimeError, match="being generated"):
            bank.invalidate([0])
        with pytest.raises(GcsbiRuntimeError, match="being generated"):
            SimulationBank.create(bank.path, simulator_factory=TOY, n=4, chunk_size=2, seed=0, overwrite=True)
        assert calls == [] and bank.done_chunks()[0]
    finally:
        proc.kill()  # the lock dies with its process: no stale lock
        proc.wait(timeout=30)
    monkeypatch.undo()
    bank.generate(progress=False, trust_factory=True)
    _assert_same(bank, reference)


# ----------------------------------------------------------------------------- 3. damaged chunks, CLI


def _damage(path: Path, chunk: int) -> None:
    shard = path / "x" / "c" / str(chunk) / "0" / "0" / "0"
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))


def test_info_reports_damage_then_invalidate_and_generate_repair(tmp_path, reference, capsys):
    bank = _create(tmp_path / "b.zarr")
    bank.generate(progress=False)
    _damage(bank.path, 2)
    path = str(bank.path)
    assert main(["bank", "info", path]) == 1
    out, err = capsys.readouterr()
    assert "damaged chunks     [2]" in out
    line = _one_error_line(err)
    assert "chunk" in line and "[2]" in line and f"gcsbi bank repair {path}" in line
    assert main(["bank", "info", path, "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["damaged_chunks"] == [2]
    assert main(["bank", "info", path, "--no-verify"]) == 0  # a quick look without reading every chunk
    with pytest.raises(GcsbiFileError, match=f"gcsbi bank repair {path}"):
        bank.load()  # the error's advice names the command
    assert main(["bank", "invalidate", path, "9"]) == 1
    assert "out of range" in _one_error_line(capsys.readouterr().err)
    assert main(["bank", "invalidate", path, "2"]) == 0
    assert main(["bank", "generate", path, "--no-progress"]) == 0
    assert main(["bank", "info", path]) == 0
    assert "damaged chunks     none" in capsys.readouterr().out
    _assert_same(SimulationBank.open(path), reference)


def test_repair_command(tmp_path, reference, capsys):
    bank = _create(tmp_path / "b.zarr")
    bank.generate(progress=False)
    _damage(bank.path, 1)
    _damage(bank.path, 4)
    assert main(["bank", "repair", str(bank.path), "--no-progress"]) == 0
    assert "damaged chunks [1, 4]" in capsys.readouterr().out
    _assert_same(SimulationBank.open(bank.path), reference)
    assert main(["bank", "repair", str(bank.path), "--no-progress"]) == 0
    assert "no damaged chunks" in capsys.readouterr().out


# ----------------------------------------------------------------------------- 4. kills and Ctrl-C

posix_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux process semantics")


def _start_busy(path: Path, *, driver: str, sleep: float = 1.0) -> tuple[subprocess.Popen, set[int]]:
    """Start ``bank generate --workers 2`` on a slow toy; return it and its descendants once busy."""
    psutil = pytest.importorskip("psutil")
    argv = ["bank", "generate", str(path), "--workers", "2", "--no-progress"]
    # SIGINT as in a terminal even when this suite runs with it ignored (e.g. started by nohup in the background)
    proc = subprocess.Popen([sys.executable, "-c", driver, *argv], env=_env(GCSBI_TEST_BANK_SLEEP=str(sleep),
                            GCSBI_TRUSTED_FACTORIES=SLOW), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    parent, deadline, kids = psutil.Process(proc.pid), time.monotonic() + 90, set()
    while True:  # the forkserver, the resource tracker and both workers
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        kids |= {p.pid for p in parent.children(recursive=True)}
        workers = []
        for p in parent.children(recursive=True):
            try:
                if p.ppid() != proc.pid:
                    workers.append(p)
            except psutil.NoSuchProcess:  # exited between listing and asking
                pass
        if len(workers) >= 2:
            return proc, kids
        time.sleep(0.05)


CLI = "import sys; from gcsbi.cli import main; sys.exit(main(sys.argv[1:]))"  # = python -m gcsbi


def _slow_bank(path: Path) -> SimulationBank:
    return SimulationBank.create(path, simulator_factory=SLOW, factory_kwargs={"size": 8}, n=N, chunk_size=CHUNK,
                                 seed=SEED, trust_factory=True)


@posix_only
def test_workers_die_with_a_killed_parent(tmp_path, reference):
    bank = _slow_bank(tmp_path / "b.zarr")
    proc, kids = _start_busy(bank.path, driver=CLI)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    assert wait_gone(kids) == [], "orphaned worker processes"
    bank.generate(progress=False, trust_factory=True)
    _assert_same(bank, reference)


@posix_only
@pytest.mark.parametrize("to", ["group", "parent"])
def test_ctrl_c_stops_workers_cleanly(tmp_path, reference, to):
    """Ctrl-C in a terminal reaches the process group; ``kill -INT`` only the parent. Chunks take
    30 s each here: the workers must be stopped, not waited for."""
    bank = _slow_bank(tmp_path / "b.zarr")
    proc, kids = _start_busy(bank.path, driver=CLI, sleep=30.0)
    time.sleep(3.0)  # let the workers finish starting up and enter their chunks (slow on a loaded machine)
    if to == "group":
        os.killpg(proc.pid, signal.SIGINT)
    else:
        os.kill(proc.pid, signal.SIGINT)
    t0 = time.monotonic()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0 and time.monotonic() - t0 < 10
    assert "Traceback" not in err and len(err.strip().splitlines()) <= 1, err  # the CLI's one line
    assert wait_gone(kids) == [], "worker processes left running"
    assert not bank.is_complete
    bank.generate(progress=False, trust_factory=True)
    _assert_same(bank, reference)


# ----------------------------------------------------------------------------- 5. bad factory kwargs


@pytest.mark.parametrize("kwargs, match", [('{"nope": 1}', "nope"), ('{"size": "big"}', "size")])
def test_bad_factory_kwargs_are_one_line_errors(tmp_path, capsys, kwargs, match):
    path = tmp_path / "b.zarr"
    assert main(["bank", "create", str(path), "--factory", TOY, "--kwargs", kwargs, "--n", "4", "--seed", "0"]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert match in line and TOY in line
    assert not path.exists()
    with pytest.raises(GcsbiValueError, match=match):
        SimulationBank.create(path, simulator_factory=TOY, factory_kwargs=json.loads(kwargs), n=4, chunk_size=2,
                              seed=0)


@pytest.mark.parametrize("edit, match", [
    ({"factory_kwargs": "size=8"}, "factory_kwargs"),
    ({"chunk_size": 0}, "chunk_size"),
    ({"n": "45"}, "'n'"),
    ({"simulator_factory": ["os", "system"]}, "simulator_factory"),
])
def test_malformed_stored_config_is_a_file_error(tmp_path, edit, match):
    bank = _create(tmp_path / "b.zarr")
    meta = json.loads((bank.path / "zarr.json").read_text())
    meta["attributes"]["gcsbi_bank"].update(edit)
    (bank.path / "zarr.json").write_text(json.dumps(meta))
    with pytest.raises(GcsbiFileError, match=match):
        SimulationBank.open(bank.path)



def test_stored_kwargs_may_not_set_workers(tmp_path):
    """A bank file must not make every chunk start its own process pool."""
    with pytest.raises(GcsbiValueError, match="workers"):
        SimulationBank.create(tmp_path / "w.zarr", simulator_factory="gcsbi.simulator:load_simulator",
                              factory_kwargs={"spec": "hst-phat", "workers": 500}, n=2, chunk_size=1, seed=0)


def test_private_gcsbi_modules_are_not_imported_for_a_typo_hint():
    from gcsbi.bank.factory import build_simulator

    with pytest.raises(GcsbiValueError, match="not trusted"):
        build_simulator("gcsbi.__main__.x:y", {})
