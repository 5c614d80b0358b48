"""Catalogue-mode inference: a PHAT catalogue row or a cluster name -> posterior (ArviZ DataTree).

``gcsbi.infer(posterior, "B165")`` works for a catalogue-mode posterior (``spec["simulator"]["kind"]
== "catalogue"``): :func:`gcsbi.inference.infer` calls :func:`catalogue_observation` first, which
turns names / APIDs / catalogue rows into the feature vector and adds to the DataTree's attrs:

* ``cluster`` (APID and AltID), ``catalogue_values`` (mags, errors, Reff, Rap as read);
* ``range_flag`` / ``features_out_of_range``: features outside the 0.1-99.9 percentile range of the
  training simulations (stored in the checkpoint's ``history["x_range"]``) -- the second OOD check
  next to ``infer``'s embedding-MMD ``ood_flag``.

:func:`infer_catalogue` runs a whole table (batch mode) and returns a results table.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import GcsbiValueError, OutOfDistributionWarning, PriorEdgeWarning
from ..inference.checkpoint import SHIPPED_DIR
from .catalogues import catalogue_values, is_catalogue_row, read_phat_catalogue, resolve_cluster
from .model import FEATURES, CatalogueModel, features

__all__ = ["SHIPPED_CATALOGUE_POSTERIOR", "load_catalogue_posterior", "catalogue_observation", "range_check",
           "infer_cluster", "infer_catalogue", "PERCENTILES"]

SHIPPED_CATALOGUE_POSTERIOR = SHIPPED_DIR / "hst-phat_m31-gc_catalogue.pt"
PERCENTILES = (2.5, 16.0, 50.0, 84.0, 97.5)


def load_catalogue_posterior(path: str | Path | None = None) -> Any:
    """Load a catalogue-mode posterior (default: the shipped one); checks it is one."""
    from ..inference import load_posterior

    post = load_posterior(SHIPPED_CATALOGUE_POSTERIOR if path is None else path)
    if _kind(post) != "catalogue":
        raise GcsbiValueError(f"{path or SHIPPED_CATALOGUE_POSTERIOR}: not a catalogue-mode posterior")
    return post


def _kind(posterior: Any) -> str | None:
    return ((getattr(posterior, "spec", None) or {}).get("simulator") or {}).get("kind")


def _model(posterior: Any) -> CatalogueModel:
    d = posterior.spec["simulator"].get("catalogue_model")
    return CatalogueModel.from_dict(d) if d else CatalogueModel()


def _is_named(obs: Any) -> bool:
    return isinstance(obs, (str, int, np.integer)) or is_catalogue_row(obs)


def range_check(posterior: Any, x: np.ndarray) -> list[list[str]]:
    """Per observation (B, 8): names of features outside the training range (empty: inside)."""
    rng = (getattr(posterior, "history", None) or {}).get("x_range")
    x = np.atleast_2d(np.asarray(x, dtype=float))
    if not rng:
        return [[] for _ in x]
    lo, hi = np.asarray(rng["low"], float), np.asarray(rng["high"], float)
    names = list(rng.get("names", FEATURES))
    return [[names[j] for j in range(x.shape[1]) if not lo[j] <= row[j] <= hi[j]] for row in x]


def catalogue_observation(posterior: Any, observation: Any, *, table: Any = None) -> tuple[Any, dict[str, Any]]:
    """(features, extra DataTree attrs) for a name, APID, catalogue row, list of them, or feature array(s)."""
    model = _model(posterior)
    items = observation
    batched = isinstance(observation, Sequence) and not isinstance(observation, str) and len(observation) > 0 \
        and all(_is_named(o) for o in observation)
    if not batched:
        items = [observation]
    attrs: dict[str, Any] = {"mode": "catalogue", "features": list(FEATURES)}
    if all(_is_named(o) for o in items):
        rows, xs, ids, vals = [], [], [], []
        for o in items:
            row = o if is_catalogue_row(o) else resolve_cluster(o, table if table is not None else read_phat_catalogue())
            v = catalogue_values(row, model=model)
            xs.append(features(v["mag"][None], v["err"][None], np.array([v["reff"]]), np.array([v["rap"]]))[0])
            keys = row.keys() if hasattr(row, "keys") else row.colnames
            ids.append({"APID": int(row["APID"]) if "APID" in keys else -1,
                        "AltID": str(row["AltID"]).strip() if "AltID" in keys and not np.ma.is_masked(row["AltID"]) else ""})
            vals.append({"mag": v["mag"].tolist(), "err": v["err"].tolist(), "reff": v["reff"], "rap": v["rap"],
                         "bands": ["F336W", "F475W", "F814W"], "filled_errors": v["filled_errors"]})
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
    if arr.ndim in (1, 2) and arr.shape[-1] == len(FEATURES) and np.all(np.isfinite(arr)):
        out = range_check(posterior, arr)
        flags = [bool(o) for o in out]
        attrs["features_out_of_range"] = out if arr.ndim == 2 else out[0]
        attrs["range_flag"] = flags if arr.ndim == 2 else flags[0]
        if any(flags):
            bad = sorted({f for o in out for f in o})
            warnings.warn(f"catalogue features {bad} lie outside the range of the training simulations: "
                          "the posterior is an extrapolation", OutOfDistributionWarning, stacklevel=3)
    return x, attrs


def infer_cluster(cluster: Any, posterior: Any = None, **kwargs: Any) -> Any:
    """Posterior DataTree for one cluster (name, APID or catalogue row); ``kwargs`` go to ``gcsbi.infer``."""
    from ..inference import infer

    post = load_catalogue_posterior() if posterior is None else posterior
    return infer(post, cluster, **kwargs)


def infer_catalogue(table: Any, posterior: Any = None, *, num_samples: int = 1000, seed: int = 0,
                    batch_size: int = 16, progress: bool = True, out: str | Path | None = None,
                    ood_alpha: float = 0.01) -> Any:
    """Batch mode: posterior summaries for every row of a PHAT-format table -> astropy Table.

    Per cluster and parameter: percentiles :data:`PERCENTILES` (``<param>_p2.5`` ... ``_p97.5``);
    flags ``ood_pvalue``, ``ood_flag`` (embedding MMD, ``infer``), ``range_flag`` (features outside the
    training range), ``edge_params`` (posterior piling at a prior bound), ``any_ood``; rows that
    cannot be used (a band missing, ...) get ``status`` = the reason and NaN results.
    Columns of ``table`` named APID/AltID/name and ``caldwell_*`` are carried over.
    ``out``: ``.fits`` or ``.ecsv`` path to write.
    """
    from astropy.table import Table

    from ..inference import infer

    post = load_catalogue_posterior() if posterior is None else posterior
    model = _model(post)
    names = post.param_names
    n = len(table)
    good, xs, status = [], [], []
    for i in range(n):
        try:
            v = catalogue_values(table[i], model=model)
            xs.append(features(v["mag"][None], v["err"][None], np.array([v["reff"]]), np.array([v["rap"]]))[0])
            good.append(i)
            status.append("ok" if not v["filled_errors"] else f"ok (errors filled: {','.join(v['filled_errors'])})")
        except GcsbiValueError as exc:
            status.append(f"skipped: {exc}")
    res = {f"{p}_p{q:g}": np.full(n, np.nan) for p in names for q in PERCENTILES}
    res.update(ood_pvalue=np.full(n, np.nan), ood_flag=np.zeros(n, bool), range_flag=np.zeros(n, bool),
               edge_params=np.array([""] * n, dtype=object), posterior_mass_in_prior=np.full(n, np.nan))
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
            dt = infer(post, xb, num_samples=num_samples, seed=seed + s, ood_alpha=ood_alpha)
        for p in names:
            draws = np.asarray(dt["posterior"][p].values)[0]  # (S, B)
            pct = np.percentile(draws, PERCENTILES, axis=0)
            for k, q in enumerate(PERCENTILES):
                res[f"{p}_p{q:g}"][idx] = pct[k]
        low, high = post.prior.low.numpy(), post.prior.high.numpy()
        for b, i in enumerate(idx):
            d = np.stack([np.asarray(dt["posterior"][p].values)[0][:, b] for p in names], axis=1)
            width = high - low
            near = ((d - low < 0.02 * width) | (high - d < 0.02 * width)).mean(0)
            res["edge_params"][i] = ",".join(names[j] for j in range(len(names)) if near[j] > 0.25)
            res["ood_pvalue"][i] = dt.attrs["ood_pvalue"][b]
            res["ood_flag"][i] = dt.attrs["ood_flag"][b]
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
    cols.update({k: (v.astype(str) if v.dtype == object else v) for k, v in res.items()})
    cols["any_ood"] = res["ood_flag"] | res["range_flag"] | (res["posterior_mass_in_prior"] < 0.01)
    t = Table(cols)
    # FITS-safe keys (<= 8 characters)
    t.meta.update({"METHOD": "gcsbi catalogue mode (NPE)", "NSAMPLES": int(num_samples), "SEED": int(seed),
                   "OODALPHA": float(ood_alpha), "PCTILES": ",".join(f"{q:g}" for q in PERCENTILES)})
    if out is not None:
        out = Path(out)
        fmt = "fits" if out.suffix.lower() in (".fits", ".fit") else "ascii.ecsv"
        if out.suffix.lower() not in (".fits", ".fit", ".ecsv"):
            raise GcsbiValueError(f"results file must end in .fits or .ecsv, got {out.name}")
        out.parent.mkdir(parents=True, exist_ok=True)
        t.write(out, format=fmt, overwrite=True)
    return t
