"""Benchmark of the observation chain (gcsbi.observe) on this machine, single process, one thread.

For cluster-like star lists of 1e4, 1e5, 1e6 Msun (Plummer sphere, a = 1 pc,
n_stars = 0.1 x M bright sampled stars, power-law luminosity function) seen
through ``hst-phat`` (128x128x3) at M31 (780 kpc):

* mocks/s of the full chain (projection, photometry, render, field
  background, noise) and of the render step alone;
* the per-star GalSim ``drawImage`` baseline on the same stars (timed on a
  subset, scaled to all stars and 3 bands) and the speedup;
* rms residual of the fast render vs exact GalSim drawing (300 stars);
* memory: tracemalloc peak of one mock and the process max RSS.

Run: ``.venv/bin/python bench/bench_render.py`` -> ``bench/results/bench_render.json``.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import sys
import time
import tracemalloc
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from gcsbi.observe import ObservationModel, luminosity_function_sampler, render_exact  # noqa: E402
from gcsbi.spec.simulator_spec import load_simulator_spec  # noqa: E402


def plummer_cluster(rng: np.random.Generator, mass_msun: float, filters) -> tuple[np.ndarray, np.ndarray]:
    n = int(0.1 * mass_msun)
    u = rng.random(n)
    r = 1.0 / np.sqrt(u ** (-2.0 / 3.0) - 1.0)
    v = rng.standard_normal((n, 3))
    pos = r[:, None] * v / np.linalg.norm(v, axis=1, keepdims=True)
    mags = luminosity_function_sampler(filters)(n, rng)
    return pos, mags


def timeit(fn, min_time: float = 2.0, min_reps: int = 5) -> float:
    fn()
    reps, t0 = 0, time.perf_counter()
    while reps < min_reps or time.perf_counter() - t0 < min_time:
        fn()
        reps += 1
    return (time.perf_counter() - t0) / reps


def main() -> dict:
    spec = load_simulator_spec("hst-phat")
    t0 = time.perf_counter()
    model = ObservationModel.from_spec(spec, field_sampler=luminosity_function_sampler(spec.filters))
    build_s = time.perf_counter() - t0
    rng = np.random.default_rng(42)
    d_kpc = 780.0
    out = {
        "machine": {"platform": platform.platform(), "python": sys.version.split()[0], "cpus": os.cpu_count(),
                    "threads": 1},  # fmt: skip
        "spec": spec.name,
        "shape": [len(spec.filters), *spec.observation.size],
        "model_build_s": build_s,
        "kernel_rank_per_band": list(model.renderer.n_components),
        "fft_grid": list(model.renderer.fft_shape),
        "clusters": [],
    }
    # accuracy vs exact GalSim (300 stars at random sub-pixel positions, some outside the stamp)
    h, w = spec.observation.size
    n_acc = 300
    xs = rng.uniform(-8, w + 8, n_acc)
    ys = rng.uniform(-8, h + 8, n_acc)
    fl = 10 ** rng.uniform(2, 5, (len(spec.filters), n_acc))
    fast = model.renderer.render(xs, ys, fl)
    acc = {}
    for b, f in enumerate(spec.filters):
        t = time.perf_counter()
        ex = render_exact(model.profiles[b], xs, ys, fl[b], shape=(h, w),
                          pixel_scale_arcsec=spec.instrument.pixel_scale_arcsec,
                          pixel_convolved=model.pixel_convolved[b])  # fmt: skip
        per_star = (time.perf_counter() - t) / n_acc
        acc[f] = {"rms_over_peak": float(np.sqrt(np.mean((fast[b] - ex) ** 2)) / ex.max()),
                  "max_over_peak": float(np.abs(fast[b] - ex).max() / ex.max()),
                  "galsim_s_per_star": per_star}  # fmt: skip
    out["accuracy_vs_galsim"] = acc
    baseline_per_star_3band = sum(a["galsim_s_per_star"] for a in acc.values())
    for mass in (1e4, 1e5, 1e6):
        pos, mags = plummer_cluster(rng, mass, spec.filters)
        n = len(pos)

        def full():
            model(pos, mags, spec.filters, distance_kpc=d_kpc, rng=rng)

        x, y = model.pixel_coordinates(pos, distance_kpc=d_kpc)
        counts = 10 ** rng.uniform(1, 4, (3, n))

        def render_only():
            model.renderer.render(x, y, counts)

        t_full = timeit(full)
        t_render = timeit(render_only)
        tracemalloc.start()
        full()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        baseline = baseline_per_star_3band * n
        out["clusters"].append({
            "mass_msun": mass, "n_stars": n,
            "full_chain_mocks_per_s": 1.0 / t_full, "full_chain_ms": 1e3 * t_full,
            "render_only_mocks_per_s": 1.0 / t_render, "render_only_ms": 1e3 * t_render,
            "galsim_per_star_baseline_s": baseline,
            "speedup_full_chain_vs_baseline": baseline / t_full,
            "speedup_render_vs_baseline": baseline / t_render,
            "tracemalloc_peak_mb": peak / 2**20,
        })  # fmt: skip
    out["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return out


if __name__ == "__main__":
    res = main()
    path = Path(__file__).resolve().parent / "results" / "bench_render.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(res, indent=2))
    print(json.dumps(res, indent=2))
