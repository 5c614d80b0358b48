"""The README's main job (``make demo``): posterior for a simulated held-out M31 cluster.

1. load the shipped posterior (``gcsbi/data/posteriors/hst-phat_m31-gc.pt``; if it is missing,
   train a small one on the spot, which takes a few minutes);
2. simulate a held-out M31-like globular cluster with the ``hst-phat`` simulator (a seed
   stream never used in training);
3. infer its parameters, print the posterior summary next to the truth;
4. write the corner plot, the cluster's RGB image, and a quick calibration plot (expected
   coverage on a few dozen fresh simulations; the full calibration is in ``bench/results``).

Run as ``python -m gcsbi.demo --out demo-output``. The output folder is written as a whole at the
end (:func:`gcsbi.outputs.output_dir`): it must be new, empty, or the output of an earlier demo
run, which it then replaces; a folder holding anything else is refused and left as it was.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import torch

from ..inference.checkpoint import SHIPPED_DIR
from ..spec import reference_cluster

__all__ = ["main", "SHIPPED_POSTERIOR", "DEMO_TRUTH"]

SHIPPED_POSTERIOR = SHIPPED_DIR / "hst-phat_m31-gc.pt"

#: The held-out cluster: an old, metal-poor, B165-like M31 globular cluster (``priors/m31-gc.toml``).
DEMO_TRUTH = reference_cluster("B165")


def _posterior(sim, out: Path):
    from ..inference import TrainConfig, load_posterior, train
    from ..nets import PiDocEmbedding

    if SHIPPED_POSTERIOR.is_file():
        print(f"loading the shipped posterior {SHIPPED_POSTERIOR.name}")
        return load_posterior(SHIPPED_POSTERIOR, expected_spec=sim.spec)
    print("no shipped posterior found: training a small one (300 simulations, a few minutes)")
    theta = sim.prior.sample((300,))
    x = sim.simulate(theta, seed=123, progress=True)["x"]
    net = PiDocEmbedding(in_channels=x.shape[1], width=8, input_pool=4, features=32, hidden=(64, 32))
    return train(theta, x, simulator=sim, embedding_net=net,
                 config=TrainConfig(max_num_epochs=30, stop_after_epochs=5, batch_size=64, seed=0),
                 out=out / "posterior.pt")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gcsbi.demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="demo-output", help="output folder")
    parser.add_argument("--seed", type=int, default=20261121)
    parser.add_argument("--num-samples", type=int, default=2000)
    parser.add_argument("--n-calibration", type=int, default=40, help="fresh simulations for the quick check")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)

    from ..outputs import output_dir

    from ..errors import GcsbiError

    out = Path(args.out)  # written as a whole at the end: a new or empty folder, or the previous demo output
    t_start = time.perf_counter()
    try:
        with output_dir(out, kind="gcsbi demo") as work:
            _run(args, work)
    except GcsbiError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 1
    print(f"\nwrote {', '.join(str(out / f) for f in ('corner.png', 'cluster.png', 'calibration.png', 'summary.csv', 'posterior.zarr'))}"
          f" in {time.perf_counter() - t_start:.0f} s")
    return 0


def _run(args: argparse.Namespace, out: Path) -> None:
    """The demo, writing into ``out`` (a temporary folder that becomes the output folder at the end)."""
    from ..errors import GcsbiWarning
    from ..inference import calibrate, infer, summary
    from ..inference.plots import plot_corner, plot_coverage
    from ..simulator.cli import _title, picture_args, plot_grid
    from ..simulator.core import load_simulator

    sim = load_simulator("hst-phat", "m31-gc")
    post = _posterior(sim, out)

    theta = sim.prior.from_dict(DEMO_TRUTH)
    print("simulating a held-out M31 cluster:",
          ", ".join(f"{k}={v:g}" for k, v in DEMO_TRUTH.items()))
    mock = sim.simulate(theta, seed=args.seed, return_truth=True)
    plot_grid(mock["image"].numpy(), sim.model.sky_e, [_title(sim.prior, theta[0])], out / "cluster.png", ncols=1,
              suptitle="held-out B165-like M31 cluster (hst-phat)", **picture_args(sim, theta))

    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dt = infer(post, mock["x"][0], num_samples=args.num_samples, seed=1, truth=DEMO_TRUTH)
    t_infer = time.perf_counter() - t0
    table = summary(dt)
    table.insert(0, "truth", [DEMO_TRUTH[name] for name in table.index])
    print(f"\nposterior ({args.num_samples} draws in {t_infer:.1f} s):")
    print(table.to_string(float_format=lambda v: f"{v:9.3f}"))
    for w in caught:  # gcsbi's own flags are reported as such; anything else would be a real warning
        label = "flag" if issubclass(w.category, GcsbiWarning) else f"warning ({w.category.__name__})"
        print(f"{label}: {w.message}")
    print(f"out-of-distribution flag: {dt.attrs.get('ood_flag')} (p = {dt.attrs.get('ood_pvalue')}); "
          f"prior-edge flag: {dt.attrs.get('prior_edge_flag')}")
    plot_corner(dt, truth=DEMO_TRUTH, path=out / "corner.png",
                title=f"held-out B165-like M31 cluster ({sim.sim_spec.name} mock): posterior under the prior "
                      f"{sim.prior.name}, {args.num_samples} draws")
    table.to_csv(out / "summary.csv")
    # the ArviZ DataTree: Zarr v3 with consolidated metadata, so xr.open_datatree opens it without a warning
    from ..inference.arviz import write_zarr

    write_zarr(dt, out / "posterior.zarr")

    print(f"\nquick calibration on {args.n_calibration} fresh simulations ...")
    report = calibrate(post, sim, n_held_out=args.n_calibration, num_posterior_samples=200, seed=7, c2st=False)
    plot_coverage(report, path=out / "calibration.png")
    (out / "calibration.json").write_text(json.dumps(report, indent=2, default=float))
    noise = report["max_deviation_if_calibrated"]
    print(f"max expected-coverage deviation: {report['max_expected_coverage_deviation']:.3f}; a perfectly "
          f"calibrated posterior would show {noise['median']:.3f} (95% up to {noise['q95']:.3f}) from "
          f"{args.n_calibration} mocks. Verdict: {report['verdict']} (the 2000-mock calibration is in bench/results)")


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
