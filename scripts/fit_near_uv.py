"""Fit the near-UV model discrepancy (:mod:`gcsbi.catalogue.discrepancy`) on Milky Way globular clusters.

Data: Harris (1996, 2010 edition) integrated U-B of clusters with E(B-V) <= ``--max-ebv``
(``../shared/data/harris2010_milky_way_gcs.dat``), dereddened with gcsbi's extinction
coefficients; model: 12-Gyr populations at each cluster's [Fe/H]. No M31 value enters.

Steps:
1. residual r = (U-B)_obs,0 - (U-B)_model per cluster;
2. least squares r = f_U (a + b ([Fe/H] - pivot)) with f_U the model's cool-light fraction in U;
   (a, b) covariance from the residual variance; sigma = residual scatter (all of it counted as
   cluster-to-cluster discrepancy: conservative, Harris gives no colour errors);
3. hold-out check: random halves (seeded), fit on one, residuals of the other before and after;
4. the cool-light fraction table on a (log age, [Fe/H]) grid for F275W, F336W and U;
5. writes ``gcsbi/catalogue/data/near_uv_discrepancy.json`` (``--out``), ``bench/results/near_uv_harris.json``
   and ``bench/results/near_uv_harris.png``.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python scripts/fit_near_uv.py`` (about a minute).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from gcsbi.catalogue.discrepancy import (NEAR_UV_BANDS, SHIPPED_NEAR_UV, NearUVDiscrepancy, fit_delta, fraction_table,
                                         harris_residuals, save_near_uv)

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "bench" / "results"
FEH_PIVOT = -1.5
TEFF_COOL, TEFF_HOT = 7000.0, 9000.0
BINS = ((-2.6, -2.0), (-2.0, -1.6), (-1.6, -1.2), (-1.2, -0.8), (-0.8, 0.0))


def binned(feh: np.ndarray, res: np.ndarray) -> list[dict]:
    out = []
    for lo, hi in BINS:
        m = (feh >= lo) & (feh < hi)
        if m.any():
            out.append({"feh_bin": [lo, hi], "n": int(m.sum()), "median": round(float(np.median(res[m])), 4)})
    return out


def holdout(d: dict[str, np.ndarray], seed: int) -> dict:
    """Fit on one random half, residuals of the other half before/after; both ways round."""
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(d["feh"]))
    halves = (idx[: len(idx) // 2], idx[len(idx) // 2:])
    out = []
    for fit_on, test in (halves, halves[::-1]):
        coef, cov, s = fit_delta(d["feh"][fit_on], d["ub"][fit_on], d["f_u"][fit_on], feh_pivot=FEH_PIVOT)
        pred = d["f_u"][test] * (coef[0] + coef[1] * (d["feh"][test] - FEH_PIVOT))
        after = d["ub"][test] - pred
        sd = np.sqrt(s**2 + np.einsum("ni,ij,nj->n", np.column_stack([d["f_u"][test], d["f_u"][test] * (d["feh"][test] - FEH_PIVOT)]), cov,
                                      np.column_stack([d["f_u"][test], d["f_u"][test] * (d["feh"][test] - FEH_PIVOT)])))
        out.append({"n_fit": int(len(fit_on)), "n_test": int(len(test)), "coef": coef.round(4).tolist(),
                    "test_median_before": round(float(np.median(d["ub"][test])), 4),
                    "test_median_after": round(float(np.median(after)), 4),
                    "test_rms_before": round(float(np.sqrt(np.mean(d["ub"][test] ** 2))), 4),
                    "test_rms_after": round(float(np.sqrt(np.mean(after**2))), 4),
                    "test_inside_1sigma": round(float(np.mean(np.abs(after) <= sd)), 3),
                    "test_inside_2sigma": round(float(np.mean(np.abs(after) <= 2 * sd)), 3),
                    "test_bins_before": binned(d["feh"][test], d["ub"][test]),
                    "test_bins_after": binned(d["feh"][test], after)})
    return {"seed": seed, "splits": out}


def plot(d: dict[str, np.ndarray], coef: np.ndarray, cov: np.ndarray, s: float, path: Path, max_ebv: float) -> None:
    import matplotlib.pyplot as plt

    x = np.linspace(-2.5, 0.3, 100)
    xx = np.column_stack([np.ones_like(x), x - FEH_PIVOT])
    mean = xx @ coef
    sd = np.sqrt(np.einsum("ni,ij,nj->n", xx, cov, xx))
    fig, ax = plt.subplots(figsize=(6.4, 4.2), constrained_layout=True)
    ax.axhline(0, color="0.6", lw=0.8)
    ax.scatter(d["feh"], d["ub"], s=18, color="C0", label=f"Harris (2010), E(B-V) <= {max_ebv}: U-B obs - model (n={len(d['feh'])})")
    ax.scatter(d["feh"], d["bv"], s=12, marker="s", color="C2", alpha=0.6, label="B-V obs - model (not corrected)")
    ax.plot(x, mean, color="C3", label=r"fit $\Delta$([Fe/H]) (12 Gyr: $f_U$ = 1)")
    ax.fill_between(x, mean - sd, mean + sd, color="C3", alpha=0.25, label="68% of the mean")
    ax.fill_between(x, mean - np.hypot(sd, s), mean + np.hypot(sd, s), color="C3", alpha=0.1, label=r"$\pm$ intrinsic scatter")
    ax.set_xlabel("[Fe/H] (Harris 2010)")
    ax.set_ylabel("colour residual, observed - model (mag)")
    ax.set_title("Near-UV discrepancy of 12-Gyr models vs Milky Way GCs")
    ax.legend(fontsize=7, loc="upper left")
    fig.savefig(path, dpi=130)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--max-ebv", type=float, default=0.15)
    p.add_argument("--out", default=str(SHIPPED_NEAR_UV))
    p.add_argument("--seed", type=int, default=0, help="seed of the hold-out split")
    a = p.parse_args(argv)
    d = harris_residuals(DATA / "harris2010_milky_way_gcs.dat", max_ebv=a.max_ebv, teff_cool=TEFF_COOL, teff_hot=TEFF_HOT)
    coef, cov, s = fit_delta(d["feh"], d["ub"], d["f_u"], feh_pivot=FEH_PIVOT)
    after = d["ub"] - d["f_u"] * (coef[0] + coef[1] * (d["feh"] - FEH_PIVOT))
    log_age = np.round(np.arange(7.0, 10.151, 0.15), 3)
    feh = np.round(np.arange(-2.5, 0.51, 0.25), 3)
    table = fraction_table(log_age, feh, bands=NEAR_UV_BANDS, teff_cool=TEFF_COOL, teff_hot=TEFF_HOT)
    model = NearUVDiscrepancy(coef=tuple(coef), cov=tuple(map(tuple, cov)), sigma=s, feh_pivot=FEH_PIVOT,
                              teff_cool=TEFF_COOL, teff_hot=TEFF_HOT, bands=NEAR_UV_BANDS,
                              log_age_grid=tuple(log_age), feh_grid=tuple(feh), fraction=table,
                              source=f"scripts/fit_near_uv.py: Harris (2010) U-B, E(B-V) <= {a.max_ebv}, "
                                     f"{len(d['feh'])} clusters, 12-Gyr models")
    save_near_uv(model, a.out)
    report = {"selection": f"Harris (2010) with U-B, E(B-V) <= {a.max_ebv}, -2.5 <= [Fe/H] <= 0.3",
              "n": int(len(d["feh"])), "model": "r = f_U (a + b ([Fe/H] + 1.5)) + N(0, sigma)",
              "coef_a_b": coef.round(4).tolist(), "coef_sd": np.sqrt(np.diag(cov)).round(4).tolist(),
              "sigma": round(s, 4),
              "all_bins_before": binned(d["feh"], d["ub"]), "all_bins_after": binned(d["feh"], after),
              "bv_bins_uncorrected": binned(d["feh"], d["bv"]),
              "holdout": holdout(d, a.seed),
              "cool_fraction_examples": {f"logage {la} feh {fe}": dict(zip(NEAR_UV_BANDS, model.cool_fraction(
                  np.array([la]), np.array([fe]))[0].round(3).tolist())) for la in (7.5, 8.5, 9.0, 10.1) for fe in (-2.0, 0.0)}}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "near_uv_harris.json").write_text(json.dumps(report, indent=1))
    plot(d, coef, cov, s, RESULTS / "near_uv_harris.png", a.max_ebv)
    print(json.dumps({k: report[k] for k in ("n", "coef_a_b", "coef_sd", "sigma", "all_bins_before", "all_bins_after")}))
    for sp in report["holdout"]["splits"]:
        print({k: sp[k] for k in ("n_fit", "n_test", "coef", "test_median_before", "test_median_after",
                                  "test_rms_before", "test_rms_after", "test_inside_1sigma", "test_inside_2sigma")})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
