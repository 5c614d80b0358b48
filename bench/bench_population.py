"""Benchmark and science validation of gcsbi.stars; writes bench/results/population.json.

Run: .venv/bin/python bench/bench_population.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from gcsbi.stars import StellarPopulation, extinction_coefficients
from gcsbi.stars.bolometric import leave_one_out_errors
from gcsbi.stars.population import sample_every_star
from gcsbi.stars.reference import read_harris_colours, read_m31_old_clusters

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
FEH_GRID = np.arange(-2.5, 0.26, 0.25)


def robust(x: np.ndarray) -> dict[str, float]:
    x = x[np.isfinite(x)]
    med = float(np.median(x))
    return {"n": int(x.size), "median": med, "scatter_mad": float(1.4826 * np.median(np.abs(x - med))), "std": float(np.std(x))}


def model_colours(age_gyr: float = 12.0) -> dict[str, np.ndarray]:
    cols = {k: [] for k in ("bv", "vi", "f336_f475", "f475_f814")}
    for feh in FEH_GRID:
        m = StellarPopulation(age_gyr=age_gyr, feh=float(feh)).expected_integrated_magnitudes()
        cols["bv"].append(m["B"] - m["V"])
        cols["vi"].append(m["V"] - m["I"])
        cols["f336_f475"].append(m["F336W"] - m["F475W"])
        cols["f475_f814"].append(m["F475W"] - m["F814W"])
    return {k: np.array(v) for k, v in cols.items()}


def harris_check(model: dict[str, np.ndarray], max_ebv: float = 0.1) -> dict:
    h = read_harris_colours(DATA / "harris2010_milky_way_gcs.dat")
    r = extinction_coefficients()
    ok = (h["ebv"] <= max_ebv) & np.isfinite(h["feh"]) & (h["feh"] >= FEH_GRID[0]) & (h["feh"] <= FEH_GRID[-1])
    out = {"selection": f"E(B-V) <= {max_ebv}, age 12 Gyr, {FEH_GRID[0]} <= [Fe/H] <= {FEH_GRID[-1]}"}
    for key, (a, b) in {"bv": ("B", "V"), "vi": ("V", "I")}.items():
        obs0 = h[key][ok] - h["ebv"][ok] * (r[a] - r[b])
        res = obs0 - np.interp(h["feh"][ok], FEH_GRID, model[key])
        out[key] = robust(res)
    return out


def m31_check(model: dict[str, np.ndarray]) -> dict:
    m = read_m31_old_clusters(DATA / "m31" / "phat_ap_clusters_johnson2015.fits", DATA / "m31" / "caldwell2011_m31_old_clusters.dat")
    r = extinction_coefficients()
    old = ~(m["age"] < 8.0)  # Caldwell: blank or (14) = old
    ok = old & (m["feh"] >= FEH_GRID[0]) & (m["feh"] <= FEH_GRID[-1])
    out = {"selection": "Caldwell+2011 old (age blank or >= 8 Gyr), PHAT match <= 1 arcsec, model 12 Gyr"}
    for key, (a, b) in {"f336_f475": ("F336W", "F475W"), "f475_f814": ("F475W", "F814W")}.items():
        obs0 = m[a][ok] - m[b][ok] - m["ebv"][ok] * (r[a] - r[b])
        res = obs0 - np.interp(m["feh"][ok], FEH_GRID, model[key])
        out[key] = robust(res)
    return out


def timings(pop: StellarPopulation, repeats: int) -> dict:
    out = {}
    for mass in (1e4, 1e5, 1e6):
        rng = np.random.default_rng(0)
        pop.sample(mass, rng).integrated_magnitudes()
        ts = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            s = pop.sample(mass, rng)
            s.integrated_magnitudes()
            ts.append(time.perf_counter() - t0)
        out[f"{mass:.0e}"] = {"median_ms": 1e3 * float(np.median(ts)), "n_particles": len(s),
                              "n_individual": int(np.sum(s.weight == 1.0)), "n_stars": s.n_stars}
    return out


def fast_vs_full(pop: StellarPopulation, mass: float, n_seeds: int) -> dict:
    bands = ("F336W", "V", "I", "F356W")
    full = np.array([[sample_every_star(pop, mass, np.random.default_rng(i)).integrated_magnitudes()[b] for b in bands]
                     for i in range(n_seeds)])
    fast = np.array([[pop.sample(mass, np.random.default_rng(10**6 + i)).integrated_magnitudes()[b] for b in bands]
                     for i in range(n_seeds)])
    se = np.sqrt(full.var(0) / n_seeds + fast.var(0) / n_seeds)
    return {"mass": mass, "n_seeds": n_seeds, "bands": bands,
            "mean_full": full.mean(0).tolist(), "mean_fast": fast.mean(0).tolist(),
            "mean_diff": (fast.mean(0) - full.mean(0)).tolist(), "mean_diff_se": se.tolist(),
            "std_full": full.std(0).tolist(), "std_fast": fast.std(0).tolist()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    t0 = time.perf_counter()
    pop = StellarPopulation(age_gyr=12.0, feh=-1.5)
    pop.mass_to_light("V")
    res: dict = {"setup_s": time.perf_counter() - t0}
    res["ml_v_12gyr_feh-1.5"] = {"kroupa": pop.mass_to_light("V"),
                                 "chabrier": StellarPopulation(age_gyr=12.0, feh=-1.5, imf="chabrier").mass_to_light("V"),
                                 "M_V_sun": 4.80, "literature": "1.5-2.5"}
    res["timing"] = timings(pop, 3 if args.quick else 10)
    res["bc_transfer_leave_one_out"] = {
        "neighbours_kept": leave_one_out_errors(),
        "strict_no_band_within_10pc": leave_one_out_errors(exclude_within=0.1),
        "columns": "median, rms, max |error| (mag) over Teff 3500-10000 K, logg 0-5, [Fe/H] -2.5..0.5",
    }
    res["fast_vs_full"] = fast_vs_full(pop, 2e4, 50 if args.quick else 400)
    if DATA.is_dir():
        model = model_colours()
        res["model_colours_12gyr"] = {"feh": FEH_GRID.tolist(), **{k: v.tolist() for k, v in model.items()}}
        res["harris2010_residual_obs_minus_model"] = harris_check(model)
        res["m31_phat_caldwell_residual_obs_minus_model"] = m31_check(model)
    out = ROOT / "bench" / "results" / "population.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1, default=float))
    print(json.dumps(res, indent=1, default=float))


if __name__ == "__main__":
    main()
