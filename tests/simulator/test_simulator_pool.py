"""The simulator's persistent worker pool: reuse, same bytes, close, context manager, pickling, exit.

Tiny on purpose: hst-phat, low-mass rows (a few ms each once the observation model is built);
most of the time goes into starting workers and building their observation models once.
"""

from __future__ import annotations

import copy
import json
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest
import torch

from gcsbi.simulator import core, pool
from gcsbi.simulator.core import load_simulator
from proc_utils import wait_gone

ROOT = Path(__file__).resolve().parents[2]


def _theta(sim, n: int, seed: int) -> torch.Tensor:
    """n prior draws (explicit seed) made low-mass so they simulate in milliseconds."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        theta = sim.prior.sample((n,))
    theta[:, sim.param_names.index("log10_mass")] = torch.linspace(4.0, 4.3, n)
    return theta


def _infrastructure(proc: psutil.Process) -> bool:
    """The forkserver and resource tracker: one per interpreter, shared by every pool (bank too)."""
    try:
        cmd = " ".join(proc.cmdline())
    except psutil.Error:
        return True
    return "multiprocessing.forkserver" in cmd or "multiprocessing.resource_tracker" in cmd


def _descendants() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True)}


@pytest.fixture(scope="module")
def serial():
    return load_simulator("hst-phat")


def test_pool_is_reused_and_gives_serial_bytes(serial):
    theta = _theta(serial, 4, seed=11)
    ref = serial(theta, seed=3)
    with load_simulator("hst-phat", workers=2) as sim:
        assert sim.worker_pids == ()  # lazy: nothing started before the first call
        x1 = sim(theta, seed=3)
        pids = sim.worker_pids
        assert len(pids) == 2 and set(pids) <= _descendants()
        x2 = sim(_theta(serial, 3, seed=12), seed=4)
        assert sim.worker_pids == pids  # the same processes served the second call
        assert x1.numpy().tobytes() == ref.numpy().tobytes()
        assert x2.numpy().tobytes() == serial(_theta(serial, 3, seed=12), seed=4).numpy().tobytes()
        # each worker built its observation model once, over both calls
        info = {}
        for _ in range(8):
            pid, builds = sim._pool.submit(pool._worker_info).result()
            info[pid] = builds
        assert set(info) <= set(pids) and all(b <= 1 for b in info.values()), info
        if sys.platform.startswith("linux"):  # workers ignore SIGINT (the parent handles Ctrl-C)
            for pid in pids:
                status = Path(f"/proc/{pid}/status").read_text()
                ign = int(next(line for line in status.splitlines() if line.startswith("SigIgn:")).split()[1], 16)
                assert ign & (1 << (signal.SIGINT - 1)), pid


def test_close_context_manager_and_lazy_reopen(serial):
    theta = _theta(serial, 2, seed=21)
    with load_simulator("hst-phat", workers=2) as sim:
        x = sim(theta, seed=5)
        pids = sim.worker_pids
        assert pids
    assert sim.worker_pids == () and not wait_gone(pids)  # leaving the block closed the pool
    assert all(_infrastructure(psutil.Process(p)) for p in _descendants() - set(pids) if psutil.pid_exists(p))
    sim.close()  # idempotent
    assert torch.equal(sim(theta, seed=5), x)  # a closed simulator reopens a pool on the next call
    new = sim.worker_pids
    assert new and not set(new) & set(pids)
    sim.close()
    sim.close()
    assert not wait_gone(new)
    assert torch.equal(serial(theta, seed=5), x)


def test_pickle_and_deepcopy_with_a_live_pool(serial):
    theta = _theta(serial, 2, seed=31)
    with load_simulator("hst-phat", workers=2) as sim:
        x = sim(theta, seed=6)
        twin, clone = pickle.loads(pickle.dumps(sim)), copy.deepcopy(sim)
        for other in (twin, clone):  # no pool travels with a copy
            assert other.worker_pids == () and other.workers == 2 and other.spec == sim.spec
            assert other.sim_spec == sim.sim_spec
        with twin:
            assert torch.equal(twin(theta, seed=6), x)  # its own pool, the same bytes
            assert twin.worker_pids and not set(twin.worker_pids) & set(sim.worker_pids)
        clone.workers = 1  # in process (the observation model is cached per process): quick
        assert torch.equal(clone(theta, seed=6), x)
        assert len(sim.worker_pids) == 2  # copies never touch the original's pool
        assert torch.equal(sim(theta, seed=6), x)


_CHILD = """
import json, os, signal, sys
import torch
from gcsbi.simulator.core import load_simulator

if __name__ == "__main__":
    sim = load_simulator("hst-phat", workers=2)
    theta = sim.prior.sample((2,))
    theta[:, sim.param_names.index("log10_mass")] = 4.0
    sim(theta, seed=0)
    print(json.dumps(sim.worker_pids), flush=True)
    if sys.argv[1] == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    # "exit": the pool is left open; the exit hooks must shut it down quietly
"""


@pytest.mark.parametrize("how", ["exit", "kill"])
def test_no_worker_outlives_its_parent(tmp_path, how):
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(_CHILD))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, str(script), how], capture_output=True, text=True, env=env,
                          timeout=120, cwd=tmp_path)
    pids = json.loads(proc.stdout.splitlines()[0])
    assert len(pids) == 2
    if how == "exit":
        assert proc.returncode == 0 and proc.stderr == "", proc.stderr
        assert proc.stdout.strip() == json.dumps(pids)  # nothing printed at exit
    else:
        assert proc.returncode == -signal.SIGKILL
    assert not wait_gone(pids), pids


def test_a_dead_worker_is_replaced(serial):
    theta = _theta(serial, 2, seed=41)
    with load_simulator("hst-phat", workers=2) as sim:
        x = sim(theta, seed=7)
        pids = sim.worker_pids
        os.kill(pids[0], signal.SIGKILL)
        assert not wait_gone(pids[:1])
        deadline = time.monotonic() + 10
        while not getattr(sim._pool, "_broken", False) and time.monotonic() < deadline:
            time.sleep(0.05)  # the pool notices in its manager thread
        assert torch.equal(sim(theta, seed=7), x)  # a new pool, started by this call
        assert sim.worker_pids and not set(sim.worker_pids) & set(pids)
