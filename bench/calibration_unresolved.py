"""The shipped catalogue posterior on catalogue mocks rendered with unresolved light and with every star.

``hst-phat6_m31-clusters_catalogue.pt`` was trained on curves of growth of images with unresolved
light (``faint_light = "smooth"``, ``scripts/train_catalogue.py``). The catalogue values (aperture
magnitudes, errors, Reff, Rap) depend on the mean light and its fluctuations, which the unresolved
light keeps; this checks the posterior is as good on images where every star is a particle.
For the same ``--n`` prior draws and seeds, profiles are simulated with ``faint_light =
"particles"`` and with ``"smooth"``, measured like the catalogue, and the posterior's coverage of
the central 68/95% intervals and its median errors (``train_catalogue.heldout_metrics``) are
compared in the same run. Results: bench/results/calibration_unresolved.json.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python bench/calibration_unresolved.py [--n 400]``
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from gcsbi.catalogue import CatalogueSimulator
from gcsbi.inference import load_posterior
from gcsbi.simulator.core import with_snapshot

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT / "scripts"))
from train_catalogue import heldout_metrics  # noqa: E402


def main() -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=400)
    args = p.parse_args()
    torch.set_num_threads(1)
    post = load_posterior("hst-phat6_m31-clusters_catalogue")
    res = {"n": args.n}
    theta = None
    for mode in ("particles", "smooth"):
        sim = CatalogueSimulator(with_snapshot("hst-phat6", faint_light=mode), "m31-clusters")
        if theta is None:
            with torch.random.fork_rng():
                torch.manual_seed(2027)
                theta = sim.prior.sample((args.n,))
        t0 = time.perf_counter()
        x = sim(theta, seed=31)
        wall = time.perf_counter() - t0
        ok = torch.isfinite(x).all(1)
        with torch.random.fork_rng():
            torch.manual_seed(7)
            metrics = heldout_metrics(post, theta[ok], x[ok])
        res[mode] = {"simulation_ms_per_mock": 1e3 * wall / args.n, "parameters": metrics}
        print(mode, f"{1e3 * wall / args.n:.0f} ms/mock", flush=True)
        for name, m in metrics["parameters"].items():
            print(f"  {name:15s} cov68 {m['coverage_68']:.2f} cov95 {m['coverage_95']:.2f} "
                  f"|err| {m['median_abs_error']:.3g} bias {m['bias']:+.3g}", flush=True)
    return res


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    result = main()
    (OUT / "calibration_unresolved.json").write_text(json.dumps(result, indent=2))
