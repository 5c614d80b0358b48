"""The ``sbi`` simulator: theta -> cluster snapshot -> mock observation -> network input x.

``load_simulator("hst-phat", prior="m31-gc")`` returns a :class:`ClusterSimulator`,
a valid ``sbi`` simulator: theta (B, D) float32 -> x (B, C, H, W) float32, with
explicit seeding (``sim(theta, seed=1)``: same seed, same bytes, whatever the number
of worker processes) and noiseless truth maps on request (:meth:`ClusterSimulator.simulate`).

The ``[snapshot]`` table of a simulator spec says where the star particles come from::

    [snapshot]
    source = "limepy"            # embedded multi-mass model (default) | "library"
    library = "path/to/folder"   # N-body snapshots indexed by gcsbi.clusters.library (source = "library")
    max_faint_particles = 2000   # particles standing for the faint, non-stochastic stars
    faint_light = "particles"    # or "smooth": faint stars as Poisson counts per pixel (limepy only)
    max_resolved_stars = 2000    # with "smooth": about how many of the brightest stars are sampled one by one
    truncation_g = 1.0           # LIMEPY truncation (1 King, 2 Wilson)
    default_prior = "m31-gc"     # prior used when none is given
    [snapshot.fixed]             # values of cluster parameters the prior does not sample
    w0 = 7.0

Parameter names (prior columns) understood here, with their defaults when neither the
prior nor ``[snapshot.fixed]`` sets them: see :data:`PARAMETERS`.

Worker processes (``workers > 1``): the first call with a batch of more than one row starts a
pool of ``workers`` processes that later calls reuse (sbi calls the simulator batch after
batch). Each worker receives a copy of the simulator once, builds its observation model (PSF
kernels, renderer, field pool) on its first mock and keeps it. Workers come from a
``forkserver`` (preloading this module), else ``spawn``, never plain ``fork``; they use one
torch thread, ignore SIGINT (Ctrl-C is the parent's business: it terminates the pool) and exit
as soon as the process that started the pool is gone, even after a SIGKILL.
:meth:`ClusterSimulator.close` (or leaving a ``with`` block) shuts the pool down; a later call
starts a new one. A pool left open is shut down when the simulator is garbage-collected or at
interpreter exit. Pickled or deep-copied simulators carry no pool: each copy starts its own.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import threading
import weakref
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import torch

from ..errors import GcsbiValueError, SpecError
from ..spec.priors import NamedBoxPrior, load_prior
from ..spec.simulator_spec import SimulatorSpec, load_simulator_spec
from .parameters import ALTERNATIVES, PARAMETERS, SnapshotSource, spec_digest, with_snapshot
from .pool import _mp_context, _pool_init, _pool_job, _shutdown_pool, _simulate_job
from .processes import terminate_pool
from .seeds import _positive_int, check_seed, resolve_seed

__all__ = ["PARAMETERS", "SnapshotSource", "ClusterSimulator", "load_simulator", "spec_digest", "check_seed",
           "resolve_seed", "with_snapshot"]

@lru_cache(maxsize=128)
def _population(age_gyr: float, feh: float, filters: tuple[str, ...]):
    """The population of a mock, with photometry in the spec's bands only (tables cost ~ number of bands)."""
    from ..stars import StellarPopulation

    return StellarPopulation(age_gyr=age_gyr, feh=feh, filters=filters)


class ClusterSimulator:
    """Batched, seeded simulator of cluster images for ``sbi`` (see module docstring).

    Args:
        spec: a simulator spec name, path or :class:`~gcsbi.spec.SimulatorSpec`.
        prior: a prior name, path or :class:`~gcsbi.spec.NamedBoxPrior`; its parameter
            names must be known (:data:`PARAMETERS`).
        workers: processes used by ``__call__``/``simulate`` for batches (1: in process). The
            pool is persistent (see the module docstring): release it with :meth:`close` or
            ``with load_simulator(..., workers=4) as sim:``.

    ``sim(theta, seed=)`` and :meth:`simulate` refuse parameter vectors outside the prior box
    (:class:`~gcsbi.errors.GcsbiValueError` naming the row, parameter, value and bounds): outside it
    the models are untested and can be very slow (a ``log10_mass = 8`` mock takes tens of seconds). sbi, the
    banks, training and calibration only ever pass prior draws. To explore beyond the prior on
    purpose, pass ``allow_outside_prior=True`` to the call.
    """

    def __init__(self, spec: str | Path | SimulatorSpec = "hst-phat",
                 prior: str | Path | NamedBoxPrior | None = None, *, workers: int = 1) -> None:
        self.sim_spec = spec if isinstance(spec, SimulatorSpec) else load_simulator_spec(spec)
        base = Path(self.sim_spec.source).parent if self.sim_spec.source else None
        self.snapshot_source = SnapshotSource.from_mapping(self.sim_spec.snapshot, base_dir=base)
        if prior is None:
            prior = self.snapshot_source.default_prior
            if prior is None:
                raise GcsbiValueError(f"spec {self.sim_spec.name!r} names no default_prior: pass prior=")
        self.prior = prior if isinstance(prior, NamedBoxPrior) else load_prior(prior)
        unknown = [n for n in self.prior.names if n not in PARAMETERS]
        if unknown:
            raise SpecError(f"prior parameters {unknown} are not simulator parameters {list(PARAMETERS)}")
        fixed = dict(self.snapshot_source.fixed)
        both = set(fixed) & set(self.prior.names)
        if both:
            raise SpecError(f"parameters {sorted(both)} are both sampled by the prior and fixed in the spec")
        given = set(self.prior.names) | set(fixed)
        for alt, (target, _) in ALTERNATIVES.items():
            if alt in given and target in given:
                raise SpecError(f"parameters {alt!r} and {target!r} set the same quantity: sample or fix only one")
            if alt in given:
                given.add(target)
        missing = [n for n, (d, _) in PARAMETERS.items() if d is None and n not in given]
        if missing:
            raise SpecError(f"parameters {missing} must be sampled by the prior or set in [snapshot.fixed]")
        self._constants = {n: d for n, (d, _) in PARAMETERS.items() if n not in self.prior.names} | fixed
        self.workers = _positive_int(workers, "workers")
        from ..observe.transforms import channel_names

        self.channel_names = tuple(channel_names(self.sim_spec))
        h, w = self.sim_spec.observation.size
        self.output_shape = (len(self.channel_names), h, w)
        self._model = None
        self._library = None
        self._init_pool_state()

    # ------------------------------------------------------------ worker pool
    def _init_pool_state(self) -> None:
        self._pool: ProcessPoolExecutor | None = None
        self._pool_size = 0
        self._pool_finalizer: weakref.finalize | None = None
        self._pool_lock = threading.Lock()

    def close(self) -> None:
        """Shut the worker pool down (waits for the workers to exit); idempotent.

        The simulator stays usable: a later call with ``workers > 1`` starts a new pool.
        """
        with self._pool_lock:
            finalizer, self._pool, self._pool_finalizer, self._pool_size = self._pool_finalizer, None, None, 0
        if finalizer is not None:
            finalizer()  # runs _shutdown_pool once and unregisters the exit hook

    def _terminate_pool(self) -> None:
        """Stop the pool now, abandoning running mocks (after Ctrl-C or a broken pool)."""
        with self._pool_lock:
            pool, finalizer = self._pool, self._pool_finalizer
            self._pool, self._pool_finalizer, self._pool_size = None, None, 0
        if finalizer is not None:
            finalizer.detach()
        if pool is not None:
            terminate_pool(pool)

    def __enter__(self) -> "ClusterSimulator":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def worker_pids(self) -> tuple[int, ...]:
        """Process ids of the live pool's workers (empty without a pool; workers start on demand)."""
        pool = self._pool
        procs = getattr(pool, "_processes", None) or {}
        return tuple(sorted(pid for pid, p in list(procs.items()) if p.is_alive()))

    def _get_pool(self) -> ProcessPoolExecutor:
        with self._pool_lock:
            pool = self._pool
            if pool is not None and self._pool_size == self.workers and not getattr(pool, "_broken", False):
                return pool
        if pool is not None and getattr(pool, "_broken", False):  # a worker died since the last call
            self._terminate_pool()
        self.close()  # none yet, or ``workers`` changed since it started
        with self._pool_lock:
            if self._pool is None:
                # the workers get a copy of this simulator (no pool, no model: see __getstate__)
                blob = pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL)
                pool = ProcessPoolExecutor(self.workers, mp_context=_mp_context(), initializer=_pool_init,
                                           initargs=(os.getpid(), blob))
                self._pool, self._pool_size = pool, self.workers
                # never references self, so an unclosed simulator can still be garbage-collected
                self._pool_finalizer = weakref.finalize(self, _shutdown_pool, pool)
            return self._pool

    def __getstate__(self) -> dict[str, Any]:
        """Picklable state: no pool (a copy starts its own), no built model or library (rebuilt lazily)."""
        state = self.__dict__.copy()
        for key in ("_pool", "_pool_size", "_pool_finalizer", "_pool_lock"):
            state.pop(key, None)
        state["_model"] = state["_library"] = None
        spec = state["sim_spec"]
        if isinstance(spec.snapshot, MappingProxyType):  # SimulatorSpec.snapshot does not pickle as is
            state["sim_spec"] = dataclasses.replace(spec, snapshot=dict(spec.snapshot))
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        spec = state["sim_spec"]
        if not isinstance(spec.snapshot, MappingProxyType):
            state = {**state, "sim_spec": dataclasses.replace(spec, snapshot=MappingProxyType(dict(spec.snapshot)))}
        self.__dict__.update(state)
        self._init_pool_state()

    # --------------------------------------------------------------- contract
    @property
    def param_names(self) -> tuple[str, ...]:
        return self.prior.names

    @property
    def spec(self) -> dict[str, Any]:
        """JSON-able description stored with checkpoints and banks."""
        return {
            "simulator": {"name": self.sim_spec.name, "sha256": spec_digest(self.sim_spec),
                          "channels": list(self.channel_names), "output_shape": list(self.output_shape)},
            "prior": {"name": self.prior.name,
                      "parameters": {s.name: [s.low, s.high, s.unit] for s in self.prior.specs}},
        }

    @property
    def truth_shapes(self) -> dict[str, tuple[int, ...]]:
        """Shape of one row of each truth map :meth:`simulate` returns with ``return_truth``
        (what a bank can store next to x: ``gcsbi bank create ... --truth mass_map,clean``)."""
        h, w = self.output_shape[1:]
        f = len(self.sim_spec.filters)
        return {"mass_map": (h, w), "clean": (f, h, w), "background": (f, h, w), "image": (f, h, w)}

    def __repr__(self) -> str:
        return f"ClusterSimulator(spec={self.sim_spec.name!r}, prior={self.prior.name!r}, x={self.output_shape})"

    def __call__(self, theta: torch.Tensor, *, seed: int | None = None,
                 allow_outside_prior: bool = False, progress: Any = False) -> torch.Tensor:
        """x (B, C, H, W) float32 for theta (B, D); rows are independent given (seed, row).

        ``seed``: an integer >= 0, or None (drawn from torch's global generator, see
        :func:`resolve_seed`). theta outside the prior box is refused
        unless ``allow_outside_prior`` (see the class docstring). ``progress``: as in :meth:`simulate`.
        """
        return self.simulate(theta, seed=seed, allow_outside_prior=allow_outside_prior, progress=progress)["x"]

    # ------------------------------------------------------------- internals
    @property
    def model(self):
        if self._model is None:
            from ..observe.observe import get_observation_model

            self._model = get_observation_model(self.sim_spec)
        return self._model

    def _values(self, row: np.ndarray) -> dict[str, float]:
        v = {**self._constants, **{n: float(x) for n, x in zip(self.prior.names, row)}}
        for alt, (target, convert) in ALTERNATIVES.items():
            if np.isfinite(v.get(alt, np.nan)):
                v[target] = convert(v[alt])
        return v

    def _snapshot(self, v: Mapping[str, float], rng: np.random.Generator):
        """(snapshot, unresolved light or None) for parameter values ``v``."""
        if self.snapshot_source.source == "library":
            if self._library is None:
                from ..clusters.library import SnapshotLibrary

                self._library = SnapshotLibrary(self.snapshot_source.library)
            snap = self._library.get(age_gyr=v["age_gyr"], mass=10 ** v["log10_mass"], feh=v["feh"], rng=rng)
            if snap.abs_mag is None:
                from ..clusters.nbody import attach_photometry

                snap = attach_photometry(snap, age_gyr=v["age_gyr"], feh=v["feh"], rng=rng)
            return snap, None
        from ..clusters.models import ClusterParams, sample_cluster

        src = self.snapshot_source
        params = ClusterParams(mass=10 ** v["log10_mass"], half_mass_radius=10 ** v["log10_r_half"],
                               age_gyr=v["age_gyr"], feh=v["feh"], w0=v["w0"], segregation=v["segregation"],
                               g=src.truncation_g)
        pop = _population(v["age_gyr"], v["feh"], tuple(self.sim_spec.filters))
        if src.faint_light == "smooth":
            from ..clusters.smooth_light import sample_cluster_light

            footprint = None
            if src.detection_sigma is not None:
                footprint = self.model.footprint(distance_kpc=v["distance_kpc"], ebv=v["ebv"],
                                                 ellipticity=v["ellipticity"], detection_sigma=src.detection_sigma)
            return sample_cluster_light(params, rng=rng, population=pop, max_resolved=src.max_resolved_stars,
                                        footprint=footprint)
        return sample_cluster(params, rng=rng, population=pop, max_faint_particles=src.max_faint_particles), None

    def simulate_one(self, row: np.ndarray, *, rng: np.random.Generator, return_truth: bool = False):
        """One mock: returns (x (C,H,W) float32, :class:`~gcsbi.observe.observe.Observation`)."""
        v = self._values(row)
        snap, unresolved = self._snapshot(v, rng)
        bg = v["background_sb"]
        obs = self.model(
            snap.positions, snap.abs_mag, snap.filters, snap.particle_mass if return_truth else None,
            distance_kpc=v["distance_kpc"], rng=rng, ellipticity=v["ellipticity"],
            position_angle_deg=v["position_angle"], ebv=v["ebv"],
            background_level=None if not np.isfinite(bg) else bg, return_truth=return_truth,
            unresolved=unresolved,
        )
        x = self.model.transform(obs.image, sky=obs.sky)
        return x, obs

    def simulate(self, theta: torch.Tensor, *, seed: int | None = None, return_truth: bool = False,
                 progress: Any = False, allow_outside_prior: bool = False) -> dict[str, torch.Tensor]:
        """x and optionally the truth maps for a batch.

        Returns a dict of float32 tensors: ``x`` (B, C, H, W); with ``return_truth`` also
        ``image`` (B, F, H, W) noisy counts, ``clean`` (B, F, H, W) noiseless cluster light,
        ``background`` (B, F, H, W) and ``mass_map`` (B, H, W) in Msun per pixel.
        Row i draws from ``SeedSequence([seed, i])``; ``seed=None`` draws the seed from torch's
        global generator (:func:`resolve_seed`), otherwise it must be an integer >= 0
        (:func:`check_seed`). Rows outside the prior box raise
        :class:`~gcsbi.errors.GcsbiValueError` before anything is simulated, unless
        ``allow_outside_prior``. ``progress``: True shows a bar over the mocks on stderr; a tqdm
        bar of the caller's is advanced by one per mock instead (a long run of several batches).
        """
        seed = check_seed(seed)  # bad seeds fail before anything else
        if allow_outside_prior:
            t = self.prior.check(theta)
        else:
            t = self.prior.check_in_support(
                theta, hint="; pass allow_outside_prior=True to simulate outside the prior anyway")
        t = t.double().numpy()
        seed = resolve_seed(seed)
        jobs = [(t[i], int(seed), i, bool(return_truth)) for i in range(len(t))]
        if self.workers > 1 and len(t) > 1:
            chunks = max(1, len(jobs) // (4 * self.workers))
            pool = self._get_pool()
            try:
                results = list(_progress(pool.map(_pool_job, jobs, chunksize=chunks), len(jobs), progress))
            except BrokenProcessPool:  # a worker died (killed, out of memory): the next call starts afresh
                self._terminate_pool()
                raise
            except Exception:  # a mock failed: mocks not started are cancelled, the pool stays
                raise
            except BaseException:  # Ctrl-C: stop the workers now rather than finish the batch
                self._terminate_pool()
                raise
        else:
            results = [_simulate_job(j, self) for j in _progress(jobs, len(jobs), progress)]
        keys = results[0].keys() if results else ["x"]
        if not results:
            return {"x": torch.zeros((0, *self.output_shape))}
        return {k: torch.from_numpy(np.stack([r[k] for r in results]).astype(np.float32)) for k in keys}



def _progress(it, total: int, progress: Any):
    """``it`` with a progress bar: its own (``progress=True``, on stderr), or the caller's bar advanced per mock."""
    if hasattr(progress, "update"):
        return _advance(it, progress)
    if not progress:
        return it
    from tqdm.auto import tqdm

    return tqdm(it, total=total, desc="simulating", unit="mock")


def _advance(it, bar: Any):
    for item in it:
        bar.update(1)
        yield item


def load_simulator(spec: str | Path | SimulatorSpec = "hst-phat", prior: str | Path | NamedBoxPrior | None = None,
                   *, workers: int = 1) -> ClusterSimulator:
    """The ``sbi`` simulator for a simulator spec (``"hst-phat"``, ``"jwst-nircam"`` or a TOML path).

    Its calls refuse theta outside the prior unless ``allow_outside_prior=True`` (see :class:`ClusterSimulator`).
    """
    return ClusterSimulator(spec, prior, workers=workers)
