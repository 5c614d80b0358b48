"""Catalogue-mode inference: a PHAT catalogue row or a cluster name -> posterior (ArviZ DataTree).

``gcsbi.infer(posterior, "B165")`` works for a catalogue-mode posterior (``spec["simulator"]["kind"]
== "catalogue"``): :func:`gcsbi.inference.infer` calls :func:`catalogue_observation` first, which
turns names / APIDs / catalogue rows into the feature vector and adds to the DataTree's attrs:

* ``cluster`` (APID and AltID), ``catalogue_values`` (mags, errors, Reff, Rap as read), both JSON
  text (``json.loads(dt.attrs["cluster"])["APID"]``), so the DataTree stores as NetCDF4 and Zarr;
* ``range_flag`` (1 / 0) / ``features_out_of_range``: features outside the 0.1-99.9 percentile range of the
  training simulations (stored in the checkpoint's ``history["x_range"]``) -- the second OOD check
  next to ``infer``'s embedding-MMD ``ood_flag``. For a batch, one entry per observation (the
  feature lists as JSON text).

:func:`infer_catalogue` runs a whole table (batch mode) and returns a results table.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import GcsbiValueError, OutOfDistributionWarning, PriorEdgeWarning
from ..inference.checkpoint import SHIPPED_DIR
from .catalogues import catalogue_values, is_catalogue_row, read_phat_catalogue, resolve_cluster
from .model import CatalogueModel, feature_names, features
from .ppc import PPC_ALPHA
from .priors import DEFAULT_PRESET, PRESETS, PriorChoice, check_within_training, reweight

__all__ = ["SHIPPED_CATALOGUE_POSTERIOR", "SHIPPED_OLD_CATALOGUE_POSTERIOR", "load_catalogue_posterior",
           "effective_choice", "catalogue_observation", "range_check",
           "infer_cluster", "infer_catalogue", "PERCENTILES", "default_choice", "disc_radius"]

SHIPPED_CATALOGUE_POSTERIOR = SHIPPED_DIR / "hst-phat6_m31-clusters_catalogue.pt"
#: Trained on the ``m31-old`` prior (the ``old`` prior choice: age 8 - 14 Gyr, mass >= 10^4 Msun).
SHIPPED_OLD_CATALOGUE_POSTERIOR = SHIPPED_DIR / "hst-phat6_m31-old_catalogue.pt"
PERCENTILES = (2.5, 16.0, 50.0, 84.0, 97.5)


def load_catalogue_posterior(path: str | Path | None = None, *, prior: str = "training") -> Any:
    """Load a catalogue-mode posterior (default: the shipped one); checks it is one.

    ``prior="old"`` without a ``path`` gives the shipped posterior trained on the ``m31-old`` prior
    (when shipped) instead of the all-ages one: the same target as the ``old`` prior choice.
    """
    from ..inference import load_posterior

    if path is None:
        path = SHIPPED_OLD_CATALOGUE_POSTERIOR if prior == "old" and SHIPPED_OLD_CATALOGUE_POSTERIOR.is_file() \
            else SHIPPED_CATALOGUE_POSTERIOR
    post = load_posterior(path)
    if _kind(post) != "catalogue":
        raise GcsbiValueError(f"{path}: not a catalogue-mode posterior")
    return post


def effective_choice(posterior: Any, choice: PriorChoice | None) -> PriorChoice:
    """``choice``, or no change when ``posterior`` was trained on the prior that ``choice`` stands for.

    Raises :class:`GcsbiValueError` when ``choice`` reaches outside the posterior's training prior
    (:func:`~gcsbi.catalogue.priors.check_within_training`).
    """
    choice = PriorChoice() if choice is None else choice
    if choice.name == "old" and getattr(posterior.prior, "name", None) == "m31-old":
        return dataclasses.replace(choice, age_gyr=None, log10_mass=None)  # the posterior's own box; floor kept
    if not choice.is_training:
        prior = posterior.prior
        check_within_training(choice, tuple(posterior.param_names), prior.low.numpy(), prior.high.numpy(),
                              getattr(prior, "name", None))
    return choice


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise GcsbiValueError(f"seed must be an integer >= 0, got {seed!r}")
    return int(seed)


def _kind(posterior: Any) -> str | None:
    return ((getattr(posterior, "spec", None) or {}).get("simulator") or {}).get("kind")


def _model(posterior: Any) -> CatalogueModel:
    d = posterior.spec["simulator"].get("catalogue_model")
    return CatalogueModel.from_dict(d) if d else CatalogueModel()


def _bands(posterior: Any) -> tuple[str, ...]:
    """The catalogue bands a catalogue-mode posterior was trained on (its simulator's filters)."""
    return tuple(posterior.spec["simulator"].get("filters") or ("F336W", "F475W", "F814W"))


def _float_or_none(row: Any, key: str, keys: Any) -> float | None:
    if key not in keys or np.ma.is_masked(row[key]):
        return None
    v = float(row[key])
    return v if np.isfinite(v) else None


def disc_radius(ra: Any, dec: Any) -> float | None:
    """M31 disc radius (kpc) of a position, or None when it is unknown."""
    from .geometry import m31_disc_radius_kpc

    if ra is None or dec is None:
        return None
    return float(m31_disc_radius_kpc(ra, dec))


def default_choice(posterior: Any = None) -> PriorChoice:
    """The prior ``gcsbi m31`` uses when none is named (:data:`~gcsbi.catalogue.priors.DEFAULT_PRESET`,
    ``box``: the training box with E(B-V) >= the Milky Way foreground); it fits any posterior with an ``ebv``."""
    return PRESETS[DEFAULT_PRESET]


def _is_named(obs: Any) -> bool:
    return isinstance(obs, (str, int, np.integer)) or is_catalogue_row(obs)


def range_check(posterior: Any, x: np.ndarray) -> list[list[str]]:
    """Per observation (B, 2F + 2): names of features outside the training range (empty: inside).

    A missing band's placeholder features are not range-checked."""
    rng = (getattr(posterior, "history", None) or {}).get("x_range")
    x = np.atleast_2d(np.asarray(x, dtype=float))
    if not rng:
        return [[] for _ in x]
    lo, hi = np.asarray(rng["low"], float), np.asarray(rng["high"], float)
    names = list(rng["names"])
    nb = (x.shape[1] - 2) // 2
    out = []
    for row in x:
        missing = [j for j in range(nb) if row[nb + j] >= 0.999]  # log10 MISSING_ERROR = 1
        skip = set(missing) | {nb + j for j in missing}
        out.append([names[j] for j in range(x.shape[1]) if j not in skip and not lo[j] <= row[j] <= hi[j]])
    return out


def catalogue_observation(posterior: Any, observation: Any, *, table: Any = None) -> tuple[Any, dict[str, Any]]:
    """(features, extra DataTree attrs) for a name, APID, catalogue row, list of them, or feature array(s)."""
    model, bands = _model(posterior), _bands(posterior)
    names = feature_names(bands)
    items = observation
    batched = isinstance(observation, Sequence) and not isinstance(observation, str) and len(observation) > 0 \
        and all(_is_named(o) for o in observation)
    if not batched:
        items = [observation]
    attrs: dict[str, Any] = {"mode": "catalogue", "features": list(names)}
    if all(_is_named(o) for o in items):
        rows, xs, ids, vals = [], [], [], []
        for o in items:
            row = o if is_catalogue_row(o) else resolve_cluster(o, table if table is not None else read_phat_catalogue())
            v = catalogue_values(row, model=model, bands=bands)
            xs.append(features(v["mag"][None], v["err"][None], np.array([v["reff"]]), np.array([v["rap"]]))[0])
            keys = row.keys() if hasattr(row, "keys") else row.colnames
            ids.append({"APID": int(row["APID"]) if "APID" in keys else -1,
                        "AltID": str(row["AltID"]).strip() if "AltID" in keys and not np.ma.is_masked(row["AltID"]) else "",
                        "RAdeg": _float_or_none(row, "RAdeg", keys), "DEdeg": _float_or_none(row, "DEdeg", keys)})
            vals.append({"mag": v["mag"].tolist(), "err": v["err"].tolist(), "reff": v["reff"], "rap": v["rap"],
                         "bands": list(bands), "upper_limit": v["upper_limit"].tolist(),
                         "missing_bands": v["missing_bands"], "filled_errors": v["filled_errors"]})
            rows.append(row)
        x = np.stack(xs) if batched else xs[0]
        attrs["cluster"] = ids if batched else ids[0]
        attrs["catalogue_values"] = vals if batched else vals[0]
    else:
        x = observation
    try:
        arr = np.asarray(x, dtype=float)
    except (TypeError, ValueError):
        return x, attrs  # let infer's own check produce the error message
    if arr.ndim in (1, 2) and arr.shape[-1] == len(names) and np.all(np.isfinite(arr)):
        out = range_check(posterior, arr)
        flags = [bool(o) for o in out]
        attrs["features_out_of_range"] = out if arr.ndim == 2 else out[0]
        attrs["range_flag"] = flags if arr.ndim == 2 else flags[0]
        if any(flags):
            bad = sorted({f for o in out for f in o})
            warnings.warn(f"catalogue features {bad} lie outside the range of the training simulations: "
                          "the posterior is an extrapolation", OutOfDistributionWarning, stacklevel=3)
    return x, attrs


#: Posterior draws taken per kept draw when a prior choice reweights them (a population prior can
#: keep a small part of the box posterior: ``prior_ess`` reports what is left).
OVERSAMPLE = 16


def _ppc_draws(n: Any) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not (n == 0 or 8 <= n <= 1000):
        raise GcsbiValueError(f"ppc_draws must be 0 (no check) or an integer in [8, 1000], got {n!r}")
    return int(n)


def _run_ppc(post: Any, values: dict[str, Any], draws: np.ndarray, n: int, seed: int) -> dict[str, Any]:
    from .ppc import posterior_predictive_check, ppc_simulator

    return posterior_predictive_check(values, draws[:n], ppc_simulator(post), seed=seed)


def infer_cluster(cluster: Any, posterior: Any = None, *, prior: PriorChoice | None = None, num_samples: int = 1000,
                  seed: int = 0, ppc_draws: int = 0, **kwargs: Any) -> Any:
    """Posterior DataTree for one cluster (name, APID or catalogue row) under ``prior``.

    ``prior``: a :class:`~gcsbi.catalogue.priors.PriorChoice`; default (:func:`default_choice`): the
    training box with E(B-V) >= the Milky Way foreground. A population prior is evaluated at the
    cluster's M31 disc radius when its position is known (else averaged over radius). ``kwargs`` go to ``gcsbi.infer``. The DataTree's attrs
    ``prior`` (the prior used, in words), ``prior_kept_fraction``, ``prior_ess`` (effective number of
    the re-weighted draws) and ``disc_radius_kpc`` say what the prior did. ``ppc_draws`` > 0 (a named
    cluster) adds a posterior-predictive check of its magnitudes from that many draws
    (:mod:`gcsbi.catalogue.ppc`): attrs ``ppc_pvalue``, ``ppc_flag`` (p < 0.05) and ``ppc_residual_mag``.
    """
    from ..inference import infer
    from ..inference.arviz import posterior_datatree

    seed = _check_seed(seed)
    ppc_draws = _ppc_draws(ppc_draws)
    post = load_catalogue_posterior(prior=(prior or PriorChoice()).name) if posterior is None else posterior
    choice = effective_choice(post, default_choice(post) if prior is None else prior)
    n_draw = int(num_samples) * (1 if choice.is_training else OVERSAMPLE)
    dt = infer(post, cluster, num_samples=n_draw, seed=seed, **kwargs)
    names = tuple(post.param_names)
    ident = dt.attrs.get("cluster")
    ident = json.loads(ident) if isinstance(ident, str) else ident
    radius = disc_radius(ident.get("RAdeg"), ident.get("DEdeg")) if isinstance(ident, dict) else None
    draws = np.stack([np.asarray(dt["posterior"][n].values)[0] for n in names], axis=-1)
    kept, info = reweight(draws, names, choice, int(num_samples), np.random.default_rng(seed), radius_kpc=radius)
    attrs = {**dt.attrs, "prior": choice.describe(post.prior), "prior_kept_fraction": info["kept_fraction"],
             "prior_ess": info["ess"], "num_samples": int(num_samples),
             "disc_radius_kpc": float("nan") if radius is None else radius}
    values = dt.attrs.get("catalogue_values")
    if ppc_draws and values is not None:
        values = json.loads(values) if isinstance(values, str) else values
        try:
            chk = _run_ppc(post, values, kept, ppc_draws, seed)
        except GcsbiValueError as exc:  # e.g. fewer than two detected bands
            attrs["ppc_note"] = f"no posterior-predictive check: {exc}"
        else:
            attrs.update(ppc_pvalue=chk["pvalue"], ppc_flag=int(chk["pvalue"] < PPC_ALPHA), ppc_draws=chk["n_draws"],
                         ppc_residual_mag=json.dumps(chk["residual"]))
    bounds = {n: (dt["posterior"][n].attrs.get("prior_low"), dt["posterior"][n].attrs.get("prior_high")) for n in names}
    units = {n: dt["posterior"][n].attrs.get("units", "") for n in names}
    observed = dt["observed_data"]["image"].values if "observed_data" in dt.children else None
    return posterior_datatree(kept, names=names, units=units, bounds=bounds, observed=observed, attrs=attrs)


def infer_catalogue(table: Any, posterior: Any = None, *, num_samples: int = 1000, seed: int = 0,
                    batch_size: int = 16, progress: bool = True, out: str | Path | None = None,
                    ood_alpha: float = 0.01, prior: PriorChoice | None = None, ppc_draws: int = 0) -> Any:
    """Batch mode: posterior summaries for every row of a PHAT-format table -> astropy Table.

    Per cluster and parameter: percentiles :data:`PERCENTILES` (``<param>_p2.5`` ... ``_p97.5``);
    flags ``ood_pvalue``, ``ood_flag`` (embedding MMD, ``infer``), ``range_flag`` (features outside the
    training range), ``edge_params`` (posterior piling at a prior bound), ``any_ood``; rows that
    cannot be used (a band missing, ...) get ``status`` = the reason and NaN results.
    Columns of ``table`` named APID/AltID/name and ``caldwell_*`` are carried over.
    ``out``: ``.fits`` or ``.ecsv`` path to write. ``prior``: a :class:`~gcsbi.catalogue.priors.PriorChoice`
    (default, :func:`default_choice`: the training box with E(B-V) >= the Milky Way foreground; a
    population prior is evaluated at each cluster's disc radius from ``RAdeg``/``DEdeg``; columns
    ``disc_radius_kpc`` and ``prior_ess``); the table's ``meta["PRIOR"]`` names the prior used, and
    ``prior_kept_fraction`` per cluster the posterior mass it kept. A posterior in ``log10_age_yr``
    also gets ``age_gyr_p*`` columns (the same percentiles in Gyr). ``ppc_draws`` > 0: a
    posterior-predictive check per cluster (one image simulation per draw), columns ``ppc_pvalue`` and
    ``ppc_flag`` (p < 0.05; NaN / False when not computed).
    """
    from astropy.table import Table

    from ..inference import infer

    seed = _check_seed(seed)
    ppc_draws = _ppc_draws(ppc_draws)
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise GcsbiValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    post = load_catalogue_posterior(prior=(prior or PriorChoice()).name) if posterior is None else posterior
    model, bands = _model(post), _bands(post)
    names = tuple(post.param_names)
    choice = effective_choice(post, default_choice(post) if prior is None else prior)
    n_draw = int(num_samples) * (1 if choice.is_training else OVERSAMPLE)
    n = len(table)
    radii = np.full(n, np.nan)
    if "RAdeg" in table.colnames and "DEdeg" in table.colnames:
        from .geometry import m31_disc_radius_kpc

        ra, de = (np.asarray(table[c].filled(np.nan) if hasattr(table[c], "filled") else table[c], float)
                  for c in ("RAdeg", "DEdeg"))
        ok = np.isfinite(ra) & np.isfinite(de) & (np.abs(de) <= 90)
        radii[ok] = m31_disc_radius_kpc(ra[ok], de[ok])
    good, xs, status, vals = [], [], [], {}
    for i in range(n):
        try:
            v = catalogue_values(table[i], model=model, bands=bands)
            vals[i] = {"mag": v["mag"], "upper_limit": v["upper_limit"], "rap": v["rap"], "bands": list(bands)}
            xs.append(features(v["mag"][None], v["err"][None], np.array([v["reff"]]), np.array([v["rap"]]))[0])
            good.append(i)
            notes = ([f"errors filled: {','.join(v['filled_errors'])}"] if v["filled_errors"] else []) + (
                [f"not observed: {','.join(v['missing_bands'])}"] if v["missing_bands"] else [])
            status.append("ok" if not notes else f"ok ({'; '.join(notes)})")
        except GcsbiValueError as exc:
            status.append(f"skipped: {exc}")
    res = {f"{p}_p{q:g}": np.full(n, np.nan) for p in names for q in PERCENTILES}
    res.update(ood_pvalue=np.full(n, np.nan), ood_flag=np.zeros(n, bool), range_flag=np.zeros(n, bool),
               edge_params=np.array([""] * n, dtype=object), posterior_mass_in_prior=np.full(n, np.nan),
               prior_kept_fraction=np.full(n, np.nan), prior_ess=np.full(n, np.nan), ppc_pvalue=np.full(n, np.nan))
    iterator = range(0, len(good), int(batch_size))
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, desc="clusters", unit="batch", total=(len(good) + batch_size - 1) // batch_size)
    for s in iterator:
        idx = good[s:s + int(batch_size)]
        xb = np.stack([xs[good.index(i)] for i in idx])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OutOfDistributionWarning)  # recorded per cluster below
            warnings.simplefilter("ignore", PriorEdgeWarning)
            dt = infer(post, xb, num_samples=n_draw, seed=seed + s, ood_alpha=ood_alpha)
        low, high = post.prior.low.numpy(), post.prior.high.numpy()
        rng = np.random.default_rng([int(seed), int(s)])
        for b, i in enumerate(idx):
            d = np.stack([np.asarray(dt["posterior"][p].values)[0][:, b] for p in names], axis=1)
            d, info = reweight(d, names, choice, int(num_samples), rng,
                               radius_kpc=None if np.isnan(radii[i]) else radii[i])
            if ppc_draws:
                try:
                    res["ppc_pvalue"][i] = _run_ppc(post, vals[i], d, ppc_draws, seed + i)["pvalue"]
                except GcsbiValueError:  # fewer than two detected bands: no check
                    pass
            res["prior_kept_fraction"][i] = info["kept_fraction"]
            res["prior_ess"][i] = info["ess"]
            pct = np.percentile(d, PERCENTILES, axis=0)
            for j, p in enumerate(names):
                for k, q in enumerate(PERCENTILES):
                    res[f"{p}_p{q:g}"][i] = pct[k, j]
            width = high - low
            near = ((d - low < 0.02 * width) | (high - d < 0.02 * width)).mean(0)
            res["edge_params"][i] = ",".join(names[j] for j in range(len(names)) if near[j] > 0.25)
            res["ood_pvalue"][i] = dt.attrs["ood_pvalue"][b]
            res["ood_flag"][i] = dt.attrs["ood_flag"][b] == 1  # -1 (undetermined) is not a flag here
            res["range_flag"][i] = dt.attrs["range_flag"][b]
            acc = dt.attrs.get("posterior_mass_in_prior")
            if acc is not None:
                res["posterior_mass_in_prior"][i] = acc[b]
    cols: dict[str, Any] = {}
    for c in ("APID", "AltID", "name", "RAdeg", "DEdeg", "caldwell_log_mass", "caldwell_feh", "caldwell_ebv",
              "caldwell_age"):
        if c in table.colnames:
            col = table[c]
            cols[c] = np.asarray(col.filled(np.nan if col.dtype.kind == "f" else "") if hasattr(col, "filled") else col)
    cols["status"] = np.array(status, dtype=str)
    cols["disc_radius_kpc"] = radii
    if "log10_age_yr" in names:
        res.update({f"age_gyr_p{q:g}": 10.0 ** (res[f"log10_age_yr_p{q:g}"] - 9.0) for q in PERCENTILES})
    cols.update({k: (v.astype(str) if v.dtype == object else v) for k, v in res.items()})
    cols["ppc_flag"] = res["ppc_pvalue"] < PPC_ALPHA
    cols["any_ood"] = res["ood_flag"] | res["range_flag"] | (res["posterior_mass_in_prior"] < 0.01)
    t = Table(cols)
    # FITS-safe keys (<= 8 characters)
    t.meta.update({"METHOD": "gcsbi catalogue mode (NPE)", "PRIOR": choice.describe(post.prior),
                   "BANDS": ",".join(bands), "NSAMPLES": int(num_samples), "SEED": int(seed),
                   "OODALPHA": float(ood_alpha), "PCTILES": ",".join(f"{q:g}" for q in PERCENTILES)})
    if out is not None:
        out = Path(out)
        fmt = "fits" if out.suffix.lower() in (".fits", ".fit") else "ascii.ecsv"
        if out.suffix.lower() not in (".fits", ".fit", ".ecsv"):
            raise GcsbiValueError(f"results file must end in .fits or .ecsv, got {out.name}")
        out.parent.mkdir(parents=True, exist_ok=True)
        t.write(out, format=fmt, overwrite=True)
    return t
