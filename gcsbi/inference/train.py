"""Neural posterior estimation (sbi ``NPE``) with an image embedding net, seeded and tidy.

``train(theta, x, simulator=sim, embedding_net=net, config=TrainConfig(...))`` returns a
:class:`~gcsbi.inference.posterior.TrainedPosterior`; nothing is written to the working
directory (sbi's TensorBoard tracker is replaced by an in-memory one) and the global torch RNG
is left untouched (``torch.random.fork_rng``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import GcsbiRuntimeError, GcsbiValueError, SpecError
from ..nets.recipe import build_embedding, embedding_recipe
from . import sbi_compat
from .config import ARCHITECTURE_FIELDS, TrainConfig, build_estimator
from .posterior import TrainedPosterior, pool_images, prior_and_spec
from .seeding import seeded

__all__ = ["train"]

_DROPOUT = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d)


def _check_data(theta: Any, x: Any, prior: Any) -> tuple[torch.Tensor, torch.Tensor, int]:
    theta = prior.check(theta) if hasattr(prior, "check") else torch.as_tensor(theta, dtype=torch.float32)
    x = torch.as_tensor(x, dtype=torch.float32)
    if x.ndim < 2:
        raise GcsbiValueError(f"x must have shape (B, C, H, W) (or (B, F)), got {tuple(x.shape)}")
    if len(theta) != len(x):
        raise GcsbiValueError(f"theta and x differ in length: {len(theta)} vs {len(x)}")
    if hasattr(prior, "in_support") and not bool(prior.in_support(theta).all()):
        raise GcsbiValueError(f"{int((~prior.in_support(theta)).sum())} theta rows lie outside the prior box")
    ok = torch.isfinite(x.reshape(len(x), -1)).all(1)
    n_bad = int((~ok).sum())
    if n_bad == len(x):
        raise GcsbiValueError("every simulation x contains NaN or inf")
    if n_bad == 0:  # no copy of a (possibly many-GB) x
        return theta, x, 0
    return theta[ok], x[ok], n_bad


def _parent(init_from: Any, spec: dict[str, Any], new_simulator: bool = False) -> TrainedPosterior | None:
    """The posterior to fine-tune (loaded if a path or name), checked against ``spec``."""
    if init_from is None:
        if new_simulator:
            raise GcsbiValueError("new_simulator=True applies only with init_from")
        return None
    from .checkpoint import load_posterior, spec_differences

    parent = init_from if isinstance(init_from, TrainedPosterior) else load_posterior(init_from)
    diff = spec_differences(parent.spec, dict(spec))
    if new_simulator:  # the simulator may differ (it is why we refit), the prior and parameters may not
        diff = [k for k in diff if not k.startswith("simulator.")]
        if not spec_differences(parent.spec, dict(spec)):
            raise GcsbiValueError("new_simulator=True, but init_from was trained on this very simulator")
    if diff:
        raise SpecError(f"init_from was trained for a different simulator/prior spec; differing keys: {', '.join(diff)}")
    return parent


def _effective_config(config: TrainConfig, parent: TrainedPosterior | None, embedding_net: Any,
                      pooled_from: Any) -> TrainConfig:
    """``config`` with the parent's architecture; raises for every option that would not apply."""
    if not isinstance(config, TrainConfig):
        raise GcsbiValueError(f"config must be a TrainConfig, got {type(config).__name__}")
    if parent is None:
        if not config.train_embedding:
            raise GcsbiValueError("train_embedding=False keeps a trained embedding fixed: give init_from")
    else:
        default = TrainConfig()
        clash = [f"{f}={getattr(config, f)!r} (init_from has {getattr(parent.config, f)!r})"
                 for f in ARCHITECTURE_FIELDS
                 if getattr(config, f) != getattr(default, f) and getattr(config, f) != getattr(parent.config, f)]
        if clash:
            raise GcsbiValueError(f"{', '.join(clash)}: the architecture fields ({', '.join(ARCHITECTURE_FIELDS)}) "
                                  "come from init_from; leave them at their defaults")
        if not config.train_embedding and embedding_net is not None:
            raise GcsbiValueError("embedding_net does not apply with train_embedding=False: the embedding of "
                                  "init_from is kept as it is; leave embedding_net out")
        config = dataclasses.replace(config, init_embedding=False,
                                     **{f: getattr(parent.config, f) for f in ARCHITECTURE_FIELDS})
    if pooled_from is not None and config.x_pool == 1:
        raise GcsbiValueError("pooled_from does not apply with x_pool=1 (x is used as it is); leave it out")
    return config


def _unpooled_shape(x: torch.Tensor, k: int, pooled_from: Sequence[int] | None) -> tuple[int, ...]:
    """The observation shape the posterior expects: x's, or ``pooled_from`` if x was pooled already."""
    if pooled_from is None:
        return tuple(int(s) for s in x.shape[1:])
    shape = tuple(int(s) for s in pooled_from)
    if len(shape) != 3 or tuple(x.shape[1:]) != (shape[0], shape[1] // k, shape[2] // k):
        raise GcsbiValueError(f"x of shape {tuple(x.shape[1:])} is not images of shape {shape} pooled by "
                              f"x_pool={k}")
    return shape


def _set_dropout(module: nn.Module, p: float | None) -> None:
    if p is not None:
        for m in module.modules():
            if isinstance(m, _DROPOUT):
                m.p = float(p)


def train(theta: Any, x: Any, *, simulator: Any = None, prior: Any = None, spec: dict[str, Any] | None = None,
          embedding_net: nn.Module | None = None, config: TrainConfig = TrainConfig(),
          init_from: TrainedPosterior | str | Path | None = None, pooled_from: Sequence[int] | None = None,
          out: str | Path | None = None, verbose: bool = False, progress: bool = False,
          new_simulator: bool = False) -> TrainedPosterior:
    """Train NPE (sbi ``NPE``, default NSF flow) on (theta, x) with ``embedding_net``.

    Args:
        theta: (N, D) parameters drawn from the prior; x: (N, C, H, W) simulations (or (N, F)).
        simulator: anything with ``.prior`` (a ``NamedBoxPrior``) and ``.spec`` (JSON-able simulator
            + prior description, stored in the checkpoint and checked on load); or give ``prior`` and
            ``spec`` themselves.
        embedding_net: any ``nn.Module`` (B, C, H, W) -> (B, F); give it a ``config`` dict of
            constructor kwargs so checkpoints can rebuild it. Trained in place.
        config: the estimator and its training (:class:`TrainConfig`; each field documents itself).
        init_from: a posterior (or checkpoint path/name) to start from: its weights, z-scoring,
            architecture (the :data:`ARCHITECTURE_FIELDS` of ``config`` must stay at their defaults
            or equal the parent's) and embedding (``embedding_net``, if given, is a fresh instance of
            it); its spec must equal ``spec``. ``history["init_from"]`` records its training history.
            With ``config.train_embedding=False`` its embedding is kept fixed and only its flow is
            trained, on the embedded x (fast: the images are embedded once).
        new_simulator: allow ``init_from`` to come from another version of the simulator (same prior
            and parameters): its weights are the starting point of a refit on the new simulator's
            simulations; the new posterior records the new spec, ``history["init_from"]`` the old one.
        pooled_from: x was already reduced by ``pool_images(x, config.x_pool)`` from images of this
            shape (C, H, W), e.g. bank by bank to save memory; the checkpoint expects (C, H, W) images.
        out: if given, the checkpoint is written there.
        verbose: sbi's progress bars and training summary (printed to stdout, as sbi does).
        progress: a bar counting the training epochs on stderr (when not ``verbose``).
    Rows whose x contains NaN/inf are dropped (counted in ``history["n_invalid_dropped"]``). An option
    that does not apply to this call raises :class:`GcsbiValueError`.
    """
    from sbi.inference import NPE

    prior, spec = prior_and_spec(simulator, prior, spec)
    parent = _parent(init_from, spec, new_simulator)
    config = _effective_config(config, parent, embedding_net, pooled_from)
    if parent is not None and config.train_embedding and embedding_net is None:
        embedding_net = build_embedding(parent.embedding_recipe)
    if config.train_embedding and not isinstance(embedding_net, nn.Module):
        raise GcsbiValueError(f"embedding_net must be a torch.nn.Module, got {type(embedding_net).__name__}")
    theta, x, n_bad = _check_data(theta, x, prior)
    x_shape = _unpooled_shape(x, config.x_pool, pooled_from)
    n_val = len(x) - int((1 - config.validation_fraction) * len(x))
    if n_val < 2 or len(x) - n_val < 2:
        raise GcsbiValueError(f"need more simulations: {len(x)} give {n_val} validation rows")
    recipe = embedding_recipe(embedding_net) if config.train_embedding else parent.embedding_recipe
    t0 = time.perf_counter()
    with seeded(config.seed, config.device):
        if config.init_embedding:
            for module in embedding_net.modules():
                if callable(getattr(module, "reset_parameters", None)):
                    module.reset_parameters()

        x_in = x if pooled_from is not None else pool_images(x, config.x_pool)
        head = None
        if not config.train_embedding:  # the flow alone, on features of the parent's fixed embedding
            x_in = parent._embed_conditioned(x_in).to(torch.float32)
            head = sbi_compat.with_embedding(parent.estimator, nn.Identity(), condition_shape=x_in.shape[1:])
            _set_dropout(head, config.dropout)

        def builder(batch_theta: torch.Tensor, batch_x: torch.Tensor) -> nn.Module:
            if head is not None:
                return head
            estimator = build_estimator(config, embedding_net, batch_theta, batch_x)
            if parent is not None:
                estimator.load_state_dict(parent.estimator.state_dict(), strict=True)
            _set_dropout(estimator, config.dropout)
            return estimator

        npe = NPE(prior=prior, density_estimator=builder, device=config.device, tracker=sbi_compat.MemoryTracker(),
                  show_progress_bars=bool(verbose or progress))
        own = sbi_compat.quiet("own_zscore") if config.z_score_x == "channel" else contextlib.nullcontext()
        with own:
            npe.append_simulations(theta, x_in)
        sink = (contextlib.nullcontext() if verbose else sbi_compat.epoch_progress() if progress
                else contextlib.redirect_stdout(io.StringIO()))
        try:
            with sink:
                estimator = sbi_compat.train_in_stages(
                    npe, learning_rate=config.learning_rate, refine_learning_rates=config.refine_learning_rates,
                    max_num_epochs=config.max_num_epochs, training_batch_size=config.batch_size,
                    validation_fraction=config.validation_fraction, stop_after_epochs=config.stop_after_epochs,
                    clip_max_norm=config.clip_max_norm)
        except (RuntimeError, ValueError) as exc:
            raise GcsbiRuntimeError(f"NPE training failed: {exc}") from exc
        if head is not None:
            estimator = sbi_compat.with_embedding(estimator, parent.estimator.embedding_net,
                                                  condition_shape=parent.estimator.condition_shape)
    history = {**sbi_compat.npe_history(npe), "n_simulations": int(len(x)), "n_validation": int(n_val),
               "n_invalid_dropped": n_bad, "wall_time_s": round(time.perf_counter() - t0, 3)}
    if parent is not None:
        history["init_from"] = {k: parent.history.get(k) for k in
                                ("n_simulations", "epochs_trained", "best_validation_loss", "init_from")}
        if new_simulator:
            history["init_from"]["simulator"] = parent.spec.get("simulator")
    result = TrainedPosterior(estimator=estimator, prior=prior, spec=spec, config=config, history=history,
                              x_shape=x_shape, embedding_recipe=recipe, reference_embeddings=torch.empty(0))
    # reference set for OOD checks: held-out validation rows first, then training rows
    ref_idx = torch.cat(sbi_compat.split_indices(npe))[: config.n_reference]
    ref = x_in[ref_idx]  # pooled images, or features when the embedding was kept fixed
    result.reference_embeddings = (result._embed_conditioned(ref) if head is None else ref.clone()).to(torch.float32)
    if out is not None:
        result.save(out)
    return result
