"""Simulation banks on disk (Zarr v3): resumable, parallel, order-independent generation.

A bank holds ``n`` pairs (theta, x) drawn from a simulator's prior, cut into chunks of
``chunk_size`` rows. Chunk ``i`` is a pure function of ``(seed, i)``: theta comes from a
``torch.Generator`` and the simulator seed from ``numpy.random.SeedSequence([seed, i])``, so
the bytes of a bank do not depend on how many workers wrote it, in which order, or how many
times generation was interrupted and resumed.

Layout of the Zarr group (``path``)::

    attrs["gcsbi_bank"]   config: factory, factory_kwargs, n, chunk_size, seed, param names,
                          output shape, prior and simulator specs, gcsbi version, format
    attrs["failures"]     log of failed rows (capped), rewritten after each ``generate``
    theta   (n, D)        float32, chunks (chunk_size, D); fill NaN (= not written)
    x       (n, C, H, W)  float32, one shard per chunk, one inner chunk per row (cheap
                          random access for training); fill NaN; failed rows hold zeros
    failed  (n,)          uint8 0/1; fill 255 (= not written)
    message (n,)          str, why a row failed ("" when it did not)
    done    (n_chunks,)   bool, one file per chunk, written *after* the chunk's data

Every array carries a CRC32C checksum, so a damaged chunk raises instead of being read.
A chunk whose ``done`` flag is unset (a worker killed half-way) is simply recomputed; a
``done`` chunk whose files disappeared is detected and recomputed by ``generate``.

Workers never receive a pickled simulator: they rebuild it from ``simulator_factory``
(``"module:function"``) and JSON ``factory_kwargs`` and write their chunks straight into the
store. With Dask (``generate(scheduler="tcp://host:8786")``) every worker must therefore be
able to import gcsbi and to see ``path`` on a shared filesystem (NFS, Lustre, ...); object
stores are not supported. Do not run two ``generate`` calls on one bank at the same time.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import math
import shutil
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import GcsbiFileError, GcsbiRuntimeError, GcsbiValueError

__all__ = ["BankConfig", "SimulationBank", "BankDataset", "chunk_seeds", "build_simulator"]

FORMAT_VERSION = 1
_ATTR = "gcsbi_bank"
_ARRAYS = ("theta", "x", "failed", "message", "done")
_MAX_LOG = 1000
_MAX_MESSAGE = 500
_SEED_MASK = (1 << 63) - 1


@dataclass(frozen=True)
class BankConfig:
    """Everything needed to (re)compute any chunk of a bank, stored in the Zarr attributes."""

    simulator_factory: str
    factory_kwargs: dict[str, Any]
    n: int
    chunk_size: int
    seed: int
    param_names: tuple[str, ...]
    output_shape: tuple[int, ...]
    prior: dict[str, Any]
    simulator_spec: dict[str, Any]
    gcsbi_version: str
    format_version: int = FORMAT_VERSION

    @property
    def n_chunks(self) -> int:
        return math.ceil(self.n / self.chunk_size)

    def chunk_bounds(self, chunk: int) -> tuple[int, int]:
        """Row range [lo, hi) of chunk ``chunk``."""
        lo = chunk * self.chunk_size
        return lo, min(lo + self.chunk_size, self.n)

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["param_names"], d["output_shape"] = list(self.param_names), list(self.output_shape)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> BankConfig:
        fields = {f.name for f in dataclasses.fields(cls)}
        missing = fields - set(d) - {"format_version"}
        if missing:
            raise GcsbiFileError(f"bank config is missing keys {sorted(missing)}")
        kw = {k: d[k] for k in fields if k in d}
        kw["param_names"] = tuple(kw["param_names"])
        kw["output_shape"] = tuple(int(s) for s in kw["output_shape"])
        return cls(**kw)


# ----------------------------------------------------------------------------- seeds, simulator


def chunk_seeds(seed: int, chunk: int, row: int | None = None) -> tuple[int, int]:
    """(theta seed, simulator seed) of a chunk, or of one row of it (row-by-row retries)."""
    entropy = [int(seed), int(chunk)] + ([] if row is None else [int(row) + 1])
    a, b = np.random.SeedSequence(entropy).generate_state(2, dtype=np.uint64)
    return int(a) & _SEED_MASK, int(b) & _SEED_MASK


def _import_factory(factory: str) -> Any:
    if not isinstance(factory, str) or factory.count(":") != 1:
        raise GcsbiValueError(f"simulator_factory must be 'module:function', got {factory!r}")
    module_name, attr = factory.split(":")
    try:
        obj = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise GcsbiValueError(f"cannot import simulator factory {factory!r}: {exc}") from exc
    if not callable(obj):
        raise GcsbiValueError(f"simulator factory {factory!r} is not callable")
    return obj


def build_simulator(factory: str, kwargs: dict[str, Any]) -> Any:
    """Build a simulator from ``"module:function"`` and JSON kwargs; checks the contract."""
    sim = _import_factory(factory)(**kwargs)
    missing = [a for a in ("prior", "param_names", "output_shape", "spec") if not hasattr(sim, a)]
    if missing or not callable(sim):
        raise GcsbiValueError(f"{factory} did not return a simulator (missing {missing or '__call__'})")
    return sim


_SIM_CACHE: dict[tuple[str, str], Any] = {}
_SIM_LOCK = threading.Lock()
_GLOBAL_RNG_LOCK = threading.Lock()


def _cached_simulator(cfg: BankConfig) -> Any:
    key = (cfg.simulator_factory, json.dumps(cfg.factory_kwargs, sort_keys=True))
    with _SIM_LOCK:
        if key not in _SIM_CACHE:
            _SIM_CACHE[key] = build_simulator(cfg.simulator_factory, cfg.factory_kwargs)
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


def _fmt(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:_MAX_MESSAGE]


class _ContractError(GcsbiRuntimeError):
    """The simulator broke its contract (output shape): abort instead of logging a row."""


def _checked_output(out: Any, m: int, shape: tuple[int, ...], factory: str) -> np.ndarray:
    arr = np.asarray(torch.as_tensor(out).detach().cpu(), dtype=np.float32)
    if arr.shape != (m, *shape):  # a contract violation, not a per-row failure: fail loudly
        raise _ContractError(f"simulator {factory} returned shape {arr.shape}, expected {(m, *shape)}")
    return arr


def _simulate_chunk(sim: Any, cfg: BankConfig, chunk: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    lo, hi = cfg.chunk_bounds(chunk)
    m = hi - lo
    theta_seed, sim_seed = chunk_seeds(cfg.seed, chunk)
    theta = _sample_prior(sim.prior, m, theta_seed)
    x = np.zeros((m, *cfg.output_shape), dtype=np.float32)
    messages = [""] * m
    try:
        x[:] = _checked_output(sim(theta, seed=sim_seed), m, cfg.output_shape, cfg.simulator_factory)
    except _ContractError:
        raise
    except Exception:  # the batch failed: retry row by row to find the culprits
        for j in range(m):
            try:
                out = sim(theta[j : j + 1], seed=chunk_seeds(cfg.seed, chunk, j)[1])
                x[j] = _checked_output(out, 1, cfg.output_shape, cfg.simulator_factory)[0]
            except _ContractError:
                raise
            except Exception as exc:
                messages[j] = _fmt(exc)
    bad = ~np.isfinite(x.reshape(m, -1)).all(axis=1)
    for j in np.flatnonzero(bad):
        if not messages[j]:
            messages[j] = f"non-finite output: {int((~np.isfinite(x[j])).sum())} NaN/inf values"
    failed = np.array([bool(s) for s in messages], dtype=np.uint8)
    x[failed.astype(bool)] = 0.0  # never store NaN/inf as data
    return theta.numpy(), x, failed, messages


def _compute_and_write(path: str, chunk: int) -> _ChunkResult:
    """Compute one chunk and write it into the store at ``path`` (runs in any process)."""
    group = _open_group(path, mode="r+")
    cfg = _read_config(group, path)
    theta, x, failed, messages = _simulate_chunk(_cached_simulator(cfg), cfg, chunk)
    lo, hi = cfg.chunk_bounds(chunk)
    group["theta"][lo:hi] = theta
    group["x"][lo:hi] = x
    group["failed"][lo:hi] = failed
    group["message"][lo:hi] = np.array(messages, dtype=str)
    group["done"][chunk] = True  # last: a chunk is only done once all its data is on disk
    log = tuple((lo + j, s) for j, s in enumerate(messages) if s)
    return _ChunkResult(chunk, int(failed.sum()), log)


def _mp_context() -> Any:
    """forkserver (workers fork from a server that already imported gcsbi.bank) or spawn.

    Never plain fork: torch and zarr's event-loop thread do not survive it.
    """
    import multiprocessing as mp

    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["gcsbi.bank"])
        return ctx
    return mp.get_context("spawn")


def _pool_init() -> None:
    torch.set_num_threads(1)


def _dask_task(path: str, chunk: int) -> _ChunkResult:
    _pool_init()
    return _compute_and_write(path, chunk)


# ----------------------------------------------------------------------------- store helpers


def _open_group(path: str | Path, *, mode: str) -> Any:
    import zarr

    p = Path(path)
    if not p.exists():
        raise GcsbiFileError(f"simulation bank not found: {p} (create it with SimulationBank.create)")
    try:
        return zarr.open_group(str(p), mode=mode)
    except Exception as exc:
        raise GcsbiFileError(f"{p} is not a readable Zarr v3 simulation bank: {_fmt(exc)}") from exc


def _read_config(group: Any, path: str | Path) -> BankConfig:
    raw = group.attrs.get(_ATTR)
    if not isinstance(raw, dict):
        raise GcsbiFileError(f"{path} is a Zarr group but not a gcsbi simulation bank (no '{_ATTR}' attribute)")
    if raw.get("format_version") != FORMAT_VERSION:
        raise GcsbiFileError(f"{path}: unsupported bank format {raw.get('format_version')!r} (expected {FORMAT_VERSION})")
    cfg = BankConfig.from_json(raw)
    expected = {"theta": (cfg.n, len(cfg.param_names)), "x": (cfg.n, *cfg.output_shape),
                "failed": (cfg.n,), "message": (cfg.n,), "done": (cfg.n_chunks,)}
    for name, shape in expected.items():
        try:
            arr = group[name]
        except Exception as exc:
            raise GcsbiFileError(f"{path}: bank array '{name}' is missing or unreadable ({_fmt(exc)})") from exc
        if tuple(arr.shape) != shape:
            raise GcsbiFileError(f"{path}: bank array '{name}' has shape {tuple(arr.shape)}, expected {shape}")
    return cfg


def _check_json(value: Any, what: str) -> Any:
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError) as exc:
        raise GcsbiValueError(f"{what} must be JSON-serialisable: {exc}") from exc


def _positive_int(value: Any, name: str, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise GcsbiValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


# ----------------------------------------------------------------------------- the bank


class SimulationBank:
    """A bank of (theta, x) simulations in a Zarr v3 group; see the module docstring.

    Use :meth:`create` for a new bank and :meth:`open` for an existing one, then
    :meth:`generate` (resumable) and :meth:`load` / :meth:`dataset`.
    """

    def __init__(self, path: str | Path, *, _group: Any = None) -> None:
        self.path = Path(path)
        self._group = _group if _group is not None else _open_group(self.path, mode="r+")
        self.config = _read_config(self._group, self.path)

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def create(cls, path: str | Path, *, simulator_factory: str, factory_kwargs: dict[str, Any] | None = None,
               n: int, chunk_size: int, seed: int, overwrite: bool = False) -> SimulationBank:
        """Create an empty bank (nothing simulated yet; call :meth:`generate`)."""
        import zarr
        from zarr.codecs import Crc32cCodec, ZstdCodec

        from . import __version__

        path = Path(path)
        n = _positive_int(n, "n")
        chunk_size = _positive_int(chunk_size, "chunk_size")
        seed = _positive_int(seed, "seed", minimum=0)
        kwargs = _check_json(dict(factory_kwargs or {}), "factory_kwargs")
        if path.exists():
            if not overwrite:
                raise GcsbiFileError(f"{path} already exists; pass overwrite=True or open it with SimulationBank.open")
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        sim = build_simulator(simulator_factory, kwargs)
        names = tuple(str(s) for s in sim.param_names)
        shape = tuple(int(s) for s in sim.output_shape)
        prior = {"name": getattr(sim.prior, "name", type(sim.prior).__name__),
                 "parameters": [dataclasses.asdict(s) for s in getattr(sim.prior, "specs", ())]}
        cfg = BankConfig(simulator_factory=simulator_factory, factory_kwargs=kwargs, n=n, chunk_size=chunk_size,
                         seed=seed, param_names=names, output_shape=shape, prior=_check_json(prior, "prior spec"),
                         simulator_spec=_check_json(sim.spec, "simulator spec"), gcsbi_version=__version__)
        codecs = {"compressors": (ZstdCodec(level=3), Crc32cCodec())}
        try:
            group = zarr.open_group(str(path), mode="w-")
            group.create_array("theta", shape=(n, len(names)), dtype="float32", chunks=(chunk_size, len(names)),
                               fill_value=np.nan, **codecs)
            group.create_array("x", shape=(n, *shape), dtype="float32", chunks=(1, *shape),
                               shards=(chunk_size, *shape), fill_value=np.nan, **codecs)
            group.create_array("failed", shape=(n,), dtype="uint8", chunks=(chunk_size,), fill_value=255, **codecs)
            group.create_array("message", shape=(n,), dtype=str, chunks=(chunk_size,), fill_value="")
            group.create_array("done", shape=(cfg.n_chunks,), dtype="bool", chunks=(1,), fill_value=False, **codecs)
            group.attrs.update({_ATTR: cfg.to_json(), "failures": [], "n_failed": 0})
        except Exception as exc:
            raise GcsbiFileError(f"cannot create simulation bank at {path}: {_fmt(exc)}") from exc
        return cls(path, _group=group)

    @classmethod
    def open(cls, path: str | Path) -> SimulationBank:
        """Open an existing bank; raises GcsbiFileError when missing or corrupt."""
        return cls(path)

    # -- state -------------------------------------------------------------------------------
    n = property(lambda self: self.config.n, doc="number of rows")
    n_chunks = property(lambda self: self.config.n_chunks, doc="number of chunks")
    param_names = property(lambda self: self.config.param_names, doc="theta's column names")
    output_shape = property(lambda self: self.config.output_shape, doc="(C, H, W) of one x")

    def done_chunks(self) -> np.ndarray:
        """Boolean (n_chunks,): chunks fully written."""
        try:
            return np.asarray(self._group["done"][:], dtype=bool)
        except Exception:  # a damaged flag: read them one by one, damaged = not done
            return np.array([self._flag(i) for i in range(self.n_chunks)], dtype=bool)

    def _flag(self, chunk: int) -> bool:
        try:
            return bool(self._group["done"][chunk])
        except Exception:
            return False

    def missing_chunks(self) -> list[int]:
        return [int(i) for i in np.flatnonzero(~self.done_chunks())]

    @property
    def is_complete(self) -> bool:
        return bool(self.done_chunks().all())

    def _chunk_files_present(self, chunk: int) -> bool:
        keys = [("theta", (chunk, 0)), ("x", (chunk, *(0,) * len(self.output_shape))), ("failed", (chunk,))]
        return all((self.path / name / "c" / Path(*map(str, idx))).is_file() for name, idx in keys)

    def row_mask(self, *, only_done: bool = True, include_failed: bool = False) -> np.ndarray:
        """Boolean (n,) of the rows :meth:`load` returns."""
        done = self.done_chunks()
        if not only_done and not done.all():
            raise GcsbiValueError(f"bank {self.path} is incomplete: {int((~done).sum())} of {self.n_chunks} "
                                  "chunks missing; run generate() or pass only_done=True")
        rows = np.repeat(done, self.config.chunk_size)[: self.n]
        failed = self._read("failed", slice(None))
        lost = rows & (failed > 1)  # fill value 255: the file of a finished chunk is gone
        if lost.any():
            chunks = sorted({int(r) // self.config.chunk_size for r in np.flatnonzero(lost)})
            raise GcsbiFileError(f"{self.path}: chunks {chunks[:5]} are marked done but their data is "
                                 "missing; run generate() to recompute them")
        if not include_failed:
            rows &= failed == 0
        return rows

    def failures(self) -> list[dict[str, Any]]:
        """Failed rows of done chunks: ``[{"row", "chunk", "message"}, ...]`` (all of them)."""
        failed = (self._read("failed", slice(None)) == 1) & np.repeat(self.done_chunks(), self.config.chunk_size)[: self.n]
        rows = np.flatnonzero(failed)
        msgs = self._group["message"]
        return [{"row": int(r), "chunk": int(r // self.config.chunk_size), "message": str(msgs[int(r)])} for r in rows]

    def info(self) -> dict[str, Any]:
        done = self.done_chunks()
        failed = self._read("failed", slice(None))
        rows_done = np.repeat(done, self.config.chunk_size)[: self.n]
        return {"path": str(self.path), **self.config.to_json(), "n_chunks": self.n_chunks,
                "chunks_done": int(done.sum()), "rows_done": int(rows_done.sum()),
                "rows_failed": int((rows_done & (failed == 1)).sum())}

    def simulator(self) -> Any:
        """A fresh simulator built from the stored factory and kwargs."""
        return build_simulator(self.config.simulator_factory, self.config.factory_kwargs)

    # -- generation --------------------------------------------------------------------------
    def generate(self, *, workers: int = 1, scheduler: str | None = None, progress: bool = True,
                 chunks: Iterable[int] | None = None) -> int:
        """Compute the missing chunks; returns how many were computed.

        ``workers=1`` runs in this process; ``workers>1`` uses a local process pool
        (forkserver, else spawn; one torch thread per worker);
        ``scheduler="tcp://host:port"`` sends chunks to a running Dask distributed cluster
        (then ``workers`` must stay 1; Dask workers need gcsbi installed and ``path`` on a
        shared filesystem). ``chunks`` restricts work to some chunk indices. Safe to
        interrupt at any time and to call again.
        """
        workers = _positive_int(workers, "workers")
        if scheduler is not None and workers != 1:
            raise GcsbiValueError("pass either workers (local processes) or scheduler (Dask), not both")
        done = self.done_chunks()
        for i in np.flatnonzero(done):  # lost files of a finished chunk: recompute it
            if not self._chunk_files_present(int(i)):
                self._group["done"][int(i)] = False
                done[i] = False
        wanted = range(self.n_chunks) if chunks is None else sorted({int(c) for c in chunks})
        bad = [c for c in wanted if not 0 <= c < self.n_chunks]
        if bad:
            raise GcsbiValueError(f"chunk indices out of range [0, {self.n_chunks}): {bad[:5]}")
        todo = [c for c in wanted if not done[c]]
        from tqdm.auto import tqdm

        bar = tqdm(total=self.n_chunks, initial=int(done.sum()), unit="chunk", disable=not progress,
                   desc=f"bank {self.path.name}")
        computed = 0
        try:
            for result in self._run(todo, workers=workers, scheduler=scheduler):
                computed += 1
                bar.update(1)
                if result.n_failed:
                    bar.set_postfix_str(f"last chunk: {result.n_failed} failed rows")
        finally:
            bar.close()
            self._write_failure_log()
        return computed

    def _run(self, todo: list[int], *, workers: int, scheduler: str | None) -> Iterable[_ChunkResult]:
        path = str(self.path.resolve())
        if not todo:
            return
        if scheduler is not None:
            yield from _run_dask(path, todo, scheduler)
        elif workers == 1:
            for chunk in todo:
                yield _compute_and_write(path, chunk)
        else:
            import concurrent.futures as cf

            with cf.ProcessPoolExecutor(max_workers=min(workers, len(todo)), mp_context=_mp_context(),
                                        initializer=_pool_init) as pool:
                futures = [pool.submit(_compute_and_write, path, c) for c in todo]
                try:
                    for fut in cf.as_completed(futures):
                        yield fut.result()
                except BaseException:
                    pool.shutdown(wait=True, cancel_futures=True)
                    raise

    def _write_failure_log(self) -> None:
        log = self.failures()
        self._group.attrs.update({"failures": log[:_MAX_LOG], "n_failed": len(log)})

    # -- reading -----------------------------------------------------------------------------
    def _read(self, name: str, sel: Any) -> np.ndarray:
        try:
            return np.asarray(self._group[name][sel])
        except Exception as exc:
            raise GcsbiFileError(f"{self.path}: cannot read array '{name}' (damaged or truncated chunk file; "
                                 f"checksums did not match or the store is incomplete): {_fmt(exc)}") from exc

    def _read_chunk(self, chunk: int) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = self.config.chunk_bounds(chunk)
        try:
            t, xx = self._read("theta", slice(lo, hi)), self._read("x", slice(lo, hi))
        except GcsbiFileError as exc:
            raise GcsbiFileError(f"chunk {chunk}: {exc}; call invalidate([{chunk}]) and generate() "
                                 "to recompute it") from exc
        if not (np.isfinite(t).all() and np.isfinite(xx).all()):
            raise GcsbiFileError(f"{self.path}: chunk {chunk} is marked done but its data is missing; "
                                 "run generate() to recompute it")
        return t, xx

    def verify(self) -> list[int]:
        """Read every finished chunk; return those that are damaged or missing (checksums)."""
        bad = []
        for chunk in np.flatnonzero(self.done_chunks()):
            try:
                self._read_chunk(int(chunk))
                lo, hi = self.config.chunk_bounds(int(chunk))
                if (self._read("failed", slice(lo, hi)) > 1).any():
                    raise GcsbiFileError("failed mask missing")
            except GcsbiFileError:
                bad.append(int(chunk))
        return bad

    def invalidate(self, chunks: Iterable[int]) -> None:
        """Mark chunks as not done, so that the next :meth:`generate` recomputes them."""
        for c in chunks:
            if not 0 <= int(c) < self.n_chunks:
                raise GcsbiValueError(f"chunk index {c} out of range [0, {self.n_chunks})")
            self._group["done"][int(c)] = False

    def load(self, *, only_done: bool = True, include_failed: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """(theta (N, D), x (N, C, H, W)) float32 tensors of the usable rows, in row order.

        ``only_done=True`` returns the rows of finished chunks; ``False`` requires the whole
        bank to be finished (raises otherwise). Failed rows are skipped unless
        ``include_failed`` (their x is zeros). Everything is read into memory; use
        :meth:`dataset` for banks larger than RAM.
        """
        rows = self.row_mask(only_done=only_done, include_failed=include_failed)
        theta = np.empty((int(rows.sum()), len(self.param_names)), dtype=np.float32)
        x = np.empty((int(rows.sum()), *self.output_shape), dtype=np.float32)
        k = 0
        for chunk in range(self.n_chunks):  # chunk by chunk: peak memory ~ result + one chunk
            lo, hi = self.config.chunk_bounds(chunk)
            sel = rows[lo:hi]
            if not sel.any():
                continue
            t, xx = self._read_chunk(chunk)
            t, xx = t[sel], xx[sel]
            theta[k : k + len(t)], x[k : k + len(t)] = t, xx
            k += len(t)
        return torch.from_numpy(theta), torch.from_numpy(x)

    def dataset(self, *, only_done: bool = True, include_failed: bool = False) -> BankDataset:
        """A torch Dataset reading rows lazily (larger-than-RAM banks, DataLoader workers)."""
        rows = np.flatnonzero(self.row_mask(only_done=only_done, include_failed=include_failed))
        return BankDataset(self.path, rows)

    def __len__(self) -> int:
        return self.n

    def __repr__(self) -> str:
        done = int(self.done_chunks().sum())
        return (f"SimulationBank({str(self.path)!r}, n={self.n}, chunks {done}/{self.n_chunks} done, "
                f"factory={self.config.simulator_factory!r})")


def _run_dask(path: str, todo: list[int], scheduler: str) -> Iterable[_ChunkResult]:
    try:
        from distributed import Client, as_completed
    except ImportError as exc:  # pragma: no cover - distributed is a dependency of the venv
        from .errors import GcsbiDependencyError

        raise GcsbiDependencyError("generate(scheduler=...) needs 'distributed' (pip install distributed)") from exc
    client = Client(scheduler)
    try:
        futures = client.map(_dask_task, [path] * len(todo), todo, pure=False)
        try:
            for fut in as_completed(futures):
                yield fut.result()
        except BaseException:
            client.cancel(futures)
            raise
    finally:
        client.close()


from .bank_dataset import BankDataset  # noqa: E402  (re-exported; it imports this module lazily)
