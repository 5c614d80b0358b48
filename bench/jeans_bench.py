"""JFlow vs emcee benchmarks: Gaia Challenge PlumCoreOm, own galpy mocks, Fornax/Draco, wall times.

Usage (from the repo root; one heavy job at a time, single thread):
    OMP_NUM_THREADS=1 .venv/bin/python bench/jeans_bench.py --stage plumcoreom
    OMP_NUM_THREADS=1 .venv/bin/python bench/jeans_bench.py --stage mocks
    OMP_NUM_THREADS=1 .venv/bin/python bench/jeans_bench.py --stage dwarfs
Results: bench/results/jeans_<stage>.json and PNGs next to them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from gcsbi_jeans.baseline import BaselineConfig, fit_baseline
from gcsbi_jeans.core.beta import parse_beta
from gcsbi_jeans.core.export import truth_coverage
from gcsbi_jeans.core.grids import default_grids
from gcsbi_jeans.core.io import read_gaia_challenge, read_walker
from gcsbi_jeans.core.mocks import PLUMCOREOM_TRUTH, MockConfig, make_mock, truth_profiles
from gcsbi_jeans.core.plots import plot_profiles
from gcsbi_jeans.jflow.config import FitConfig, FlowConfig
from gcsbi_jeans.jflow.fit import fit_ensemble

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "dsph"
RESULTS = Path(os.environ.get("JEANS_BENCH_OUT", ROOT / "bench" / "results"))

# published DM densities at 150 pc (Read, Walker & Steger 2019, MNRAS 484, 1401, GravSphere), Msun/kpc^3
PUBLISHED_RHO150 = {"draco": (2.4e8, 0.5e8, 0.6e8), "fornax": (0.79e8, 0.27e8, 0.19e8)}
DWARFS = {"draco": ("dra_justin1_spec.dat", 76.0), "fornax": ("for_justin1_spec.dat", 138.0)}


def _interval(x: np.ndarray) -> dict:
    q = np.quantile(x, [0.025, 0.16, 0.5, 0.84, 0.975])
    return dict(zip(["q2.5", "q16", "median", "q84", "q97.5"], q.tolist()))


def run_case(name, stars, beta, truth, *, members, fit_cfg, base_cfg, rhalf=None, extra_radius=None):
    """JFlow ensemble + emcee on one data set; scores against truth on 0.25-4 R_half when truth is known."""
    rhalf = stars.half_light_radius() if rhalf is None else rhalf
    radius, R = default_grids(stars)
    score_r = np.geomspace(0.25 * rhalf, 4.0 * rhalf, 9)
    radius = np.unique(np.concatenate([radius, score_r] + ([np.atleast_1d(extra_radius)] if extra_radius else [])))
    out = {"name": name, "n_stars": stars.n, "n_eff": float(stars.weight.sum()), "rhalf_kpc": rhalf,
           "beta": beta.spec, "score_radii_kpc": score_r.tolist()}
    t0 = time.perf_counter()
    ens = fit_ensemble(stars, beta, fit_cfg, members=members, radius=radius, R=R)
    out["jflow"] = {"wall_s_total": time.perf_counter() - t0, "wall_s_per_fit": ens.wall_s.tolist(),
                    "members": members, "config": fit_cfg.to_dict()}
    t0 = time.perf_counter()
    base = fit_baseline(stars, beta, base_cfg, radius=radius, R=R)
    out["emcee"] = {"wall_s": time.perf_counter() - t0, "acceptance": base.acceptance, "config": base_cfg.to_dict()}
    from gcsbi_jeans.baseline import PARAM_NAMES
    from gcsbi_jeans.core.export import profiles_to_datatree
    from gcsbi_jeans.core.sampling import mcmc_diagnostics

    dt = profiles_to_datatree(base.profiles, radius=radius, R=R, chain=base.chain, param_names=PARAM_NAMES)
    out["emcee"]["diagnostics"] = mcmc_diagnostics(dt)
    idx = np.searchsorted(radius, score_r)
    tp = truth_profiles(truth) if truth else None
    for label, prof in (("jflow", ens.profiles), ("emcee", base.profiles)):
        if tp is not None:
            out[label]["rho"] = truth_coverage(prof["rho"][:, idx], tp["rho"](score_r))
            out[label]["mass"] = truth_coverage(prof["mass"][:, idx], tp["mass"](score_r))
        if extra_radius:
            j = int(np.argmin(np.abs(radius - extra_radius)))
            out[label][f"rho_{int(round(extra_radius * 1000))}pc"] = _interval(prof["rho"][:, j])
    png = RESULTS / f"jeans_{name}.png"
    plot_profiles({"JFlow": (radius, R, ens.profiles), "emcee": (radius, R, base.profiles)}, png, stars=stars,
                  truth=tp, title=f"{name}: JFlow ({members} bootstrap fits) vs emcee", mark_radius=extra_radius)
    out["png"] = png.name
    print(json.dumps({k: v for k, v in out.items() if k in ("name",)} | {
        m: {k: v for k, v in out[m].items() if k in ("rho", "wall_s_total", "wall_s") or k.startswith("rho_")}
        for m in ("jflow", "emcee")}, default=float)[:2000], flush=True)
    return out


def run_emcee_only(name, stars, beta, truth, *, base_cfg, extra_radius=None):
    """Longer emcee chains only (cheap), for converged R-hat/ESS; no plot."""
    from gcsbi_jeans.baseline import PARAM_NAMES
    from gcsbi_jeans.core.export import profiles_to_datatree
    from gcsbi_jeans.core.sampling import mcmc_diagnostics

    rhalf = stars.half_light_radius()
    score_r = np.geomspace(0.25 * rhalf, 4.0 * rhalf, 9)
    radius = np.unique(np.concatenate([score_r] + ([np.atleast_1d(extra_radius)] if extra_radius else [])))
    R = score_r
    base = fit_baseline(stars, beta, base_cfg, radius=radius, R=R)
    dt = profiles_to_datatree(base.profiles, radius=radius, R=R, chain=base.chain, param_names=PARAM_NAMES)
    out = {"name": name, "wall_s": base.wall_s, "acceptance": base.acceptance, "config": base_cfg.to_dict(),
           "diagnostics": mcmc_diagnostics(dt)}
    idx = np.searchsorted(radius, score_r)
    if truth:
        tp = truth_profiles(truth)
        out["rho"] = truth_coverage(base.profiles["rho"][:, idx], tp["rho"](score_r))
        out["mass"] = truth_coverage(base.profiles["mass"][:, idx], tp["mass"](score_r))
    if extra_radius:
        out[f"rho_{int(round(extra_radius * 1000))}pc"] = _interval(
            base.profiles["rho"][:, int(np.argmin(np.abs(radius - extra_radius)))])
    print(json.dumps(out, default=float)[:600], flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--stage", required=True, choices=["plumcoreom", "mocks", "dwarfs"])
    ap.add_argument("--members", type=int, default=8)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--variant", default="cored")
    ap.add_argument("--emcee-steps", type=int, default=1500)
    ap.add_argument("--emcee-only", action="store_true", help="only the emcee baseline -> jeans_<stage>_emcee.json")
    args = ap.parse_args()
    torch.set_num_threads(1)
    RESULTS.mkdir(parents=True, exist_ok=True)
    fit_cfg = FitConfig(flow=FlowConfig(variant=args.variant), steps=args.steps)
    base_cfg = BaselineConfig(steps=args.emcee_steps, burn=args.emcee_steps // 3, thin=max(1, min(10, args.emcee_steps // 30)))
    res = {"machine": platform.platform(), "torch_threads": torch.get_num_threads(), "cases": []}
    t0 = time.perf_counter()
    if args.emcee_only:
        for name, stars, beta, truth, extra in _datasets(args.stage):
            res["cases"].append(run_emcee_only(name, stars, beta, truth, base_cfg=base_cfg, extra_radius=extra))
        res["wall_s"] = time.perf_counter() - t0
        path = RESULTS / f"jeans_{args.stage}_emcee.json"
        path.write_text(json.dumps(res, indent=1, default=float))
        print("wrote", path)
        return
    if args.stage == "plumcoreom":
        f = SHARED / "gaia_challenge/PlumCoreOm/gs010_bs050_rcrs025_rarc100_core_0400mpc3_df_1000_0_err.dat"
        stars = read_gaia_challenge(f, verr=2.0)
        res["cases"].append(run_case("plumcoreom", stars, parse_beta(PLUMCOREOM_TRUTH["beta"]), PLUMCOREOM_TRUTH,
                                     members=args.members, fit_cfg=fit_cfg, base_cfg=base_cfg))
    elif args.stage == "mocks":
        for name, mc in (("mock_cusp_iso", MockConfig(n=1000, halo="cusp", rho0=6.4e7, rs=1.0, anisotropy="iso",
                                                      seed=1)),
                         ("mock_core_om", MockConfig(n=1000, halo="core", anisotropy="om:0.25", seed=2))):
            stars, truth = make_mock(mc)
            res["cases"].append(run_case(name, stars, parse_beta(truth["beta"]), truth, members=args.members,
                                         fit_cfg=fit_cfg, base_cfg=base_cfg))
    else:
        for name, (fname, dist) in DWARFS.items():
            # stars with membership p < 0.05 carry < 1% of the total weight but cost time: dropped
            stars = read_walker(SHARED / "walker" / fname, distance_kpc=dist).members(0.05)
            case = run_case(name, stars, parse_beta("iso"), None, members=args.members, fit_cfg=fit_cfg,
                            base_cfg=base_cfg, extra_radius=0.15)
            case["published_rho150"] = dict(zip(["value", "plus", "minus"], PUBLISHED_RHO150[name]))
            case["distance_kpc"] = dist
            res["cases"].append(case)
    res["wall_s"] = time.perf_counter() - t0
    path = RESULTS / f"jeans_{args.stage}.json"
    path.write_text(json.dumps(res, indent=1, default=float))
    print("wrote", path)


def _datasets(stage):
    """(name, stars, beta, truth, extra_radius) of a stage, as used by the full runs."""
    if stage == "plumcoreom":
        f = SHARED / "gaia_challenge/PlumCoreOm/gs010_bs050_rcrs025_rarc100_core_0400mpc3_df_1000_0_err.dat"
        yield "plumcoreom", read_gaia_challenge(f, verr=2.0), parse_beta(PLUMCOREOM_TRUTH["beta"]), PLUMCOREOM_TRUTH, None
    elif stage == "mocks":
        for name, mc in (("mock_cusp_iso", MockConfig(n=1000, halo="cusp", rho0=6.4e7, rs=1.0, anisotropy="iso",
                                                      seed=1)),
                         ("mock_core_om", MockConfig(n=1000, halo="core", anisotropy="om:0.25", seed=2))):
            stars, truth = make_mock(mc)
            yield name, stars, parse_beta(truth["beta"]), truth, None
    else:
        for name, (fname, dist) in DWARFS.items():
            yield name, read_walker(SHARED / "walker" / fname, distance_kpc=dist).members(0.05), parse_beta("iso"), \
                None, 0.15


if __name__ == "__main__":
    main()
