"""Benchmark + science report for embedded cluster snapshots.

1. Time of snapshot + photometry for 1e4, 1e5, 1e6 Msun (warm caches, this machine).
2. Surface-brightness profile of a default model vs a CMC Cluster Catalog model of similar
   mass (Kremer et al. 2020; ../shared/data/cmc), matched in projected half-light radius.
Writes bench/results/snapshot.json and bench/results/snapshot_sbp.png.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from gcsbi.clusters.models import ClusterParams, sample_cluster
from gcsbi.clusters.profiles import SB_CONSTANT, half_light_radius, surface_brightness_profile
from gcsbi.stars import StellarPopulation

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "results"
CMC = ROOT.parent / "shared" / "data" / "cmc" / "CMC"


def timings() -> dict:
    pop = StellarPopulation(age_gyr=12.0, feh=-1.5)
    out = {}
    for mass in (1e4, 1e5, 1e6):
        params = ClusterParams(mass=mass, half_mass_radius=3.0, w0=7.0, segregation=0.3)
        sample_cluster(params, rng=np.random.default_rng(0), population=pop)  # warm caches
        times, n = [], 0
        for seed in range(5):
            t0 = time.perf_counter()
            snap = sample_cluster(params, rng=np.random.default_rng(seed), population=pop)
            times.append(time.perf_counter() - t0)
            n = len(snap)
        out[f"{mass:.0e}"] = {"median_ms": 1e3 * float(np.median(times)), "particles": n,
                              "stars": snap.n_stars}
        print(f"M = {mass:.0e} Msun: {1e3 * np.median(times):.1f} ms, {n} particles, "
              f"{snap.n_stars:.3g} stars")
    return out


def _cmc_profile(model: Path):
    sbp = sorted(model.glob("SBP*.txt"))[-1]
    param = dict(line.split()[:2] for line in (model / sbp.name.replace("SBP", "PARAM")).read_text().splitlines() if line.strip())
    data = np.loadtxt(sbp)
    r_pc = data[:, 0] * 10.0 / 206264.806  # arcsec seen from 10 pc -> pc
    return r_pc, data[:, 1], float(param["Mtot"]), float(param["age"])


def _half_light_from_sbp(r, sb):
    lum = 10 ** (-0.4 * sb) * 2 * np.pi * r
    cum = np.r_[0.0, np.cumsum(0.5 * (lum[1:] + lum[:-1]) * np.diff(r))]
    return float(np.interp(0.5 * cum[-1], cum, r))


def _total_mag_from_sbp(r, sb):
    """Total absolute V magnitude from a surface-brightness profile (r in pc)."""
    lum = 10 ** (-0.4 * (sb - SB_CONSTANT)) * 2 * np.pi * r
    return float(-2.5 * np.log10(np.sum(0.5 * (lum[1:] + lum[:-1]) * np.diff(r))))


def cmc_comparison() -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not CMC.is_dir():
        return {"skipped": f"{CMC} not found"}
    model = CMC / "N8-RV1-RG8-Z0.1"  # Z = 0.1 Zsun -> [Fe/H] ~ -1.0
    r_cmc, sb_cmc, mtot, age = _cmc_profile(model)
    rhl_cmc = _half_light_from_sbp(r_cmc, sb_cmc)
    m_v_cmc = _total_mag_from_sbp(r_cmc, sb_cmc)
    pop = StellarPopulation(age_gyr=min(age, 14.0), feh=-1.0)
    result = {"cmc_model": model.name, "cmc_mass": mtot, "cmc_age_gyr": age,
              "cmc_half_light_radius_pc": rhl_cmc, "cmc_total_MV": m_v_cmc,
              "model_ML_V": pop.mass_to_light("V"), "models": {}}
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.plot(r_cmc, sb_cmc, "k-", lw=2, label=f"CMC {model.name} ({mtot:.2g} Msun)")
    for w0, delta in ((7.0, 0.0), (7.0, 0.3), (9.0, 0.3)):
        params = ClusterParams(mass=mtot, half_mass_radius=3.0, age_gyr=pop.age_gyr, feh=-1.0,
                               w0=w0, segregation=delta)
        snap = sample_cluster(params, rng=np.random.default_rng(0), population=pop)
        # rescale r_h so that the projected half-light radius matches the CMC model
        scale = rhl_cmc / half_light_radius(snap)
        params = ClusterParams(**{**params.__dict__, "half_mass_radius": 3.0 * scale})
        snap = sample_cluster(params, rng=np.random.default_rng(0), population=pop)
        edges = np.geomspace(0.05, 30.0, 25)
        mid, sb = surface_brightness_profile(snap, band="V", edges_pc=edges)
        sb_ref = np.interp(np.log(mid), np.log(r_cmc), sb_cmc)
        ok = np.isfinite(sb) & (mid > 0.1 * rhl_cmc) & (mid < 5 * rhl_cmc)
        resid = sb[ok] - sb_ref[ok]
        total_v = snap.integrated_abs_mag()["V"]
        offset = total_v - m_v_cmc  # total-light difference; the rest is profile shape
        shape = resid - offset
        key = f"W0={w0},delta={delta}"
        result["models"][key] = {
            "half_mass_radius_pc": params.half_mass_radius,
            "total_MV_model": total_v,
            "total_light_offset_mag": float(offset),
            "median_residual_mag": float(np.median(resid)),
            "rms_residual_mag": float(np.sqrt(np.mean(resid**2))),
            "shape_rms_mag": float(np.sqrt(np.mean(shape**2))),
            "shape_max_abs_mag": float(np.max(np.abs(shape))),
            "central_sb_model": float(sb[np.isfinite(sb)][0]),
            "central_sb_cmc": float(sb_cmc[0]),
        }
        ax.plot(mid, sb, "o-", ms=3, label=f"gcsbi {key}")
        print(f"CMC vs {key}: median {np.median(resid):+.2f} mag, rms {np.sqrt(np.mean(resid**2)):.2f} "
              f"mag over 0.1-5 R_hl; total M_V {total_v:.2f} vs CMC {m_v_cmc:.2f}; after removing "
              f"the total-light offset, shape rms {np.sqrt(np.mean(shape**2)):.2f} mag")
    ax.set(xscale="log", xlabel="R [pc]", ylabel="V [mag/arcsec$^2$]",
           title="surface brightness: gcsbi default models vs CMC")
    ax.invert_yaxis()
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(OUT / "snapshot_sbp.png", dpi=110)
    plt.close(fig)
    return result


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    results = {"timings": timings(), "cmc": cmc_comparison()}
    (OUT / "snapshot.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
