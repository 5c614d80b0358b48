"""Save and reload a :class:`~gcsbi.inference.train.TrainedPosterior` without pickling objects.

Format (one file, ``torch.save`` of plain containers, read back with ``weights_only=True``)::

    {"format": "gcsbi-posterior", "format_version": 1,
     "meta": <JSON string: spec, prior, training config, history, versions, x_shape, embedding recipe>,
     "state_dict": <density estimator weights (incl. embedding net and z-score buffers)>,
     "reference_embeddings": <(n, F) float32 embedded held-out simulations, for OOD checks>}

Loading rebuilds the estimator from the stored config (``sbi.neural_nets.posterior_nn``) and the
embedding net from its recipe, then loads the state dict strictly.
"""

from __future__ import annotations

import json
import math
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import GcsbiFileError, GcsbiValueError, SpecError
from ..priors import NamedBoxPrior, ParameterSpec
from .embedding import build_embedding
from .train import TrainConfig, TrainedPosterior, build_estimator, pool_images, seeded

__all__ = ["save_posterior", "load_posterior", "shipped_posteriors", "spec_differences", "FORMAT", "FORMAT_VERSION"]

FORMAT = "gcsbi-posterior"
FORMAT_VERSION = 1

#: Folder of the posteriors shipped inside the package (``<spec>_<prior>.pt``).
SHIPPED_DIR = Path(__file__).resolve().parents[1] / "data" / "posteriors"


def shipped_posteriors() -> list[str]:
    """Names of the shipped posteriors, usable as ``load_posterior(name)``."""
    return sorted(p.stem for p in SHIPPED_DIR.glob("*.pt"))


def _resolve(path: str | Path) -> Path:
    """A path as given, or the shipped posterior of that name (``"hst-phat_m31-gc"``)."""
    given = Path(path)
    if given.exists() or given.suffix or len(given.parts) > 1:
        return given
    if (SHIPPED_DIR / f"{given}.pt").is_file():
        return SHIPPED_DIR / f"{given}.pt"
    raise GcsbiFileError(f"posterior checkpoint not found: {path!s} (not a file, nor a shipped posterior: "
                         f"{shipped_posteriors()})")


def _prior_to_dict(prior: Any) -> dict[str, Any]:
    if not isinstance(prior, NamedBoxPrior):
        raise GcsbiValueError(f"checkpoints need a NamedBoxPrior, got {type(prior).__name__}")
    return {"name": prior.name, "description": prior.description,
            "parameters": [{"name": s.name, "low": s.low, "high": s.high, "unit": s.unit,
                            "description": s.description} for s in prior.specs]}


def _prior_from_dict(d: dict[str, Any], device: str) -> NamedBoxPrior:
    specs = tuple(ParameterSpec(p["name"], float(p["low"]), float(p["high"]), p.get("unit", ""),
                                p.get("description", "")) for p in d["parameters"])
    return NamedBoxPrior(specs, name=d.get("name", "prior"), description=d.get("description", ""), device=device)


def save_posterior(posterior: TrainedPosterior, path: str | Path) -> Path:
    """Write ``posterior`` to ``path`` (a few MB at most for the π-doc net); returns the path."""
    path = Path(path)
    meta = {
        "spec": posterior.spec, "prior": _prior_to_dict(posterior.prior), "config": posterior.config.to_dict(),
        "history": posterior.history, "versions": posterior.versions, "x_shape": list(posterior.x_shape),
        "embedding": posterior.embedding_recipe,
    }
    try:
        meta_json = json.dumps(meta, sort_keys=True, allow_nan=True)
    except (TypeError, ValueError) as exc:
        raise GcsbiValueError(f"spec/history must be JSON-serialisable: {exc}") from exc
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, "meta": meta_json,
               "state_dict": {k: v.detach().cpu().clone() for k, v in posterior.estimator.state_dict().items()},
               "reference_embeddings": posterior.reference_embeddings.detach().cpu().clone()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)
    return path


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(d, dict):
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out or {prefix: {}}
    if isinstance(d, (list, tuple)):
        return {prefix: [(_flatten(v) if isinstance(v, dict) else v) for v in d]}
    if isinstance(d, float) and math.isnan(d):
        return {prefix: "nan"}
    return {prefix: d}


def spec_differences(stored: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    """Dotted keys whose values differ between two (nested) spec dicts, sorted."""
    a, b = _flatten(json.loads(json.dumps(stored))), _flatten(json.loads(json.dumps(expected)))
    return sorted(k for k in set(a) | set(b) if a.get(k, "<missing>") != b.get(k, "<missing>"))


def _read(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise GcsbiFileError(f"posterior checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile, KeyError, TypeError,
            AttributeError, IndexError) as exc:
        raise GcsbiFileError(f"{path}: not a readable gcsbi posterior checkpoint (corrupt or truncated?): {exc}") from exc
    except Exception as exc:  # pickle.UnpicklingError and friends from a damaged file
        raise GcsbiFileError(f"{path}: cannot read checkpoint: {type(exc).__name__}: {exc}") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise GcsbiFileError(f"{path}: not a gcsbi posterior checkpoint")
    if int(payload.get("format_version", -1)) > FORMAT_VERSION:
        raise GcsbiFileError(f"{path}: checkpoint format {payload.get('format_version')} is newer than "
                             f"this gcsbi understands ({FORMAT_VERSION}); upgrade gcsbi")
    try:
        payload["meta"] = json.loads(payload["meta"])
    except (KeyError, TypeError, ValueError) as exc:
        raise GcsbiFileError(f"{path}: checkpoint metadata is damaged: {exc}") from exc
    return payload


def load_posterior(path: str | Path, *, expected_spec: dict[str, Any] | None = None,
                   embedding_net: nn.Module | None = None, device: str = "cpu",
                   trusted: tuple[str, ...] = ()) -> TrainedPosterior:
    """Rebuild a posterior from ``path`` (a file, or a shipped name from :func:`shipped_posteriors`)
    without retraining.

    Args:
        expected_spec: if given, the stored simulator/prior spec must equal it, else ``SpecError``
            naming the differing keys.
        embedding_net: a fresh instance of the embedding architecture, needed only when the
            stored net has no ``config`` (or its class is outside gcsbi/sbi/torch and not ``trusted``).
    Raises GcsbiFileError for a missing, corrupt or truncated file.
    """
    path = _resolve(path)
    payload = _read(path)
    meta = payload["meta"]
    if expected_spec is not None:
        diff = spec_differences(meta["spec"], expected_spec)
        if diff:
            raise SpecError(f"{path}: the posterior was trained for a different simulator/prior spec; "
                            f"differing keys: {', '.join(diff)}")
    try:
        config = TrainConfig(**{**meta["config"], "device": device})
        prior = _prior_from_dict(meta["prior"], device)
        x_shape = tuple(int(s) for s in meta["x_shape"])
    except (KeyError, TypeError) as exc:
        raise GcsbiFileError(f"{path}: checkpoint metadata is incomplete: {exc}") from exc
    emb = embedding_net if embedding_net is not None else build_embedding(meta["embedding"], trusted=trusted)
    with seeded(0):  # dummy batch only fixes shapes; weights and z-score buffers come from the file
        theta0 = prior.sample((8,))
        x0 = torch.randn((8, *x_shape))
        estimator = build_estimator(config, emb, theta0, pool_images(x0, config.x_pool))
    try:
        estimator.load_state_dict(payload["state_dict"], strict=True)
    except (RuntimeError, KeyError, TypeError) as exc:
        raise GcsbiValueError(f"{path}: weights do not fit the rebuilt network (wrong embedding_net?): {exc}") from exc
    return TrainedPosterior(estimator=estimator.to(device), prior=prior, spec=meta["spec"], config=config,
                            history=meta["history"], x_shape=x_shape, embedding_recipe=meta["embedding"],
                            reference_embeddings=payload["reference_embeddings"], versions=meta["versions"])
