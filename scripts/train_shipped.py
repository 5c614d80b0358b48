"""Produce the shipped posterior ``gcsbi/data/posteriors/hst-phat_m31-gc.pt`` (and its calibration).

Steps (each resumable / reproducible; run ``python scripts/train_shipped.py --help``):
1. Zarr simulation banks of the ``hst-phat`` simulator under the ``m31-gc`` prior
   (``--n`` simulations each, seeds 2026, 2027, ...; kill and rerun at will, finished chunks
   are kept). The shipped posterior used two banks (8000 simulations):
   ``--bank runs/phat-m31.zarr --bank runs/phat-m31-b.zarr``;
2. NPE (sbi, NSF flow) with a CPU-sized pi-DOC embedding (input average-pooled 2x, width 8);
3. calibration on ``--n-held-out`` fresh simulations (SBC, TARP, expected coverage, errors),
   written to ``bench/results/calibration_hst-phat_m31-gc.json`` with its plots.
The checkpoint must stay under 10 MB (checked).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from gcsbi.bank import SimulationBank
from gcsbi.inference import calibrate, train
from gcsbi.nets import PiDocEmbedding

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINT = ROOT / "gcsbi" / "data" / "posteriors" / "hst-phat_m31-gc.pt"
RESULTS = ROOT / "bench" / "results"

#: Channel groups of the hst-phat transforms: 3 log-flux, 2 colours, 1 pixel-CMD channel.
GROUPS = {"flux": [0, 1, 2], "colour": [3, 4], "cmd": [5]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bank", action="append", default=None,
                   help="Zarr bank path; repeat to train on several banks (seeds 2026, 2027, ...)")
    p.add_argument("--n", type=int, default=4000, help="simulations per bank (default 4000)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--input-pool", type=int, default=2, help="average-pool the 128x128 input by this factor")
    p.add_argument("--n-held-out", type=int, default=500)
    p.add_argument("--out", default=str(CHECKPOINT))
    p.add_argument("--skip-calibration", action="store_true")
    p.add_argument("--results", default=str(RESULTS), help="folder for the training/calibration reports")
    args = p.parse_args(argv)
    torch.set_num_threads(2)

    thetas, xs, sim_seconds = [], [], 0.0
    for k, path in enumerate(Path(b) for b in (args.bank or [str(ROOT / "runs" / "phat-m31.zarr")])):
        if path.exists():
            bank = SimulationBank.open(path)
        else:
            bank = SimulationBank.create(path, simulator_factory="gcsbi.simulator:load_simulator",
                                         factory_kwargs={"spec": "hst-phat", "prior": "m31-gc"},
                                         n=args.n, chunk_size=50, seed=2026 + k)
        t0 = time.perf_counter()
        bank.generate(workers=args.workers)
        sim_seconds += time.perf_counter() - t0
        theta_k, x_k = bank.load()
        thetas.append(theta_k)
        xs.append(x_k)
    theta, x = torch.cat(thetas), torch.cat(xs)
    del thetas, xs
    sim = bank.simulator()
    print(f"bank: {len(theta)} simulations of shape {tuple(x.shape[1:])}")

    net = PiDocEmbedding(in_channels=x.shape[1], groups=GROUPS, width=8, input_pool=args.input_pool, features=48,
                         hidden=(96, 48), dropout=0.1)
    t0 = time.perf_counter()
    post = train(theta, x, prior=sim.prior, embedding_net=net, spec=sim.spec, max_num_epochs=args.epochs,
                 stop_after_epochs=5, batch_size=128, learning_rate=1e-3, seed=0, out=args.out, verbose=True)
    train_seconds = time.perf_counter() - t0
    size_mb = Path(args.out).stat().st_size / 2**20
    print(f"trained in {train_seconds / 60:.1f} min; checkpoint {args.out} ({size_mb:.2f} MB)")
    if size_mb > 10:
        raise SystemExit(f"checkpoint too large: {size_mb:.1f} MB > 10 MB")
    report = {"n_train": int(len(theta)), "bank_seconds_this_run": sim_seconds, "train_seconds": train_seconds,
              "checkpoint_mb": size_mb, "epochs": post.history.get("epochs_trained"),
              "best_validation_loss": post.history.get("best_validation_loss")}
    if not args.skip_calibration:
        t0 = time.perf_counter()
        cal = calibrate(post, sim, n_held_out=args.n_held_out, num_posterior_samples=500, seed=11,
                        c2st=False, out=Path(args.results) / "calibration_hst-phat_m31-gc")
        report["calibration_seconds"] = time.perf_counter() - t0
        report["calibration"] = cal
    Path(args.results).mkdir(parents=True, exist_ok=True)
    (Path(args.results) / "train_shipped.json").write_text(json.dumps(report, indent=2, default=float))
    print(json.dumps({k: v for k, v in report.items() if k != "calibration"}, indent=2, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
