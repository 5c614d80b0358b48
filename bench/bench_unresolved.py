"""Unresolved light (``[snapshot] faint_light = "smooth"``) against sampling every star, and its speed.

Measurements, one process, one thread (results: bench/results/unresolved.json; the speed of the
whole simulator, old vs new, is ``bench_simulator.py``):

1. **Statistics of the unresolved part** (the claim it must meet: same mean and the SBF variance the
   stars' discreteness implies). For a 1e5 and a 1e6 Msun cluster (hst-phat at M31, E(B-V) = 0.1;
   ``--n`` and ``--n``/5 realisations, each with its own resolved stars) the stars that
   the smooth mode does not sample one by one are (a) drawn star by star with
   :func:`gcsbi.stars.population.sample_every_star`, placed with the LIMEPY sampler at the same
   length scale and rendered as point sources, and (b) drawn as Poisson counts per pixel
   (:mod:`gcsbi.observe.star_counts`) and rendered with ``grid=``. Total flux per band, flux and
   summed pixel variance inside the half-light radius, colours, each with a bootstrap error.
2. **Whole images** (clean cluster light) at 10^4.5 and 10^5 Msun, ``--n-images`` seeds each
   (and smooth against particles alone at 10^6.5 Msun, a quarter as many):
   smooth and the old particle rendering, both against an (expensive) every-star rendering
   (faint particles of one star each). The old rendering shares its bright-star draws with the
   every-star one (same random stream), the smooth one does not, so its errors are larger.
3. **Memory**: peak RSS of each worker of a ``workers=2`` simulator over 200 prior draws.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python bench/bench_unresolved.py [--n 200] [--n-images 400]``
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from gcsbi.simulator.core import ClusterSimulator, with_snapshot

OUT = Path(__file__).resolve().parent / "results"


def _sim(spec_name: str, prior: str, mode: str, **extra) -> ClusterSimulator:
    return ClusterSimulator(with_snapshot(spec_name, faint_light=mode, **extra), prior)


def _half_light_mask(img: np.ndarray) -> np.ndarray:
    h, w = img.shape
    yy, xx = np.mgrid[:h, :w]
    r = np.hypot(xx - (w - 1) / 2, yy - (h - 1) / 2)
    order = np.argsort(r.ravel())
    cum = np.cumsum(img.ravel()[order])
    return r <= r.ravel()[order][np.searchsorted(cum, 0.5 * cum[-1])]


def _compare(test: np.ndarray, ref: np.ndarray, n_boot: int = 200) -> dict:
    """Statistics of image stacks (N, F, H, W): test / reference, each with a bootstrap standard error.

    The realisations of each stack are resampled independently (the two stacks are independent).
    """
    sel = _half_light_mask(ref.mean(0).sum(0))

    def stats(t: np.ndarray, r: np.ndarray) -> np.ndarray:
        mt, mr = t.mean(0), r.mean(0)
        total = mt.sum((1, 2)) / mr.sum((1, 2))
        inner = mt[:, sel].sum(1) / mr[:, sel].sum(1)
        var = t[:, :, sel].var(0).sum(1) / r[:, :, sel].var(0).sum(1)
        col = np.diff(-2.5 * np.log10(mt.sum((1, 2)))) - np.diff(-2.5 * np.log10(mr.sum((1, 2))))
        return np.concatenate([total, inner, var, col])

    nf = test.shape[1]
    best = stats(test, ref)
    rng = np.random.default_rng(0)
    boots = np.stack([stats(test[rng.integers(0, len(test), len(test))], ref[rng.integers(0, len(ref), len(ref))])
                      for _ in range(n_boot)])
    se = boots.std(0)
    parts = {"total_flux_ratio": slice(0, nf), "half_light_flux_ratio": slice(nf, 2 * nf),
             "half_light_pixel_variance_ratio": slice(2 * nf, 3 * nf), "colour_difference_mag": slice(3 * nf, None)}
    out = {}
    for name, sl in parts.items():
        out[name] = best[sl].round(4).tolist()
        out[name + "_se"] = se[sl].round(4).tolist()
    return out


def unresolved_statistics(n: int, log_mass: float = 5.0) -> dict:
    from gcsbi.clusters.models import ClusterParams, _place, reference_grid
    from gcsbi.clusters.smooth_light import sample_cluster_light
    from gcsbi.observe.instrument import magnitudes_to_counts
    from gcsbi.observe.observe import get_observation_model
    from gcsbi.stars import StellarPopulation
    from gcsbi.stars.population import Phase, sample_every_star

    params = ClusterParams(mass=10**log_mass, half_mass_radius=10**0.5, age_gyr=11.0, feh=-1.0, w0=7.0,
                           segregation=0.2)
    pop = StellarPopulation(age_gyr=params.age_gyr, feh=params.feh)
    grid = reference_grid()
    model = get_observation_model("hst-phat")
    d, ebv = 780.0, 0.1
    mu = 5 * np.log10(d * 100.0)
    a_f = model.extinction_mag(ebv)
    idx = [pop.filters.index(f) for f in model.filters]
    stacks = {"every_star": [], "smooth": []}
    t = {"every_star": 0.0, "smooth": 0.0}
    for i in range(n):
        # each realisation draws its own resolved stars; the cut depends on the cluster mass only
        snap, light = sample_cluster_light(params, rng=np.random.default_rng([0, i]), population=pop)
        extra = np.bincount(grid.component_of(snap.current_mass), weights=snap.particle_mass,
                            minlength=len(grid.mass_bins))
        rng = np.random.default_rng([1, i])
        t0 = time.perf_counter()
        stars = sample_every_star(pop, params.mass, rng)
        faint = (stars.initial_mass < light.resolved_above) | (stars.phase == Phase.WD)
        faint_stars = stars._take(faint)
        s = _place(faint_stars, params, grid, rng, extra_comp_mass=extra, virialize=False)
        x, y = model.pixel_coordinates(s.positions, distance_kpc=d)
        counts = magnitudes_to_counts(faint_stars.abs_mag[:, idx], zeropoints=model.zeropoints,
                                      exposure_s=model.exposure_s, distance_modulus=mu, extinction_mag=a_f)
        stacks["every_star"].append(model.renderer.render(x, y, counts))
        t["every_star"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        grid_light = model._unresolved(light, rng, mu=mu, a_f=a_f, distance_kpc=d, ellipticity=0.0,
                                       position_angle_deg=0.0)
        stacks["smooth"].append(model.renderer.render(np.zeros(0), np.zeros(0), np.zeros((3, 0)), grid=grid_light))
        t["smooth"] += time.perf_counter() - t0
    ref, test = (np.stack(stacks[k]).astype(np.float64) for k in ("every_star", "smooth"))
    out = _compare(test, ref)
    out.update(log10_mass=log_mass, n_realisations=n, unresolved_stars=float(light.n.sum()),
               unresolved_mass=float(light.total_mass), resolved_stars=len(snap),
               ms_per_realisation={k: 1e3 * v / n for k, v in t.items()})
    return out


def whole_images(n: int, log_masses=(4.5, 5.0)) -> dict:
    from gcsbi.stars.population import StellarPopulation

    sims = {"particles": _sim("hst-phat", "m31-gc", "particles"),
            "every_star": _sim("hst-phat", "m31-gc", "particles", max_faint_particles=10**8),
            "smooth": _sim("hst-phat", "m31-gc", "smooth")}
    orig = StellarPopulation.sample
    names = sims["smooth"].prior.names
    base = (sims["smooth"].prior.low + sims["smooth"].prior.high) / 2
    res = {}
    try:
        for logm in log_masses:
            th = base.clone()
            th[names.index("log10_mass")] = logm
            th[names.index("ebv")] = 0.1
            th = th[None].repeat(n, 1)
            clean = {}
            for name, sim in sims.items():
                # every faint particle one star (the default packs >= 10 stars into a particle)
                StellarPopulation.sample = ((lambda self, *a, **k: orig(self, *a, **{**k, "min_stars_per_particle": 1.0}))
                                            if name == "every_star" else orig)
                clean[name] = sim.simulate(th, seed=1, return_truth=True)["clean"].double().numpy()
            res[f"logM_{logm}"] = {"smooth_vs_every_star": _compare(clean["smooth"], clean["every_star"]),
                                   "particles_vs_every_star": _compare(clean["particles"], clean["every_star"])}
    finally:
        StellarPopulation.sample = orig
    res.update(massive_images(max(n // 4, 20)))
    return res


def massive_images(n: int, log_mass: float = 6.5) -> dict:
    """Smooth against today's particle rendering at 10^6.5 Msun (every star is too slow there), ``n`` seeds."""
    sims = {m: _sim("hst-phat", "m31-gc", m) for m in ("particles", "smooth")}
    names = sims["smooth"].prior.names
    th = ((sims["smooth"].prior.low + sims["smooth"].prior.high) / 2)[None].repeat(n, 1)
    th[:, names.index("log10_mass")] = log_mass
    th[:, names.index("ebv")] = 0.1
    clean = {m: s.simulate(th, seed=1, return_truth=True)["clean"].double().numpy() for m, s in sims.items()}
    return {f"logM_{log_mass}": {"smooth_vs_particles": _compare(clean["smooth"], clean["particles"])}}


def worker_memory(spec: str = "hst-phat", prior: str = "m31-gc", n: int = 200) -> dict:
    """Peak RSS (VmHWM) of each pool worker after ``n`` prior draws with ``workers=2``, and of this process."""
    from gcsbi.simulator.core import load_simulator

    def hwm(pid: int) -> float:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return float(line.split()[1]) / 1024
        return float("nan")

    with load_simulator(spec, prior, workers=2) as sim:
        gen = torch.Generator().manual_seed(5)
        th = sim.prior.low + (sim.prior.high - sim.prior.low) * torch.rand((n, len(sim.param_names)), generator=gen)
        t0 = time.perf_counter()
        sim(th, seed=6)
        wall = time.perf_counter() - t0
        out = {"peak_rss_mb_per_worker": [round(hwm(p), 1) for p in sim.worker_pids], "n": n,
               "wall_s_2_workers": wall, "main_peak_rss_mb": round(hwm(os.getpid()), 1)}
    print(f"{spec}/{prior} workers=2: {out}", flush=True)
    return out


def main() -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=200, help="realisations per statistic (default 200)")
    p.add_argument("--n-images", type=int, default=400, help="seeds per theta in part 2 (default 400)")
    p.add_argument("--skip-images", action="store_true", help="skip part 2 (the every-star images are slow)")
    args = p.parse_args()
    torch.set_num_threads(1)
    res = {}
    res["unresolved_part"] = {}
    for log_mass, n in ((5.0, args.n), (6.0, max(args.n // 5, 20))):  # every star of 1e6 Msun: ~4 s a mock
        res["unresolved_part"][f"logM_{log_mass}"] = unresolved_statistics(n, log_mass)
        print(f"unresolved part vs every star, log M {log_mass}:", json.dumps(res["unresolved_part"][f"logM_{log_mass}"]),
              flush=True)
    if not args.skip_images:
        res["whole_images"] = whole_images(args.n_images)
        print("whole images:", json.dumps(res["whole_images"]), flush=True)
    res["memory"] = worker_memory()
    return res


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    result = main()
    (OUT / "unresolved.json").write_text(json.dumps(result, indent=2))
