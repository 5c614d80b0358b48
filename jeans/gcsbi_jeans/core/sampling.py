"""emcee settings and chain diagnostics shared by the sampled routes (free-form and the parametric baseline)."""

from __future__ import annotations

import numpy as np

from ..errors import JeansValueError

__all__ = ["check_sampler_settings", "chain_diagnostics", "mcmc_diagnostics"]


def check_sampler_settings(walkers: int, steps: int, burn: int, thin: int) -> None:
    """emcee settings every sampler here needs: an even number of walkers >= 8 and draws left after burn-in."""
    if walkers < 8 or walkers % 2 or burn < 0 or thin < 1 or steps - burn < thin:
        raise JeansValueError("need an even number of walkers >= 8, burn >= 0, thin >= 1 and steps >= burn + thin")


def chain_diagnostics(chain: np.ndarray, names: list[str]) -> dict:
    """Largest rank-normalised split R-hat and smallest bulk ESS over the parameters of an emcee ``chain``
    (draws, walkers, ndim), the walkers taken as chains (arviz_stats), and which parameters they belong to."""
    import xarray as xr
    from arviz_stats import ess, rhat

    ds = xr.Dataset({n: (("chain", "draw"), chain[:, :, i].T) for i, n in enumerate(names)})
    r, e = rhat(ds), ess(ds, method="bulk")
    rv = {n: float(r[n]) for n in names}
    ev = {n: float(e[n]) for n in names}
    worst_r, worst_e = max(rv, key=rv.get), min(ev, key=ev.get)
    return {"rhat_max": rv[worst_r], "rhat_worst": worst_r, "ess_bulk_min": ev[worst_e], "ess_worst": worst_e}


def mcmc_diagnostics(dt) -> dict:
    """R-hat and bulk ESS per parameter (walkers as chains) from the ``mcmc`` group of a profiles DataTree."""
    from arviz_stats import ess, rhat

    g = dt["mcmc"]
    r = rhat(g.to_dataset() if hasattr(g, "to_dataset") else g)
    e = ess(g.to_dataset() if hasattr(g, "to_dataset") else g)
    return {k: {"rhat": float(r[k]), "ess_bulk": float(e[k])} for k in g.data_vars}
