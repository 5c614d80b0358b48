"""Writing a posterior checkpoint; :mod:`gcsbi.inference.checkpoint` describes the format and reads it.

Kept apart from the reading side so that :meth:`TrainedPosterior.save` needs nothing that
imports :class:`TrainedPosterior` back.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from ..errors import GcsbiValueError
from ..integrity import stamp
from ..outputs import check_file_target
from ..nets.recipe import weights_digest  # noqa: F401 (re-exported; lives with the embedding recipes)
from ..spec.priors import NamedBoxPrior

__all__ = ["save_posterior", "weights_digest", "prior_to_dict", "FORMAT", "FORMAT_VERSION"]

FORMAT = "gcsbi-posterior"
#: 2: one SHA-256 (``sha256``, :mod:`gcsbi.integrity`) over metadata and weights, required on load.
FORMAT_VERSION = 2


def prior_to_dict(prior: Any) -> dict[str, Any]:
    if not isinstance(prior, NamedBoxPrior):
        raise GcsbiValueError(f"checkpoints need a NamedBoxPrior, got {type(prior).__name__}")
    return {"name": prior.name, "description": prior.description,
            "parameters": [{"name": s.name, "low": s.low, "high": s.high, "unit": s.unit,
                            "description": s.description} for s in prior.specs]}


def save_posterior(posterior: Any, path: str | Path) -> Path:
    """Write a :class:`~gcsbi.inference.posterior.TrainedPosterior` to ``path`` (a few MB at most for
    the π-doc net); returns the path."""
    path = Path(path)
    meta = {
        "spec": posterior.spec, "prior": prior_to_dict(posterior.prior), "config": posterior.config.to_dict(),
        "history": posterior.history, "versions": posterior.versions, "x_shape": list(posterior.x_shape),
        "embedding": posterior.embedding_recipe,
    }
    try:
        meta_json = json.dumps(meta, sort_keys=True, allow_nan=True)
    except (TypeError, ValueError) as exc:
        raise GcsbiValueError(f"spec/history must be JSON-serialisable: {exc}") from exc
    state = {k: v.detach().cpu().clone() for k, v in posterior.estimator.state_dict().items()}
    ref = posterior.reference_embeddings.detach().cpu().clone()
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, "meta": meta_json, "state_dict": state,
               "reference_embeddings": ref, "weights_sha256": weights_digest(state, ref)}
    stamp(payload)  # covers the metadata too: a file cannot be edited to name other code or shapes
    check_file_target(path)  # never over a file of another kind
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)
    return path
