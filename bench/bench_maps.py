"""Held-out checks of the shipped map models (mass maps, decontaminated images, derived quantities).

For each shipped image posterior with a map model: a held-out bank with truth maps (created and
filled here when missing; seeds below, never used in training), then

* π-DOC's three numbers (mean per-pixel error over the pixels holding 90% of the mass, total
  mass in the field, M/L) next to 27% / 15% / 11% (Chardin & Bianchini 2021), and the median
  per-pixel |Δ log10 mass|;
* coverage of the enclosed mass at 0.5, 1, 2 R_h and of every other derived quantity
  (68% and 95% central intervals);
* flux ratio predicted / true of the decontaminated image in annuli from centre to edge;
* the parameter posterior's calibration re-checked on the same mocks (the map heads are a
  second stage on its frozen encoder, so it cannot have changed: this checks that claim).

Then a B165-like cluster (the catalogue posterior's median parameters for B165, ``m31_b165.json``)
simulated in the hst-phat spec and run through ``gcsbi.infer(..., maps=True)``: the README picture.

    python bench/bench_maps.py [--n 1050] [--bank-dir runs] [--only hst-phat_m31-gc]

Writes ``bench/results/maps_heldout_<posterior>.json``, ``maps_b165.png``, ``maps_b165_profiles.png``.
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
#: posterior -> (spec, prior, held-out bank seed); training banks used seeds 1601 / 1701.
CASES = {"hst-phat_m31-gc": ("hst-phat", "m31-gc", 1602), "hst-mw_milky-way-gc": ("hst-mw", "milky-way-gc", 1702)}


def check(name: str, bank_dir: Path, n: int, calibration: bool = True) -> dict:
    from gcsbi.inference import calibrate, load_posterior
    from gcsbi.maps.infer import find_map_model
    from gcsbi.maps.metrics import PIDOC, evaluate
    from gcsbi.maps.train import load_held_out, truth_bank
    from gcsbi.simulator import load_simulator

    spec, prior, seed = CASES[name]
    short = "m31" if "m31" in name else "mw"
    bank = truth_bank(bank_dir / f"maps-{short}-test.zarr", spec=spec, prior=prior, n=n, seed=seed, workers=2)
    post = load_posterior(name)
    model = find_map_model(post)
    sim = load_simulator(spec=spec, prior=prior)
    held = load_held_out(bank.path, photometry=model.photometry, param_names=post.param_names)
    theta, x = held.theta, held.x
    names = list(post.param_names)
    t0 = time.perf_counter()
    res = evaluate(model, x, held.mass, held.clean, held.truth, n_draws=500, seed=0)
    res["seconds"] = time.perf_counter() - t0
    if calibration:
        cal = calibrate(post, sim, held_out=(theta, x), num_posterior_samples=500, seed=1, c2st=False)
        res["posterior_calibration_same_mocks"] = {k: cal[k] for k in ("max_expected_coverage_deviation",
                                                                       "max_deviation_if_calibrated", "verdict")}
    # by distance: the nearest third of the mocks
    d = theta[:, names.index("distance_kpc")].numpy()
    near = d <= np.quantile(d, 1 / 3)
    res["nearest_third"] = {"distance_kpc_max": float(d[near].max()),
                            "pixel_mean_relative_error_mean": float(np.mean(np.asarray(
                                res["per_mock"]["pixel_mean_rel"])[near]))}
    res.pop("per_mock")
    out = {"posterior": name, "spec": spec, "prior": prior, "held_out_bank": str(bank.path), "held_out_seed": seed,
           "map_model_train_config": model.meta.get("train_config"), "pidoc_reference": PIDOC,
           "command": "python bench/bench_maps.py", **res}
    (RESULTS / f"maps_heldout_{name}.json").write_text(json.dumps(out, indent=1))
    return out


def b165_picture() -> dict:
    """A B165-like hst-phat mock through gcsbi.infer(maps=True): README picture and numbers."""
    from gcsbi.inference import infer, load_posterior
    from gcsbi.maps.infer import find_map_model
    from gcsbi.maps.plots import plot_examples, plot_profiles
    from gcsbi.maps.targets import summaries
    from gcsbi.simulator import load_simulator

    med = {k: v["median"] for k, v in json.loads((RESULTS / "m31_b165.json").read_text())["posterior"].items()}
    if "log10_age_yr" in med:
        med["age_gyr"] = 10 ** (med.pop("log10_age_yr") - 9.0)
    sim = load_simulator(spec="hst-phat", prior="m31-gc")
    low, high = sim.prior.low.numpy(), sim.prior.high.numpy()
    theta = np.array([[float(np.clip(med.get(n, 0.5 * (lo + hi)), lo, hi)) for n, lo, hi in
                       zip(sim.param_names, low, high)]], dtype=np.float32)
    out = sim.simulate(torch.from_numpy(theta), seed=165, return_truth=True)
    post = load_posterior("hst-phat_m31-gc")
    model = find_map_model(post)
    x = out["x"].numpy()
    dt = infer(post, x[0], num_samples=1000, seed=0, maps=True)
    truth = summaries(out["mass_map"].numpy(), out["clean"].numpy(), distance_kpc=theta[:, 0],
                      ebv=theta[:, list(sim.param_names).index("ebv")], photometry=model.photometry)
    plot_examples(model, x, truth_mass=out["mass_map"].numpy(), truth_clean=out["clean"].numpy(),
                  path=RESULTS / "maps_b165.png")
    plot_profiles(model, x, truth=truth, path=RESULTS / "maps_b165_profiles.png")
    der = dt["derived"].to_dataset()
    q = {str(k): [float(v) for v in np.quantile(der[k].values.ravel(), [0.16, 0.5, 0.84])] for k in der.data_vars}
    res = {"theta": dict(zip(sim.param_names, theta[0].tolist())), "seed": 165, "derived_p16_p50_p84": q,
           "truth": dict(zip([str(n) for n in der.data_vars if n != "rh_mass_over_light"], truth[0].tolist()))}
    (RESULTS / "maps_b165.json").write_text(json.dumps(res, indent=1))
    return res


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=1050, help="held-out mocks per posterior (default 1050)")
    p.add_argument("--bank-dir", default=str(ROOT / "runs"))
    p.add_argument("--only", default=None, choices=sorted(CASES))
    p.add_argument("--no-b165", action="store_true")
    p.add_argument("--b165-only", action="store_true", help="only the README picture")
    p.add_argument("--no-calibration", action="store_true",
                   help="skip re-checking the parameter posterior's calibration (slow: 500 draws per mock)")
    args = p.parse_args()
    torch.set_num_threads(2)
    for name in [] if args.b165_only else [args.only] if args.only else CASES:
        r = check(name, Path(args.bank_dir), args.n, calibration=not args.no_calibration)
        print(name, json.dumps({k: r.get(k) for k in ("pixel_mean_relative_error", "total_mass_fov_relative_error",
                                                      "ml_fov_relative_error", "max_coverage_deviation_enclosed_mass",
                                                      "annulus_flux_ratio_median", "posterior_calibration_same_mocks")}))
    if not args.no_b165:
        print("B165-like:", json.dumps(b165_picture()["derived_p16_p50_p84"]))


if __name__ == "__main__":
    main()
