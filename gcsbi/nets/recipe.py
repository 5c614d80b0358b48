"""The recipe that lets a checkpoint rebuild any embedding net.

A checkpoint stores weights, never pickled objects. To rebuild the embedding network it
records ``"module:QualName"`` of its class and its constructor keyword arguments, read from
the net's ``config`` attribute (a JSON-serialisable dict). Nets without ``config`` can still be
saved; loading them then needs a fresh instance passed as ``load_posterior(embedding_net=...)``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
from typing import Any

import torch
from torch import nn

from ..errors import GcsbiValueError

__all__ = ["embedding_recipe", "build_embedding", "weights_digest"]

#: The only classes a checkpoint may name (embedding nets and their config dataclasses): a
#: file must not be able to make gcsbi import and call code of its choosing. Other classes need
#: the caller's explicit ``trusted=`` (exact names or ``"package."`` prefixes).
EMBEDDINGS: frozenset[str] = frozenset({
    "gcsbi.nets.pidoc:PiDocEmbedding",
    "gcsbi.nets.pidoc:PiDocConfig",
    "gcsbi.nets.small:SmallCNN",
    "gcsbi.nets.mlp:CatalogueMLP",
    "torch.nn:Identity",
})

#: Where classes named in older checkpoints live now.
MOVED: dict[str, str] = {
    "gcsbi.catalogue.embedding:CatalogueMLP": "gcsbi.nets.mlp:CatalogueMLP",
    "gcsbi.inference.embedding:SmallCNN": "gcsbi.nets.small:SmallCNN",
}


def embedding_recipe(net: nn.Module) -> dict[str, Any]:
    """``{"class": "module:QualName", "kwargs": dict | None}`` describing how to rebuild ``net``."""
    cls = type(net)
    config = getattr(net, "config", None)
    recipe: dict[str, Any] = {"class": f"{cls.__module__}:{cls.__qualname__}", "kwargs": None}
    if isinstance(net, nn.Identity):
        config = {}
    if dataclasses.is_dataclass(config) and hasattr(cls, "from_config"):
        # e.g. PiDocEmbedding(config=PiDocConfig): rebuilt as cls.from_config(ConfigClass(**kwargs))
        ccls = type(config)
        recipe["config_class"] = f"{ccls.__module__}:{ccls.__qualname__}"
        config = dataclasses.asdict(config)
    if isinstance(config, dict):
        try:
            recipe["kwargs"] = json.loads(json.dumps(config))
        except (TypeError, ValueError):
            recipe["kwargs"] = None
    return recipe


def build_embedding(recipe: dict[str, Any], *, trusted: tuple[str, ...] = ()) -> nn.Module:
    """Instantiate a fresh (untrained) embedding net from :func:`embedding_recipe`'s output."""
    target = str(recipe.get("class", ""))
    kwargs = recipe.get("kwargs")
    if kwargs is None:
        raise GcsbiValueError(
            f"the checkpoint's embedding net {target!r} has no 'config' attribute, so it cannot be "
            "rebuilt automatically; pass a fresh instance: load_posterior(..., embedding_net=net)")
    obj = _import(target, trusted)
    if not (isinstance(obj, type) and issubclass(obj, nn.Module)):
        raise GcsbiValueError(f"{target!r} is not a torch.nn.Module subclass")
    try:
        if recipe.get("config_class"):
            ccls = _import(str(recipe["config_class"]), trusted)
            if not dataclasses.is_dataclass(ccls):
                raise GcsbiValueError(f"{recipe['config_class']!r} is not a dataclass")
            return obj.from_config(ccls(**kwargs))
        return obj(**kwargs)
    except TypeError as exc:
        raise GcsbiValueError(f"cannot rebuild embedding {target!r} from its stored config: {exc}") from exc


def _import(target: str, trusted: tuple[str, ...]) -> Any:
    target = MOVED.get(target, target)
    module_name, _, qualname = target.partition(":")
    private = any(part.startswith("_") for part in module_name.split("."))
    user = any(target == t or (t.endswith(".") and module_name.startswith(t)) for t in trusted)
    if target not in EMBEDDINGS and (private or not user):
        shown = target.encode("unicode_escape").decode()[:120]
        raise GcsbiValueError(
            f"refusing to import {shown!r} named in a file: not one of gcsbi's embedding classes "
            f"({', '.join(sorted(EMBEDDINGS))}); for your own class pass trusted=('module:Class',) "
            "or a fresh instance as embedding_net=")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise GcsbiValueError(f"cannot import {target!r}: {exc}") from exc
    return obj


def weights_digest(state_dict: dict[str, torch.Tensor], reference_embeddings: torch.Tensor) -> str:
    """Hex SHA-256 over the weights and reference embeddings.

    Each tensor contributes its name, dtype, shape and raw bytes, the state dict in sorted key
    order and the reference embeddings last, so the digest depends on the numbers only (not on
    how ``torch.save`` laid out the zip archive).
    """
    h = hashlib.sha256()
    items = sorted(state_dict.items()) + [("<reference_embeddings>", reference_embeddings)]
    for name, t in items:
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()
