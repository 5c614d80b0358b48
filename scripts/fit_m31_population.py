"""Learn the population of M31's clusters from the PHAT catalogue (hierarchical inference) and ship it.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/fit_m31_population.py [--draws 512] [--boot 20]

1. Posterior draws of every usable PHAT cluster (Johnson et al. 2015; 2743 of 2753 rows) under the
   shipped catalogue posterior's training prior (``m31-clusters``), ``--draws`` per cluster, seeded
   per batch, cached in ``build/`` (reused when the posterior, catalogue and settings are the same).
2. The population histogram over (log age, log M, [Fe/H], E(B-V)) per disc-radius bin by EM
   (:mod:`gcsbi.catalogue.population`), its pseudo-count chosen by 5-fold cross-validation over clusters.
3. ``--boot`` bootstrap refits over clusters: the population's uncertainty.
4. Writes ``gcsbi/data/populations/m31-phat.json`` and ``bench/results/m31_population.json``
   (settings, cross-validation, marginals per radial bin).

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
from gcsbi.catalogue.population import (POP_PARAMS, SHIPPED_POPULATION, PopulationModel, bin_fractions,
                                        bootstrap_weights, fit_weights, save_population)
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


#: Bin edges of the population histogram (POP_PARAMS order) and of the disc radius (kpc; tertiles of
#: the PHAT clusters' radii, rounded).
EDGES = (np.round(np.arange(7.0, 10.1501, 0.35), 2), np.round(np.arange(2.5, 6.701, 0.6), 2),
         np.round(np.arange(-2.5, 0.301, 0.7), 2), np.array([EBV_FOREGROUND, 0.1, 0.2, 0.3, 0.45, 0.65, 1.0]))
RADIAL_EDGES_KPC = np.array([0.0, 9.0, 13.0, 1000.0])
ALPHAS = (0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)


def cross_validated_alpha(f, radial, rng, folds: int = 5) -> tuple[float, dict]:
    """The pseudo-count with the best held-out log-likelihood (``folds``-fold over clusters)."""
    fold = rng.integers(0, folds, f.shape[0])
    scores = {}
    for alpha in ALPHAS:
        total = 0.0
        for k in range(folds):
            for r in np.unique(radial):
                tr = (fold != k) & (radial == r)
                te = (fold == k) & (radial == r)
                w, _ = fit_weights(f[np.flatnonzero(tr)], alpha=alpha)
                total += float(np.sum(np.log(f[np.flatnonzero(te)] @ w)))
        scores[alpha] = total
    return max(scores, key=scores.get), {str(k): v for k, v in scores.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--draws", type=int, default=512)
    p.add_argument("--boot", type=int, default=20)
    p.add_argument("--seed", type=int, default=2027)
    p.add_argument("--out", type=Path, default=SHIPPED_POPULATION)
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
    box_low, box_high = post.prior.low.numpy()[idx].astype(float), post.prior.high.numpy()[idx].astype(float)
    n_bins = int(np.prod([len(e) - 1 for e in EDGES]))
    shape = PopulationModel("shape", EDGES, RADIAL_EDGES_KPC, np.full((1, len(RADIAL_EDGES_KPC) - 1, n_bins), 1.0 / n_bins), {})
    f, usable = bin_fractions(shape, d["draws"][:, :, idx].astype(float))
    radial = shape.radial_bin(d["radius"])
    keep = np.flatnonzero(usable)
    f, radial = f[keep], radial[keep]
    rng = np.random.default_rng(args.seed)
    alpha, cv = cross_validated_alpha(f, radial, rng)
    print(f"alpha {alpha} (cross-validated: {cv})")
    n_r, n_b = len(RADIAL_EDGES_KPC) - 1, f.shape[1]
    weights = np.empty((1 + args.boot, n_r, n_b))
    loglik = 0.0
    for r in range(n_r):
        rows = np.flatnonzero(radial == r)
        w, ll = fit_weights(f[rows], alpha=alpha)
        weights[0, r] = w
        loglik += float(ll.sum())
        weights[1:, r] = bootstrap_weights(f[rows], w, alpha=alpha, n_boot=args.boot, rng=rng)
    meta = {"catalogue": "PHAT (Johnson et al. 2015), usable rows", "n_clusters": int(len(keep)),
            "n_unusable": int((~usable).sum()), "clusters_per_radial_bin": np.bincount(radial, minlength=n_r).tolist(),
            "posterior": SHIPPED_CATALOGUE_POSTERIOR.name,
            "posterior_sha256": hashlib.sha256(SHIPPED_CATALOGUE_POSTERIOR.read_bytes()).hexdigest(),
            "training_prior": getattr(post.prior, "name", None), "training_box": [box_low.tolist(), box_high.tolist()],
            "draws_per_cluster": int(args.draws), "seed": int(args.seed), "alpha": alpha, "alpha_cv": cv,
            "bootstrap": int(args.boot), "ebv_floor": EBV_FOREGROUND, "loglik": loglik,
            "method": "histogram population (uniform bins), EM (Richardson-Lucy) with a Dirichlet pseudo-count",
            "literature_labels_used": False}
    pop = PopulationModel("m31-phat", EDGES, RADIAL_EDGES_KPC, weights, meta)
    save_population(pop, args.out)
    RESULTS.mkdir(exist_ok=True)
    rng2 = np.random.default_rng(1)
    summary = {**meta, "wall_time_s": time.time() - t0, "marginals": {}}
    for r in range(n_r):
        s = pop.sample(np.full(4000, [4.5, 11.0, 16.0][r]), rng2)
        summary["marginals"][f"radial_bin_{r}"] = {
            n: np.percentile(s[:, j], [16, 50, 84]).round(3).tolist() for j, n in enumerate(POP_PARAMS)}
        summary["marginals"][f"radial_bin_{r}"]["fraction_older_8gyr"] = float(np.mean(s[:, 0] >= np.log10(8e9)))
        summary["marginals"][f"radial_bin_{r}"]["fraction_older_8gyr_of_logM_ge_5"] = float(
            np.mean(s[s[:, 1] >= 5, 0] >= np.log10(8e9))) if np.any(s[:, 1] >= 5) else None
    (RESULTS / "m31_population.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary["marginals"], indent=1))
    print(f"population written to {args.out} in {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
