"""Why the derivative route (JFlow paper: learned n(r), sigma_r^2(r), then M from the Jeans equation and
rho = M'/(4 pi r^2)) gives noisy and negative densities: a known-answer amplification test.

Take PlumCoreOm's exact n(r) and sigma_r^2(r) (from the integral Jeans solution of its true halo), multiply both
by a small smooth wiggle 1 + eps sin(2 pi ln(r / R_1/2) / ln P) (what a flow / small network fit to 1000 stars
leaves behind) and push them through both routes:
  derivative route: M = -r sigma_r^2 / G (dln n/dln r + dln sigma_r^2/dln r + 2 beta), rho = M'/(4 pi r^2);
  integral route:   sigma_r^2 from rho through an integral, so the same wiggle in the *data* enters rho only
                    through a fit, never through a second derivative.
Usage: .venv/bin/python bench/jeans_diagnose.py   ->  bench/results/jeans_diagnose.{json,png}
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from gcsbi_jeans.core.beta import parse_beta
from gcsbi_jeans.core.mocks import PLUMCOREOM_TRUTH, _light_density, truth_profiles
from gcsbi_jeans.core.parametric import G_KPC_KMS2_MSUN

RESULTS = Path(__file__).resolve().parents[1] / "bench" / "results"


@np.errstate(divide="ignore", invalid="ignore")
def main() -> None:
    tp = truth_profiles(PLUMCOREOM_TRUTH)
    beta = parse_beta(PLUMCOREOM_TRUTH["beta"])
    nu = _light_density(PLUMCOREOM_TRUTH["light"])
    lr = np.linspace(math.log(1e-3), math.log(50.0), 4000)  # the tail integral vanishes at the last point only
    r = np.exp(lr)
    lg = beta.log_g(r)
    integrand = np.exp(lg - lg.max()) * nu(r) * G_KPC_KMS2_MSUN * tp["mass"](r) / r
    tail = np.concatenate([np.cumsum((0.5 * (integrand[1:] + integrand[:-1]) * np.diff(lr))[::-1])[::-1], [0.0]])
    s2 = tail / np.exp(lg - lg.max()) / nu(r)
    r_half = 0.2458
    score = (r > 0.25 * r_half) & (r < 4 * r_half)
    rows = []
    for eps in (0.01, 0.02, 0.05):
        for period in (2.0, 4.0, 8.0):
            w = 1.0 + eps * np.sin(2 * math.pi * np.log(r / r_half) / math.log(period))
            ln_n, ln_s2 = np.log(nu(r) * w), np.log(s2 * w)
            g_n, g_s = np.gradient(ln_n, lr), np.gradient(ln_s2, lr)
            mass = -r * np.exp(ln_s2) / G_KPC_KMS2_MSUN * (g_n + g_s + 2 * beta(r))
            rho = np.gradient(mass, lr) / (4 * math.pi * r**3)
            err = np.log10(np.abs(rho / tp["rho"](r)))[score]
            rows.append({"eps": eps, "period_factor": period,
                         "mass_max_rel_error": float(np.max(np.abs(mass / tp["mass"](r) - 1)[score])),
                         "rho_median_abs_dlog10": float(np.median(np.abs(err))),
                         "rho_max_abs_dlog10": float(np.max(np.abs(err))),
                         "rho_negative_fraction": float(np.mean(rho[score] <= 0))})
    out = {"what": "derivative route fed exact n and sigma_r^2 times 1 + eps sin(2 pi ln(r/R_1/2)/ln P)",
           "score_range": "0.25-4 R_1/2", "rows": rows}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "jeans_diagnose.json").write_text(json.dumps(out, indent=1))
    for row in rows:
        print(row)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(r, tp["rho"](r), "k--", label="truth")
    for eps, period in ((0.02, 4.0), (0.05, 4.0)):
        w = 1.0 + eps * np.sin(2 * math.pi * np.log(r / r_half) / math.log(period))
        g = np.gradient(np.log(nu(r) * w), lr) + np.gradient(np.log(s2 * w), lr)
        mass = -r * s2 * w / G_KPC_KMS2_MSUN * (g + 2 * beta(r))
        ax.plot(r, np.abs(np.gradient(mass, lr)) / (4 * math.pi * r**3), label=f"|rho|, {100 * eps:g}% wiggle, P={period:g}")
    ax.set(xscale="log", yscale="log", xlim=(0.02, 2), ylim=(1e5, 1e10), xlabel="r [kpc]",
           ylabel=r"$\rho$ [M$_\odot$ kpc$^{-3}$]", title="derivative route: a few % in n, sigma_r^2 -> rho")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(RESULTS / "jeans_diagnose.png", dpi=110)


if __name__ == "__main__":
    main()
