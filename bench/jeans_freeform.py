"""Free-form Jeans posterior (gcsbi_jeans.freeform) against truth, the emcee baseline and published dwarfs.

Usage (repo root, one heavy job at a time, one thread):
    OMP_NUM_THREADS=1 .venv/bin/python bench/jeans_freeform.py --stage truth     # PlumCoreOm x5 + galpy mocks x8
    OMP_NUM_THREADS=1 .venv/bin/python bench/jeans_freeform.py --stage baseline  # emcee baseline on the same data
    OMP_NUM_THREADS=1 .venv/bin/python bench/jeans_freeform.py --stage dwarfs    # Draco, Fornax, Carina, beta inferred
    OMP_NUM_THREADS=1 .venv/bin/python bench/jeans_freeform.py --stage consistency  # PlumCoreOm, 10000 stars
    OMP_NUM_THREADS=1 .venv/bin/python bench/jeans_freeform.py --stage holdout   # 10 fresh galpy mocks
    OMP_NUM_THREADS=1 .venv/bin/python bench/jeans_freeform.py --stage holdout2  # 10 more, never used for a choice
Results: bench/results/jeans_freeform_<stage>.json (+ PNGs).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from gcsbi_jeans.baseline import BaselineConfig, fit_baseline
from gcsbi_jeans.core.beta import parse_beta
from gcsbi_jeans.core.export import truth_coverage
from gcsbi_jeans.core.io import StarTable, read_gaia_challenge, read_walker
from gcsbi_jeans.core.light import fit_light, read_photometry
from gcsbi_jeans.core.mocks import PLUMCOREOM_TRUTH, MockConfig, make_mock, plummer_positions, truth_profiles
from gcsbi_jeans.core.plots import plot_profiles
from gcsbi_jeans.freeform import FreeformConfig, fit_freeform

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "dsph"
RESULTS = Path(os.environ.get("JEANS_BENCH_OUT", ROOT / "bench" / "results"))
PCO = "gaia_challenge/PlumCoreOm/gs010_bs050_rcrs025_rarc100_core_0400mpc3_df_"

# Read, Walker & Steger (2019, MNRAS 484, 1401): rho_DM(150 pc) in 1e7 Msun/kpc^3 (value, -err, +err), and the
# stellar masses they used; Pace & Strigari (2019, MNRAS 482, 3480): log10 J(0.5 deg) in GeV^2 cm^-5.
DWARFS = {
    "draco": {"spec": "dra_justin1_spec.dat", "phot": None, "distance": 76.0, "mstar": 0.29e6,
              "rho150": (23.6, 2.9, 2.0), "logJ05": (18.83, 0.12)},
    "fornax": {"spec": "for_justin1_spec.dat", "phot": None, "distance": 138.0, "mstar": 4.3e7,
               "rho150": (7.9, 1.9, 2.7), "logJ05": (18.09, 0.10)},
    "carina": {"spec": "car_justin1_spec.dat", "phot": "car_justin1_phot.dat", "distance": 105.0, "mstar": 0.38e6,
               "rho150": (11.6, 2.2, 2.0), "logJ05": (17.83, 0.10)},
}
MOCKS = [(halo, an, seed) for seed in (21, 22) for halo in ("core", "cusp") for an in ("iso", "om:0.25")]
# fresh realisations (seeds never used for a modelling choice): a check that the truth-set numbers are not tuned
HOLDOUT = [("cusp", "om:0.25", s) for s in range(301, 306)] + [("core", "om:0.25", 306), ("core", "iso", 307),
                                                               ("cusp", "iso", 308), ("cusp", "om:0.5", 309),
                                                               ("core", "om:0.5", 310)]
# the same design, seeds + 10: fresh again once HOLDOUT has been used to choose between priors
HOLDOUT2 = [(halo, an, seed + 10) for halo, an, seed in HOLDOUT]


def _mock(mc: MockConfig):
    """make_mock(mc), kept in $JEANS_MOCK_CACHE (if set) as .npz + .json: drawing from galpy's DFs takes ~1 min."""
    cache = os.environ.get("JEANS_MOCK_CACHE")
    if not cache:
        return make_mock(mc)
    stem = f"mock_{mc.halo}_{mc.anisotropy.replace(':', '')}_{mc.seed}_{mc.n}"
    npz, js = Path(cache) / (stem + ".npz"), Path(cache) / (stem + ".json")
    if npz.is_file() and js.is_file():
        with np.load(npz) as z:
            stars = StarTable(**{k: z[k] for k in ("x", "y", "v", "verr", "weight")}, vsys=float(z["vsys"]))
        return stars, json.loads(js.read_text())
    stars, truth = make_mock(mc)
    npz.parent.mkdir(parents=True, exist_ok=True)
    np.savez(npz, x=stars.x, y=stars.y, v=stars.v, verr=stars.verr, weight=stars.weight, vsys=stars.vsys)
    js.write_text(json.dumps(truth))
    return stars, truth


def mock_cases(mocks):
    """(name, stars, light, beta, truth) of galpy mocks (light from 10000 independent Plummer positions)."""
    for halo, an, seed in mocks:
        mc = MockConfig(n=1000, halo=halo, rho0=4e8 if halo == "core" else 6.4e7, anisotropy=an, seed=seed)
        stars, truth = _mock(mc)
        light = fit_light(plummer_positions(10000, mc.light_a, seed=seed + 100))
        yield f"mock_{halo}_{an.replace(':', '')}_{seed}", stars, light, parse_beta(an), truth


def truth_cases():
    """(name, stars, light, beta, truth): PlumCoreOm 1000-star files 0-4 (light from the 10000-star file) and
    the galpy mocks of :data:`MOCKS`."""
    ph = np.loadtxt(SHARED / (PCO + "10000_0.dat"))
    light = fit_light(np.hypot(ph[:, 0], ph[:, 1]))
    for k in range(5):
        yield (f"plumcoreom_{k}", read_gaia_challenge(SHARED / (PCO + f"1000_{k}_err.dat"), verr=2.0), light,
               parse_beta(PLUMCOREOM_TRUTH["beta"]), PLUMCOREOM_TRUTH)
    yield from mock_cases(MOCKS)


def score(profiles: dict, radius: np.ndarray, tp: dict, r_half: float) -> dict:
    out = {"rho": truth_coverage(profiles["rho"], tp["rho"](radius)),
           "min_rho_draw": float(profiles["rho"].min()),
           "slope_at_rhalf": float(np.median(profiles["slope"][:, 4])), "slope_truth": float(tp["slope"](r_half)),
           "mass_monotone": bool(np.all(np.diff(profiles["mass"], axis=1) > 0))}
    out["slope_error"] = out["slope_at_rhalf"] - out["slope_truth"]
    return out


def stage_truth(args, cases=None) -> dict:
    res = []
    for name, stars, light, beta, truth in (truth_cases() if cases is None else cases):
        rh = light.half_light_radius()
        radius = np.geomspace(0.25 * rh, 4.0 * rh, 9)
        t0 = time.perf_counter()
        cfg = FreeformConfig(seed=args.seed, **args.overrides)
        fit = fit_freeform(stars, cfg, beta=beta, light=light, radius=radius, progress=False)
        wall = time.perf_counter() - t0
        tp = truth_profiles(truth)
        case = {"name": name, "n": stars.n, "r_half": rh, "wall_s": wall, "acceptance": fit.acceptance,
                "sampler": fit.diagnostics, **score(fit.profiles, radius, tp, rh)}
        res.append(case)
        print(name, f"med|dlog rho| {case['rho']['median_abs_log10_ratio']:.3f}",
              f"in68 {case['rho']['frac_inside_68']:.2f} slope err {case['slope_error']:+.2f} "
              f"min rho {case['min_rho_draw']:.3g} steps {fit.diagnostics['steps']} R-hat "
              f"{fit.diagnostics['rhat_max']:.3f} wall {wall:.1f}s", flush=True)
        # pictures of the default run only
        if name in ("plumcoreom_0", "mock_cusp_iso_21") and not args.tag and cases is None:
            r = np.geomspace(0.05 * rh, 8 * rh, 40)
            R = np.geomspace(0.05 * rh, 6 * rh, 20)
            full = fit_freeform(stars, cfg, beta=beta, light=light, radius=r, R=R, progress=False)
            plot_profiles({"free-form Jeans": (r, R, full.profiles)}, RESULTS / f"jeans_freeform_{name}.png",
                          stars=stars, truth=tp, title=f"{name}: free-form Jeans posterior (beta given)")
    inside = np.concatenate([c["rho"]["inside_68"] for c in res])
    inside95 = np.concatenate([c["rho"]["inside_95"] for c in res])
    inner = [c["rho"]["log10_ratio"][0] for c in res]
    out = {"cases": res, "coverage68_all": float(np.mean(inside)), "coverage95_all": float(np.mean(inside95)),
           "n_pairs": int(inside.size),
           "n_median_abs_le_0.05": int(sum(c["rho"]["median_abs_log10_ratio"] <= 0.05 for c in res)),
           "n_slope_within_0.15": int(sum(abs(c["slope_error"]) <= 0.15 for c in res)),
           "inner_log10_ratio_mean": float(np.mean(inner))}
    print({k: v for k, v in out.items() if k != "cases"}, flush=True)
    return out


def stage_holdout(args) -> dict:
    """The truth-set scores on the fresh realisations of :data:`HOLDOUT`."""
    return stage_truth(args, cases=mock_cases(HOLDOUT))


def stage_holdout2(args) -> dict:
    """The truth-set scores on :data:`HOLDOUT2`."""
    return stage_truth(args, cases=mock_cases(HOLDOUT2))


def stage_consistency(args) -> dict:
    """The same model on PlumCoreOm's 10000-star file: errors that shrink with the sample are sampling noise."""
    ph = np.loadtxt(SHARED / (PCO + "10000_0.dat"))
    light = fit_light(np.hypot(ph[:, 0], ph[:, 1]))
    rh = light.half_light_radius()
    radius = np.geomspace(0.25 * rh, 4.0 * rh, 9)
    stars = read_gaia_challenge(SHARED / (PCO + "10000_0_err.dat"), verr=2.0)
    t0 = time.perf_counter()
    fit = fit_freeform(stars, FreeformConfig(seed=args.seed, **args.overrides),
                       beta=parse_beta(PLUMCOREOM_TRUTH["beta"]), light=light, radius=radius, progress=False)
    case = {"name": "plumcoreom_10000", "n": stars.n, "wall_s": time.perf_counter() - t0,
            **score(fit.profiles, radius, truth_profiles(PLUMCOREOM_TRUTH), rh),
            "kurtosis": fit.kernel.kurtosis}
    print(case["name"], f"med|dlog rho| {case['rho']['median_abs_log10_ratio']:.3f}",
          f"slope err {case['slope_error']:+.3f}", flush=True)
    return {"cases": [case]}


def stage_baseline(args) -> dict:
    res = []
    cfg = BaselineConfig(seed=args.seed)
    for name, stars, light, beta, truth in truth_cases():
        rh = light.half_light_radius()
        radius = np.geomspace(0.25 * rh, 4.0 * rh, 9)
        base = fit_baseline(stars, beta, cfg, radius=radius, R=radius, progress=False)
        case = {"name": name, "wall_s": base.wall_s, **score(base.profiles, radius, truth_profiles(truth), rh)}
        res.append(case)
        print(name, f"emcee med|dlog rho| {case['rho']['median_abs_log10_ratio']:.3f}",
              f"in68 {case['rho']['frac_inside_68']:.2f} slope err {case['slope_error']:+.2f}", flush=True)
    return {"cases": res}


def _degeneracy_png(draws: dict) -> None:
    """beta(150 pc) against rho_DM(150 pc) per posterior draw: the mass-anisotropy degeneracy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(draws), figsize=(4 * len(draws), 3.6))
    for ax, (name, (beta, rho, pub)) in zip(np.atleast_1d(axes), draws.items()):
        ax.scatter(beta, rho / 1e7, s=3, alpha=0.3)
        ax.axhspan(pub[0] - pub[1], pub[0] + pub[2], color="grey", alpha=0.3, label="Read+2019")
        ax.set(xlabel=r"$\beta$(150 pc)", ylabel=r"$\rho_{DM}$(150 pc) [$10^7$ M$_\odot$ kpc$^{-3}$]", title=name,
               yscale="log")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(RESULTS / "jeans_freeform_degeneracy.png", dpi=110)


def stage_dwarfs(args) -> dict:
    res = []
    scatter = {}
    for name, d in DWARFS.items():
        stars = read_walker(SHARED / "walker" / d["spec"], distance_kpc=d["distance"]).members(0.05)
        if d["phot"]:
            R, w = read_photometry(SHARED / "walker" / d["phot"], distance_kpc=d["distance"], fmt="walker")
            light, light_src = fit_light(R, w), "photometric sample"
        else:
            light, light_src = fit_light(stars.R, stars.weight), "spectroscopic sample"
        rh = light.half_light_radius()
        r = np.unique(np.concatenate([np.geomspace(0.05 * rh, 8 * rh, 40), [0.15]]))
        R = np.geomspace(0.05 * rh, 6 * rh, 20)
        t0 = time.perf_counter()
        fit = fit_freeform(stars, FreeformConfig(seed=args.seed, **args.overrides), beta=None, light=light, radius=r,
                           R=R, stellar_mass=d["mstar"], distance_kpc=d["distance"], progress=False)
        wall = time.perf_counter() - t0
        j150 = int(np.argmin(np.abs(r - 0.15)))
        q = lambda x: dict(zip(["q16", "median", "q84"], np.quantile(x, [0.16, 0.5, 0.84]).tolist()))  # noqa: E731
        bt = fit.chain.reshape(-1, len(fit.names))
        case = {"name": name, "n": stars.n, "n_eff": float(stars.weight.sum()), "light_from": light_src,
                "r_half_kpc": rh, "distance_kpc": d["distance"], "stellar_mass": d["mstar"], "wall_s": wall,
                "acceptance": fit.acceptance, "sampler": fit.diagnostics,
                "rho_dm_150pc_1e7": q(fit.profiles["rho"][:, j150] / 1e7),
                "read2019_rho150_1e7": d["rho150"], "log10_J_0.5deg": q(fit.scalars["log10_J_0.5deg"]),
                "pace_strigari2019_logJ05": d["logJ05"],
                "beta_tilde_0": q(bt[:, fit.names.index("beta_tilde_0")]),
                "beta_tilde_inf": q(bt[:, fit.names.index("beta_tilde_inf")]),
                "corr_beta0_rho150": float(np.corrcoef(
                    fit.profiles["beta"][:, j150], np.log10(fit.profiles["rho"][:, j150]))[0, 1])}
        res.append(case)
        scatter[name] = (fit.profiles["beta"][:, j150], fit.profiles["rho"][:, j150], d["rho150"])
        print(json.dumps({k: case[k] for k in ("name", "rho_dm_150pc_1e7", "read2019_rho150_1e7", "log10_J_0.5deg",
                                               "pace_strigari2019_logJ05", "wall_s")}, default=float), flush=True)
        if not args.tag:
            plot_profiles({"free-form Jeans, beta inferred": (r, R, fit.profiles)},
                          RESULTS / f"jeans_freeform_{name}.png", stars=stars, truth=None,
                          title=f"{name}: dark matter only (M* = {d['mstar']:.2g} Msun)", mark_radius=0.15)
    if not args.tag:
        _degeneracy_png(scatter)
    return {"cases": res}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--stage", required=True, choices=["truth", "baseline", "dwarfs", "consistency", "holdout", "holdout2"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a FreeformConfig field (e.g. slope_max=3); results go to a suffixed JSON")
    ap.add_argument("--tag", default="", help="suffix of the result file")
    args = ap.parse_args()
    args.overrides = {k: json.loads(v) for k, v in (kv.split("=", 1) for kv in args.set)}
    RESULTS.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    out = {"stage": args.stage, "machine": platform.platform(), "threads": os.environ.get("OMP_NUM_THREADS"),
           **{"truth": stage_truth, "baseline": stage_baseline, "dwarfs": stage_dwarfs,
              "consistency": stage_consistency, "holdout": stage_holdout,
              "holdout2": stage_holdout2}[args.stage](args)}
    out["wall_s"] = time.perf_counter() - t0
    out["overrides"] = args.overrides
    path = RESULTS / f"jeans_freeform_{args.stage}{'_' + args.tag if args.tag else ''}.json"
    path.write_text(json.dumps(out, indent=1, default=float))
    print("wrote", path, f"({out['wall_s']:.0f} s)")


if __name__ == "__main__":
    main()
