"""The learnt M31 population, checked on mocks drawn from it: calibration and recovery.

    OMP_NUM_THREADS=1 .venv/bin/python bench/m31_population_check.py [--n 800]

1. ``--n`` mock clusters: disc radii of randomly chosen PHAT clusters; (log age, log M, [Fe/H],
   E(B-V)) from the shipped population (``gcsbi/data/populations/m31-phat.json``, a random bootstrap
   fit per mock, so the population's own uncertainty is in the mocks); the other parameters from
   the training prior (``m31-clusters``); six-band profiles (``hst-phat6``, 256-pixel stamps)
   measured as the PHAT catalogue (:class:`gcsbi.catalogue.CatalogueSimulator`). Cached in ``build/``.
2. **Calibration**: each mock's posterior under the population prior in its radial bin (the shipped
   posterior's draws re-weighted, as ``gcsbi m31`` does): coverage of central intervals at 5 - 95%
   for the four population parameters, the largest deviation, and its 95% level for an exactly
   calibrated posterior on as many mocks (uniform ranks, 400 repetitions). The ``box`` prior, wrong
   for these mocks, beside it.
3. **Recovery**: the population refitted on the mocks as on the catalogue
   (``scripts/fit_m31_population.py``: same bins, the shipped pseudo-count, ``--boot`` bootstrap
   refits); per radial bin, the marginal mass of each parameter's bins in the true and the refitted
   populations, and whether the truth lies inside the bootstrap 68% band.

Writes ``bench/results/m31_population_check.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from gcsbi.catalogue import CatalogueSimulator
from gcsbi.catalogue.catalogues import read_phat_catalogue
from gcsbi.catalogue.geometry import m31_disc_radius_kpc
from gcsbi.catalogue.inference import load_catalogue_posterior
from gcsbi.catalogue.population import POP_PARAMS, bin_fractions, bootstrap_weights, fit_weights, load_population
from gcsbi.catalogue.priors import PRESETS, reweight
from gcsbi.inference.seeding import seeded

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build"
RESULTS = ROOT / "bench" / "results"
LEVELS = np.round(np.arange(0.05, 0.96, 0.05), 2)


def make_mocks(n: int, seed: int) -> dict:
    path = BUILD / f"m31_population_mocks_nuv_{n}_{seed}.npz"
    if path.is_file():
        return dict(np.load(path))
    from tqdm.auto import tqdm

    pop = load_population()
    rng = np.random.default_rng(seed)
    phat = read_phat_catalogue()
    radius_all = m31_disc_radius_kpc(np.asarray(phat["RAdeg"], float), np.asarray(phat["DEdeg"], float))
    radius = radius_all[rng.integers(0, len(radius_all), n)]
    sim = CatalogueSimulator("hst-phat6", "m31-clusters")
    names = tuple(sim.param_names)
    with seeded(seed):
        theta = sim.prior.sample((n,)).numpy().astype(float)
    theta[:, [names.index(p) for p in POP_PARAMS]] = pop.sample(radius, rng)
    theta = theta.astype(np.float32)
    profiles = []
    for s in tqdm(range(0, n, 20), desc="mock profiles", unit="chunk"):
        profiles.append(sim.profiles(torch.as_tensor(theta[s:s + 20]), seed=seed * 1000 + s).numpy())
    x = sim.from_profiles(np.concatenate(profiles), seed=seed, theta=theta).numpy()
    BUILD.mkdir(exist_ok=True)
    np.savez(path, theta=theta, x=x, radius=radius)
    return {"theta": theta, "x": x, "radius": radius}


def coverage(draws: np.ndarray, truth: np.ndarray, seed: int) -> dict:
    """Per parameter: coverage of central intervals at LEVELS, the largest deviation and its noise level."""
    out: dict = {}
    worst = 0.0
    for j, n in enumerate(POP_PARAMS):
        rank = (draws[:, :, j] < truth[:, None, j]).mean(1)
        cov = np.array([np.mean(np.abs(rank - 0.5) <= lv / 2) for lv in LEVELS])
        dev = float(np.max(np.abs(cov - LEVELS)))
        worst = max(worst, dev)
        med = np.median(draws[:, :, j], axis=1)
        out[n] = {"coverage_68": float(np.mean(np.abs(rank - 0.5) <= 0.34)),
                  "coverage_95": float(np.mean(np.abs(rank - 0.5) <= 0.475)), "max_abs_coverage_deviation": dev,
                  "median_abs_error": float(np.median(np.abs(med - truth[:, j])))}
    rng = np.random.default_rng(seed)
    null = [max(float(np.max(np.abs(np.array([np.mean(np.abs(u - 0.5) <= lv / 2) for lv in LEVELS]) - LEVELS)))
                for u in rng.random((len(POP_PARAMS), len(truth)))) for _ in range(400)]
    return {"max_expected_coverage_deviation": worst, "max_deviation_if_calibrated_q95": float(np.quantile(null, 0.95)),
            "parameters": out}


def marginals(pop, w: np.ndarray) -> np.ndarray:
    """Mass per bin of each parameter (concatenated over parameters) of bin weights w (n_bins,)."""
    shape = [len(e) - 1 for e in pop.edges]
    grid = w.reshape(shape)
    return np.concatenate([grid.sum(axis=tuple(k for k in range(4) if k != j)) for j in range(4)])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=800)
    p.add_argument("--draws", type=int, default=16000, help="posterior draws per mock before re-weighting")
    p.add_argument("--keep", type=int, default=1000, help="draws kept per mock after re-weighting")
    p.add_argument("--boot", type=int, default=20)
    p.add_argument("--seed", type=int, default=4242)
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    t0 = time.time()
    m = make_mocks(a.n, a.seed)
    print(f"mocks: {len(m['x'])} in {time.time() - t0:.0f} s")
    post = load_catalogue_posterior()
    names = tuple(post.param_names)
    pop = load_population()
    idx = [names.index(n) for n in POP_PARAMS]
    truth = m["theta"][:, idx].astype(float)
    result: dict = {"n_mocks": int(len(m["x"])), "population": pop.name, "draws": a.draws, "kept": a.keep}
    rng = np.random.default_rng(a.seed)
    kept = {"population_prior": [], "box_prior": []}
    ess = {"population_prior": [], "box_prior": []}
    raw512 = []
    for s in range(0, len(m["x"]), 16):
        with seeded(a.seed + s):
            raw = post.sample_batched((a.draws,), torch.as_tensor(m["x"][s:s + 16])).permute(1, 0, 2).numpy()
        raw512.append(raw[:, :512, idx])
        for i in range(len(raw)):
            for label in kept:
                d, info = reweight(raw[i], names, PRESETS[label.split("_")[0]], a.keep, rng,
                                   radius_kpc=float(m["radius"][s + i]))
                kept[label].append(d[:, idx])
                ess[label].append(info["ess"])
    for label in kept:
        result[label] = coverage(np.stack(kept[label]), truth, a.seed)
        result[label]["ess_median"] = float(np.median(ess[label]))
        result[label]["ess_p5"] = float(np.percentile(ess[label], 5))
        print(label, json.dumps({k: v for k, v in result[label].items() if k != "parameters"}))
    # recovery: refit on the mocks as on the catalogue
    f, usable = bin_fractions(pop, np.concatenate(raw512).astype(float))
    radial = pop.radial_bin(m["radius"])
    alpha = float(pop.meta.get("alpha", 0.003))
    rec, inside = {}, []
    true_w = pop.weights[1:].mean(0)  # the population the mocks were drawn from (mixed over its bootstrap fits)
    for r in range(len(pop.radial_edges_kpc) - 1):
        rows = np.flatnonzero((radial == r) & usable)
        w, _ = fit_weights(f[rows], alpha=alpha)
        boots = bootstrap_weights(f[rows], w, alpha=alpha, n_boot=a.boot, rng=rng)
        mt = marginals(pop, true_w[r])
        mb = np.stack([marginals(pop, b) for b in boots])
        lo, hi = np.percentile(mb, [16, 84], axis=0)
        ok = (mt >= lo) & (mt <= hi)
        inside += ok.tolist()
        rec[f"radial_bin_{r}"] = {"n_mocks": int(len(rows)), "truth": mt.round(4).tolist(),
                                  "refit_p16": lo.round(4).tolist(), "refit_p84": hi.round(4).tolist(),
                                  "inside_68_fraction": float(ok.mean()),
                                  "max_abs_difference": float(np.max(np.abs(marginals(pop, w) - mt)))}
    result["recovery"] = rec
    result["recovery_inside_68_fraction"] = float(np.mean(inside))
    result["recovery_note"] = ("marginal bin masses of each parameter (9 age, 7 mass, 4 [Fe/H], 6 E(B-V) bins) per "
                               "radial bin; truth = the shipped population averaged over its bootstrap fits")
    result["wall_time_s"] = round(time.time() - t0, 1)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "m31_population_check.json").write_text(json.dumps(result, indent=1))
    print(f"recovery: {result['recovery_inside_68_fraction']:.0%} of the marginal bin masses inside the bootstrap "
          f"68% band; {json.dumps({k: v['max_abs_difference'] for k, v in rec.items()})}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
