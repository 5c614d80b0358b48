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
from gcsbi.stars import solar_absolute_magnitudes
from gcsbi.stars.bolometric import (LOG_G_SUN, MBOL_SUN, TEFF_SUN, bolometric_corrections, leave_one_out_errors,
                                    transfer_from_spectrum)
from gcsbi.stars.population import sample_every_star
from gcsbi.stars.reference import PHAT_BANDS, read_harris_colours, read_m31_old_clusters

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
FEH_GRID = np.arange(-2.5, 0.26, 0.25)


def robust(x: np.ndarray) -> dict[str, float]:
    x = x[np.isfinite(x)]
    med = float(np.median(x))
    return {"n": int(x.size), "median": med, "scatter_mad": float(1.4826 * np.median(np.abs(x - med))), "std": float(np.std(x))}


def model_colours(age_gyr: float = 12.0) -> dict[str, np.ndarray]:
    """Expected integrated absolute magnitudes (every supported band) on FEH_GRID: band -> (n_feh,)."""
    mags = [StellarPopulation(age_gyr=age_gyr, feh=float(feh)).expected_integrated_magnitudes() for feh in FEH_GRID]
    return {b: np.array([m[b] for m in mags]) for b in mags[0]}


def harris_check(model: dict[str, np.ndarray], max_ebv: float = 0.1) -> dict:
    """Harris (2010) integrated U-B, B-V, V-I minus the 12 Gyr model at each cluster's [Fe/H] (dereddened)."""
    h = read_harris_colours(DATA / "harris2010_milky_way_gcs.dat")
    r = extinction_coefficients()
    ok = (h["ebv"] <= max_ebv) & np.isfinite(h["feh"]) & (h["feh"] >= FEH_GRID[0]) & (h["feh"] <= FEH_GRID[-1])
    out = {"selection": f"E(B-V) <= {max_ebv}, age 12 Gyr, {FEH_GRID[0]} <= [Fe/H] <= {FEH_GRID[-1]}",
           "note": "U and B are MIST's own Bessell bands: the U-B residual is MIST/C3K's, not the HST transfer's"}
    for key, (a, b) in {"ub": ("U", "B"), "bv": ("B", "V"), "vi": ("V", "I")}.items():
        obs0 = h[key][ok] - h["ebv"][ok] * (r[a] - r[b])
        res = obs0 - np.interp(h["feh"][ok], FEH_GRID, model[a] - model[b])
        out[key] = robust(res)
    return out


def fit_reddening(mag: np.ndarray, err: np.ndarray, model_abs: np.ndarray, r: np.ndarray,
                  sys_mag: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Per cluster: weighted least squares of mag = M + mu + R E(B-V) over its measured bands.

    Returns (E(B-V), residual mag - fit) with NaN where a band is missing; ``sys_mag`` is added
    in quadrature to the catalogue errors (model and zero-point systematics).
    """
    n = len(mag)
    ebv, res = np.full(n, np.nan), np.full(mag.shape, np.nan)
    for i in range(n):
        ok = np.isfinite(mag[i]) & np.isfinite(err[i])
        if ok.sum() < 3:
            continue
        w = 1.0 / np.sqrt(err[i, ok] ** 2 + sys_mag**2)
        a = np.c_[np.ones(ok.sum()), r[ok]]
        c, *_ = np.linalg.lstsq(a * w[:, None], (mag[i, ok] - model_abs[i, ok]) * w, rcond=None)
        ebv[i] = c[1]
        res[i, ok] = mag[i, ok] - model_abs[i, ok] - a @ c
    return ebv, res


def m31_check(model: dict[str, np.ndarray]) -> dict:
    """PHAT colours of Caldwell's old clusters minus the 12 Gyr model at Caldwell's [Fe/H].

    Two ways: dereddened with Caldwell's E(B-V), and with E(B-V) fitted per cluster to all its
    measured PHAT bands (upper limits and bands without an error left out).
    """
    m = read_m31_old_clusters(DATA / "m31" / "phat_ap_clusters_johnson2015.fits", DATA / "m31" / "caldwell2011_m31_old_clusters.dat")
    r = extinction_coefficients(PHAT_BANDS)
    old = ~(m["age"] < 8.0)  # Caldwell: blank or (14) = old
    ok = old & (m["feh"] >= FEH_GRID[0]) & (m["feh"] <= FEH_GRID[-1])
    out = {"selection": "Caldwell+2011 old (age blank or >= 8 Gyr), PHAT match <= 1 arcsec, model 12 Gyr",
           "caldwell_ebv": {}, "fitted_ebv": {}}
    mag = np.stack([m[b][ok] for b in PHAT_BANDS], axis=1)
    err = np.stack([m["e_" + b][ok] for b in PHAT_BANDS], axis=1)
    model_abs = np.stack([np.interp(m["feh"][ok], FEH_GRID, model[b]) for b in PHAT_BANDS], axis=1)
    ebv, res = fit_reddening(mag, err, model_abs, np.array([r[b] for b in PHAT_BANDS]))
    for a, b in zip(PHAT_BANDS[:-1], PHAT_BANDS[1:]):
        ia, ib = PHAT_BANDS.index(a), PHAT_BANDS.index(b)
        obs0 = mag[:, ia] - mag[:, ib] - m["ebv"][ok] * (r[a] - r[b])
        out["caldwell_ebv"][f"{a}-{b}"] = robust(obs0 - (model_abs[:, ia] - model_abs[:, ib]))
        out["fitted_ebv"][f"{a}-{b}"] = robust(res[:, ia] - res[:, ib])
    out["fitted_ebv"]["ebv_fit_minus_caldwell"] = robust(ebv - m["ebv"][ok])
    out["fitted_ebv"]["ebv_fit"] = robust(ebv)
    return out


def known_answers() -> dict:
    """The HST transfer on stars whose spectra are known (Kurucz Sun, Vega; sedpy), and MIST+transfer at the Sun."""
    import sedpy
    from astropy.io import fits

    bands = (*PHAT_BANDS, "U", "B", "V", "I")
    data = Path(sedpy.__file__).parent / "data"
    out: dict = {"columns": "transferred - true colour vs F475W (mag)"}
    for name, fn, teff in (("sun_kurucz93", "sun_kurucz93.fits", 5772.0), ("vega_stis", "alpha_lyr_stis_011.fits", 9550.0)):
        d = fits.getdata(data / fn)
        t = transfer_from_spectrum(d["WAVELENGTH"], d["FLUX"], teff, bands)
        ref = t["F475W"][0] - t["F475W"][1]
        out[f"transfer_on_{name}"] = {b: round(v[0] - v[1] - ref, 4) for b, v in t.items()}
    ours = dict(zip(bands, MBOL_SUN - bolometric_corrections(np.log10([TEFF_SUN]), [LOG_G_SUN], 0.0, bands)[0]))
    sun = solar_absolute_magnitudes(bands)
    out["mist_plus_transfer_at_sun_minus_kurucz"] = {
        b: round((ours[b] - ours["F475W"]) - (sun[b] - sun["F475W"]), 4) for b in bands}
    out["mist_own_bands_at_sun_minus_kurucz_(B-V, U-B)"] = (
        round((ours["B"] - ours["V"]) - (sun["B"] - sun["V"]), 4), round((ours["U"] - ours["B"]) - (sun["U"] - sun["B"]), 4))
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
    res["known_answers"] = known_answers()
    res["fast_vs_full"] = fast_vs_full(pop, 2e4, 50 if args.quick else 400)
    if DATA.is_dir():
        model = model_colours()
        res["model_abs_mags_12gyr"] = {"feh": FEH_GRID.tolist(), **{k: v.tolist() for k, v in model.items()}}
        res["harris2010_residual_obs_minus_model"] = harris_check(model)
        res["m31_phat_caldwell_residual_obs_minus_model"] = m31_check(model)
    out = ROOT / "bench" / "results" / "population.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1, default=float))
    print(json.dumps(res, indent=1, default=float))


if __name__ == "__main__":
    main()
