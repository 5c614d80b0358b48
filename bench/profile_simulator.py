"""Where a mock's time goes, across the prior; and what the persistent worker pool saves.

Profile (default): cProfile over ``--n`` mocks drawn from the prior (m31-gc, hst-phat by default),
one process, one thread, each mock its own ``sim.simulate`` call (as sbi with batch size 1 would
do), after one warm-up mock that builds the observation model (PSF kernels, renderer, field pool;
its time is printed as "setup"). Prints

* the time per stage, from cProfile's cumulative times along the call graph of
  ``ClusterSimulator.simulate_one`` (see :data:`STAGES`; stages never overlap and add up to the
  total);
* the functions with the most self time;
* ms per mock (profiled, and unprofiled for the same draws) in log10 mass bins.

Pool (``--pool``): wall time of ``--calls`` successive calls of ``--batch`` mocks each with
``--workers`` processes, old behaviour (a new pool for every call: ``close()`` after each) against
the persistent pool, same draws, same run.

Run from the repo root::

    OMP_NUM_THREADS=1 .venv/bin/python bench/profile_simulator.py --n 40
    OMP_NUM_THREADS=1 .venv/bin/python bench/profile_simulator.py --pool
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from gcsbi.simulator.core import load_simulator  # noqa: E402

MASS_BINS = ((4.0, 5.0), (5.0, 6.0), (6.0, 6.7))


def _draws(sim, n: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    u = torch.rand((n, len(sim.param_names)), generator=gen)
    return sim.prior.low + (sim.prior.high - sim.prior.low) * u


# ------------------------------------------------------------------------------ profile
def _key(fn) -> tuple[str, int, str]:
    """cProfile's label of a Python function."""
    code = getattr(fn, "__wrapped__", fn).__code__
    return code.co_filename, code.co_firstlineno, code.co_name


def _functions() -> dict[str, tuple[str, int, str]]:
    from gcsbi.clusters import limepy_grid
    from gcsbi.clusters.models import sample_cluster
    from gcsbi.clusters.smooth_light import sample_cluster_light
    from gcsbi.observe.background import BackgroundBank
    from gcsbi.observe.noise import add_noise
    from gcsbi.observe.observe import ObservationModel
    from gcsbi.observe.render import Renderer
    from gcsbi.simulator import core
    from gcsbi.stars import light_groups as unresolved, population

    return {
        "simulate": _key(core.ClusterSimulator.simulate),
        "simulate_one": _key(core.ClusterSimulator.simulate_one),
        "sample_cluster": _key(sample_cluster),
        "sample_cluster_light": _key(sample_cluster_light),
        "sample_resolved": _key(unresolved.sample_resolved),
        "light_groups": _key(unresolved.light_groups),
        "unresolved_pixels": _key(ObservationModel._unresolved),
        "pop_sample": _key(population.StellarPopulation.sample),
        "pop_build": _key(population._build),
        "pop_new": _key(core._population),
        "node_tables": _key(limepy_grid._node_tables),
        "field": _key(ObservationModel._field),
        "bank": _key(BackgroundBank.sample),
        "render": _key(Renderer.render),
        "noise": _key(add_noise),
        "transform": _key(ObservationModel.transform),
    }


#: stage -> what it holds (the arithmetic is in :func:`stages`).
STAGES = {
    "snapshot: LIMEPY sampling": "sample_cluster(_light) less the population sample (radii, speeds, r_h, virial, "
                                 "flattening; projected profiles of the unresolved light)",
    "  of which model-node tables": "LIMEPY (W0, delta) node tables loaded or solved (first use per node)",
    "population: tables": "StellarPopulation per (age, [Fe/H]): isochrone + bolometric-correction tables",
    "population: sampling + photometry": "StellarPopulation.sample / sample_resolved less table building (IMF draws, "
                                         "evolve, faint particles or luminosity groups)",
    "unresolved light: pixel counts": "ObservationModel._unresolved: profiles on the pixel grid, Poisson counts",
    "field stars / background": "ObservationModel._field (+ BackgroundBank.sample)",
    "render: deposit (sparse)": "scipy.sparse calls under Renderer.render (one-hot deposit matrix @ phase tables)",
    "render: FFT": "scipy.fft rfftn / irfft2 under Renderer.render",
    "render: rest": "phase-table gather, kernel multiply-accumulate, cuts (numpy in Renderer.render)",
    "noise": "add_noise (Poisson + read noise)",
    "transforms": "ObservationModel.transform (log flux, colours, pixel CMD)",
    "other in simulate_one": "projection, magnitudes -> counts, sky, Python glue",
    "batch overhead": "simulate less simulate_one: prior checks, seeding, stacking",
}


def _ct(stats: dict, key, caller=None) -> float:
    entry = stats.get(key)
    if entry is None:
        return 0.0
    if caller is None:
        return entry[3]
    return entry[4].get(caller, (0, 0, 0.0, 0.0))[3]


def _callee_time(stats: dict, caller, pattern: str) -> float:
    """Cumulative time of the calls ``caller`` makes to functions whose file contains ``pattern``."""
    total = 0.0
    for (filename, _, _), (_, _, _, _, callers) in stats.items():
        if pattern in filename.replace("\\", "/") and caller in callers:
            total += callers[caller][3]
    return total


def stages(stats: dict) -> dict[str, float]:
    """Seconds per stage (see :data:`STAGES`) from ``pstats.Stats(...).stats``."""
    f = _functions()
    pop_in_cluster = (_ct(stats, f["pop_sample"], f["sample_cluster"])
                      + _ct(stats, f["sample_resolved"], f["sample_cluster_light"]))
    # only ever built once per population (StellarPopulation._t / light_groups), per mock
    tables = _ct(stats, f["pop_build"]) + _ct(stats, f["light_groups"])
    render = _ct(stats, f["render"])
    deposit = _callee_time(stats, f["render"], "scipy/sparse")
    fft = _callee_time(stats, f["render"], "scipy/fft")
    out = {
        "snapshot: LIMEPY sampling": _ct(stats, f["sample_cluster"]) + _ct(stats, f["sample_cluster_light"])
        - pop_in_cluster,
        "  of which model-node tables": _ct(stats, f["node_tables"]),
        "population: tables": tables + _ct(stats, f["pop_new"]),
        "population: sampling + photometry": pop_in_cluster - tables,
        "field stars / background": _ct(stats, f["field"]) + _ct(stats, f["bank"]),
        "unresolved light: pixel counts": _ct(stats, f["unresolved_pixels"]),
        "render: deposit (sparse)": deposit,
        "render: FFT": fft,
        "render: rest": render - deposit - fft,
        "noise": _ct(stats, f["noise"]),
        "transforms": _ct(stats, f["transform"]),
    }
    counted = sum(v for k, v in out.items() if not k.startswith(" "))
    out["other in simulate_one"] = _ct(stats, f["simulate_one"]) - counted
    out["batch overhead"] = _ct(stats, f["simulate"]) - _ct(stats, f["simulate_one"])
    return out


def _self_time_top(stats: dict, n: int) -> list[tuple[str, float, int]]:
    root = str(Path(__file__).resolve().parents[1])
    rows = []
    for (filename, line, name), (_, nc, tt, _, _) in stats.items():
        where = filename.replace(root + os.sep, "")
        if "site-packages" in where:
            where = where.split("site-packages" + os.sep, 1)[1]
        label = f"{name}" if filename == "~" else f"{where}:{line} {name}"
        rows.append((label, tt, nc))
    rows.sort(key=lambda r: -r[1])
    return rows[:n]


def _mass_table(logm: np.ndarray, ms: np.ndarray) -> list[dict]:
    rows = []
    for lo, hi in MASS_BINS:
        sel = (logm >= lo) & ((logm < hi) if hi < MASS_BINS[-1][1] else (logm <= hi))
        if sel.any():
            rows.append({"log10_mass": f"{lo:g}-{hi:g}", "n": int(sel.sum()), "mean_ms": float(ms[sel].mean()),
                         "median_ms": float(np.median(ms[sel])), "max_ms": float(ms[sel].max())})
    return rows


def _cold() -> None:
    """Forget the per-(age, [Fe/H]) populations and LIMEPY node tables, as for fresh prior draws."""
    from gcsbi.clusters import limepy_grid
    from gcsbi.simulator import core
    from gcsbi.stars import light_groups as unresolved, population

    core._population.cache_clear()
    population._build.cache_clear()
    limepy_grid._node_tables.cache_clear()  # reloaded from the on-disk cache when there is one


def profile(n: int, seed: int, spec: str, prior: str, top: int, unprofiled: bool) -> dict:
    torch.set_num_threads(1)
    sim = load_simulator(spec, prior)
    theta = _draws(sim, n, seed)
    logm = theta[:, sim.param_names.index("log10_mass")].numpy().astype(float)
    t0 = time.perf_counter()
    warm = sim.prior.from_dict({**{s.name: (s.low + s.high) / 2 for s in sim.prior.specs}, "log10_mass": 4.0})
    sim(warm, seed=0)  # observation model, reference LIMEPY grid, first population
    setup = time.perf_counter() - t0

    _cold()
    prof = cProfile.Profile()
    ms = np.empty(n)
    for i in range(n):
        t0 = time.perf_counter()
        prof.enable()
        sim.simulate(theta[i:i + 1], seed=seed + i)
        prof.disable()
        ms[i] = 1e3 * (time.perf_counter() - t0)
    stats = pstats.Stats(prof).stats
    st = stages(stats)
    total = sum(v for k, v in st.items() if not k.startswith(" "))

    ms_plain = None
    if unprofiled:  # same draws, same seeds, no profiler, caches as cold as in the profiled pass
        _cold()
        ms_plain = np.empty(n)
        for i in range(n):
            t0 = time.perf_counter()
            sim.simulate(theta[i:i + 1], seed=seed + i)
            ms_plain[i] = 1e3 * (time.perf_counter() - t0)

    print(f"{spec} / {prior}: {n} mocks, 1 process, 1 thread (torch {torch.get_num_threads()}, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}); setup (first mock) {setup:.2f} s")
    print(f"\n{'stage':38s} {'s':>8s} {'%':>6s} {'ms/mock':>8s}")
    for k, v in st.items():
        print(f"{k:38s} {v:8.3f} {100 * v / total:6.1f} {1e3 * v / n:8.1f}")
    print(f"{'total (profiled)':38s} {total:8.3f} {100.0:6.1f} {1e3 * total / n:8.1f}")
    print(f"\nmean ms per mock: {ms.mean():.1f} profiled (wall, incl. profiler overhead)"
          + (f", {ms_plain.mean():.1f} unprofiled (second pass, same draws and seeds)" if ms_plain is not None else ""))

    print(f"\n{'log10 M':8s} {'n':>3s} {'mean ms':>9s} {'median':>8s} {'max':>8s}" +
          (f" {'unprof. mean':>13s}" if ms_plain is not None else ""))
    by_mass = _mass_table(logm, ms)
    plain = {r["log10_mass"]: r for r in _mass_table(logm, ms_plain)} if ms_plain is not None else {}
    for r in by_mass:
        extra = f" {plain[r['log10_mass']]['mean_ms']:13.1f}" if plain else ""
        print(f"{r['log10_mass']:8s} {r['n']:3d} {r['mean_ms']:9.1f} {r['median_ms']:8.1f} {r['max_ms']:8.1f}{extra}")

    top_rows = _self_time_top(stats, top)
    print(f"\ntop {top} functions by self time (cProfile tottime, s; calls):")
    for label, tt, nc in top_rows:
        print(f"  {tt:8.3f}  {nc:7d}  {label}")
    return {"spec": spec, "prior": prior, "n": n, "seed": seed, "setup_s": setup,
            "stages_s": st, "total_profiled_s": total, "mean_ms_profiled": float(ms.mean()),
            "mean_ms_unprofiled": None if ms_plain is None else float(ms_plain.mean()),
            "by_mass_profiled": by_mass, "by_mass_unprofiled": list(plain.values()),
            "top_self_time": [{"function": lbl, "s": tt, "calls": nc} for lbl, tt, nc in top_rows]}


# --------------------------------------------------------------------------------- pool
def pool(calls: int, batch: int, workers: int, seed: int, spec: str, prior: str) -> dict:
    torch.set_num_threads(1)
    sim = load_simulator(spec, prior, workers=workers)
    thetas = [_draws(sim, batch, seed + c) for c in range(calls)]
    sim(thetas[0][:2], seed=0)  # start the forkserver (imports torch once) outside the timings
    sim.close()

    def run(persistent: bool) -> tuple[list[float], list]:
        times, xs = [], []
        for c, th in enumerate(thetas):
            t0 = time.perf_counter()
            xs.append(sim(th, seed=seed + c))
            if not persistent:
                sim.close()  # what every call did before: a new pool, models rebuilt in each worker
            times.append(time.perf_counter() - t0)
        sim.close()
        return times, xs

    old, x_old = run(persistent=False)
    new, x_new = run(persistent=True)
    same = all(torch.equal(a, b) for a, b in zip(x_old, x_new))
    print(f"{spec} / {prior}: {calls} calls x {batch} mocks, workers={workers}")
    print("  per call (s), new pool each call: " + " ".join(f"{t:.2f}" for t in old) + f"   total {sum(old):.2f}")
    print("  per call (s), persistent pool:    " + " ".join(f"{t:.2f}" for t in new) + f"   total {sum(new):.2f}")
    print(f"  speed-up {sum(old) / sum(new):.2f}x; same bytes: {same}")
    return {"calls": calls, "batch": batch, "workers": workers, "old_s": old, "persistent_s": new,
            "old_total_s": sum(old), "persistent_total_s": sum(new), "same_bytes": same}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=40, help="mocks to profile (default 40)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--spec", default="hst-phat")
    p.add_argument("--prior", default="m31-gc")
    p.add_argument("--top", type=int, default=15, help="functions listed by self time")
    p.add_argument("--no-unprofiled", action="store_true", help="skip the unprofiled timing pass")
    p.add_argument("--pool", action="store_true", help="time the persistent worker pool instead")
    p.add_argument("--calls", type=int, default=5)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--json", type=Path, default=None, help="also write the numbers to this file")
    a = p.parse_args(argv)
    if a.pool:
        res = pool(a.calls, a.batch, a.workers, a.seed, a.spec, a.prior)
    else:
        res = profile(a.n, a.seed, a.spec, a.prior, a.top, not a.no_unprofiled)
    if a.json is not None:
        a.json.write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
