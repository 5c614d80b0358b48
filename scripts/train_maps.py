"""Train the map heads (mass map, decontaminated image, derived-quantity posterior) of an image
posterior, check them on held-out mocks and write the model, its metrics and plots.

Needs banks created with truth maps (x is the same as without them)::

    gcsbi bank create runs/maps-m31-train.zarr --factory gcsbi.simulator:load_simulator \\
        --kwargs '{"spec": "hst-phat", "prior": "m31-gc"}' --n 8000 --seed 1601 \\
        --truth mass_map,clean --chunk-size 50 --generate --workers 2
    gcsbi bank create runs/maps-m31-test.zarr ... --n 1050 --seed 1602 --truth mass_map,clean ...
    python scripts/train_maps.py --posterior hst-phat_m31-gc --bank runs/maps-m31-train.zarr \\
        --held-out runs/maps-m31-test.zarr

Writes ``gcsbi/data/maps/<posterior>.pt`` (``--out``), ``bench/results/maps_<posterior>.json``
and ``bench/results/maps_<posterior>_*.png``. Interrupted training resumes from
``<out>.state`` when run again with the same arguments.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
MAPS = ROOT / "gcsbi" / "data" / "maps"



def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--posterior", required=True, help="shipped posterior name or checkpoint path")
    p.add_argument("--bank", required=True, action="append", help="training bank(s) with truth maps")
    p.add_argument("--held-out", required=True, help="held-out bank with truth maps")
    p.add_argument("--out", default=None, help="map model path (default gcsbi/data/maps/<posterior>.pt)")
    p.add_argument("--name", default=None, help="name in the results files (default: the posterior's)")
    p.add_argument("--max-rows", type=int, default=None, help="use at most this many training rows per bank")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--lambda-flux", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--n-draws", type=int, default=500)
    p.add_argument("--results", default=str(RESULTS))
    p.add_argument("--refit-flow", action="store_true",
                   help="keep the decoder of the last run (its best epoch, from <out>.state) and train the summary "
                        "flow again")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    from gcsbi.inference import load_posterior
    from gcsbi.maps import MapTrainConfig, Photometry, load_map_data, save_map_model, train_maps
    from gcsbi.maps.metrics import evaluate
    from gcsbi.maps.plots import plot_examples, plot_profiles
    from gcsbi.maps.train import MapData
    from gcsbi.simulator import load_simulator

    post = load_posterior(args.posterior)
    name = args.name or Path(str(args.posterior)).stem
    spec, prior = post.spec["simulator"]["name"], post.spec["prior"]["name"]
    sim = load_simulator(spec=spec, prior=prior)
    phot = Photometry.from_simulator(sim)
    t0 = time.perf_counter()
    parts = [load_map_data(b, photometry=phot, param_names=post.param_names, max_rows=args.max_rows) for b in args.bank]
    data = parts[0] if len(parts) == 1 else MapData(
        theta=torch.cat([d.theta for d in parts]), x=torch.cat([d.x for d in parts]),
        log_mass=torch.cat([d.log_mass for d in parts]), clean=torch.cat([d.clean for d in parts]),
        summaries=np.concatenate([d.summaries for d in parts]))
    print(f"{len(data)} training mocks loaded in {time.perf_counter() - t0:.0f} s", flush=True)
    out = Path(args.out) if args.out else MAPS / f"{name}.pt"
    cfg = MapTrainConfig(epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr,
                         lambda_flux=args.lambda_flux, seed=args.seed)
    t1 = time.perf_counter()
    if args.refit_flow:
        from gcsbi.maps.train import build_map_model, train_summary_flow

        state = out.with_name(out.name + ".state")
        # the decoder of the last run, its best epoch
        st = torch.load(state, map_location="cpu", weights_only=False)
        model = build_map_model(post, photometry=phot, config=cfg)
        model.load_state_dict(st["best_state"])
        model.meta["history"] = dict(st["hist"], best_validation_loss=st["best"])
        model.meta["train_config"] = {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(cfg).items()}
        model.meta["history"] |= train_summary_flow(model, data, cfg, True)
        model.meta["history"]["n_train_rows"] = len(data)
    else:
        model = train_maps(post, data, photometry=phot, config=cfg, state_path=out.with_name(out.name + ".state"))
    train_s = time.perf_counter() - t1
    del data, parts

    from gcsbi.maps.metrics import PIDOC
    from gcsbi.maps.train import load_held_out

    held = load_held_out(args.held_out, photometry=phot, param_names=post.param_names)
    x, mass, clean, truth = held.x, held.mass, held.clean, held.truth
    t2 = time.perf_counter()
    metrics = evaluate(model, x, mass, clean, truth, n_draws=args.n_draws, seed=args.seed)
    metrics["eval_seconds"] = time.perf_counter() - t2
    model.meta["heldout"] = {k: v for k, v in metrics.items() if k != "per_mock"}
    save_map_model(model, out)
    res = {"command": "python scripts/" + Path(__file__).name + " " + " ".join(
               f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if v is not None and k != "results"),
           "posterior": name, "spec": spec, "prior": prior, "train_seconds": train_s, "threads": args.threads,
           "n_train": model.meta["history"]["n_train_rows"], "held_out_bank": str(args.held_out),
           "pidoc_reference": PIDOC, "history": model.meta["history"], **metrics}
    results = Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    (results / f"maps_{name}.json").write_text(json.dumps(res, indent=1))
    ix = np.arange(min(3, len(x)))
    plot_examples(model, x[ix].numpy(), truth_mass=mass[ix], truth_clean=clean[ix],
                  path=results / f"maps_{name}_examples.png")
    plot_profiles(model, x[:1].numpy(), truth=truth[:1], path=results / f"maps_{name}_profiles.png")
    keys = ("pixel_median_abs_dlog10_mass", "pixel_mean_relative_error", "total_mass_fov_relative_error",
            "total_mass_fov_relative_error_map_sum", "ml_fov_relative_error", "max_coverage_deviation_enclosed_mass",
            "max_coverage_deviation", "annulus_flux_ratio_median")
    print(json.dumps({k: metrics[k] for k in keys}, indent=1))
    print(f"wrote {out} (training {train_s / 60:.1f} min)")


if __name__ == "__main__":
    main()
