"""One command from nothing to a multi-task posterior: simulations with truth maps, the
parameter posterior (NPE, π-DOC encoder), the map heads, and their checks on held-out mocks.

    python scripts/recipe_maps.py --quick                      # ~20-30 min on 2 CPU cores
    python scripts/recipe_maps.py --device cuda --n-train 64000 --map-epochs 20   # on a GPU
    python scripts/recipe_maps.py --quick --compare-joint      # also the joint variant, measured

Steps (each resumable: banks keep finished chunks, finished steps are not redone):
1. a training and a held-out bank with truth maps (``gcsbi bank create ... --truth mass_map,clean``);
2. NPE on the training bank (sbi NSF flow, π-DOC encoder of width 8 on images pooled 2x, as the
   shipped posteriors), then its calibration on the held-out bank (expected coverage);
3. the map heads as a second stage on the frozen encoder (``gcsbi.maps.train_maps``);
   with ``--compare-joint`` also encoder + flow + decoder trained together from the NPE result
   (``train_maps_joint``), recalibrated;
4. the map metrics on the held-out bank; everything, with the wall time of each step, in
   ``<workdir>/recipe.json``.

The full recipe of the shipped map models is ``scripts/train_maps.py`` on the shipped posteriors
(see ``bench/results/maps_*.json`` for its commands).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

GROUPS = {"flux": [0, 1, 2], "colour": [3, 4], "cmd": [5]}


def _calibration(post, sim, theta: torch.Tensor, x: torch.Tensor, seed: int) -> dict:
    """The parameter posterior's calibration on the held-out bank (gcsbi.inference.calibrate)."""
    from gcsbi.inference import calibrate

    rep = calibrate(post, sim, held_out=(theta, x), num_posterior_samples=500, seed=seed, c2st=False)
    return {k: rep[k] for k in ("max_expected_coverage_deviation", "max_deviation_if_calibrated", "verdict")}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--spec", default="hst-phat")
    p.add_argument("--prior", default="m31-gc")
    p.add_argument("--workdir", default="runs/recipe")
    p.add_argument("--quick", action="store_true", help="small sizes: about 20-30 min on 2 CPU cores")
    p.add_argument("--n-train", type=int, default=16000)
    p.add_argument("--n-held-out", type=int, default=1000)
    p.add_argument("--npe-epochs", type=int, default=60)
    p.add_argument("--map-epochs", type=int, default=12)
    p.add_argument("--compare-joint", action="store_true")
    p.add_argument("--device", default="cpu", help="cpu or cuda (training only; simulation runs on CPUs)")
    p.add_argument("--workers", type=int, default=2, help="simulation worker processes")
    p.add_argument("--seed", type=int, default=4100)
    args = p.parse_args()
    if args.quick:
        args.n_train, args.n_held_out, args.npe_epochs, args.map_epochs = 2000, 300, 40, 4
    torch.set_num_threads(max(1, args.workers))

    from gcsbi.inference import TrainConfig, load_posterior, train
    from gcsbi.maps import MapTrainConfig, Photometry, load_map_data, save_map_model, train_maps
    from gcsbi.maps.metrics import evaluate
    from gcsbi.maps.train import load_held_out, train_maps_joint, truth_bank
    from gcsbi.nets import PiDocEmbedding
    from gcsbi.simulator import load_simulator

    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    report: dict = {"args": vars(args), "seconds": {}}
    t0 = time.perf_counter()
    train_bank = truth_bank(work / "train.zarr", spec=args.spec, prior=args.prior, n=args.n_train, seed=args.seed,
                       workers=args.workers)
    test_bank = truth_bank(work / "held_out.zarr", spec=args.spec, prior=args.prior, n=args.n_held_out,
                      seed=args.seed + 1, workers=args.workers)
    report["seconds"]["simulation"] = time.perf_counter() - t0

    sim = load_simulator(spec=args.spec, prior=args.prior)
    t1 = time.perf_counter()
    post_path = work / "posterior.pt"
    if post_path.exists():
        post = load_posterior(post_path)
    else:
        theta, x = train_bank.load()
        net = PiDocEmbedding(in_channels=x.shape[1], groups=GROUPS, width=8, features=48, hidden=(96, 48),
                             dropout=0.1)
        cfg = TrainConfig(x_pool=2, max_num_epochs=args.npe_epochs, stop_after_epochs=6, learning_rate=1e-3,
                          refine_learning_rates=(3e-4,), batch_size=128, seed=0, device=args.device)
        post = train(theta, x, simulator=sim, embedding_net=net, config=cfg, out=post_path)
        del theta, x
    report["seconds"]["npe"] = time.perf_counter() - t1

    phot = Photometry.from_simulator(sim)
    held = load_held_out(test_bank.path, photometry=phot, param_names=post.param_names)
    th_test, x_test, mass, clean, truth = held.theta, held.x, held.mass, held.clean, held.truth
    t2 = time.perf_counter()
    report["posterior_coverage"] = _calibration(post, sim, th_test, x_test, args.seed)
    report["seconds"]["npe_calibration"] = time.perf_counter() - t2

    data = load_map_data(train_bank.path, photometry=phot, param_names=post.param_names)
    mcfg = MapTrainConfig(epochs=args.map_epochs, device=args.device, seed=0)
    t3 = time.perf_counter()
    model = train_maps(post, data, photometry=phot, config=mcfg, state_path=work / "maps.pt.state")
    save_map_model(model, work / "maps.pt")
    report["seconds"]["maps"] = time.perf_counter() - t3
    t4 = time.perf_counter()
    metrics = evaluate(model, x_test, mass, clean, truth, seed=args.seed)
    metrics.pop("per_mock")
    report["maps_second_stage"] = metrics
    report["seconds"]["maps_evaluation"] = time.perf_counter() - t4
    report["seconds"]["total"] = time.perf_counter() - t0
    if args.compare_joint:
        t5 = time.perf_counter()
        jpost, jmodel = train_maps_joint(post, data, photometry=phot, config=mcfg, state_path=work / "joint.pt.state")
        jpost.save(work / "posterior_joint.pt")
        save_map_model(jmodel, work / "maps_joint.pt")
        jm = evaluate(jmodel, x_test, mass, clean, truth, seed=args.seed)
        jm.pop("per_mock")
        report["maps_joint"] = jm
        report["posterior_coverage_joint"] = _calibration(jpost, sim, th_test, x_test, args.seed)
        report["seconds"]["joint"] = time.perf_counter() - t5
    (work / "recipe.json").write_text(json.dumps(report, indent=1))
    keys = ("pixel_median_abs_dlog10_mass", "pixel_mean_relative_error", "total_mass_fov_relative_error",
            "ml_fov_relative_error", "max_coverage_deviation_enclosed_mass")
    for variant in ("maps_second_stage", "maps_joint"):
        if variant in report:
            print(variant, json.dumps({k: report[variant][k] for k in keys}))
    print("posterior max coverage deviation:", report["posterior_coverage"]["max_expected_coverage_deviation"],
          "joint:", report.get("posterior_coverage_joint", {}).get("max_expected_coverage_deviation"))
    print(f"wall time {report['seconds']['total'] / 60:.1f} min (without --compare-joint): "
          + ", ".join(f"{k} {v / 60:.1f}" for k, v in report["seconds"].items()))


if __name__ == "__main__":
    main()
