"""Calibration of an amortised posterior on fresh simulations (never seen in training).

Simulations come from the ``"calibration"`` seed stream (``seeding.simulate``), distinct from
the training stream for any seed. Posterior draws are taken once (batched) and shared by:
SBC ranks + KS uniformity tests (sbi ``run_sbc``/``check_sbc``), TARP (``run_tarp``/``check_tarp``),
expected coverage of central credible intervals from the ranks at a grid of levels, and
per-parameter accuracy of the posterior median.

Coverage convention: PIT u = (rank + 1/2) / (S + 1) with rank = #{draws < truth}; the truth is
inside the central q-interval when |u - 1/2| <= q/2. Deviation = coverage - q (positive:
conservative / too wide, negative: overconfident / too narrow).

Verdicts weigh the observed max expected-coverage deviation ``dev`` against ``noise``, the 95th
percentile of that deviation for an exactly calibrated posterior with the same number of mocks,
parameters, draws and levels (:func:`coverage_noise`: the exactly-calibrated noise band), and the
``tolerance``, the precision the check must reach to call anything calibrated:

* ``"conservative"`` / ``"overconfident"`` (``"mixed"`` overall when miscalibrated parameters
  disagree): ``dev > noise``, a deviation an exactly calibrated posterior shows in fewer than 5% of
  such checks; the direction is the sign of the mean deviation. This holds however small ``dev``
  is: with many mocks a small miscalibration is still a miscalibration (``within_tolerance`` says
  whether it is below the tolerance);
* ``"calibrated"``: ``dev <= noise`` and ``noise < tolerance`` (the mocks can resolve the tolerance);
* ``"too few mocks to tell (max deviation D, noise level N from n mocks)"``: ``dev <= noise`` while
  ``noise >= tolerance``.

The overall verdict uses the maximum over all parameters (noise for that many parameters), each
parameter's verdict its own maximum (noise for one parameter). SBC's KS p-values are reported per
parameter; ``sbc_ks_flagged`` lists those below 0.05 after a Holm-Bonferroni correction over the
parameters (rank histograms that are not uniform even where the coverage levels look fine).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import GcsbiFileError, GcsbiValueError, SpecError
from . import sbi_compat
from .seeding import seeded, simulate

__all__ = ["calibrate", "coverage_from_ranks", "coverage_noise", "posterior_draws", "DEFAULT_LEVELS"]

DEFAULT_LEVELS: tuple[float, ...] = tuple(round(q, 2) for q in np.linspace(0.05, 0.95, 19))
#: Precision (absolute coverage) the check must reach before it calls a posterior "calibrated": the
#: exactly-calibrated noise band of the max deviation must lie below it (see the module docstring).
DEFAULT_TOLERANCE = 0.1
#: The files ``calibrate(out=...)`` writes into its folder (it overwrites each only with its own kind).
_OUT_FILES = ("calibration.json", "ecdf_pit.png", "coverage.png")


class _FixedDraws:
    """Posterior stand-in that returns pre-computed draws, so sbi's diagnostics share one sample."""

    def __init__(self, draws: torch.Tensor) -> None:
        self._draws = draws

    def sample_batched(self, sample_shape: Any, x: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        return self._draws


def posterior_draws(posterior: Any, x: torch.Tensor, *, num_samples: int, seed: int,
                    chunk: int | None = None, progress: bool = False) -> torch.Tensor:
    """(num_samples, N, D) draws for N observations, batched (``sample_batched``) when available.

    ``progress``: a bar over the observations on stderr (sbi's own bars stay off).
    """
    from tqdm.auto import tqdm

    chunk = chunk or max(1, 100_000 // int(num_samples))
    out = []
    with seeded(seed), tqdm(total=len(x), desc="posterior draws", unit="obs", disable=not progress) as bar:
        for s in range(0, len(x), chunk):
            xs = x[s:s + chunk]
            if hasattr(posterior, "sample_batched"):
                d = posterior.sample_batched((int(num_samples),), x=xs, show_progress_bars=False)
            else:
                d = torch.stack([posterior.sample((int(num_samples),), x=xi[None], show_progress_bars=False)
                                 for xi in xs], dim=1)
            out.append(torch.as_tensor(d, dtype=torch.float32).reshape(int(num_samples), len(xs), -1))
            bar.update(len(xs))
    return torch.cat(out, dim=1)


def coverage_from_ranks(ranks: np.ndarray, num_samples: int, levels: Sequence[float]) -> np.ndarray:
    """Empirical coverage (D, L) of central credible intervals at ``levels`` from SBC ranks (N, D)."""
    u = (np.asarray(ranks, dtype=np.float64) + 0.5) / (int(num_samples) + 1)
    q = np.asarray(levels, dtype=np.float64)
    inside = np.abs(u - 0.5)[:, :, None] <= q[None, None, :] / 2 + 1e-12
    return inside.mean(0)


def coverage_noise(n: int, dim: int, num_samples: int, levels: Sequence[float], *, reps: int = 400,
                   seed: int = 0) -> dict[str, float]:
    """Max expected-coverage deviation of a *perfectly calibrated* posterior (uniform SBC ranks).

    The distribution of ``max |coverage - level|`` over ``dim`` parameters and ``levels`` from
    ``n`` held-out simulations, by ``reps`` Monte Carlo replicates: its median and 95th percentile
    say which observed deviations are finite-sample noise (n = 500, 11 parameters: median 0.054).
    """
    rng = np.random.default_rng(seed)
    lv = np.asarray(levels, dtype=np.float64)
    maxdev = np.empty(int(reps))
    for r in range(int(reps)):
        ranks = rng.integers(0, int(num_samples) + 1, size=(int(n), int(dim)))
        maxdev[r] = np.abs(coverage_from_ranks(ranks, num_samples, lv) - lv[None]).max()
    return {"median": float(np.median(maxdev)), "q95": float(np.quantile(maxdev, 0.95)), "reps": int(reps)}


def _check_held_out(held_out: Any, simulator: Any) -> tuple[torch.Tensor, torch.Tensor]:
    try:
        theta, x = (torch.as_tensor(a, dtype=torch.float32) for a in held_out)
    except (TypeError, ValueError) as exc:
        raise GcsbiValueError(f"held_out must be a pair (theta, x) of arrays: {exc}") from exc
    names = getattr(simulator, "param_names", None) or getattr(simulator.prior, "names", ())
    dim = len(names) or int(torch.Size(getattr(simulator.prior, "event_shape", theta.shape[-1:])).numel())
    if theta.ndim != 2 or theta.shape[1] != dim or len(x) != len(theta):
        raise GcsbiValueError(f"held_out theta must be (N, {dim}) with N matching x, got {tuple(theta.shape)} "
                              f"and x {tuple(x.shape)}")
    return theta, x


def _verdict(max_dev: float, mean_dev: float, noise: float, tol: float, n: int) -> str:
    """Verdict from the max deviation, the exactly-calibrated noise band (q95) and the tolerance."""
    if max_dev > noise:
        return "conservative" if mean_dev > 0 else "overconfident"
    if noise < tol:
        return "calibrated"
    return f"too few mocks to tell (max deviation {max_dev:.3f}, noise level {noise:.3f} from {n} mocks)"


def _holm_flagged(pvalues: dict[str, float], alpha: float = 0.05) -> list[str]:
    """Names whose p-value is rejected at family-wise level ``alpha`` by Holm's step-down procedure."""
    order = sorted(pvalues, key=lambda k: pvalues[k])
    out = []
    for i, name in enumerate(order):
        if pvalues[name] > alpha / (len(order) - i):
            break
        out.append(name)
    return out


def calibrate(posterior: Any, simulator: Any, *, n_held_out: int = 300, num_posterior_samples: int = 500,
              seed: int = 1, levels: Sequence[float] = DEFAULT_LEVELS, c2st: bool = True,
              out: str | Path | None = None, check_spec: bool = True,
              held_out: tuple[torch.Tensor, torch.Tensor] | None = None,
              tolerance: float = DEFAULT_TOLERANCE, progress: bool = False) -> dict[str, Any]:
    """Calibrate ``posterior`` (anything with ``sample_batched`` or ``sample``) against ``simulator``.

    Returns a JSON-able report: ``max_expected_coverage_deviation`` (max over parameters and levels
    of |coverage - level|) next to ``max_deviation_if_calibrated`` (its median and 95th percentile
    for an exactly calibrated posterior with the same n, parameters and levels), per-parameter
    ``coverage``/``coverage_deviation``/``verdict``/``sbc_ks_pvalue``/``median_abs_error``/
    ``rms_error``/``bias``, an overall ``verdict`` (see the module docstring: judged against the
    exactly-calibrated noise band; ``tolerance``, recorded as ``coverage_tolerance``, is the noise
    level the check must get below to call a posterior calibrated, and ``within_tolerance`` says
    whether the deviation is below it), ``sbc_ks_flagged`` (Holm-corrected SBC KS failures), TARP
    ``tarp_atc``/``tarp_ks_pvalue`` and, with ``c2st``, sbi's classifier tests (slow: a few
    seconds per parameter). With ``out``, writes ``calibration.json``, ``ecdf_pit.png`` and
    ``coverage.png`` there. :func:`~gcsbi.inference.arviz.calibration_datatree` turns the report
    into a DataTree (group ``calibration``) that stores as NetCDF4 and Zarr.

    ``held_out=(theta, x)`` uses these simulations instead of simulating ``n_held_out`` new ones
    (e.g. one set shared by several reports, or a held-out bank); they must be prior draws for the
    coverage and SBC numbers to mean calibration (a subset selected by theta only gives errors).

    ``progress``: bars on stderr over the held-out simulations, the posterior draws and the
    classifier tests (``gcsbi calibrate`` shows them unless ``--no-progress``).
    """
    from sbi.diagnostics import check_sbc, check_tarp, run_sbc, run_tarp
    from sbi.diagnostics.sbc import check_uniformity_frequentist

    n, S = int(n_held_out), int(num_posterior_samples)
    if n < 10 or S < 10:
        raise GcsbiValueError(f"n_held_out and num_posterior_samples must be >= 10, got {n}, {S}")
    try:
        tol = float(tolerance)
    except (TypeError, ValueError):
        tol = float("nan")
    if not 0 < tol < 1:
        raise GcsbiValueError(f"tolerance must lie in (0, 1), got {tolerance!r}")
    lv = [float(q) for q in levels]
    if not lv or not all(0 < q < 1 for q in lv):
        raise GcsbiValueError(f"levels must lie in (0, 1), got {lv}")
    if check_spec and getattr(posterior, "spec", None) is not None and getattr(simulator, "spec", None) is not None:
        from .checkpoint import spec_differences

        diff = spec_differences(posterior.spec, simulator.spec)
        if diff:
            raise SpecError(f"the simulator's spec differs from the posterior's training spec at: {', '.join(diff)}")
    if out is not None:  # before the work: never overwrite a file of another kind the user keeps there
        from ..outputs import check_file_target

        if Path(out).exists() and not Path(out).is_dir():
            raise GcsbiFileError(f"out={out} is a file; give a folder for calibration.json and the figures")
        for name in _OUT_FILES:
            check_file_target(Path(out) / name)
    names = tuple(getattr(simulator, "param_names", None) or getattr(simulator.prior, "names", ()))
    t0 = time.perf_counter()
    if held_out is None:
        theta, x = simulate(simulator, n, seed=seed, stream="calibration", progress=progress,
                            desc="held-out simulations")
    else:
        theta, x = _check_held_out(held_out, simulator)
    ok = torch.isfinite(x.reshape(len(x), -1)).all(1)
    theta, x = theta[ok], x[ok]
    if len(theta) < 10:
        raise GcsbiValueError(f"only {len(theta)} finite held-out simulations")
    D = theta.shape[1]
    names = names if len(names) == D else tuple(f"theta_{i}" for i in range(D))
    draws = posterior_draws(posterior, x, num_samples=S, seed=seed, progress=progress)
    fixed = _FixedDraws(draws)
    with seeded(seed), sbi_compat.quiet("diagnostics"):
        ranks, dap = run_sbc(theta, x, fixed, num_posterior_samples=S, reduce_fns="marginals",
                             show_progress_bar=False)
        ecp, alpha = run_tarp(theta, x, fixed, num_posterior_samples=S, show_progress_bar=False,
                              num_bins=max(10, len(theta) // 10))
        atc, tarp_ks = check_tarp(ecp, alpha)
        if c2st:
            from tqdm.auto import tqdm

            prior_samples = simulator.prior.sample((len(theta),)).to(torch.float32)
            with tqdm(total=1, desc="classifier tests (C2ST)", unit="run", disable=not progress) as bar:
                checks = check_sbc(ranks, prior_samples, dap, num_posterior_samples=S)
                bar.update(1)
        else:
            checks = {"ks_pvals": check_uniformity_frequentist(ranks, S)}
    ranks_np = ranks.numpy()
    cov = coverage_from_ranks(ranks_np, S, lv)
    dev = cov - np.asarray(lv)[None]
    n_used = int(len(theta))
    noise_all = coverage_noise(n_used, D, S, lv, seed=seed)
    noise_one = coverage_noise(n_used, 1, S, lv, seed=seed)["q95"] if D > 1 else noise_all["q95"]
    med = draws.median(0).values
    err = (med - theta).numpy()
    width = None
    if hasattr(simulator.prior, "low"):
        width = (simulator.prior.high - simulator.prior.low).cpu().numpy()
    params: dict[str, Any] = {}
    units = dict(getattr(simulator.prior, "units", None) or getattr(posterior, "units", None) or {})
    for i, name in enumerate(names):
        params[name] = {
            "sbc_ks_pvalue": float(checks["ks_pvals"][i]),
            "coverage": [round(float(c), 4) for c in cov[i]],
            "coverage_deviation": [round(float(d), 4) for d in dev[i]],
            "max_abs_coverage_deviation": float(np.abs(dev[i]).max()),
            "mean_coverage_deviation": float(dev[i].mean()),
            "verdict": _verdict(float(np.abs(dev[i]).max()), float(dev[i].mean()), noise_one, tol, n_used),
            "within_tolerance": bool(np.abs(dev[i]).max() <= tol),
            "median_abs_error": float(np.median(np.abs(err[:, i]))),
            "bias": float(err[:, i].mean()),
            "rms_error": float(np.sqrt(np.mean(err[:, i] ** 2))),
            "posterior_sd_mean": float(draws[..., i].std(0).mean()),
            "units": str(units.get(name, "") or ""),  # of the errors above (calibration_datatree)
        }
        if width is not None:
            params[name]["median_abs_error_over_prior_width"] = float(np.median(np.abs(err[:, i])) / width[i])
        if "c2st_ranks" in checks:
            params[name]["c2st_ranks"] = float(checks["c2st_ranks"][i])
            params[name]["c2st_dap_vs_prior"] = float(checks["c2st_dap"][i])
    max_dev = float(np.abs(dev).max())
    verdict = _verdict(max_dev, float(dev.mean()), noise_all["q95"], tol, n_used)
    if verdict in ("conservative", "overconfident"):  # direction from the miscalibrated parameters
        sides = {p["verdict"] for p in params.values() if p["verdict"] in ("conservative", "overconfident")}
        verdict = sides.pop() if len(sides) == 1 else "mixed" if sides else verdict
    report: dict[str, Any] = {
        "n_held_out": int(len(theta)), "n_invalid_dropped": int((~ok).sum()),
        "num_posterior_samples": S, "seed": int(seed), "seed_stream": "calibration",
        "levels": lv, "coverage_tolerance": tol,
        "max_expected_coverage_deviation": max_dev,
        "max_deviation_if_calibrated": noise_all,
        "max_deviation_if_calibrated_per_parameter_q95": noise_one,
        "mean_expected_coverage_deviation": float(dev.mean()),
        "verdict": verdict,
        "within_tolerance": bool(max_dev <= tol),
        "sbc_ks_flagged": _holm_flagged({k: p["sbc_ks_pvalue"] for k, p in params.items()}),
        "tarp_atc": float(atc), "tarp_ks_pvalue": float(tarp_ks),
        "tarp_ecp": [round(float(v), 4) for v in ecp], "tarp_alpha": [round(float(v), 4) for v in alpha],
        "tarp_max_deviation": float((ecp - alpha).abs().max()),
        "parameters": params,
        "spec": getattr(posterior, "spec", None),
        "wall_time_s": 0.0,
    }
    report["wall_time_s"] = round(time.perf_counter() - t0, 3)
    if out is not None:
        from .plots import plot_coverage, plot_sbc_ecdf

        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "calibration.json").write_text(json.dumps(report, indent=2, default=str))
        pit = (ranks_np + 0.5) / (S + 1)
        plot_sbc_ecdf(pit, names=names, spec=report["spec"], path=out / "ecdf_pit.png")
        plot_coverage(report, path=out / "coverage.png")
    return report
