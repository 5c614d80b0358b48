"""Learn the population of M31's clusters from the PHAT catalogue (hierarchical inference) and ship it.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/fit_m31_population.py [--draws 512] [--boot 20]

1. Posterior draws of every usable PHAT cluster (Johnson et al. 2015; 2743 of 2753 rows) under the
   shipped catalogue posterior's training prior (``m31-clusters``), ``--draws`` per cluster, seeded
   per batch, cached in ``build/`` (reused when the posterior, catalogue and settings are the same).
2. The population mixture over (log age, log M, [Fe/H], E(B-V) | disc radius) by extreme
   deconvolution (:mod:`gcsbi.catalogue.population`), 1 - ``--max-components`` components, chosen by BIC.
3. ``--boot`` bootstrap refits over clusters: the population's uncertainty.
4. Writes ``gcsbi/data/populations/m31-phat.json`` (the default prior of ``gcsbi m31``) and
   ``bench/results/m31_population.json`` / ``.png`` (BIC table, marginals, E(B-V) vs radius).

Only catalogue magnitudes, errors, sizes and positions enter: no literature age, [Fe/H], mass or
reddening (Caldwell et al. 2011, Johnson et al. 2016) is read.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import numpy as np
import torch

from gcsbi.catalogue.catalogues import catalogue_values, read_phat_catalogue
from gcsbi.catalogue.geometry import EBV_FOREGROUND, m31_disc_radius_kpc
from gcsbi.catalogue.inference import SHIPPED_CATALOGUE_POSTERIOR, _bands, _model, load_catalogue_posterior
from gcsbi.catalogue.model import features
from gcsbi.catalogue.population import (POP_PARAMS, SHIPPED_POPULATION, PopulationModel, bootstrap_mixtures,
                                        cluster_summaries, fit_mixture, save_population)
from gcsbi.inference.seeding import seeded

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build"
RESULTS = ROOT / "bench" / "results"


def catalogue_features(post, table) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(features (N, F), row indices, disc radii kpc) of the usable catalogue rows."""
    model, bands = _model(post), _bands(post)
    xs, rows = [], []
    for i in range(len(table)):
        try:
            v = catalogue_values(table[i], model=model, bands=bands)
        except ValueError:
            continue
        xs.append(features(v["mag"][None], v["err"][None], np.array([v["reff"]]), np.array([v["rap"]]))[0])
        rows.append(i)
    rows = np.array(rows)
    radius = m31_disc_radius_kpc(np.asarray(table["RAdeg"], float)[rows], np.asarray(table["DEdeg"], float)[rows])
    return np.stack(xs).astype(np.float32), rows, radius


def posterior_draws(post, x: np.ndarray, n_draws: int, seed: int, batch: int = 128) -> np.ndarray:
    """(N, n_draws, D) draws under the training prior, batch b seeded with (seed, b)."""
    from tqdm.auto import tqdm

    out = np.empty((len(x), n_draws, len(post.param_names)), dtype=np.float32)
    for b, s in enumerate(tqdm(range(0, len(x), batch), desc="posterior draws", unit="batch")):
        with seeded(seed * 100_003 + b):
            d = post.sample_batched((n_draws,), torch.as_tensor(x[s:s + batch]))
        out[s:s + batch] = d.permute(1, 0, 2).numpy()
    return out


def cached_draws(post, table, n_draws: int, seed: int) -> dict:
    key = hashlib.sha256(SHIPPED_CATALOGUE_POSTERIOR.read_bytes()).hexdigest()[:16] + f"_{n_draws}_{seed}"
    path = BUILD / f"m31_population_draws_{key}.npz"
    if path.is_file():
        return dict(np.load(path))
    x, rows, radius = catalogue_features(post, table)
    draws = posterior_draws(post, x, n_draws, seed)
    BUILD.mkdir(exist_ok=True)
    np.savez(path, x=x, rows=rows, radius=radius, draws=draws)
    return {"x": x, "rows": rows, "radius": radius, "draws": draws}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--draws", type=int, default=512)
    p.add_argument("--max-components", type=int, default=6)
    p.add_argument("--reg", type=float, default=1e-4, help="variance added to every component")
    p.add_argument("--boot", type=int, default=20)
    p.add_argument("--seed", type=int, default=2027)
    p.add_argument("--draws-only", action="store_true")
    args = p.parse_args(argv)
    t0 = time.time()
    post = load_catalogue_posterior()
    table = read_phat_catalogue()
    d = cached_draws(post, table, args.draws, args.seed)
    print(f"draws: {d['draws'].shape} in {time.time() - t0:.0f} s")
    if args.draws_only:
        return 0
    names = tuple(post.param_names)
    idx = [names.index(n) for n in POP_PARAMS]
    low = post.prior.low.numpy()[idx].astype(float)
    high = post.prior.high.numpy()[idx].astype(float)
    low[3] = max(low[3], EBV_FOREGROUND)
    box_low, box_high = post.prior.low.numpy()[idx].astype(float), post.prior.high.numpy()[idx].astype(float)
    means, covs = cluster_summaries(d["draws"][:, :, idx].astype(float), box_low, box_high)
    log_r = np.log10(np.maximum(d["radius"], 0.1))
    rng = np.random.default_rng(args.seed)
    n = len(log_r)
    table_bic, fits = [], {}
    for c in range(1, args.max_components + 1):
        tc = time.time()
        mix, info = fit_mixture(means, covs, log_r, n_components=c, rng=rng, reg=args.reg)
        bic = -2 * info["loglik"] + mix.n_parameters() * np.log(n)
        fits[c] = (mix, info)
        table_bic.append({"components": c, "loglik": info["loglik"], "bic": float(bic), "n_iter": info["n_iter"],
                          "time_s": time.time() - tc})
        print(json.dumps(table_bic[-1]))
    best_c = min(table_bic, key=lambda r: r["bic"])["components"]
    best, info = fits[best_c]
    boots = bootstrap_mixtures(means, covs, log_r, best, n_boot=args.boot, rng=rng, reg=args.reg)
    meta = {"catalogue": "PHAT (Johnson et al. 2015), usable rows", "n_clusters": int(n),
            "posterior": SHIPPED_CATALOGUE_POSTERIOR.name,
            "posterior_sha256": hashlib.sha256(SHIPPED_CATALOGUE_POSTERIOR.read_bytes()).hexdigest(),
            "draws_per_cluster": int(args.draws), "reg": args.reg, "seed": int(args.seed), "components": int(best_c),
            "bootstrap": int(args.boot), "bic": table_bic, "ebv_floor": EBV_FOREGROUND,
            "method": "extreme deconvolution (Bovy+2011) of a Gaussian mixture over (parameters, log10 disc radius)",
            "literature_labels_used": False}
    pop = PopulationModel("m31-phat", POP_PARAMS, low, high, (best, *boots), meta)
    save_population(pop, SHIPPED_POPULATION)
    RESULTS.mkdir(exist_ok=True)
    summary = {**meta, "loglik": info["loglik"], "wall_time_s": time.time() - t0,
               "components_table": [{"weight": float(w), "mean": mu[:4].tolist(), "sd": np.sqrt(np.diag(c)[:4]).tolist(),
                                     "disc_radius_kpc": float(10 ** mu[4])}
                                    for w, mu, c in zip(best.weights, best.means, best.covs)]}
    (RESULTS / "m31_population.json").write_text(json.dumps(summary, indent=1))
    print(f"population: {best_c} components, written to {SHIPPED_POPULATION} in {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
