"""Produce a shipped posterior ``gcsbi/data/posteriors/<spec>_<prior>.pt`` and its calibration.

Steps (each resumable / reproducible; run ``python scripts/train_shipped.py --help``):
1. Zarr simulation banks of the ``--spec`` simulator under the ``--prior`` prior
   (``--n`` simulations each, seeds ``--seed``, ``--seed`` + 1, ...; kill and rerun at will,
   finished chunks are kept);
2. NPE (sbi, NSF flow) with a CPU-sized pi-DOC embedding (width 8) on images average-pooled
   2x (``x_pool``: 16000 pooled 128x128 training images fit on a 24 GB machine);
3. calibration on ``--n-held-out`` fresh simulations (SBC, TARP, expected coverage, errors),
   written to ``bench/results/calibration_<spec>_<prior>/`` with its plots, and the errors on
   the held-out mocks inside ``--window NAME:LO:HI`` (e.g. ``distance_kpc:10:30``).
Training runs at ``--lr`` (1e-3) until early stopping, then resumes at each ``--refine`` rate
(a step schedule); ``--init-from`` fine-tunes an existing posterior instead, and with
``--flow-only`` keeps its embedding fixed and trains only its flow, on banks the embedding never
saw. The checkpoint must stay under 10 MB (checked). The shipped M31 posterior was made in two
steps: the embedding and flow jointly on 24000 simulations (banks seeds 2026-2031), then the flow
alone on 16000 fresh ones (seeds 2032-2035)::

    python scripts/train_shipped.py --bank banks/phat-m31.zarr --bank banks/phat-m31-b.zarr \
        --bank banks/phat-m31-c.zarr --bank banks/phat-m31-d.zarr --bank banks/phat-m31-e.zarr \
        --bank banks/phat-m31-f.zarr --dropout 0 --refine 3e-4 1e-4 --out joint.pt
    python scripts/train_shipped.py --bank banks/phat-m31-g.zarr --bank banks/phat-m31-h.zarr \
        --bank banks/phat-m31-i.zarr --bank banks/phat-m31-j.zarr --seed 2032 \
        --init-from joint.pt --flow-only --lr 3e-4 --refine 1e-4 3e-5 --stop-after 10 --epochs 300

The Milky Way posterior's joint step (banks seeds 3026/3027) used a 40-epoch cap, no refinement,
dropout 0.1 and per-pixel z-scoring (``--epochs 40 --refine --dropout 0.1 --z-score-x independent``;
recorded in ``bench/results/train_hst-mw_milky-way-gc_joint.json``). Its flow was then refitted
alone like the M31 one, on banks seeds 3028/3029 (``--spec hst-mw --prior milky-way-gc --seed 3028
--init-from joint.pt --flow-only ...``). Every TrainConfig field is an option (``--help``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from gcsbi.bank.store import SimulationBank
from gcsbi.inference import calibrate, simulate, train
from gcsbi.inference.cli import add_config_arguments, config_from_args
from gcsbi.inference.posterior import pool_images
from gcsbi.nets import PiDocEmbedding

ROOT = Path(__file__).resolve().parents[1]
POSTERIORS = ROOT / "gcsbi" / "data" / "posteriors"
RESULTS = ROOT / "bench" / "results"

#: Channel groups of the hst-phat / hst-mw transforms: 3 log-flux, 2 colours, 1 pixel-CMD channel.
GROUPS = {"flux": [0, 1, 2], "colour": [3, 4], "cmd": [5]}
#: This script's training defaults (TrainConfig fields) and its short names for some of them.
DEFAULTS = {"max_num_epochs": 50, "stop_after_epochs": 6, "learning_rate": 1e-3, "refine_learning_rates": (3e-4, 1e-4),
            "x_pool": 2, "batch_size": 128}
ALIASES = {"max_num_epochs": ("--epochs",), "stop_after_epochs": ("--stop-after",), "learning_rate": ("--lr",),
           "refine_learning_rates": ("--refine",)}
#: Per-parameter entries of a calibration report that stay meaningful on a theta-selected subset.
ERROR_KEYS = ("median_abs_error", "rms_error", "bias", "posterior_sd_mean", "median_abs_error_over_prior_width")


def _load_all(banks: list[SimulationBank], pool: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """All usable rows of ``banks`` in one preallocated pair, images pooled by ``pool`` bank by bank."""
    sizes = [int(b.row_mask(only_done=True).sum()) for b in banks]
    c, h, w = banks[0].output_shape
    theta = torch.empty((sum(sizes), len(banks[0].param_names)), dtype=torch.float32)
    x = torch.empty((sum(sizes), c, h // pool, w // pool), dtype=torch.float32)
    k = 0
    for bank, size in zip(banks, sizes):
        t, xb = bank.load()
        theta[k:k + size], x[k:k + size] = t, pool_images(torch.as_tensor(xb), pool)
        k += size
    return theta, x


def _held_out(sim, n: int, cache: str | None, seed: int = 11) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``n`` held-out simulations (calibration seed stream), optionally cached on disk."""
    key = {"spec": sim.spec, "n": int(n), "seed": int(seed)}
    if cache and Path(cache).exists():
        saved = torch.load(cache, weights_only=False)
        if saved.get("key") == key:
            return saved["theta"], saved["x"]
    theta, x = simulate(sim, n, seed=int(seed), stream="calibration")
    if cache:
        torch.save({"key": key, "theta": theta, "x": x}, cache)
    return theta, x


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--spec", default="hst-phat", help="simulator spec (default hst-phat)")
    p.add_argument("--prior", default="m31-gc", help="prior (default m31-gc)")
    p.add_argument("--bank", action="append", default=None,
                   help="Zarr bank path; repeat to train on several banks (seeds --seed, --seed + 1, ...)")
    p.add_argument("--seed", type=int, default=2026, help="seed of the first new bank (default 2026)")
    p.add_argument("--n", type=int, default=4000, help="simulations per bank (default 4000)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--init-from", default=None, metavar="CHECKPOINT",
                   help="fine-tune this posterior (its weights and architecture) instead of training anew")
    p.add_argument("--new-simulator", action="store_true",
                   help="with --init-from: its posterior came from an earlier version of the simulator (same prior)")
    p.add_argument("--n-held-out", type=int, default=2000)
    p.add_argument("--held-out-seed", type=int, default=11,
                   help="seed of the held-out set (calibration stream; default 11)")
    p.add_argument("--held-out-cache", default=None, metavar="PATH",
                   help="keep the held-out simulations in this .pt file and reuse them when it matches")
    p.add_argument("--window", default=None, metavar="NAME:LO:HI",
                   help="also report errors on the held-out mocks with LO <= NAME <= HI")
    p.add_argument("--out", default=None, help="checkpoint path (default gcsbi/data/posteriors/<spec>_<prior>.pt)")
    p.add_argument("--skip-calibration", action="store_true")
    p.add_argument("--results", default=str(RESULTS), help="folder for the training/calibration reports")
    add_config_arguments(p, defaults=DEFAULTS, aliases={**ALIASES, "max_num_epochs": ("--max-epochs", "--epochs")},
                         exclude=("seed",), title="training options (TrainConfig; the training seed is 0)")
    args = p.parse_args(argv)
    config = config_from_args(args, exclude=("seed",), seed=0)  # --seed: of the first bank
    torch.set_num_threads(2)

    tag = f"{args.spec}_{args.prior}"
    out = Path(args.out or POSTERIORS / f"{tag}.pt")
    results = Path(args.results)
    banks, sim_seconds = [], 0.0
    for k, path in enumerate(Path(b) for b in (args.bank or [str(ROOT / "runs" / f"{tag}.zarr")])):
        if path.exists():
            bank = SimulationBank.open(path)
        else:
            bank = SimulationBank.create(path, simulator_factory="gcsbi.simulator:load_simulator",
                                         factory_kwargs={"spec": args.spec, "prior": args.prior},
                                         n=args.n, chunk_size=50, seed=args.seed + k)
        t0 = time.perf_counter()
        bank.generate(workers=args.workers)
        sim_seconds += time.perf_counter() - t0
        banks.append(bank)
    theta, x = _load_all(banks, config.x_pool)
    sim = banks[0].simulator()
    if any(b.simulator().spec != sim.spec for b in banks[1:]):
        raise SystemExit("the banks were made with different simulators or priors")
    print(f"banks: {len(theta)} simulations of shape {banks[0].output_shape}, pooled to {tuple(x.shape[1:])}")

    net = None if args.init_from else PiDocEmbedding(in_channels=x.shape[1], groups=GROUPS, width=8, features=48,
                                                     hidden=(96, 48), dropout=0.1)
    t0 = time.perf_counter()
    post = train(theta, x, simulator=sim, embedding_net=net, config=config, init_from=args.init_from,
                 pooled_from=banks[0].output_shape if config.x_pool > 1 else None, out=out, verbose=True,
                 new_simulator=args.new_simulator)
    train_seconds = time.perf_counter() - t0
    del theta, x
    size_mb = out.stat().st_size / 2**20
    print(f"trained in {train_seconds / 60:.1f} min; checkpoint {out} ({size_mb:.2f} MB)")
    if size_mb > 10:
        raise SystemExit(f"checkpoint too large: {size_mb:.1f} MB > 10 MB")
    report = {"spec": args.spec, "prior": args.prior, "n_train": post.history["n_simulations"],
              "bank_seconds_this_run": sim_seconds, "train_seconds": train_seconds, "checkpoint_mb": size_mb,
              "x_pool": post.config.x_pool, "learning_rate": post.config.learning_rate,
              "refine_learning_rates": list(post.config.refine_learning_rates),
              "dropout": post.config.dropout, "z_score_x": post.config.z_score_x,
              "train_embedding": post.config.train_embedding, "init_from": args.init_from,
              "parent": post.history.get("init_from"),
              "epochs": post.history.get("epochs_trained"), "stage_end_epochs": post.history.get("stage_end_epochs"),
              "best_validation_loss": post.history.get("best_validation_loss"),
              "validation_loss": post.history.get("validation_loss")}
    if not args.skip_calibration:
        t0 = time.perf_counter()
        held_out = _held_out(sim, args.n_held_out, args.held_out_cache, args.held_out_seed)
        kw = dict(num_posterior_samples=500, seed=args.held_out_seed, c2st=False)
        report["calibration"] = calibrate(post, sim, held_out=held_out, out=results / f"calibration_{tag}", **kw)
        if args.window:
            name, lo, hi = args.window.split(":")
            col = held_out[0][:, list(sim.prior.names).index(name)]
            keep = (col >= float(lo)) & (col <= float(hi))
            sub = calibrate(post, sim, held_out=(held_out[0][keep], held_out[1][keep]), **kw)
            report["window"] = {"parameter": name, "low": float(lo), "high": float(hi), "n": int(keep.sum()),
                                "note": "errors of the posterior median on held-out prior draws inside the window",
                                "parameters": {n: {k: p[k] for k in ERROR_KEYS if k in p}
                                               for n, p in sub["parameters"].items()}}
        report["calibration_seconds"] = time.perf_counter() - t0
    results.mkdir(parents=True, exist_ok=True)
    (results / f"train_{tag}.json").write_text(json.dumps(report, indent=2, default=float))
    print(json.dumps({k: v for k, v in report.items() if k not in ("calibration", "validation_loss")}, indent=2,
                     default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
