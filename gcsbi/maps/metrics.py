"""Held-out accuracy and coverage of a map model, in π-DOC's terms and as posterior coverage.

π-DOC (Chardin & Bianchini 2021) quotes a 27% mean per-pixel error of its mass maps, 15% on
the total mass in the field of view and 11% on M/L. :func:`evaluate` measures, on mocks of a
bank with truth maps:

* per pixel, over the pixels that hold 90% of the true mass (the brightest-mass pixels,
  taken in order until 90% of the field's mass is reached): the median |Δ log10 mass| and
  the mean relative error |m_pred - m_true| / m_true ("π-DOC's sense"), per mock, then the
  median and mean over mocks;
* the total mass in the field and M/L (reddest band, field): mean and median
  |predicted / true - 1|, with the posterior median of the summary flow as the estimate (and,
  for the mass, also the sum of the predicted map);
* coverage of every derived quantity (enclosed masses at 0.5, 1, 2 R_h, M/L profile,
  R_h, mass-to-light half-radius ratio): fraction of mocks whose truth lies in the central
  68% and 95% intervals of the flow's draws;
* the clean ("decontaminated") image: per band, the median over mocks of predicted / true
  flux in four annuli from the centre to the edge of the stamp (0-25, 25-50, 50-75, 75-100%
  of the inscribed circle's radius).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .targets import SUMMARY_NAMES, radial_grid

__all__ = ["ANNULI", "PIDOC", "mass_pixels", "pixel_errors", "annulus_ratios", "coverage", "pixelwise_coverage", "evaluate"]

ANNULI = ((0.0, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1.0))
#: π-DOC's held-out errors (Chardin & Bianchini 2021): mean per-pixel error, mass in the field, M/L.
PIDOC = {"pixel_mean_relative_error": 0.27, "total_mass_fov_relative_error": 0.15, "ml_fov_relative_error": 0.11}
LEVELS = (0.68, 0.95)


def mass_pixels(mass: np.ndarray, fraction: float = 0.9) -> np.ndarray:
    """Boolean (H, W): the heaviest pixels, in order, until ``fraction`` of the total mass."""
    flat = np.asarray(mass, np.float64).ravel()
    order = np.argsort(flat)[::-1]
    cum = np.cumsum(flat[order])
    k = int(np.searchsorted(cum, fraction * cum[-1])) + 1
    keep = np.zeros(flat.shape, bool)
    keep[order[:k]] = True
    return keep.reshape(np.shape(mass))


def pixel_errors(pred_log: np.ndarray, true_mass: np.ndarray, fraction: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
    """Per mock (median |Δ log10 mass|, mean relative error) over its 90%-mass pixels."""
    from .targets import MASS_FLOOR, log_mass

    med, rel = np.empty(len(true_mass)), np.empty(len(true_mass))
    for i, (p, m) in enumerate(zip(pred_log, true_mass)):
        keep = mass_pixels(m, fraction)
        t = log_mass(m)[keep]
        med[i] = np.median(np.abs(p[keep] - t))
        pm = np.clip(10.0 ** p[keep].astype(np.float64) - MASS_FLOOR, 0.0, None)
        rel[i] = np.mean(np.abs(pm - m[keep]) / m[keep])
    return med, rel


def annulus_ratios(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """(B, F, len(ANNULI)) predicted / true flux of (B, F, H, W) images in each annulus."""
    r = radial_grid(true.shape[-2:])
    r = r / (min(true.shape[-2:]) / 2.0)
    out = np.full((*true.shape[:2], len(ANNULI)), np.nan)
    for k, (lo, hi) in enumerate(ANNULI):
        sel = (r >= lo) & (r < hi)
        t = true[..., sel].sum(-1)
        p = pred[..., sel].sum(-1)
        with np.errstate(divide="ignore", invalid="ignore"):
            out[..., k] = np.where(t > 0, p / t, np.nan)
    return out


def coverage(draws: np.ndarray, truth: np.ndarray, levels=LEVELS) -> dict[str, dict[str, float]]:
    """Fraction of mocks whose truth is inside the central intervals; draws (n, B, K), truth (B, K)."""
    out: dict[str, dict[str, float]] = {}
    for j, name in enumerate(SUMMARY_NAMES):
        ok = np.isfinite(truth[:, j])
        res = {}
        for lev in levels:
            lo, hi = np.quantile(draws[:, ok, j], [(1 - lev) / 2, (1 + lev) / 2], axis=0)
            t = truth[ok, j]
            res[f"{lev:.2f}"] = float(np.mean((t >= lo) & (t <= hi)))
        out[name] = res
    return out


def pixelwise_coverage(log_mass: np.ndarray, log_sigma: np.ndarray, true_mass: np.ndarray, radius: np.ndarray
                       ) -> dict[str, float]:
    """Fraction of mocks whose true M(< radius) lies in the 68% / 95% intervals of :func:`pixelwise_inside`."""
    inside = pixelwise_inside(log_mass, log_sigma, true_mass, radius)
    return {"0.68": float(inside[:, 0].mean()), "0.95": float(inside[:, 1].mean())}


def pixelwise_inside(log_mass: np.ndarray, log_sigma: np.ndarray, true_mass: np.ndarray, radius: np.ndarray
                     ) -> np.ndarray:
    """Coverage of M(< radius) if the per-pixel Gaussians (log10) were independent: the
    enclosed mass as a sum of independent lognormals (mean and variance summed, Gaussian
    intervals), at the *true* aperture radius (pixels). What the summary flow is measured against."""
    from .targets import MASS_FLOOR, radial_grid

    r = radial_grid(true_mass.shape[-2:])
    s2 = (np.asarray(log_sigma, np.float64) * np.log(10.0)) ** 2
    mu = np.asarray(log_mass, np.float64)
    with np.errstate(over="ignore", invalid="ignore"):  # sigma of many dex: an infinite interval
        mean = 10.0**mu * np.exp(0.5 * s2) - MASS_FLOOR
        var = (np.exp(s2) - 1.0) * 10.0 ** (2 * mu) * np.exp(s2)
        inside = r[None] <= np.asarray(radius, np.float64)[:, None, None]
        m = (mean * inside).sum(axis=(1, 2))
        sd = np.sqrt((var * inside).sum(axis=(1, 2)))
        t = (np.asarray(true_mass, np.float64) * inside).sum(axis=(1, 2))
        sd = np.where(np.isfinite(sd), sd, np.inf)
        dev = np.where(np.isfinite(m), np.abs(t - m), np.inf)
        return np.stack([dev <= 0.9945 * sd, dev <= 1.96 * sd], axis=1)


def _rel(est: np.ndarray, true: np.ndarray) -> dict[str, float]:
    e = np.abs(est / true - 1.0)
    e = e[np.isfinite(e)]
    return {"mean": float(np.mean(e)), "median": float(np.median(e)), "n": int(e.size)}


def evaluate(model: Any, x: np.ndarray, mass: np.ndarray, clean: np.ndarray, truth_summaries: np.ndarray, *,
             n_draws: int = 500, seed: int = 0, batch_size: int = 64) -> dict[str, Any]:
    """The metrics of the module docstring for held-out mocks (x, truth maps, true summaries)."""
    j = {n: i for i, n in enumerate(SUMMARY_NAMES)}
    rh_pix = 10.0 ** truth_summaries[:, j["log10_rh_light_arcsec"]] / model.photometry.pixel_scale_arcsec
    n = len(truth_summaries)
    med, rel, map_mass = np.empty(n), np.empty(n), np.empty(n)
    ctx, ratios, pix_cov = [], [], []
    for sl, emb, pred in model.batches(x, batch_size=batch_size):  # one batch of maps in memory at a time
        med[sl], rel[sl] = pixel_errors(pred["log_mass"], mass[sl])
        map_mass[sl] = pred["mass"].sum(axis=(1, 2))
        ratios.append(annulus_ratios(pred["clean"], clean[sl]))
        pix_cov.append(pixelwise_inside(pred["log_mass"], pred["log_mass_std"], mass[sl], rh_pix[sl]))
        ctx.append(model.context_of(emb, pred))
    ratios = np.concatenate(ratios)
    inside = np.concatenate(pix_cov)
    draws = model.sample_summaries(None, n_draws, seed=seed, contexts=np.concatenate(ctx))
    post_med = np.median(draws, axis=0)
    m_true = 10.0 ** truth_summaries[:, j["log10_mass_fov"]]
    res: dict[str, Any] = {
        "n_mocks": int(len(x)),
        "pixel_median_abs_dlog10_mass": {"median_over_mocks": float(np.median(med)), "mean_over_mocks": float(np.mean(med))},
        "pixel_mean_relative_error": {"median_over_mocks": float(np.median(rel)), "mean_over_mocks": float(np.mean(rel))},
        "total_mass_fov_relative_error": _rel(10.0 ** post_med[:, j["log10_mass_fov"]], m_true),
        "total_mass_fov_relative_error_map_sum": _rel(map_mass, m_true),
        "ml_fov_relative_error": _rel(10.0 ** post_med[:, j["log10_ml_fov"]], 10.0 ** truth_summaries[:, j["log10_ml_fov"]]),
        "segregation_ratio_abs_dlog10": float(np.nanmedian(np.abs(post_med[:, j["log10_rh_mass_over_light"]]
                                                                  - truth_summaries[:, j["log10_rh_mass_over_light"]]))),
        "coverage": coverage(draws, truth_summaries),
        "coverage_1rh_if_pixels_independent": {k: float(v) for k, v in zip(("0.68", "0.95"), inside.mean(axis=0))},
        "annulus_flux_ratio_median": {f"band{b}": [float(np.nanmedian(ratios[:, b, k])) for k in range(len(ANNULI))]
                                      for b in range(ratios.shape[1])},
        "annuli": [list(a) for a in ANNULI],
    }
    cov = res["coverage"]
    res["max_coverage_deviation"] = float(max(abs(v[k] - float(k)) for v in cov.values() for k in v))
    keys = ("log10_mass_0.5rh", "log10_mass_1rh", "log10_mass_2rh")
    res["max_coverage_deviation_enclosed_mass"] = float(max(abs(cov[n][k] - float(k)) for n in keys for k in cov[n]))
    res["per_mock"] = {"pixel_median_abs_dlog10": med.tolist(), "pixel_mean_rel": rel.tolist()}
    return res
