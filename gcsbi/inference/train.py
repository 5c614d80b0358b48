"""Neural posterior estimation (sbi ``NPE``) with an image embedding net, seeded and tidy.

``train(theta, x, prior=..., embedding_net=..., spec=...)`` returns a :class:`TrainedPosterior`;
nothing is written to the working directory (sbi's TensorBoard tracker is replaced by an
in-memory one) and the global torch RNG is left untouched (``torch.random.fork_rng``).
"""

from __future__ import annotations

import contextlib
import copy
import io
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import GcsbiRuntimeError, GcsbiValueError, SpecError
from ..nets.standardize import ChannelStandardize
from ..nets.recipe import embedding_recipe

__all__ = ["TrainConfig", "TrainedPosterior", "train", "simulate", "build_estimator",
           "seeded", "SEED_STREAMS"]

#: Purpose tags mixed into seeds so training and calibration simulations never share a stream.
SEED_STREAMS: dict[str, int] = {"train": 0, "calibration": 1, "ppc": 2, "inference": 3}

_ESTIMATORS = ("nsf", "maf", "mdn", "made", "maf_rqs", "zuko_nsf", "zuko_maf")
#: x standardisation: "channel" (one mean/std per channel, gcsbi's default for images) or sbi's own.
_Z_SCORE_X = ("channel", "independent", "structured", "none")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines the density estimator and its training (stored in checkpoints)."""

    density_estimator: str = "nsf"
    hidden_features: int = 50
    num_transforms: int = 5
    num_bins: int = 10
    z_score_x: str = "channel"
    x_pool: int = 1
    max_num_epochs: int = 200
    stop_after_epochs: int = 20
    batch_size: int = 200
    learning_rate: float = 5e-4
    validation_fraction: float = 0.1
    clip_max_norm: float | None = 5.0
    refine_learning_rates: tuple[float, ...] = ()
    dropout: float | None = None
    train_embedding: bool = True
    seed: int = 0
    device: str = "cpu"
    n_reference: int = 500

    def __post_init__(self) -> None:
        if self.density_estimator not in _ESTIMATORS:
            raise GcsbiValueError(f"density_estimator must be one of {_ESTIMATORS}, got {self.density_estimator!r}")
        if self.z_score_x not in _Z_SCORE_X:
            raise GcsbiValueError(f"z_score_x must be one of {_Z_SCORE_X}, got {self.z_score_x!r}")
        if not 0.0 < self.validation_fraction < 1.0:
            raise GcsbiValueError(f"validation_fraction must be in (0, 1), got {self.validation_fraction}")
        for name in ("max_num_epochs", "stop_after_epochs", "batch_size", "hidden_features", "num_transforms",
                     "num_bins", "x_pool"):
            if int(getattr(self, name)) < 1:
                raise GcsbiValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        object.__setattr__(self, "refine_learning_rates", tuple(float(r) for r in self.refine_learning_rates))
        if self.dropout is not None and not 0.0 <= float(self.dropout) < 1.0:
            raise GcsbiValueError(f"dropout must be in [0, 1) or None, got {self.dropout}")
        for lr in (self.learning_rate, *self.refine_learning_rates):
            if not (lr > 0 and math.isfinite(lr)):
                raise GcsbiValueError(f"learning rates must be positive, got {lr}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@contextlib.contextmanager
def seeded(seed: int, device: str = "cpu"):
    """Run a block with torch seeded to ``seed`` without touching the caller's RNG state."""
    devices = [torch.device(device)] if str(device).startswith("cuda") else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(int(seed))
        yield


def stream_seed(seed: int, stream: str, *extra: int) -> int:
    """A 63-bit seed for purpose ``stream`` (and sub-keys ``extra``) derived from the user seed.

    Distinct (stream, extra) keys give independent seeds (``numpy.random.SeedSequence``).
    """
    ss = np.random.SeedSequence([int(seed), SEED_STREAMS[stream], *[int(e) for e in extra]])
    return int(ss.generate_state(1, dtype=np.uint64)[0]) % 2**63


def simulate(simulator: Any, num_simulations: int, *, seed: int, stream: str = "train",
             batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw theta from ``simulator.prior`` and simulate, on seed stream ``stream``; same seed -> same bytes.

    The prior draw and each simulation batch get their own derived seed (never the same seed
    twice, so simulator noise is independent of theta).
    """
    n = int(num_simulations)
    if n < 1:
        raise GcsbiValueError(f"num_simulations must be >= 1, got {num_simulations}")
    with seeded(stream_seed(seed, stream, 0)):
        theta = simulator.prior.sample((n,)).to(torch.float32)
    xs = []
    for k, start in enumerate(range(0, n, int(batch_size))):
        batch_seed = stream_seed(seed, stream, 1, k)
        xs.append(torch.as_tensor(simulator(theta[start:start + int(batch_size)], seed=batch_seed)))
    return theta, torch.cat(xs).to(torch.float32)


class _MemoryTracker:
    """sbi ``Tracker`` protocol, kept in memory (no TensorBoard ``sbi-logs`` folder)."""

    log_dir = None

    def __init__(self) -> None:
        self.metrics: dict[str, list[float]] = {}

    def log_metric(self, name: str, value: float, step: int | None = None) -> None:
        self.metrics.setdefault(name, []).append(float(value))

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        for k, v in metrics.items():
            self.log_metric(k, v, step)

    def log_params(self, params: dict[str, Any]) -> None:
        pass

    def add_figure(self, name: str, figure: Any, step: int | None = None) -> None:
        pass

    def flush(self) -> None:
        pass


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


def build_estimator(config: TrainConfig, embedding_net: nn.Module, theta: torch.Tensor,
                    x: torch.Tensor) -> nn.Module:
    """Build the (untrained) sbi density estimator; ``theta``/``x`` set shapes and z-scoring."""
    from sbi.neural_nets import posterior_nn

    z_score_x = config.z_score_x
    if z_score_x == "channel":
        embedding_net, z_score_x = nn.Sequential(ChannelStandardize.from_data(x), embedding_net), "none"
    builder = posterior_nn(config.density_estimator, z_score_theta="independent", z_score_x=z_score_x,
                           hidden_features=config.hidden_features, num_transforms=config.num_transforms,
                           num_bins=config.num_bins, embedding_net=embedding_net)
    return builder(theta, x)


class TrainedPosterior:
    """An amortised posterior q(theta | x) with everything needed to save, reload and check it.

    Attributes: ``posterior`` (sbi ``DirectPosterior``), ``estimator`` (its density estimator),
    ``prior``, ``spec``, ``config`` (:class:`TrainConfig`), ``history``, ``x_shape``,
    ``embedding_recipe``, ``reference_embeddings`` (embedded held-out training x, for OOD checks).
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

    def sample(self, num_samples: int, x: torch.Tensor, *, seed: int = 0) -> torch.Tensor:
        """``num_samples`` draws (num_samples, D) given one observation ``x`` (C, H, W); seeded."""
        xb = x[None] if x.ndim == len(self.x_shape) else x
        with seeded(seed, self.config.device):
            return self.sample_batched((int(num_samples),), xb)[:, 0]

    def sample_batched(self, sample_shape: tuple[int, ...], x: torch.Tensor, show_progress_bars: bool = False,
                       reject_outside_prior: bool = True, min_acceptance: float = 0.01,
                       **kwargs: Any) -> torch.Tensor:
        """sbi-style batched sampling (num_samples, B, D) for B observations (uses the global torch RNG).

        Draws outside the prior are rejected, except for observations whose estimated in-prior
        mass (``last_acceptance``, from 256 probe draws) is below ``min_acceptance``: rejection
        would take forever, so their raw flow draws are returned (``infer`` flags them).
        """
        n = int(torch.Size(sample_shape).numel())
        x = self.condition(x).to(self.config.device)
        with torch.no_grad():
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
                    out[:, mask] = self.posterior.sample_batched(
                        (n,), x=xs, show_progress_bars=show_progress_bars, reject_outside_prior=reject,
                        max_sampling_batch_size=max(1, 100_000 // len(xs))).cpu().float()
        return out.reshape(*torch.Size(sample_shape), len(x), -1)

    def log_prob(self, theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.posterior.log_prob(theta, x=self.condition(x)).cpu()

    def embed(self, x: torch.Tensor, *, batch_size: int = 512) -> torch.Tensor:
        """Embedding-net features (after the input standardisation) of x (B, C, H, W) -> (B, F)."""
        return self._embed_conditioned(self.condition(x), batch_size=batch_size)

    def _embed_conditioned(self, x: torch.Tensor, *, batch_size: int = 512) -> torch.Tensor:
        net = self.estimator.embedding_net
        out = []
        with torch.no_grad():
            for s in range(0, len(x), batch_size):
                out.append(net(x[s:s + batch_size].to(self.config.device)).reshape(len(x[s:s + batch_size]), -1).cpu())
        return torch.cat(out)

    def save(self, path: str | Path) -> Path:
        from .checkpoint import save_posterior

        return save_posterior(self, path)

    def __repr__(self) -> str:
        return (f"TrainedPosterior({self.config.density_estimator}, params={self.param_names}, "
                f"x_shape={self.x_shape}, epochs={self.history.get('epochs_trained')})")


def package_versions() -> dict[str, str]:
    import sbi

    from .. import __version__

    return {"gcsbi": __version__, "torch": torch.__version__, "sbi": sbi.__version__, "numpy": np.__version__}


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


def _parent(init_from: Any, spec: dict[str, Any]) -> TrainedPosterior | None:
    """The posterior to fine-tune (loaded if a path or name), checked against ``spec``."""
    if init_from is None:
        return None
    from .checkpoint import load_posterior, spec_differences

    parent = init_from if isinstance(init_from, TrainedPosterior) else load_posterior(init_from)
    diff = spec_differences(parent.spec, dict(spec))
    if diff:
        raise SpecError(f"init_from was trained for a different simulator/prior spec; differing keys: {', '.join(diff)}")
    return parent


def _with_embedding(estimator: nn.Module, embedding_net: nn.Module, *, condition_shape: Sequence[int]) -> nn.Module:
    """A copy of sbi density ``estimator`` with a copy of ``embedding_net`` in place of its own.

    Used to train a flow alone on features (identity embedding), then to put the fixed embedding
    back. Relies on sbi 0.27's layout (pinned): nflows flows keep the embedding in
    ``net._embedding_net``, zuko flows in ``_embedding_net``; the condition shape in
    ``_condition_shape``.
    """
    inner = getattr(estimator, "net", None)
    owner = inner if hasattr(inner, "_embedding_net") else estimator
    if not hasattr(owner, "_embedding_net") or not hasattr(estimator, "_condition_shape"):
        raise GcsbiValueError(f"train_embedding=False is not supported for {type(estimator).__name__}")
    old, owner._embedding_net = owner._embedding_net, None  # not deep-copied
    try:
        out = copy.deepcopy(estimator)
    finally:
        owner._embedding_net = old
    target = out.net if owner is inner else out
    target._embedding_net = copy.deepcopy(embedding_net).eval()
    out._condition_shape = torch.Size(condition_shape)
    return out


def _unpooled_shape(x: torch.Tensor, k: int, pooled_from: Sequence[int] | None) -> tuple[int, ...]:
    """The observation shape the posterior expects: x's, or ``pooled_from`` if x was pooled already."""
    if pooled_from is None:
        return tuple(int(s) for s in x.shape[1:])
    shape = tuple(int(s) for s in pooled_from)
    if len(shape) != 3 or tuple(x.shape[1:]) != (shape[0], shape[1] // k, shape[2] // k):
        raise GcsbiValueError(f"x of shape {tuple(x.shape[1:])} is not images of shape {shape} pooled by "
                              f"x_pool={k}")
    return shape


def _train_in_stages(npe: Any, config: TrainConfig) -> nn.Module:
    """sbi ``NPE.train`` at ``learning_rate``, then resumed at each ``refine_learning_rates`` entry.

    Resuming keeps sbi's train/validation split, optimizer state and best validation loss; the
    patience counter and the optimizer's rate are reset here (sbi 0.27 attributes, pinned).
    """
    kw = dict(training_batch_size=config.batch_size, validation_fraction=config.validation_fraction,
              stop_after_epochs=config.stop_after_epochs, clip_max_norm=config.clip_max_norm)
    estimator = npe.train(learning_rate=config.learning_rate, max_num_epochs=config.max_num_epochs, **kw)
    for lr in config.refine_learning_rates:
        for group in npe.optimizer.param_groups:
            group["lr"] = lr
        npe._epochs_since_last_improvement = 0
        npe._val_loss = npe._best_val_loss  # the weights are the best ones again
        estimator = npe.train(learning_rate=lr, max_num_epochs=npe.epoch + config.max_num_epochs,
                              resume_training=True, **kw)
    return estimator


def train(theta: Any, x: Any, *, prior: Any, embedding_net: nn.Module | None = None, spec: dict[str, Any],
          density_estimator: str = "nsf", max_num_epochs: int = 200, stop_after_epochs: int = 20,
          batch_size: int = 200, learning_rate: float = 5e-4, validation_fraction: float = 0.1,
          hidden_features: int = 50, num_transforms: int = 5, num_bins: int = 10, z_score_x: str = "channel",
          x_pool: int = 1, refine_learning_rates: Sequence[float] = (), dropout: float | None = None,
          init_from: TrainedPosterior | str | Path | None = None, train_embedding: bool = True,
          pooled_from: Sequence[int] | None = None, seed: int = 0, device: str = "cpu", out: str | Path | None = None,
          init_embedding: bool = True, verbose: bool = False) -> TrainedPosterior:
    """Train NPE (sbi ``NPE``, default NSF flow) on (theta, x) with ``embedding_net``.

    Args:
        theta: (N, D) parameters drawn from ``prior``; x: (N, C, H, W) simulations.
        prior: the prior (a ``NamedBoxPrior``); spec: JSON-able simulator + prior description,
            stored in the checkpoint and checked on load.
        embedding_net: any ``nn.Module`` (B, C, H, W) -> (B, F); give it a ``config`` dict of
            constructor kwargs so checkpoints can rebuild it.
        density_estimator, hidden_features, num_transforms, num_bins: the flow (sbi ``posterior_nn``):
            its kind, conditioner width, number of transforms and spline bins per transform (nsf).
        x_pool: average-pool the images by this factor before z-scoring and the embedding net,
            here and at every later use of the posterior (stored in the checkpoint). It is the
            memory-frugal version of an embedding's own input pooling: sbi holds about four copies
            of the training x, so 16000 unpooled 6x128x128 images need ~25 GB, pooled 2x ~6 GB.
        refine_learning_rates: a step learning-rate schedule: after early stopping at
            ``learning_rate``, training resumes from the best weights at each of these (smaller)
            rates in turn, on the same train/validation split, until early stopping again.
        z_score_x: "channel" (default): x is standardised with one mean and std per channel of
            the training x (:class:`ChannelStandardize`); or sbi's "independent" (per pixel),
            "structured" or "none".
        dropout: if given, every dropout layer of the estimator uses this probability while training
            here (recorded in the config). Dropout in the embedding makes the flow learn
            q(theta | features with dropout noise), which is wider than q(theta | features): a
            dropout-0.1 M31 posterior fine-tuned with ``dropout=0`` went from +0.045 to +0.017 mean
            coverage deviation in log mass (closing note of issue 4).
        init_from: a posterior (or checkpoint path/name) to start from: its weights, z-scoring,
            architecture (``density_estimator``, ``hidden_features``, ``num_transforms``, ``num_bins``,
            ``z_score_x``, ``x_pool`` and embedding; the arguments given here are ignored) and spec
            (must equal ``spec``). ``history["init_from"]`` records its training history.
        train_embedding: False (needs ``init_from``) keeps the parent's embedding (and input
            standardisation) fixed and trains its flow only, on the embedded x: use fresh simulations
            the embedding never saw, so the flow learns q(theta | features) as they are on new data.
            Fast (the images are embedded once). On the M31 posterior, the jointly trained flow
            was conservative (max coverage deviation 0.082, log mass +0.054 mean); its flow
            fine-tuned this way on 16000 fresh simulations reached 0.044 (closing note of issue 4).
        pooled_from: x was already reduced by ``pool_images(x, x_pool)`` from images of this shape
            (C, H, W), e.g. bank by bank to save memory; the checkpoint expects (C, H, W) images.
        seed: seeds weights init, the train/validation split and batches (same seed -> same weights).
        init_embedding: re-initialise ``embedding_net``'s parameters from ``seed`` (every submodule's
            ``reset_parameters``), so the result does not depend on how the net was created; set
            False to start from pre-trained embedding weights. The net is trained in place.
        out: if given, the checkpoint is written there.
    Rows whose x contains NaN/inf are dropped (counted in ``history["n_invalid_dropped"]``).
    """
    from sbi.inference import NPE

    parent = _parent(init_from, spec)
    if not train_embedding and parent is None:
        raise GcsbiValueError("train_embedding=False keeps a trained embedding fixed: give init_from")
    if parent is not None:
        arch = parent.config
        density_estimator, hidden_features, num_transforms, num_bins = (
            arch.density_estimator, arch.hidden_features, arch.num_transforms, arch.num_bins)
        z_score_x, x_pool, init_embedding = arch.z_score_x, arch.x_pool, False
        if embedding_net is None:
            from ..nets.recipe import build_embedding

            embedding_net = build_embedding(parent.embedding_recipe)
    config = TrainConfig(density_estimator=density_estimator, hidden_features=int(hidden_features),
                         num_transforms=int(num_transforms), num_bins=int(num_bins), z_score_x=z_score_x,
                         x_pool=int(x_pool),
                         refine_learning_rates=tuple(refine_learning_rates), dropout=dropout,
                         train_embedding=bool(train_embedding),
                         max_num_epochs=int(max_num_epochs), stop_after_epochs=int(stop_after_epochs),
                         batch_size=int(batch_size), learning_rate=float(learning_rate),
                         validation_fraction=float(validation_fraction), seed=int(seed), device=str(device))
    if not isinstance(embedding_net, nn.Module):
        raise GcsbiValueError(f"embedding_net must be a torch.nn.Module, got {type(embedding_net).__name__}")
    theta, x, n_bad = _check_data(theta, x, prior)
    x_shape = _unpooled_shape(x, config.x_pool, pooled_from)
    n_val = len(x) - int((1 - config.validation_fraction) * len(x))
    if n_val < 2 or len(x) - n_val < 2:
        raise GcsbiValueError(f"need more simulations: {len(x)} give {n_val} validation rows")
    recipe = embedding_recipe(embedding_net)
    tracker = _MemoryTracker()
    t0 = time.perf_counter()
    with seeded(config.seed, config.device):
        if init_embedding:
            for module in embedding_net.modules():
                if callable(getattr(module, "reset_parameters", None)):
                    module.reset_parameters()

        x_in = x if pooled_from is not None else pool_images(x, config.x_pool)
        head = None
        if not config.train_embedding:  # the flow alone, on features of the parent's fixed embedding
            x_in = parent._embed_conditioned(x_in).to(torch.float32)
            head = _with_embedding(parent.estimator, nn.Identity(), condition_shape=x_in.shape[1:])

        def builder(batch_theta: torch.Tensor, batch_x: torch.Tensor) -> nn.Module:
            if head is not None:
                return head
            estimator = build_estimator(config, embedding_net, batch_theta, batch_x)
            if parent is not None:
                estimator.load_state_dict(parent.estimator.state_dict(), strict=True)
            if config.dropout is not None:
                for module in estimator.modules():
                    if isinstance(module, (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d)):
                        module.p = float(config.dropout)
            return estimator

        npe = NPE(prior=prior, density_estimator=builder, device=config.device, tracker=tracker,
                  show_progress_bars=bool(verbose))
        npe.append_simulations(theta, x_in)
        sink = contextlib.nullcontext() if verbose else contextlib.redirect_stdout(io.StringIO())
        try:
            with sink:
                estimator = _train_in_stages(npe, config)
        except (RuntimeError, ValueError) as exc:
            raise GcsbiRuntimeError(f"NPE training failed: {exc}") from exc
        if head is not None:
            estimator = _with_embedding(estimator, parent.estimator.embedding_net,
                                        condition_shape=parent.estimator.condition_shape)
    summary = {k: [float(v) for v in vals] for k, vals in npe._summary.items()}
    # reference set for OOD checks: held-out validation rows first, then training rows
    ref_idx = torch.cat([npe.val_indices, npe.train_indices])[: config.n_reference]
    history = {
        "epochs_trained": int(summary["epochs_trained"][-1]),
        "stage_end_epochs": [int(e) for e in summary["epochs_trained"]],  # one per learning rate
        "best_validation_loss": float(summary["best_validation_loss"][-1]),
        "training_loss": summary.get("training_loss", []),
        "validation_loss": summary.get("validation_loss", []),
        "n_simulations": int(len(x)), "n_validation": int(n_val), "n_invalid_dropped": n_bad,
        "wall_time_s": round(time.perf_counter() - t0, 3),
    }
    if parent is not None:
        history["init_from"] = {k: parent.history.get(k) for k in
                                ("n_simulations", "epochs_trained", "best_validation_loss", "init_from")}
    result = TrainedPosterior(estimator=estimator, prior=prior, spec=dict(spec), config=config, history=history,
                              x_shape=x_shape, embedding_recipe=recipe, reference_embeddings=torch.empty(0))
    ref = x_in[ref_idx]  # pooled images, or features when the embedding was kept fixed
    result.reference_embeddings = (result._embed_conditioned(ref) if head is None else ref.clone()).to(torch.float32)
    if out is not None:
        result.save(out)
    return result
