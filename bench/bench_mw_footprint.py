"""Milky Way mocks with unresolved light and a detection-limit resolved cut, against every star, and their speed.

``hst-mw`` with ``faint_light = "smooth"`` and ``detection_sigma``: the stars the observation
would detect one by one (sky, read noise and the cluster's own confusion noise in a PSF footprint;
:mod:`gcsbi.clusters.footprint`) are drawn individually inside the stamp's footprint, the rest are
luminosity groups on the pixel grid. For clusters at 2, 10 and 50 kpc (10^4.5 and 10^5 Msun,
11 Gyr, [Fe/H] = -1.5, E(B-V) = 0.1):

1. the stars below the count cut alone (:func:`faint_part`, ``--n`` seeds): the footprint's drawn
   stars plus the luminosity groups against every such star drawn and rendered;
2. whole clean cluster images (``--n-images`` seeds, the prior's middle otherwise) against
   every-star rendering (particles of one star each), and the particle rendering used so far
   (noisy: a few bright giants dominate the light).

Each: total flux, flux and summed pixel variance inside the half-light radius, colours, with a
bootstrap standard error (``bench_unresolved._compare``). First, the time per mock over the
milky-way-gc prior, old (particles) and new in the same run, one thread.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python bench/bench_mw_footprint.py [--n 300] [--n-images 200] [--n-prior 48]``
Results: bench/results/mw_footprint.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_unresolved import _compare  # noqa: E402

from gcsbi.simulator.core import ClusterSimulator, with_snapshot  # noqa: E402
from gcsbi.stars.population import StellarPopulation  # noqa: E402

OUT = Path(__file__).resolve().parent / "results"
SIGMA = 5.0


def simulators() -> dict[str, ClusterSimulator]:
    return {"footprint": ClusterSimulator(with_snapshot("hst-mw", faint_light="smooth", detection_sigma=SIGMA),
                                          "milky-way-gc"),
            "particles": ClusterSimulator(with_snapshot("hst-mw", faint_light="particles"), "milky-way-gc"),
            "every_star": ClusterSimulator(with_snapshot("hst-mw", faint_light="particles",
                                                         max_faint_particles=10**8), "milky-way-gc")}


def images(n: int, distances=(2.0, 10.0, 50.0), log_masses=(4.5, 5.0)) -> dict:
    sims = simulators()
    names = sims["footprint"].prior.names
    base = (sims["footprint"].prior.low + sims["footprint"].prior.high) / 2
    orig = StellarPopulation.sample
    res = {}
    try:
        for d in distances:
            for logm in log_masses:
                th = base.clone()
                th[names.index("distance_kpc")] = d
                th[names.index("log10_mass")] = logm
                th[names.index("ebv")] = 0.1
                th = th[None].repeat(n, 1)
                clean, ms = {}, {}
                for name, sim in sims.items():
                    StellarPopulation.sample = ((lambda self, *a, **k: orig(self, *a, **{**k, "min_stars_per_particle": 1.0}))
                                                if name == "every_star" else orig)
                    t0 = time.perf_counter()
                    clean[name] = sim.simulate(th, seed=1, return_truth=True)["clean"].double().numpy()
                    ms[name] = round(1e3 * (time.perf_counter() - t0) / n, 1)
                key = f"d{d:g}kpc_logM{logm}"
                res[key] = {"footprint_vs_every_star": _compare(clean["footprint"], clean["every_star"]),
                            "particles_vs_every_star": _compare(clean["particles"], clean["every_star"]),
                            "ms_per_mock": ms, "n": n}
                print(key, json.dumps(res[key]), flush=True)
    finally:
        StellarPopulation.sample = orig
    return res


def faint_part(n: int, distances=(2.0, 10.0, 50.0), log_masses=(4.5, 5.0)) -> dict:
    """The part that differs from every-star rendering, alone: every star below the count cut.

    As ``bench_unresolved.unresolved_statistics``: (a) every star below the count cut (initial mass
    below ``resolved_above``, and white dwarfs) drawn with ``sample_every_star``, placed with the
    LIMEPY sampler and rendered; (b) the footprint's detected stars plus the remaining luminosity
    groups on the pixel grid. The bright stars both share would only add noise to the comparison.
    """
    import numpy as np

    from gcsbi.clusters.models import ClusterParams, _place, reference_grid
    from gcsbi.clusters.smooth_light import sample_cluster_light
    from gcsbi.observe.instrument import distance_modulus, magnitudes_to_counts
    from gcsbi.observe.observe import get_observation_model
    from gcsbi.simulator.core import _population
    from gcsbi.stars.population import Phase, sample_every_star

    model = get_observation_model(with_snapshot("hst-mw", faint_light="smooth", detection_sigma=SIGMA))
    grid = reference_grid()
    ebv = 0.1
    a_f = model.extinction_mag(ebv)
    pop = _population(11.0, -1.5, tuple(model.filters))
    res = {}
    for d in distances:
        fp = model.footprint(distance_kpc=d, ebv=ebv, detection_sigma=SIGMA)
        mu = distance_modulus(d)
        for logm in log_masses:
            params = ClusterParams(mass=10**logm, half_mass_radius=3.0, age_gyr=11.0, feh=-1.5, w0=7.0,
                                   segregation=0.2)
            stacks = {"every_star": [], "footprint": []}
            t = {"every_star": 0.0, "footprint": 0.0}
            for i in range(n):
                t0 = time.perf_counter()
                snap, light = sample_cluster_light(params, rng=np.random.default_rng([0, i]), population=pop,
                                                   footprint=fp)
                n_fp = int(snap.meta["footprint_stars"])
                drawn = snap.positions[len(snap) - n_fp:]
                x, y = model.pixel_coordinates(drawn, distance_kpc=d)
                counts = magnitudes_to_counts(snap.abs_mag[len(snap) - n_fp:], zeropoints=model.zeropoints,
                                              exposure_s=model.exposure_s, distance_modulus=mu, extinction_mag=a_f)
                rng = np.random.default_rng([1, i])
                grid_light = model._unresolved(light, rng, mu=mu, a_f=a_f, distance_kpc=d, ellipticity=0.0,
                                               position_angle_deg=0.0)
                stacks["footprint"].append(model.renderer.render(x, y, counts, grid=grid_light))
                t["footprint"] += time.perf_counter() - t0
                t0 = time.perf_counter()
                extra = np.bincount(grid.component_of(snap.current_mass[:len(snap) - n_fp]),
                                    weights=snap.particle_mass[:len(snap) - n_fp], minlength=len(grid.mass_bins))
                stars = sample_every_star(pop, params.mass, rng)  # its faint part: the mass the groups carry
                faint = (stars.initial_mass < light.resolved_above) | (stars.phase == Phase.WD)
                faint_stars = stars._take(faint)
                s_ref = _place(faint_stars, params, grid, rng, extra_comp_mass=extra, virialize=False)
                x, y = model.pixel_coordinates(s_ref.positions, distance_kpc=d)
                counts = magnitudes_to_counts(faint_stars.abs_mag, zeropoints=model.zeropoints,
                                              exposure_s=model.exposure_s, distance_modulus=mu, extinction_mag=a_f)
                stacks["every_star"].append(model.renderer.render(x, y, counts))
                t["every_star"] += time.perf_counter() - t0
            ref, test = (np.stack(stacks[k]).astype(np.float64) for k in ("every_star", "footprint"))
            key = f"d{d:g}kpc_logM{logm}"
            res[key] = {**_compare(test, ref), "n": n, "footprint_stars_last": n_fp,
                        "ms_per_realisation": {k: round(1e3 * v / n, 1) for k, v in t.items()}}
            print("faint part", key, json.dumps(res[key]), flush=True)
    return res


def speed(n_prior: int) -> dict:
    sims = simulators()
    out = {}
    gen = torch.Generator().manual_seed(0)
    prior = sims["footprint"].prior
    th = prior.low + (prior.high - prior.low) * torch.rand((n_prior, len(prior.names)), generator=gen)
    for name in ("particles", "footprint"):
        sim = sims[name]
        sim(th[:2], seed=0)
        t0 = time.perf_counter()
        sim(th, seed=3)
        out[name] = round(1e3 * (time.perf_counter() - t0) / n_prior, 2)
    # the same draws again, both ways, in the other order (drift of the machine)
    for name in ("footprint", "particles"):
        t0 = time.perf_counter()
        sims[name](th, seed=4)
        out[name + "_repeat"] = round(1e3 * (time.perf_counter() - t0) / n_prior, 2)
    print("ms per mock over the milky-way-gc prior (one thread):", out, flush=True)
    return out


def main() -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=300, help="seeds per (distance, mass) (default 300)")
    p.add_argument("--n-prior", type=int, default=48, help="prior draws for the timing (default 48)")
    p.add_argument("--n-images", type=int, default=200, help="seeds per (distance, mass) of whole images (default 200)")
    p.add_argument("--skip-images", action="store_true", help="skip the whole images (noisy: bright giants dominate)")
    args = p.parse_args()
    torch.set_num_threads(1)
    res = {"detection_sigma": SIGMA, "threads": 1, "speed_ms_per_mock": speed(args.n_prior)}
    res["faint_part"] = faint_part(args.n)
    if not args.skip_images:
        res["images"] = images(args.n_images)
    return res


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    result = main()
    (OUT / "mw_footprint.json").write_text(json.dumps(result, indent=2))
