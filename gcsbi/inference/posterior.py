"""An amortised posterior q(theta | x) with what it takes to sample, save, reload and check it.

A :class:`TrainedPosterior` comes from :func:`gcsbi.inference.train`, from
:func:`gcsbi.inference.load_posterior`, or from a posterior trained with sbi itself
(:meth:`TrainedPosterior.from_sbi`). It samples like sbi's ``DirectPosterior``
(``sample((n,), x=x)``, ``set_default_x``), and keeps the prior, the simulator spec, the
training config and history, the embedding recipe and reference embeddings (for the
out-of-distribution test of :func:`gcsbi.infer`) that a checkpoint stores.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import numbers
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import GcsbiValueError
from ..nets.recipe import embedding_recipe
from . import sbi_compat
from .config import ESTIMATORS, TrainConfig, build_estimator
from .seeding import seeded
from .serialize import save_posterior

__all__ = ["TrainedPosterior", "pool_images", "package_versions", "prior_and_spec"]


def pool_images(x: torch.Tensor, factor: int, *, chunk: int = 1024) -> torch.Tensor:
    """Average-pool images (B, C, H, W) by ``factor`` chunk by chunk (only the output is allocated)."""
    k = int(factor)
    if k == 1:
        return x
    if x.ndim != 4 or x.shape[-1] < k or x.shape[-2] < k:
        raise GcsbiValueError(f"x_pool={k} needs images (B, C, H, W) of at least {k} px, got {tuple(x.shape)}")
    out = torch.empty((len(x), x.shape[1], x.shape[2] // k, x.shape[3] // k), dtype=torch.float32)
    for s in range(0, len(x), chunk):
        out[s:s + chunk] = torch.nn.functional.avg_pool2d(x[s:s + chunk].to(torch.float32), k)
    return out


def package_versions() -> dict[str, str]:
    import sbi

    from .. import __version__

    return {"gcsbi": __version__, "torch": torch.__version__, "sbi": sbi.__version__, "numpy": np.__version__}


def prior_and_spec(simulator: Any, prior: Any, spec: Any) -> tuple[Any, dict[str, Any]]:
    """(prior, spec) from ``simulator`` (its ``.prior`` and ``.spec``) or given as such, not both."""
    if simulator is not None:
        if prior is not None or spec is not None:
            raise GcsbiValueError("give simulator= or prior= and spec=, not both: the simulator supplies its "
                                  "prior and spec")
        if not (hasattr(simulator, "prior") and hasattr(simulator, "spec")):
            raise GcsbiValueError(f"simulator must have .prior and .spec, got {type(simulator).__name__}")
        prior, spec = simulator.prior, simulator.spec
    if prior is None or spec is None:
        raise GcsbiValueError("give simulator= (anything with .prior and .spec), or both prior= and spec= (the "
                              "JSON-able simulator + prior description stored in the checkpoint)")
    if not isinstance(spec, dict):
        raise GcsbiValueError(f"spec must be a dict, got {type(spec).__name__}")
    return prior, dict(spec)


class TrainedPosterior:
    """An amortised posterior q(theta | x) with everything needed to save, reload and check it.

    Attributes: ``posterior`` (sbi ``DirectPosterior``), ``estimator`` (its density estimator),
    ``prior``, ``spec``, ``config`` (:class:`TrainConfig`), ``history``, ``x_shape``,
    ``embedding_recipe``, ``reference_embeddings`` (embedded held-out training x, for OOD checks),
    ``default_x`` (set by :meth:`set_default_x`).
    """

    def __init__(self, *, estimator: nn.Module, prior: Any, spec: dict[str, Any], config: TrainConfig,
                 history: dict[str, Any], x_shape: tuple[int, ...], embedding_recipe: dict[str, Any],
                 reference_embeddings: torch.Tensor, versions: dict[str, str] | None = None) -> None:
        from sbi.inference import DirectPosterior

        self.estimator = estimator.eval()
        self.prior = prior
        self.spec = spec
        self.config = config
        self.history = history
        self.x_shape = tuple(int(s) for s in x_shape)
        self.embedding_recipe = embedding_recipe
        self.reference_embeddings = reference_embeddings
        self.versions = versions or package_versions()
        self.last_acceptance: torch.Tensor | None = None
        self.default_x: torch.Tensor | None = None
        with torch.random.fork_rng(devices=[]):  # sbi's prior checks draw from the global RNG
            self.posterior = DirectPosterior(posterior_estimator=self.estimator, prior=prior, device=config.device)

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(getattr(self.prior, "names", [f"theta_{i}" for i in range(int(self.prior.event_shape[0]))]))

    @property
    def units(self) -> dict[str, str]:
        return dict(getattr(self.prior, "units", {n: "" for n in self.param_names}))

    def condition(self, x: Any) -> torch.Tensor:
        """The density estimator's input for observations x (B, *x_shape): float32, pooled by ``x_pool``."""
        return pool_images(torch.as_tensor(x, dtype=torch.float32), self.config.x_pool)

    def set_default_x(self, x: Any) -> TrainedPosterior:
        """Observation (*x_shape) used by :meth:`sample` and :meth:`log_prob` when they get no ``x``."""
        self.default_x = self._one_observation(x)[0]
        return self

    def _one_observation(self, x: Any) -> torch.Tensor:
        """One observation as a batch (1, *x_shape); ``x`` None: the default one."""
        if x is None:
            if self.default_x is None:
                raise GcsbiValueError("give an observation x, or set one with set_default_x(x)")
            x = self.default_x
        x = torch.as_tensor(x, dtype=torch.float32)
        xb = x[None] if x.ndim == len(self.x_shape) else x
        if tuple(xb.shape) != (1, *self.x_shape):
            raise GcsbiValueError(f"x must be one observation of shape {self.x_shape} (or (1, ...)), got "
                                  f"{tuple(x.shape)}; use sample_batched for several observations")
        return xb

    def sample(self, sample_shape: Any = torch.Size(), x: Any = None, *, seed: int | None = None,
               show_progress_bars: bool = False) -> torch.Tensor:
        """Draws (*sample_shape, D) given one observation ``x`` (*x_shape), like sbi's ``DirectPosterior.sample``.

        ``sample_shape``: a tuple, or an int (``sample(1000, x)`` is ``sample((1000,), x)``); ``x``
        defaults to :attr:`default_x`. Without ``seed`` the draws come from torch's global RNG (successive
        calls differ); with an int ``seed`` they are reproducible and the global RNG is left untouched.
        Draws outside the prior are rejected (see :meth:`sample_batched`).
        """
        shape = (torch.Size((int(sample_shape),)) if isinstance(sample_shape, numbers.Integral)
                 else torch.Size(sample_shape))
        xb = self._one_observation(x)
        rng = contextlib.nullcontext() if seed is None else seeded(int(seed), self.config.device)
        with rng:
            return self.sample_batched(shape, xb, show_progress_bars=show_progress_bars)[..., 0, :]

    def sample_batched(self, sample_shape: tuple[int, ...], x: torch.Tensor, show_progress_bars: bool = False,
                       reject_outside_prior: bool = True, min_acceptance: float = 0.01,
                       **kwargs: Any) -> torch.Tensor:
        """sbi-style batched sampling (*sample_shape, B, D) for B observations (uses the global torch RNG).

        Draws outside the prior are rejected, except for observations whose estimated in-prior
        mass (``last_acceptance``, from 256 probe draws) is below ``min_acceptance``: rejection
        would take forever, so their raw flow draws are returned (``infer`` flags them).
        """
        n = int(torch.Size(sample_shape).numel())
        x = self.condition(x).to(self.config.device)
        with torch.no_grad(), sbi_compat.quiet("probe"):
            probe = self.posterior.sample_batched((256,), x=x, show_progress_bars=False,
                                                  reject_outside_prior=False,
                                                  max_sampling_batch_size=max(1, 100_000 // len(x)))
            acc = self.prior.in_support(probe.reshape(-1, probe.shape[-1]).to(self.prior.low.device))
            acc = acc.reshape(probe.shape[:2]).float().mean(0).cpu()
            self.last_acceptance = acc
            good = acc >= min_acceptance if reject_outside_prior else torch.zeros(len(x), dtype=torch.bool)
            out = torch.empty((n, len(x), probe.shape[-1]), dtype=torch.float32)
            for mask, reject in ((good, True), (~good, False)):
                if bool(mask.any()):
                    xs = x[mask.to(x.device)]
                    with sbi_compat.quiet("sampling" if reject else "probe"):  # no-reject: infer warns itself
                        out[:, mask] = self.posterior.sample_batched(
                            (n,), x=xs, show_progress_bars=show_progress_bars, reject_outside_prior=reject,
                            max_sampling_batch_size=max(1, 100_000 // len(xs))).cpu().float()
        return out.reshape(*torch.Size(sample_shape), len(x), -1)

    def log_prob(self, theta: torch.Tensor, x: Any = None) -> torch.Tensor:
        """log q(theta | x) (sbi's, corrected for the mass outside the prior); ``x`` defaults to :attr:`default_x`."""
        x = self._one_observation(x) if x is None else x
        with torch.no_grad():
            return self.posterior.log_prob(theta, x=self.condition(x)).cpu()

    def embed(self, x: torch.Tensor, *, batch_size: int = 512) -> torch.Tensor:
        """Embedding-net features (after the input standardisation) of x (B, C, H, W) -> (B, F)."""
        return self._embed_conditioned(self.condition(x), batch_size=batch_size)

    def standardized_extent(self, x: Any) -> torch.Tensor | None:
        """Per observation of x (B, *x_shape), the largest |x - mean| / std of the input standardisation (float64).

        ``mean`` and ``std`` are the estimator's own (after ``x_pool``); with sbi's per-pixel z-scoring
        the std of every pixel is taken as its channel's largest, so that a pixel nearly constant in
        training does not blow the ratio up. inf for an observation with NaN/inf values; None when the
        estimator does not standardise x.
        """
        kind, _ = sbi_compat.split_standardization(self.estimator.embedding_net)
        if kind == "none":
            return None
        layer = self.estimator.embedding_net[0]
        mean, std = (layer.mean, layer.std) if kind == "channel" else (layer._mean, layer._std)
        mean, std = mean.detach().cpu().double(), std.detach().cpu().double()
        x = torch.as_tensor(x).detach().cpu().double()
        if int(self.config.x_pool) != 1:
            x = torch.nn.functional.avg_pool2d(x, int(self.config.x_pool))
        if kind == "channel":
            shape = (1, -1) + (1,) * (x.ndim - 2)
            mean, std = mean.reshape(shape), std.reshape(shape)
        elif kind == "independent" and std.ndim > 1:
            std = std.amax(dim=tuple(range(1, std.ndim)), keepdim=True)
        ratio = torch.nan_to_num((x - mean).abs() / std, nan=float("inf"))
        return ratio.reshape(len(x), -1).amax(1)

    def _embed_conditioned(self, x: torch.Tensor, *, batch_size: int = 512) -> torch.Tensor:
        net = self.estimator.embedding_net
        out = []
        with torch.no_grad():
            for s in range(0, len(x), batch_size):
                out.append(net(x[s:s + batch_size].to(self.config.device)).reshape(len(x[s:s + batch_size]), -1).cpu())
        return torch.cat(out)

    def save(self, path: str | Path) -> Path:
        return save_posterior(self, path)

    def __repr__(self) -> str:
        return (f"TrainedPosterior({self.config.density_estimator}, params={self.param_names}, "
                f"x_shape={self.x_shape}, epochs={self.history.get('epochs_trained')})")

    @classmethod
    def from_sbi(cls, posterior_or_estimator: Any, *, prior: Any = None, spec: dict[str, Any] | None = None,
                 simulator: Any = None, x_shape: tuple[int, ...] | None = None, reference_x: Any = None,
                 n_reference: int | None = None, config: TrainConfig | None = None,
                 inference: Any = None) -> TrainedPosterior:
        """Wrap a posterior trained with sbi's own ``NPE`` for ``gcsbi.infer``, ``gcsbi.calibrate`` and ``save``.

        Args:
            posterior_or_estimator: ``npe.build_posterior()`` (a ``DirectPosterior``), its
                ``posterior_estimator``, or the trained ``NPE`` object itself.
            prior, spec, simulator: as for :func:`~gcsbi.inference.train`: ``simulator`` (with
                ``.prior`` and ``.spec``), or ``spec`` with ``prior`` (default: the posterior's prior).
            x_shape: the observation shape (default: the estimator's ``condition_shape``).
            reference_x: simulations (N, *x_shape) from the training distribution, ideally not used in
                training; the first ``n_reference`` are embedded for the out-of-distribution test of
                ``infer`` (without them, ``infer`` reports the test as not run).
            n_reference: default ``config.n_reference`` (500).
            config: how the estimator was built, when not with sbi's ``posterior_nn`` defaults
                (``hidden_features``, ``num_transforms``, ``num_bins``, ``density_estimator``; with the
                latter at its default, the kind is found among the sbi estimators). ``z_score_x`` is
                read from the estimator.
            inference: the ``NPE`` object that trained it, for ``history`` (epochs, losses).
        The estimator's weights must match a rebuild from ``config`` and the embedding's recipe, so that a
        checkpoint (``save``) reloads it; the embedding net needs a ``config`` for ``load_posterior`` to
        rebuild it (``PiDocEmbedding`` and the gcsbi nets have one).
        """
        obj = posterior_or_estimator
        if hasattr(obj, "build_posterior") and hasattr(obj, "append_simulations"):  # the NPE trainer
            if inference is not None and inference is not obj:
                raise GcsbiValueError("inference= does not apply when the NPE object itself is given")
            inference = obj
            with torch.random.fork_rng(devices=[]):
                obj = obj.build_posterior()
        estimator = sbi_compat.density_estimator_of(obj)
        if prior is None and simulator is None:
            prior = getattr(obj, "prior", None)
        prior, spec = prior_and_spec(simulator, prior, spec)
        if not callable(getattr(prior, "in_support", None)):
            raise GcsbiValueError(f"from_sbi needs gcsbi's named box prior (NamedBoxPrior, with parameter names), got "
                                  f"{type(prior).__name__}: pass simulator= or prior=gcsbi.load_prior(...)")
        shape = tuple(int(s) for s in estimator.condition_shape)
        if x_shape is not None and tuple(int(s) for s in x_shape) != shape:
            raise GcsbiValueError(f"x_shape {tuple(x_shape)} differs from the estimator's condition shape {shape}")
        if config is not None and not isinstance(config, TrainConfig):
            raise GcsbiValueError(f"config must be a TrainConfig, got {type(config).__name__}")
        z_score_x, inner = sbi_compat.split_standardization(estimator.embedding_net)
        device = str(next(estimator.parameters()).device)
        config = _describe(estimator, inner, z_score_x, config, prior, shape, n_reference, device)
        history = sbi_compat.npe_history(inference) if inference is not None else {}
        post = cls(estimator=estimator, prior=prior, spec=spec, config=config, history=history, x_shape=shape,
                   embedding_recipe=embedding_recipe(inner), reference_embeddings=torch.empty(0))
        post.reference_embeddings = post._reference_embeddings(reference_x)
        return post

    def _reference_embeddings(self, reference_x: Any) -> torch.Tensor:
        """(n, F) embeddings of the first ``config.n_reference`` finite rows of ``reference_x`` ((0, F) if None)."""
        if reference_x is None:
            return self.embed(torch.zeros((1, *self.x_shape)))[:0].to(torch.float32)
        rx = torch.as_tensor(reference_x, dtype=torch.float32)
        if tuple(rx.shape[1:]) != self.x_shape:
            raise GcsbiValueError(f"reference_x must have shape (N, {', '.join(map(str, self.x_shape))}), "
                                  f"got {tuple(rx.shape)}")
        rx = rx[torch.isfinite(rx.reshape(len(rx), -1)).all(1)][: self.config.n_reference]
        return self.embed(rx).to(torch.float32)


def _describe(estimator: nn.Module, inner: nn.Module, z_score_x: str, config: TrainConfig | None, prior: Any,
              x_shape: tuple[int, ...], n_reference: int | None, device: str) -> TrainConfig:
    """The TrainConfig that rebuilds ``estimator`` (checked by rebuilding it and comparing weight shapes)."""
    default = TrainConfig()
    base = config if config is not None else default
    if base.z_score_x not in (default.z_score_x, z_score_x):
        raise GcsbiValueError(f"config z_score_x={base.z_score_x!r}, but the estimator standardises x as "
                              f"{z_score_x!r}; leave it at its default (it is read from the estimator)")
    if base.x_pool != 1:
        raise GcsbiValueError("x_pool does not apply: an sbi estimator takes x as it is; leave it at 1")
    if n_reference is not None and base.n_reference not in (default.n_reference, int(n_reference)):
        raise GcsbiValueError(f"n_reference={n_reference} and config n_reference={base.n_reference} differ: "
                              "give one of them")
    base = dataclasses.replace(base, z_score_x=z_score_x, device=device,
                               n_reference=int(n_reference if n_reference is not None else base.n_reference))
    kinds = [base.density_estimator]  # left at its default: any sbi kind whose weights fit
    if base.density_estimator == default.density_estimator:
        kinds += [k for k in ESTIMATORS if k != base.density_estimator]
    want = {k: tuple(v.shape) for k, v in estimator.state_dict().items()}
    with seeded(0):
        theta0, x0 = prior.sample((8,)).to(torch.float32).cpu(), torch.randn((8, *x_shape))
    first_diff: list[str] = []
    for kind in kinds:
        candidate = dataclasses.replace(base, density_estimator=kind)
        try:
            with seeded(0):
                twin = build_estimator(candidate, copy.deepcopy(inner).cpu(), theta0, x0)
        except (RuntimeError, ValueError, TypeError, AssertionError):
            continue
        got = {k: tuple(v.shape) for k, v in twin.state_dict().items()}
        if got == want:
            return candidate
        if not first_diff:
            first_diff = sorted(k for k in set(want) | set(got) if want.get(k) != got.get(k))
    shown = ", ".join(first_diff[:4]) + (f" and {len(first_diff) - 4} more" if len(first_diff) > 4 else "")
    raise GcsbiValueError(
        f"the sbi estimator's weights do not fit an estimator rebuilt from config (density_estimator="
        f"{base.density_estimator!r}, hidden_features={base.hidden_features}, num_transforms={base.num_transforms}, "
        f"num_bins={base.num_bins}, z_score_x={z_score_x!r}, theta z-scored independently)"
        + (f"; differing weights: {shown}" if shown else "")
        + "; pass config=TrainConfig(...) with the posterior_nn settings it was built with")
