"""The simulator's worker processes: each holds one copy of the simulator and runs mock jobs.

The process policy (start method, SIGINT, exit with the parent) is shared with the bank's
workers in :mod:`gcsbi.simulator.processes`.
"""

from __future__ import annotations

import os
import pickle
from concurrent.futures import ProcessPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..errors import GcsbiValueError
from .processes import ignore_sigint_and_watch, mp_context

if TYPE_CHECKING:
    from .core import ClusterSimulator

__all__: list[str] = []  # private to the simulator

#: The simulator of this worker process (set by _pool_init) and how many observation models it built.
_WORKER_SIM: ClusterSimulator | None = None
_WORKER_MODEL_BUILDS = 0


def _mp_context() -> Any:
    return mp_context("gcsbi.simulator.core")  # workers unpickle a ClusterSimulator: preload its module


def _pool_init(main_pid: int, blob: bytes) -> None:
    """Initializer of a pool worker: SIGINT ignored, exit with ``main_pid``, one torch thread, the simulator."""
    global _WORKER_SIM
    ignore_sigint_and_watch(main_pid)
    torch.set_num_threads(1)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    _WORKER_SIM = pickle.loads(blob)


def _pool_job(job: tuple) -> dict[str, np.ndarray]:
    global _WORKER_MODEL_BUILDS
    sim = _WORKER_SIM
    if sim is None:  # pragma: no cover - _pool_init always runs first
        raise RuntimeError("simulator worker used without its initializer")
    built = sim._model is None
    out = _simulate_job(job, sim)
    _WORKER_MODEL_BUILDS += built
    return out


def _worker_info() -> tuple[int, int]:
    """(pid, observation models built so far) of the worker running it (diagnostics, tests)."""
    return os.getpid(), _WORKER_MODEL_BUILDS


def _shutdown_pool(pool: ProcessPoolExecutor) -> None:
    """Finalizer of a simulator's pool (close(), garbage collection or interpreter exit)."""
    try:
        pool.shutdown(wait=True, cancel_futures=True)
    except Exception:  # pragma: no cover - at exit the pool may already be gone
        pass


def _simulate_job(job: tuple, sim: ClusterSimulator) -> dict[str, np.ndarray]:
    row, seed, index, truth = job
    rng = np.random.default_rng(np.random.SeedSequence([seed, index]))
    x, obs = sim.simulate_one(row, rng=rng, return_truth=truth)
    out = {"x": x}
    if truth:
        out.update(image=obs.image, clean=obs.clean, background=obs.background)
        if obs.mass_map is not None:
            out["mass_map"] = obs.mass_map
    for k, v in out.items():
        if not np.all(np.isfinite(v)):
            raise GcsbiValueError(f"non-finite {k} for theta={row.tolist()} (seed {seed}, row {index})")
    return out
