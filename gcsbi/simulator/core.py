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
import operator
import os
import pickle
import threading
import weakref
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import torch

from ..errors import GcsbiValueError, SpecError
from ..spec.priors import NamedBoxPrior, load_prior
from ..spec.simulator_spec import SimulatorSpec, load_simulator_spec
from .processes import ignore_sigint_and_watch, mp_context, terminate_pool

__all__ = ["PARAMETERS", "SnapshotSource", "ClusterSimulator", "load_simulator", "spec_digest", "check_seed",
           "resolve_seed", "with_snapshot"]

#: Parameter name -> (default or None if required, description).
PARAMETERS: dict[str, tuple[float | None, str]] = {
    "distance_kpc": (None, "heliocentric distance, kpc"),
    "log10_mass": (None, "log10 present-day mass, Msun"),
    "age_gyr": (None, "age, Gyr"),
    "feh": (None, "[Fe/H]"),
    "log10_r_half": (float(np.log10(3.0)), "log10 3D half-mass radius, pc"),
    "w0": (7.0, "King W0"),
    "segregation": (0.0, "mass-segregation delta (0-0.5)"),
    "ellipticity": (0.0, "projected ellipticity 1-b/a"),
    "position_angle": (0.0, "major-axis position angle, deg E of N"),
    "ebv": (0.0, "E(B-V), mag"),
    "background_sb": (float("nan"), "field surface brightness, mag/arcsec^2 (NaN: spec default)"),
    "log10_age_yr": (float("nan"), "log10 age in yr: an alternative to age_gyr (young clusters)"),
}

#: Alternative parametrisations: name -> (the parameter it sets, conversion).
ALTERNATIVES: dict[str, tuple[str, Callable[[float], float]]] = {
    "log10_age_yr": ("age_gyr", lambda v: 10.0 ** (v - 9.0)),
}



@dataclass(frozen=True)
class SnapshotSource:
    """The validated ``[snapshot]`` table of a simulator spec."""

    source: str = "limepy"
    library: str | None = None
    max_faint_particles: int = 2000
    faint_light: str = "particles"
    max_resolved_stars: int = 2000
    truncation_g: float = 1.0
    default_prior: str | None = None
    fixed: tuple[tuple[str, float], ...] = ()

    @classmethod
    def from_mapping(cls, table: Mapping[str, Any], *, base_dir: Path | None = None) -> "SnapshotSource":
        keys = [f.name for f in dataclasses.fields(cls)]
        unknown = set(table) - set(keys)
        if unknown:
            raise SpecError(f"[snapshot]: unknown keys {sorted(unknown)}; allowed {keys}")
        default = cls()  # the dataclass defaults are the only defaults
        source = str(table.get("source", default.source))
        if source not in ("limepy", "library"):
            raise SpecError(f"[snapshot] source must be 'limepy' or 'library', got {source!r}")
        library = table.get("library")
        if source == "library":
            if not library:
                raise SpecError("[snapshot] source = 'library' needs library = '<folder>'")
            path = Path(str(library)).expanduser()
            library = str(path if path.is_absolute() or base_dir is None else (base_dir / path).resolve())
        fixed = table.get("fixed", {})
        if not isinstance(fixed, Mapping):
            raise SpecError("[snapshot.fixed] must be a table of parameter = value")
        bad = set(fixed) - set(PARAMETERS)
        if bad:
            raise SpecError(f"[snapshot.fixed]: unknown parameters {sorted(bad)}; known {list(PARAMETERS)}")
        faint_light = str(table.get("faint_light", default.faint_light))
        if faint_light not in ("particles", "smooth"):
            raise SpecError(f"[snapshot] faint_light must be 'particles' or 'smooth', got {faint_light!r}")
        if faint_light == "smooth" and source != "limepy":
            raise SpecError("[snapshot] faint_light = 'smooth' needs source = 'limepy' (library snapshots are particles)")
        unused = {"smooth": "max_faint_particles", "particles": "max_resolved_stars"}[faint_light]
        if unused in table:
            raise SpecError(f"[snapshot] {unused} does not apply with faint_light = {faint_light!r}")
        try:
            n_resolved = int(table.get("max_resolved_stars", default.max_resolved_stars))
            n_faint = int(table.get("max_faint_particles", default.max_faint_particles))
            g = float(table.get("truncation_g", default.truncation_g))
            fixed_t = tuple((k, float(v)) for k, v in fixed.items())
        except (TypeError, ValueError) as exc:
            raise SpecError(f"[snapshot]: bad value: {exc}") from exc
        if n_faint < 2:
            raise SpecError("[snapshot] max_faint_particles must be >= 2")
        if n_resolved < 1:
            raise SpecError("[snapshot] max_resolved_stars must be >= 1")
        prior = table.get("default_prior", default.default_prior)
        return cls(source=source, library=library, max_faint_particles=n_faint, faint_light=faint_light,
                   max_resolved_stars=n_resolved, truncation_g=g,
                   default_prior=None if prior is None else str(prior), fixed=fixed_t)


def with_snapshot(spec: str | Path | SimulatorSpec, **changes: Any) -> SimulatorSpec:
    """A copy of ``spec`` with ``[snapshot]`` keys changed (``None`` removes a key), validated.

    Changing ``faint_light`` drops the size key of the other mode (``max_faint_particles`` /
    ``max_resolved_stars``) unless it is given too, e.g. ``with_snapshot("hst-phat",
    faint_light="particles")`` renders every faint star as mass-stratified particles. The copy's
    :func:`spec_digest` covers the changed table, so posteriors trained on the file's spec refuse it.
    """
    s = spec if isinstance(spec, SimulatorSpec) else load_simulator_spec(spec)
    table = dict(s.snapshot)
    if "faint_light" in changes:
        other = {"smooth": "max_faint_particles", "particles": "max_resolved_stars"}.get(str(changes["faint_light"]))
        if other is not None and other not in changes:
            table.pop(other, None)
    for key, value in changes.items():
        if value is None:
            table.pop(key, None)
        else:
            table[key] = value
    base = Path(s.source).parent if s.source else None
    SnapshotSource.from_mapping(table, base_dir=base)  # raises SpecError on a bad combination
    return dataclasses.replace(s, snapshot=MappingProxyType(table))


#: Version of the physics behind an unchanged spec (stellar photometry, observation model). Part
#: of :func:`spec_digest`: raise it when a change of gcsbi alters the images a spec simulates, so
#: that posteriors trained on the old images refuse the new simulator. 2: the HST near-UV
#: transfer takes the u band's residual across its passband (F336W brighter for cool stars).
PHYSICS_VERSION = 2


def spec_digest(spec: SimulatorSpec) -> str:
    """Content hash of a simulator spec (its parsed TOML) and :data:`PHYSICS_VERSION`, independent of
    where the file lives.

    Checkpoints and banks store it instead of the file path, so a posterior trained in one
    checkout loads in another, and any edit of the spec's content is detected.
    """
    import hashlib
    import json

    from ..spec.resources import read_toml

    doc = read_toml(Path(spec.source)) if spec.source else {"repr": repr(spec)}
    if spec.source and dict(spec.snapshot) != doc.get("snapshot", {}):  # changed in memory (with_snapshot)
        doc["snapshot"] = dict(spec.snapshot)
    doc["_physics_version"] = PHYSICS_VERSION
    blob = json.dumps(doc, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def check_seed(seed: Any) -> int | None:
    """``seed`` as a Python int (or None), refusing anything that is not a non-negative integer.

    Accepted: None, ``int`` and integer scalars (numpy integers, 0-d integer tensors) >= 0, of any size
    (``numpy.random.SeedSequence`` takes arbitrarily large entropy). Refused with
    :class:`~gcsbi.errors.GcsbiValueError`: bools, floats (even 2.0), strings, negative numbers.
    """
    if seed is None:
        return None
    if not isinstance(seed, (bool, np.bool_)):
        try:
            value = operator.index(seed)
        except TypeError:
            value = None
        if value is not None and value >= 0:
            return int(value)
    raise GcsbiValueError(f"seed must be a non-negative integer (or None), got {seed!r:.40}")


def resolve_seed(seed: Any) -> int:
    """:func:`check_seed`, and for ``seed=None`` a seed drawn from torch's global generator.

    Drawing from torch (not from OS entropy) is what sbi expects: ``torch.manual_seed(s)``, or
    ``sbi.inference.simulate_for_sbi(sim, prior, n, seed=s)`` which seeds torch, then makes the
    simulations reproducible too.
    """
    seed = check_seed(seed)
    if seed is None:
        seed = int(torch.randint(0, 2**63 - 1, (1,), dtype=torch.int64).item())
    return seed


def _positive_int(value: Any, name: str) -> int:
    try:
        n = None if isinstance(value, (bool, np.bool_)) else operator.index(value)
    except TypeError:
        n = None
    if n is None or n < 1:
        raise GcsbiValueError(f"{name} must be a positive integer, got {value!r:.40}")
    return int(n)


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
                 allow_outside_prior: bool = False) -> torch.Tensor:
        """x (B, C, H, W) float32 for theta (B, D); rows are independent given (seed, row).

        ``seed``: an integer >= 0, or None (drawn from torch's global generator, see
        :func:`resolve_seed`). theta outside the prior box is refused
        unless ``allow_outside_prior`` (see the class docstring).
        """
        return self.simulate(theta, seed=seed, allow_outside_prior=allow_outside_prior)["x"]

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
            from ..clusters.unresolved import sample_cluster_light

            return sample_cluster_light(params, rng=rng, population=pop, max_resolved=src.max_resolved_stars)
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
                 progress: bool = False, allow_outside_prior: bool = False) -> dict[str, torch.Tensor]:
        """x and optionally the truth maps for a batch.

        Returns a dict of float32 tensors: ``x`` (B, C, H, W); with ``return_truth`` also
        ``image`` (B, F, H, W) noisy counts, ``clean`` (B, F, H, W) noiseless cluster light,
        ``background`` (B, F, H, W) and ``mass_map`` (B, H, W) in Msun per pixel.
        Row i draws from ``SeedSequence([seed, i])``; ``seed=None`` draws the seed from torch's
        global generator (:func:`resolve_seed`), otherwise it must be an integer >= 0
        (:func:`check_seed`). Rows outside the prior box raise
        :class:`~gcsbi.errors.GcsbiValueError` before anything is simulated, unless
        ``allow_outside_prior``.
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



def _progress(it, total: int, enabled: bool):
    if not enabled:
        return it
    from tqdm.auto import tqdm

    return tqdm(it, total=total, desc="simulating", unit="mock")


# ------------------------------------------------------------------ worker pool
# (the process policy, shared with the bank's workers, is in gcsbi.simulator.processes)

#: The simulator of this worker process (set by _pool_init) and how many observation models it built.
_WORKER_SIM: ClusterSimulator | None = None
_WORKER_MODEL_BUILDS = 0


def _mp_context() -> Any:
    return mp_context(__name__)


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


def load_simulator(spec: str | Path | SimulatorSpec = "hst-phat", prior: str | Path | NamedBoxPrior | None = None,
                   *, workers: int = 1) -> ClusterSimulator:
    """The ``sbi`` simulator for a simulator spec (``"hst-phat"``, ``"jwst-nircam"`` or a TOML path).

    Its calls refuse theta outside the prior unless ``allow_outside_prior=True`` (see :class:`ClusterSimulator`).
    """
    return ClusterSimulator(spec, prior, workers=workers)
