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
    truth_<name> (n, ...) float32 truth maps, only those asked for at creation (``truth=``,
                          e.g. ``mass_map`` (n, H, W) Msun/pixel, ``clean`` (n, F, H, W) e-);
                          written with x from the same simulator call, laid out like x
    done    (n_chunks,)   bool, one file per chunk, written *after* the chunk's data

Every array carries a CRC32C checksum, so a damaged chunk raises instead of being read.
A chunk whose ``done`` flag is unset (a worker killed half-way) is simply recomputed; a
``done`` chunk whose files disappeared is detected and recomputed by ``generate``.

Workers never receive a pickled simulator: they rebuild it from ``simulator_factory``
(``"module:function"``) and JSON ``factory_kwargs`` and write their chunks straight into the
store. With Dask (``generate(scheduler="tcp://host:8786")``) every worker must therefore be
able to import gcsbi and to see ``path`` on a shared filesystem (NFS, Lustre, ...); object
stores are not supported.

Safety: the stored factory is untrusted input (anyone can edit ``zarr.json``), so only gcsbi's
own simulator factories run unless the caller trusts another one (:mod:`gcsbi.bank.factory`).
Opening, reading and ``info`` never import or run it. One ``generate`` at a time: a second one
on the same bank fails at once (:mod:`gcsbi.bank.lock`). Local workers die with the process
that started them and ignore Ctrl-C, which the parent handles (:mod:`gcsbi.bank.workers`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .chunks import _ChunkResult, _compute_and_write, chunk_seeds
from .dataset import BankDataset
from .factory import build_simulator, check_trusted
from .format import _ARRAYS, _ATTR, _MAX_LOG, BankConfig, _why, truth_array
from .format import open_group as _open_group
from .format import read_config as _read_config
from .lock import LOCK_NAME, bank_lock
from .workers import run_dask, run_pool
from ..errors import GcsbiFileError, GcsbiRuntimeError, GcsbiValueError  # noqa: F401 (re-exported)
from ..outputs import printable

__all__ = ["BankConfig", "SimulationBank", "BankDataset", "chunk_seeds", "build_simulator"]


def _check_replaceable(path: Path) -> None:
    """Raise GcsbiFileError unless ``path`` is a gcsbi bank holding only what gcsbi writes into one."""
    how = "nothing was deleted: overwrite replaces only a gcsbi simulation bank; choose a new path"
    if path.is_symlink() or not path.is_dir():
        raise GcsbiFileError(f"{path} is {'a link' if path.is_symlink() else 'a file'}, not a simulation bank; {how}")
    try:
        cfg = _read_config(_open_group(path, mode="r"), path)
    except GcsbiFileError as exc:
        raise GcsbiFileError(f"{path} is not a valid gcsbi simulation bank ({exc}); {how}") from exc
    ours = {"zarr.json", LOCK_NAME, *_ARRAYS, *(truth_array(name) for name in cfg.truth_names)}
    foreign = sorted(set(os.listdir(path)) - ours)
    if foreign:
        shown = ", ".join(printable(f) for f in foreign[:5]) + (" ..." if len(foreign) > 5 else "")
        raise GcsbiFileError(f"{path} is a simulation bank but also holds files gcsbi did not write ({shown}); "
                             "nothing was deleted: move them out first, or choose a new path")


def _check_json(value: Any, what: str) -> Any:
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError) as exc:
        raise GcsbiValueError(f"{what} must be JSON-serialisable: {exc}") from exc


def _positive_int(value: Any, name: str, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise GcsbiValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _truth_specs(sim: Any, truth: Iterable[str]) -> tuple[tuple[str, tuple[int, ...]], ...]:
    """(name, row shape) of each asked-for truth map; raises for names the simulator lacks."""
    if isinstance(truth, str):
        truth = [t for t in truth.split(",") if t]
    names = [str(t).strip() for t in truth]
    if not names:
        return ()
    shapes = getattr(sim, "truth_shapes", None)
    if not isinstance(shapes, dict):
        raise GcsbiValueError(f"this simulator ({type(sim).__name__}) has no truth maps (no 'truth_shapes'); "
                              "create the bank without truth=")
    unknown = [t for t in names if t not in shapes]
    if unknown or len(set(names)) != len(names):
        raise GcsbiValueError(f"truth {names}: unknown or repeated names {unknown or names}; the simulator has "
                              f"{sorted(shapes)}")
    return tuple((t, tuple(int(v) for v in shapes[t])) for t in names)


# ----------------------------------------------------------------------------- the bank


class SimulationBank:
    """A bank of (theta, x) simulations in a Zarr v3 group; see the module docstring.

    Use :meth:`create` for a new bank and :meth:`open` for an existing one, then
    :meth:`generate` (resumable) and :meth:`load` / :meth:`dataset`.
    """

    def __init__(self, path: str | Path, *, trust_factory: bool = False, _group: Any = None) -> None:
        self.path = Path(path)
        self._group = _group if _group is not None else _open_group(self.path, mode="r+")
        self.config = _read_config(self._group, self.path)
        self._trust_factory = bool(trust_factory)
        self._lock_depth = 0

    @property
    def repair_hint(self) -> str:
        """The command that recomputes damaged chunks of this bank (for error messages)."""
        return f"run `gcsbi bank repair {self.path}` (Python: bank.repair())"

    def _trusted(self, trust_factory: bool = False) -> bool:
        """Whether this bank's factory may run; raises GcsbiValueError (how to trust it) if not."""
        trusted = self._trust_factory or bool(trust_factory)
        check_trusted(self.config.simulator_factory, trusted=trusted)
        return trusted

    @contextlib.contextmanager
    def _exclusive(self) -> Any:
        """Hold the bank's writer lock (re-entrant within this object; see gcsbi.bank.lock)."""
        if self._lock_depth:
            self._lock_depth += 1
            try:
                yield
            finally:
                self._lock_depth -= 1
            return
        with bank_lock(self.path):
            self._lock_depth = 1
            try:
                yield
            finally:
                self._lock_depth = 0

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def create(cls, path: str | Path, *, simulator_factory: str, factory_kwargs: dict[str, Any] | None = None,
               n: int, chunk_size: int, seed: int, overwrite: bool = False,
               trust_factory: bool = False, truth: Iterable[str] = ()) -> SimulationBank:
        """Create an empty bank (nothing simulated yet; call :meth:`generate`).

        ``truth``: names of truth maps to store per row next to x (the simulator's
        ``truth_shapes``, e.g. ``("mass_map", "clean")``); x is the same with or without them.

        ``trust_factory=True`` allows a factory that is not one of gcsbi's own (see
        :mod:`gcsbi.bank.factory`); the returned object keeps that trust for :meth:`generate`.

        ``overwrite=True`` replaces an existing bank at ``path``, and only a valid gcsbi bank
        holding nothing but the bank's own files: any other folder, a file or a link is refused
        (GcsbiFileError) and nothing is deleted.
        """
        import zarr
        from zarr.codecs import Crc32cCodec, ZstdCodec

        from .. import __version__

        path = Path(path)
        n = _positive_int(n, "n")
        chunk_size = _positive_int(chunk_size, "chunk_size")
        seed = _positive_int(seed, "seed", minimum=0)
        kwargs = _check_json(dict(factory_kwargs or {}), "factory_kwargs")
        exists = os.path.lexists(path)
        if exists and not overwrite:
            raise GcsbiFileError(f"{path} already exists; pass overwrite=True or open it with SimulationBank.open")
        if exists:
            _check_replaceable(path)  # overwrite replaces a gcsbi bank and nothing else
        sim = build_simulator(simulator_factory, kwargs, trusted=trust_factory)  # before deleting anything
        if exists:
            with bank_lock(path):  # never delete a bank that another process is generating
                shutil.rmtree(path)
        names = tuple(str(s) for s in sim.param_names)
        shape = tuple(int(s) for s in sim.output_shape)
        truth_specs = _truth_specs(sim, truth)
        prior = {"name": getattr(sim.prior, "name", type(sim.prior).__name__),
                 "parameters": [dataclasses.asdict(s) for s in getattr(sim.prior, "specs", ())]}
        cfg = BankConfig(simulator_factory=simulator_factory, factory_kwargs=kwargs, n=n, chunk_size=chunk_size,
                         seed=seed, param_names=names, output_shape=shape, prior=_check_json(prior, "prior spec"),
                         simulator_spec=_check_json(sim.spec, "simulator spec"), gcsbi_version=__version__,
                         truth=truth_specs)
        codecs = {"compressors": (ZstdCodec(level=3), Crc32cCodec())}
        try:
            group = zarr.open_group(str(path), mode="w-")
            group.create_array("theta", shape=(n, len(names)), dtype="float32", chunks=(chunk_size, len(names)),
                               fill_value=np.nan, **codecs)
            group.create_array("x", shape=(n, *shape), dtype="float32", chunks=(1, *shape),
                               shards=(chunk_size, *shape), fill_value=np.nan, **codecs)
            for tname, tshape in truth_specs:
                group.create_array(truth_array(tname), shape=(n, *tshape), dtype="float32", chunks=(1, *tshape),
                                   shards=(chunk_size, *tshape), fill_value=np.nan, **codecs)
            group.create_array("failed", shape=(n,), dtype="uint8", chunks=(chunk_size,), fill_value=255, **codecs)
            group.create_array("message", shape=(n,), dtype=str, chunks=(chunk_size,), fill_value="")
            group.create_array("done", shape=(cfg.n_chunks,), dtype="bool", chunks=(1,), fill_value=False, **codecs)
            group.attrs.update({_ATTR: cfg.to_json(), "failures": [], "n_failed": 0})
        except Exception as exc:
            raise GcsbiFileError(f"cannot create simulation bank at {path}: {_why(exc)}") from exc
        return cls(path, trust_factory=trust_factory, _group=group)

    @classmethod
    def open(cls, path: str | Path, *, trust_factory: bool = False) -> SimulationBank:
        """Open an existing bank; raises GcsbiFileError when missing or corrupt.

        Opening and reading never run the stored simulator factory; :meth:`simulator` and
        :meth:`generate` run it only if it is trusted (``trust_factory=True`` here or there,
        or see :mod:`gcsbi.bank.factory`).
        """
        return cls(path, trust_factory=trust_factory)

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
        keys += [(truth_array(name), (chunk, *(0,) * len(shape))) for name, shape in self.config.truth]
        return all((self.path / name / "c" / Path(*map(str, idx))).is_file() for name, idx in keys)

    def _failed(self) -> np.ndarray:
        """The (n,) ``failed`` column; rows of unreadable chunks of it read 255 (= not written)."""
        try:
            return self._read("failed", slice(None))
        except GcsbiFileError:
            out = np.full(self.n, 255, dtype=np.uint8)
            for c in range(self.n_chunks):
                lo, hi = self.config.chunk_bounds(c)
                with contextlib.suppress(GcsbiFileError):
                    out[lo:hi] = self._read("failed", slice(lo, hi))
            return out

    def row_mask(self, *, only_done: bool = True, include_failed: bool = False) -> np.ndarray:
        """Boolean (n,) of the rows :meth:`load` returns."""
        done = self.done_chunks()
        if not only_done and not done.all():
            raise GcsbiValueError(f"bank {self.path} is incomplete: {int((~done).sum())} of {self.n_chunks} "
                                  "chunks missing; run generate() or pass only_done=True")
        rows = np.repeat(done, self.config.chunk_size)[: self.n]
        failed = self._failed()
        lost = rows & (failed > 1)  # fill value 255: the file of a finished chunk is gone or damaged
        if lost.any():
            chunks = sorted({int(r) // self.config.chunk_size for r in np.flatnonzero(lost)})
            raise GcsbiFileError(f"{self.path}: chunks {chunks[:5]} are marked done but their data is "
                                 f"missing or damaged; {self.repair_hint}")
        if not include_failed:
            rows &= failed == 0
        return rows

    def failures(self) -> list[dict[str, Any]]:
        """Failed rows of done chunks: ``[{"row", "chunk", "message"}, ...]`` (all of them)."""
        failed = (self._failed() == 1) & np.repeat(self.done_chunks(), self.config.chunk_size)[: self.n]
        msgs, out = self._group["message"], []
        for r in np.flatnonzero(failed):
            try:
                message = str(msgs[int(r)])
            except Exception:  # a damaged message chunk: verify() reports the chunk
                message = "(message unreadable: damaged chunk)"
            out.append({"row": int(r), "chunk": int(r // self.config.chunk_size), "message": message})
        return out

    def info(self) -> dict[str, Any]:
        done = self.done_chunks()
        failed = self._failed()
        rows_done = np.repeat(done, self.config.chunk_size)[: self.n]
        return {"path": str(self.path), **self.config.to_json(), "n_chunks": self.n_chunks,
                "chunks_done": int(done.sum()), "rows_done": int(rows_done.sum()),
                "rows_failed": int((rows_done & (failed == 1)).sum())}

    def simulator(self, *, trust_factory: bool = False) -> Any:
        """A fresh simulator built from the stored factory and kwargs (only a trusted factory)."""
        trusted = self._trusted(trust_factory)
        return build_simulator(self.config.simulator_factory, self.config.factory_kwargs, trusted=trusted)

    # -- generation --------------------------------------------------------------------------
    def generate(self, *, workers: int = 1, scheduler: str | None = None, progress: bool = True,
                 chunks: Iterable[int] | None = None, trust_factory: bool = False) -> int:
        """Compute the missing chunks; returns how many were computed.

        ``workers=1`` runs in this process; ``workers>1`` uses a local process pool
        (forkserver, else spawn; one torch thread per worker; see :mod:`gcsbi.bank.workers`);
        ``scheduler="tcp://host:port"`` sends chunks to a running Dask distributed cluster
        (then ``workers`` must stay 1; Dask workers need gcsbi installed and ``path`` on a
        shared filesystem). ``chunks`` restricts work to some chunk indices. Safe to
        interrupt at any time and to call again. Raises GcsbiRuntimeError at once when
        another ``generate`` holds the bank, and GcsbiValueError when the stored factory is
        not trusted (``trust_factory=True`` trusts it).
        """
        workers = _positive_int(workers, "workers")
        if scheduler is not None and workers != 1:
            raise GcsbiValueError("pass either workers (local processes) or scheduler (Dask), not both")
        wanted = range(self.n_chunks) if chunks is None else sorted({int(c) for c in chunks})
        bad = [c for c in wanted if not 0 <= c < self.n_chunks]
        if bad:
            raise GcsbiValueError(f"chunk indices out of range [0, {self.n_chunks}): {bad[:5]}")
        with self._exclusive():
            done = self.done_chunks()
            for i in np.flatnonzero(done):  # lost files of a finished chunk: recompute it
                if not self._chunk_files_present(int(i)):
                    self._group["done"][int(i)] = False
                    done[i] = False
            todo = [c for c in wanted if not done[c]]
            if todo:
                self._trusted(trust_factory)
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
        """Results of the chunks ``todo``; the caller checked that the factory is trusted."""
        path, factory = str(self.path.resolve()), self.config.simulator_factory
        if not todo:
            return
        if scheduler is not None:
            yield from run_dask(path, todo, scheduler, factory)
        elif workers == 1:
            for chunk in todo:
                yield _compute_and_write(path, chunk, factory)
        else:
            yield from run_pool(_compute_and_write, [(path, c, factory) for c in todo], workers)

    def _write_failure_log(self) -> None:
        try:
            log = self.failures()
        except GcsbiFileError:  # damaged columns: keep the old log; verify() names the chunks
            return
        self._group.attrs.update({"failures": log[:_MAX_LOG], "n_failed": len(log)})

    def repair(self, *, workers: int = 1, scheduler: str | None = None, progress: bool = True,
               trust_factory: bool = False) -> tuple[list[int], int]:
        """:meth:`verify`, :meth:`invalidate` the damaged chunks, then :meth:`generate`.

        Returns (damaged chunks, chunks computed); the latter also counts chunks that had
        never been computed. The bytes afterwards equal those of an undamaged bank.
        """
        with self._exclusive():
            damaged = self.verify(progress=progress)
            if damaged or not self.is_complete:
                self._trusted(trust_factory)  # before invalidating anything
            self.invalidate(damaged)
            computed = self.generate(workers=workers, scheduler=scheduler, progress=progress,
                                     trust_factory=trust_factory)
        return damaged, computed

    # -- reading -----------------------------------------------------------------------------
    def _read(self, name: str, sel: Any) -> np.ndarray:
        try:
            return np.asarray(self._group[name][sel])
        except Exception as exc:
            raise GcsbiFileError(f"{self.path}: cannot read array '{name}' (damaged or truncated chunk file; "
                                 f"checksums did not match or the store is incomplete): {_why(exc)}") from exc

    def _read_chunk(self, chunk: int) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = self.config.chunk_bounds(chunk)
        try:
            t, xx = self._read("theta", slice(lo, hi)), self._read("x", slice(lo, hi))
        except GcsbiFileError as exc:
            raise GcsbiFileError(f"chunk {chunk}: {exc}; {self.repair_hint}") from exc
        if not (np.isfinite(t).all() and np.isfinite(xx).all()):
            raise GcsbiFileError(f"{self.path}: chunk {chunk} is marked done but its data is missing; "
                                 f"{self.repair_hint}")
        return t, xx

    def _read_truth_chunk(self, chunk: int, name: str) -> np.ndarray:
        lo, hi = self.config.chunk_bounds(chunk)
        try:
            arr = self._read(truth_array(name), slice(lo, hi))
        except GcsbiFileError as exc:
            raise GcsbiFileError(f"chunk {chunk}: {exc}; {self.repair_hint}") from exc
        if not np.isfinite(arr).all():
            raise GcsbiFileError(f"{self.path}: chunk {chunk} is marked done but its truth {name!r} is missing; "
                                 f"{self.repair_hint}")
        return arr

    def verify(self, *, progress: bool = False) -> list[int]:
        """Read every finished chunk; return those that are damaged or missing (checksums).

        ``progress``: a bar over the chunks read, on stderr, once reading takes more than 2 s.
        """
        from tqdm.auto import tqdm

        bad = []
        chunks = np.flatnonzero(self.done_chunks())
        for chunk in tqdm(chunks, desc="verifying", unit="chunk", delay=2.0, disable=not progress):
            try:
                self._read_chunk(int(chunk))
                for name in self.config.truth_names:
                    self._read_truth_chunk(int(chunk), name)
                lo, hi = self.config.chunk_bounds(int(chunk))
                if (self._read("failed", slice(lo, hi)) > 1).any():
                    raise GcsbiFileError("failed mask missing")
                self._read("message", slice(lo, hi))
            except GcsbiFileError:
                bad.append(int(chunk))
        return bad

    def invalidate(self, chunks: Iterable[int]) -> None:
        """Mark chunks as not done, so that the next :meth:`generate` recomputes them.

        Command line: ``gcsbi bank invalidate PATH CHUNK [CHUNK ...]``. Refused (GcsbiRuntimeError)
        while another process generates this bank.
        """
        chunks = [int(c) for c in chunks]
        bad = [c for c in chunks if not 0 <= c < self.n_chunks]
        if bad:
            raise GcsbiValueError(f"chunk index {bad[0]} out of range [0, {self.n_chunks})")
        with self._exclusive():
            for c in chunks:
                self._group["done"][c] = False

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

    def load_truth(self, name: str, *, only_done: bool = True, include_failed: bool = False,
                   dtype: Any = np.float32) -> np.ndarray:
        """Truth map ``name`` of the rows :meth:`load` returns, in the same order (numpy, ``dtype``)."""
        if name not in self.config.truth_names:
            stored = list(self.config.truth_names) or "none"
            raise GcsbiValueError(f"{self.path} stores no truth {name!r} (stored: {stored}); create the bank with "
                                  f"truth=[{name!r}] (command line: --truth {name})")
        shape = dict(self.config.truth)[name]
        rows = self.row_mask(only_done=only_done, include_failed=include_failed)
        out = np.empty((int(rows.sum()), *shape), dtype=dtype)
        k = 0
        for chunk in range(self.n_chunks):
            lo, hi = self.config.chunk_bounds(chunk)
            sel = rows[lo:hi]
            if sel.any():
                arr = self._read_truth_chunk(chunk, name)[sel]
                out[k : k + len(arr)] = arr
                k += len(arr)
        return out

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


