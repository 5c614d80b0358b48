"""Produce the shipped catalogue-mode posterior ``gcsbi/data/posteriors/hst-phat6_m31-clusters_catalogue.pt``.

Steps (``python scripts/train_catalogue.py --help``):
1. a Zarr bank of curves of growth (:class:`gcsbi.catalogue.ProfileSimulator`: the ``hst-phat6``
   image simulator, all six PHAT bands, on a 256x256 stamp under the ``m31-clusters`` prior
   (log age 7 - 10.15), seed 2026, ``--n`` mocks in chunks of 50, ``--workers`` processes;
   resumable: kill and rerun, finished chunks are kept);
2. the PHAT catalogue measurement (:class:`gcsbi.catalogue.CatalogueSimulator.from_profiles`)
   applied ``--augment`` times per banked mock with independent catalogue noise and aperture
   draws (the expensive image is reused; the cheap catalogue-level randomness is redrawn);
   missing bands and upper limits drawn as in the catalogue; the near-UV model discrepancy
   (:mod:`gcsbi.catalogue.discrepancy`, fitted on Milky Way clusters) redrawn with it;
   the last ``--n-held-out`` bank rows are kept out of training for the coverage check;
3. NPE (sbi NSF flow) with a small MLP embedding (:class:`gcsbi.catalogue.CatalogueMLP`);
   the 0.05-99.95 percentile range of the training features is stored in the checkpoint
   (``history["x_range"]``) for the range OOD check of ``gcsbi.infer``;
4. expected coverage (68%/95%) and errors on the held-out bank rows, written to
   ``bench/results/catalogue_heldout_<prior>.json``. The checkpoint must stay under 2 MB (checked).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from gcsbi.bank.store import SimulationBank
from gcsbi.catalogue import CatalogueSimulator
from gcsbi.inference import train
from gcsbi.inference.cli import add_config_arguments, config_from_args
from gcsbi.nets import CatalogueMLP

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINT = ROOT / "gcsbi" / "data" / "posteriors" / "hst-phat6_m31-clusters_catalogue.pt"
RESULTS = ROOT / "bench" / "results"
FACTORY = "gcsbi.catalogue.simulator:profile_simulator"
#: This script's training defaults (TrainConfig fields).
DEFAULTS = {"hidden_features": 64, "num_transforms": 5, "max_num_epochs": 150, "stop_after_epochs": 20,
            "batch_size": 256, "learning_rate": 5e-4, "seed": 0}


LEVELS = np.round(np.arange(0.05, 0.96, 0.05), 2)


def heldout_metrics(post, theta: torch.Tensor, x: torch.Tensor, *, num_samples: int = 500, seed: int = 7) -> dict:
    """Per-parameter coverage of central intervals (68/95% and every 5% level), median |error| and bias.

    ``max_expected_coverage_deviation``: the largest |coverage - level| over parameters and levels;
    ``max_deviation_if_calibrated_q95``: its 95th percentile for an exactly calibrated posterior on
    as many mocks (uniform ranks, 400 repetitions) -- the noise level to read it against.
    """
    draws = post.sample_batched((num_samples,), x) if len(x) else torch.empty(0)
    names = post.param_names
    out: dict = {}
    d = draws.numpy()
    t = theta.numpy()
    worst = 0.0
    for j, n in enumerate(names):
        q = np.percentile(d[:, :, j], [2.5, 16, 50, 84, 97.5], axis=0)
        rank = (d[:, :, j] < t[None, :, j]).mean(0)  # posterior CDF at the truth
        cov = [float(np.mean(np.abs(rank - 0.5) <= lv / 2)) for lv in LEVELS]
        dev = float(np.max(np.abs(np.array(cov) - LEVELS)))
        worst = max(worst, dev)
        out[n] = {"coverage_68": float(np.mean((t[:, j] >= q[1]) & (t[:, j] <= q[3]))),
                  "coverage_95": float(np.mean((t[:, j] >= q[0]) & (t[:, j] <= q[4]))),
                  "expected_coverage": cov, "max_abs_coverage_deviation": dev,
                  "median_abs_error": float(np.median(np.abs(q[2] - t[:, j]))),
                  "bias": float(np.median(q[2] - t[:, j])),
                  "median_width_68": float(np.median(q[3] - q[1]))}
    rng = np.random.default_rng(seed)
    null = [max(float(np.max(np.abs(np.array([np.mean(np.abs(u - 0.5) <= lv / 2) for lv in LEVELS]) - LEVELS)))
                for u in rng.random((len(names), len(t)))) for _ in range(400)]
    return {"levels": LEVELS.tolist(), "max_expected_coverage_deviation": worst,
            "max_deviation_if_calibrated_q95": float(np.quantile(null, 0.95)), "parameters": out}


def band_states(x: torch.Tensor, sim: CatalogueSimulator) -> dict:
    """Fractions of upper limits and missing bands per band: training mocks (prior draws) vs the PHAT catalogue.

    Indicative only: the mocks follow the prior, not the catalogue's mix of clusters.
    """
    from gcsbi.catalogue.catalogues import read_phat_catalogue

    nb = len(sim.profiles.filters)
    log_e = x[:, nb:2 * nb].numpy()
    phat = read_phat_catalogue()
    out = {}
    for j, b in enumerate(sim.profiles.filters):
        mag = np.asarray(phat[b].filled(np.nan), float)
        lim = np.array([str(v).strip() == ">" for v in phat["l_" + b].filled("")])
        out[b] = {"mocks_limit": float(np.mean(np.abs(log_e[:, j]) < 1e-6)), "mocks_missing": float(np.mean(log_e[:, j] > 0.999)),
                  "phat_limit": float(lim.mean()), "phat_missing": float(np.mean(~np.isfinite(mag)))}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bank", default=str(ROOT / "build" / "catalogue6_bank.zarr"))
    p.add_argument("--spec", default="hst-phat6")
    p.add_argument("--prior", default="m31-clusters")
    p.add_argument("--n", type=int, default=12000, help="image simulations in the bank (default 12000)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--stamp", type=int, default=256)
    p.add_argument("--no-generate", action="store_true", help="train on the finished chunks only")
    p.add_argument("--augment", type=int, default=3, help="catalogue-noise draws per banked mock")
    p.add_argument("--n-held-out", type=int, default=1000)
    p.add_argument("--out", default=str(CHECKPOINT))
    p.add_argument("--init-from", default=None, metavar="CHECKPOINT",
                   help="fine-tune this catalogue posterior (same bank and split) instead of a new network")
    add_config_arguments(p, defaults=DEFAULTS, aliases={"max_num_epochs": ("--epochs",)}, switches={},
                         exclude=("train_embedding",))
    a = p.parse_args(argv)
    config = config_from_args(a)
    t0 = time.time()
    kwargs = {"spec": a.spec, "prior": a.prior, "stamp": a.stamp}
    path = Path(a.bank)
    bank = (SimulationBank.open(path) if path.exists() else
            SimulationBank.create(path, simulator_factory=FACTORY, factory_kwargs=kwargs, n=a.n, chunk_size=50, seed=2026))
    if not a.no_generate:
        bank.generate(workers=a.workers)
    theta, prof = bank.load()
    info = bank.info()
    print(f"bank: {info['rows_done']} rows done, {info['rows_failed']} failed; using {len(theta)}")
    sim = CatalogueSimulator(kwargs["spec"], kwargs["prior"], stamp=a.stamp)
    n_ho = int(a.n_held_out)
    th_tr, pr_tr = theta[:-n_ho], prof[:-n_ho]
    th_ho, pr_ho = theta[-n_ho:], prof[-n_ho:]
    xs = [sim.from_profiles(pr_tr, seed=1000 + k, theta=th_tr) for k in range(a.augment)]
    x_tr = torch.cat(xs)
    t_tr = th_tr.repeat(a.augment, 1)
    x_ho = sim.from_profiles(pr_ho, seed=999, theta=th_ho)
    print(f"features: {tuple(x_tr.shape)} training pairs ({len(th_tr)} mocks x {a.augment}), {n_ho} held out; "
          f"{time.time() - t0:.0f} s")
    net = None if a.init_from else CatalogueMLP(in_features=x_tr.shape[1], hidden=64, features=16, layers=2)
    t1 = time.time()
    post = train(t_tr, x_tr, simulator=sim, embedding_net=net, config=config, init_from=a.init_from)
    print(f"trained: {post.history['epochs_trained']} epochs, best val loss {post.history['best_validation_loss']:.3f}, "
          f"{time.time() - t1:.0f} s")
    ok = torch.isfinite(x_tr).all(1)
    lo, hi = np.percentile(x_tr[ok].numpy(), [0.05, 99.95], axis=0)
    post.history["x_range"] = {"names": list(sim.feature_names), "low": lo.tolist(), "high": hi.tolist(),
                               "percentiles": [0.05, 99.95]}
    post.history["bank"] = {"path": str(path.name), "n_rows": int(len(theta)), "n_train_mocks": int(len(th_tr)),
                            "augment": int(a.augment), "n_held_out": n_ho, "seed": int(bank.config.seed)}
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    post.save(out)
    size = out.stat().st_size
    print(f"wrote {out} ({size / 1e6:.2f} MB)")
    if size > 2e6:
        raise SystemExit(f"checkpoint too large: {size / 1e6:.2f} MB > 2 MB")
    ok = torch.isfinite(x_ho).all(1)
    with torch.random.fork_rng():
        torch.manual_seed(7)
        metrics = heldout_metrics(post, th_ho[ok], x_ho[ok])
    RESULTS.mkdir(parents=True, exist_ok=True)
    report = {"n_held_out": int(ok.sum()), **metrics, "band_states": band_states(x_tr, sim),
              "history": {k: v for k, v in post.history.items()
                                                                            if k not in ("training_loss", "validation_loss")},
              "wall_time_s": round(time.time() - t0, 1)}
    (RESULTS / f"catalogue_heldout_{a.prior}.json").write_text(json.dumps(report, indent=1))
    for n, m in metrics["parameters"].items():
        print(f"  {n:15s} cov68 {m['coverage_68']:.2f} cov95 {m['coverage_95']:.2f} max dev "
              f"{m['max_abs_coverage_deviation']:.3f} |err| {m['median_abs_error']:.3g} bias {m['bias']:+.3g}")
    print(f"max expected-coverage deviation {metrics['max_expected_coverage_deviation']:.3f} "
          f"(calibrated posterior on {int(ok.sum())} mocks: <= {metrics['max_deviation_if_calibrated_q95']:.3f}, 95%)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
