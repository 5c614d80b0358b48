"""Reload a :class:`~gcsbi.inference.posterior.TrainedPosterior` saved without pickled objects.

Checkpoints are written by :func:`~gcsbi.inference.serialize.save_posterior` (re-exported here).

Format (one file, ``torch.save`` of plain containers, read back with ``weights_only=True``)::

    {"format": "gcsbi-posterior", "format_version": 2,
     "meta": <JSON string: spec, prior, training config, history, versions, x_shape, embedding recipe>,
     "state_dict": <density estimator weights (incl. embedding net and z-score buffers)>,
     "reference_embeddings": <(n, F) float32 embedded held-out simulations, for OOD checks>,
     "weights_sha256": <hex SHA-256 of state_dict and reference_embeddings, see weights_digest>,
     "sha256": <hex SHA-256 of everything above, metadata included (gcsbi.integrity)>}

Loading first verifies the file (:func:`gcsbi.integrity.read_model_file`): size caps, the CRC-32
of every zip member, and the SHA-256 over metadata and weights, which is required (a file
without it loads only with ``trust_unverified=True`` or ``GCSBI_TRUST_UNVERIFIED=1``). Then the
required keys and their types, and that every floating-point tensor is finite. The metadata
can name only gcsbi's own embedding classes (:data:`gcsbi.nets.recipe.EMBEDDINGS`), and the
architecture and ``x_shape`` it declares must fit the weights actually stored, so a file cannot
make gcsbi import code or allocate far more memory than the file holds. Any failure is a
:class:`GcsbiFileError`. It then rebuilds the estimator from the stored config
(``sbi.neural_nets.posterior_nn``) and the embedding net from its recipe, and loads the state
dict strictly.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import GcsbiError, GcsbiFileError, GcsbiValueError, SpecError, one_line
from ..integrity import read_model_file
from ..spec.priors import NamedBoxPrior, ParameterSpec
from ..nets.recipe import build_embedding
from .config import TrainConfig, build_estimator
from .posterior import TrainedPosterior, pool_images
from .seeding import seeded
from .serialize import FORMAT, FORMAT_VERSION, save_posterior, weights_digest

__all__ = ["save_posterior", "load_posterior", "shipped_posteriors", "spec_differences", "weights_digest",
           "FORMAT", "FORMAT_VERSION"]

#: Keys every checkpoint must have, at the top level and inside ``meta``.
REQUIRED_KEYS = ("format", "format_version", "meta", "state_dict", "reference_embeddings")
REQUIRED_META_KEYS = ("spec", "prior", "config", "history", "versions", "x_shape", "embedding")

#: Largest observation (elements of one x) a checkpoint may declare: 4 x 1024 x 1024.
MAX_X_ELEMENTS = 1 << 22

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


def _prior_from_dict(d: dict[str, Any], device: str) -> NamedBoxPrior:
    specs = tuple(ParameterSpec(p["name"], float(p["low"]), float(p["high"]), p.get("unit", ""),
                                p.get("description", "")) for p in d["parameters"])
    return NamedBoxPrior(specs, name=d.get("name", "prior"), description=d.get("description", ""), device=device)


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


def _check_payload(path: Path, payload: dict[str, Any]) -> None:
    """Required keys with the right types, the stored digest (if any), and finite numbers."""
    missing = [k for k in REQUIRED_KEYS if k not in payload]
    if missing:
        raise GcsbiFileError(f"{path}: checkpoint is incomplete: missing key(s) {', '.join(missing)}")
    state, ref = payload["state_dict"], payload["reference_embeddings"]
    if not isinstance(state, dict) or not all(isinstance(k, str) and torch.is_tensor(v) for k, v in state.items()):
        raise GcsbiFileError(f"{path}: checkpoint key 'state_dict' is not a mapping of names to tensors")
    if not torch.is_tensor(ref) or ref.ndim != 2 or not ref.is_floating_point():
        raise GcsbiFileError(f"{path}: checkpoint key 'reference_embeddings' must be a 2-D float tensor, got "
                             + (f"shape {tuple(ref.shape)}, dtype {ref.dtype}" if torch.is_tensor(ref)
                                else type(ref).__name__))
    stored = payload.get("weights_sha256")
    if stored is not None and stored != weights_digest(state, ref):
        raise GcsbiFileError(f"{path}: checkpoint is corrupt: its weights do not match the SHA-256 digest stored "
                             "at save time (modified after saving?)")
    named = [*sorted(state.items()), ("reference_embeddings", ref)]
    bad = [k for k, v in named if (v.is_floating_point() or v.is_complex()) and not bool(torch.isfinite(v).all())]
    if bad:
        shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise GcsbiFileError(f"{path}: checkpoint is corrupt: non-finite (NaN or inf) values in {shown}")


def _read(path: Path, trust_unverified: bool | None) -> dict[str, Any]:
    payload = read_model_file(path, fmt=FORMAT, what="posterior checkpoint", trust_unverified=trust_unverified)
    try:
        version = int(payload.get("format_version", -1))
    except (TypeError, ValueError):
        version = -1
    if version > FORMAT_VERSION:
        raise GcsbiFileError(f"{path}: checkpoint format {payload.get('format_version')} is newer than "
                             f"this gcsbi understands ({FORMAT_VERSION}); upgrade gcsbi")
    _check_payload(path, payload)
    try:
        payload["meta"] = json.loads(payload["meta"])
    except (TypeError, ValueError) as exc:
        raise GcsbiFileError(f"{path}: checkpoint metadata is damaged: {exc}") from exc
    if not isinstance(payload["meta"], dict):
        raise GcsbiFileError(f"{path}: checkpoint metadata is damaged: not a JSON object")
    missing = [k for k in REQUIRED_META_KEYS if k not in payload["meta"]]
    if missing:
        raise GcsbiFileError(f"{path}: checkpoint metadata is incomplete: missing key(s) {', '.join(missing)}")
    return payload


def _check_sizes(path: Path, config: TrainConfig, x_shape: tuple[int, ...], recipe: dict[str, Any] | None,
                 state: dict[str, torch.Tensor], trusted: tuple[str, ...]) -> None:
    """The declared shapes must fit the stored weights before anything of that size is allocated."""
    n_x = math.prod(x_shape)
    if len(x_shape) > 4 or n_x > MAX_X_ELEMENTS:
        raise GcsbiFileError(f"{path}: checkpoint declares observations of shape {x_shape} ({n_x} values); "
                             f"gcsbi reads at most 4 dimensions and {MAX_X_ELEMENTS} values")
    stored = sum(int(v.numel()) for v in state.values())
    # every transform of sbi's flows and mixtures holds at least one hidden x hidden layer
    declared = int(config.num_transforms) * int(config.hidden_features) ** 2
    if declared > 2 * stored + 10**6:
        raise GcsbiFileError(f"{path}: checkpoint declares a flow ({config.num_transforms} transforms of width "
                             f"{config.hidden_features}) far larger than the {stored} weights it stores")
    if recipe is None:  # the caller gave the embedding net
        return
    with torch.device("meta"):  # counts the embedding's parameters without allocating them
        emb = build_embedding(recipe, trusted=trusted)
    n_emb = sum(int(v.numel()) for v in emb.state_dict().values())
    if n_emb > stored:
        raise GcsbiFileError(f"{path}: checkpoint declares an embedding net of {n_emb} parameters, more than the "
                             f"{stored} weights it stores")


def load_posterior(path: str | Path, *, expected_spec: dict[str, Any] | None = None,
                   embedding_net: nn.Module | None = None, device: str = "cpu",
                   trusted: tuple[str, ...] = (), trust_unverified: bool | None = None) -> TrainedPosterior:
    """Rebuild a posterior from ``path`` (a file, or a shipped name from :func:`shipped_posteriors`)
    without retraining.

    Args:
        expected_spec: if given, the stored simulator/prior spec must equal it, else ``SpecError``
            naming the differing keys.
        embedding_net: a fresh instance of the embedding architecture, needed only when the
            stored net has no ``config`` (or its class is not one of gcsbi's and not ``trusted``).
        trusted: ``"module:Class"`` names (or ``"package."`` prefixes) of your own embedding
            classes that the checkpoint may name.
        trust_unverified: load a file that carries no SHA-256 (older gcsbi); default: the
            ``GCSBI_TRUST_UNVERIFIED`` environment variable. A digest that does not match is
            always refused.
    Raises GcsbiFileError for a missing, corrupt, truncated or unverifiable file.
    """
    path = _resolve(path)
    payload = _read(path, trust_unverified)
    meta = payload["meta"]
    if expected_spec is not None:
        diff = spec_differences(meta["spec"], expected_spec)
        if diff:
            raise SpecError(f"{path}: the posterior was trained for a different simulator/prior spec; "
                            f"differing keys: {', '.join(diff)}")
    try:
        overrides: dict[str, Any] = {"device": device}
        if "init_embedding" not in meta["config"]:  # not recorded: fine-tuned embeddings start from the parent's
            overrides["init_embedding"] = "init_from" not in meta["history"]
        config = TrainConfig.from_dict(meta["config"], **overrides)
        prior = _prior_from_dict(meta["prior"], device)
        x_shape = tuple(int(s) for s in meta["x_shape"])
        if not x_shape or min(x_shape) < 1 or not isinstance(meta["embedding"], dict):
            raise ValueError(f"x_shape {meta['x_shape']!r} / embedding {type(meta['embedding']).__name__}")
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise GcsbiFileError(f"{path}: checkpoint metadata is incomplete or damaged: {one_line(exc)}") from exc
    try:
        _check_sizes(path, config, x_shape, None if embedding_net is not None else meta["embedding"],
                     payload["state_dict"], trusted)
        emb = embedding_net if embedding_net is not None else build_embedding(meta["embedding"], trusted=trusted)
        with seeded(0):  # dummy batch only fixes shapes; weights and z-score buffers come from the file
            theta0 = prior.sample((8,))
            x0 = torch.randn((8, *x_shape))
            estimator = build_estimator(config, emb, theta0, pool_images(x0, config.x_pool))
    except GcsbiFileError:
        raise
    except GcsbiError as exc:  # e.g. an embedding class that is not gcsbi's own
        raise GcsbiFileError(f"{path}: {one_line(exc)}") from exc
    except Exception as exc:  # whatever the rebuilt modules raise on metadata they cannot use
        why = "the embedding net has no parameters" if isinstance(exc, StopIteration) else \
            f"{type(exc).__name__}: {one_line(exc)}"
        raise GcsbiFileError(f"{path}: cannot rebuild the network from the checkpoint metadata: {why}") from exc
    try:
        estimator.load_state_dict(payload["state_dict"], strict=True)
    except (RuntimeError, KeyError, TypeError) as exc:
        raise GcsbiValueError(f"{path}: weights do not fit the rebuilt network (wrong embedding_net?): "
                              f"{one_line(exc)}") from exc
    return TrainedPosterior(estimator=estimator.to(device), prior=prior, spec=meta["spec"], config=config,
                            history=meta["history"], x_shape=x_shape, embedding_recipe=meta["embedding"],
                            reference_embeddings=payload["reference_embeddings"], versions=meta["versions"])
