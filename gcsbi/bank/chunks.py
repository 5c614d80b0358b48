"""Computing one chunk of a simulation bank: seeds, prior draws, simulator calls, writing.

Chunk ``i`` of a bank with master seed ``seed`` is a pure function of ``(seed, i)``: theta
comes from a ``torch.Generator`` seeded by :func:`chunk_seeds`, the simulator seed from the
same ``numpy.random.SeedSequence([seed, i])``. When a batch raises, the rows are retried one
by one (each with its own seed) to find the culprits; failed and non-finite rows are recorded,
their x stored as zeros. :func:`_compute_and_write` runs in any process (this one, a local
worker, a Dask worker): it re-reads the bank's config from the store.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .factory import build_simulator, check_trusted
from .format import _fmt, open_group, read_config, truth_array
from ..errors import GcsbiRuntimeError

if TYPE_CHECKING:
    from .format import BankConfig

__all__ = ["chunk_seeds"]

_SEED_MASK = (1 << 63) - 1


# ----------------------------------------------------------------------------- seeds, simulator


def chunk_seeds(seed: int, chunk: int, row: int | None = None) -> tuple[int, int]:
    """(theta seed, simulator seed) of a chunk, or of one row of it (row-by-row retries)."""
    entropy = [int(seed), int(chunk)] + ([] if row is None else [int(row) + 1])
    a, b = np.random.SeedSequence(entropy).generate_state(2, dtype=np.uint64)
    return int(a) & _SEED_MASK, int(b) & _SEED_MASK


_SIM_CACHE: dict[tuple[str, str], Any] = {}
_SIM_LOCK = threading.Lock()
_GLOBAL_RNG_LOCK = threading.Lock()


def _cached_simulator(cfg: BankConfig, trusted: bool = False) -> Any:
    check_trusted(cfg.simulator_factory, trusted=trusted)  # also for a simulator already cached
    key = (cfg.simulator_factory, json.dumps(cfg.factory_kwargs, sort_keys=True))
    with _SIM_LOCK:
        if key not in _SIM_CACHE:
            _SIM_CACHE[key] = build_simulator(cfg.simulator_factory, cfg.factory_kwargs, trusted=trusted)
        return _SIM_CACHE[key]


def _sample_prior(prior: Any, m: int, seed: int) -> torch.Tensor:
    """m draws from the prior, reproducible from ``seed`` (thread-safe for box priors)."""
    low, high = getattr(prior, "low", None), getattr(prior, "high", None)
    if isinstance(low, torch.Tensor) and isinstance(high, torch.Tensor) and low.ndim == 1:
        g = torch.Generator().manual_seed(seed)
        u = torch.rand((m, low.shape[0]), generator=g, dtype=torch.float32)
        return low.float().cpu() + (high - low).float().cpu() * u
    with _GLOBAL_RNG_LOCK, torch.random.fork_rng(devices=[]):  # generic prior: global RNG
        torch.manual_seed(seed)
        return torch.as_tensor(prior.sample((m,)), dtype=torch.float32).reshape(m, -1)


# ----------------------------------------------------------------------------- one chunk


@dataclass(frozen=True)
class _ChunkResult:
    chunk: int
    n_failed: int
    messages: tuple[tuple[int, str], ...]  # (global row, message) of failed rows


class _ContractError(GcsbiRuntimeError):
    """The simulator broke its contract (output shape): abort instead of logging a row."""


def _checked_output(out: Any, m: int, shape: tuple[int, ...], factory: str) -> np.ndarray:
    arr = np.asarray(torch.as_tensor(out).detach().cpu(), dtype=np.float32)
    if arr.shape != (m, *shape):  # a contract violation, not a per-row failure: fail loudly
        raise _ContractError(f"simulator {factory} returned shape {arr.shape}, expected {(m, *shape)}")
    return arr


def _call(sim: Any, cfg: BankConfig, theta: torch.Tensor, seed: int) -> dict[str, np.ndarray]:
    """x and the bank's truth maps of a batch, shapes checked. The x of a row is the same
    whether or not truths are stored (the simulator draws nothing for them)."""
    m = len(theta)
    if not cfg.truth:
        return {"x": _checked_output(sim(theta, seed=seed), m, cfg.output_shape, cfg.simulator_factory)}
    out = sim.simulate(theta, seed=seed, return_truth=True)
    res = {"x": _checked_output(out["x"], m, cfg.output_shape, cfg.simulator_factory)}
    for name, shape in cfg.truth:
        if name not in out:
            raise _ContractError(f"simulator {cfg.simulator_factory} returned no truth {name!r}")
        res[name] = _checked_output(out[name], m, shape, cfg.simulator_factory)
    return res


def _simulate_chunk(sim: Any, cfg: BankConfig, chunk: int) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray,
                                                                     list[str]]:
    lo, hi = cfg.chunk_bounds(chunk)
    m = hi - lo
    theta_seed, sim_seed = chunk_seeds(cfg.seed, chunk)
    theta = _sample_prior(sim.prior, m, theta_seed)
    arrays = {"x": np.zeros((m, *cfg.output_shape), dtype=np.float32)}
    arrays |= {name: np.zeros((m, *shape), dtype=np.float32) for name, shape in cfg.truth}
    messages = [""] * m
    try:
        for name, value in _call(sim, cfg, theta, sim_seed).items():
            arrays[name][:] = value
    except _ContractError:
        raise
    except Exception:  # the batch failed: retry row by row to find the culprits
        for j in range(m):
            try:
                for name, value in _call(sim, cfg, theta[j : j + 1], chunk_seeds(cfg.seed, chunk, j)[1]).items():
                    arrays[name][j] = value[0]
            except _ContractError:
                raise
            except Exception as exc:
                messages[j] = _fmt(exc)
    for name, arr in arrays.items():
        bad = ~np.isfinite(arr.reshape(m, -1)).all(axis=1)
        for j in np.flatnonzero(bad):
            if not messages[j]:
                what = "output" if name == "x" else f"truth {name!r}"
                messages[j] = f"non-finite {what}: {int((~np.isfinite(arr[j])).sum())} NaN/inf values"
    failed = np.array([bool(s) for s in messages], dtype=np.uint8)
    for arr in arrays.values():
        arr[failed.astype(bool)] = 0.0  # never store NaN/inf as data
    return theta.numpy(), arrays, failed, messages


def _write(group: Any, path: str, name: str, chunk: int, lo: int, hi: int, value: np.ndarray) -> None:
    """Write the rows of one chunk; a damaged old file of that chunk (e.g. a truncated shard whose
    index zarr must read before rewriting it) is removed and the write tried once more."""
    arr = group[name]
    try:
        arr[lo:hi] = value
    except Exception:
        from pathlib import Path

        old = Path(path, name, "c", str(chunk), *["0"] * (arr.ndim - 1))
        if not old.is_file():
            raise
        old.unlink()
        arr[lo:hi] = value


def _compute_and_write(path: str, chunk: int, trusted_factory: str | None = None) -> _ChunkResult:
    """Compute one chunk and write it into the store at ``path`` (runs in any process).

    ``trusted_factory``: the factory the caller trusted; it runs only if the store still
    names that one (the worker re-reads the config from disk).
    """

    group = open_group(path, mode="r+")
    cfg = read_config(group, path)
    sim = _cached_simulator(cfg, trusted=cfg.simulator_factory == trusted_factory)
    theta, arrays, failed, messages = _simulate_chunk(sim, cfg, chunk)
    lo, hi = cfg.chunk_bounds(chunk)
    _write(group, path, "theta", chunk, lo, hi, theta)
    _write(group, path, "x", chunk, lo, hi, arrays["x"])
    for name in cfg.truth_names:
        _write(group, path, truth_array(name), chunk, lo, hi, arrays[name])
    group["failed"][lo:hi] = failed
    group["message"][lo:hi] = np.array(messages, dtype=str)
    group["done"][chunk] = True  # last: a chunk is only done once all its data is on disk
    log = tuple((lo + j, s) for j, s in enumerate(messages) if s)
    return _ChunkResult(chunk, int(failed.sum()), log)
