"""What defines a density estimator and its training: :class:`TrainConfig`, stored in every checkpoint.

Each field documents itself (``metadata["help"]``); ``gcsbi train`` and the training scripts
build their options from these fields (:func:`gcsbi.inference.cli.add_config_arguments`).
:func:`build_estimator` turns a config and an embedding net into an untrained sbi estimator.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from torch import nn

from ..errors import GcsbiValueError

__all__ = ["TrainConfig", "build_estimator", "ARCHITECTURE_FIELDS", "ESTIMATORS", "Z_SCORE_X"]

#: sbi density estimators (``sbi.neural_nets.posterior_nn``).
ESTIMATORS = ("nsf", "maf", "mdn", "made", "maf_rqs", "zuko_nsf", "zuko_maf")
#: x standardisation: "channel" (one mean/std per channel, gcsbi's default for images) or sbi's own.
Z_SCORE_X = ("channel", "independent", "structured", "none")
#: Fields that fix the estimator's architecture: a checkpoint is rebuilt from them, and a
#: fine-tuned posterior (``train(init_from=...)``) takes them from its parent.
ARCHITECTURE_FIELDS = ("density_estimator", "hidden_features", "num_transforms", "num_bins", "z_score_x", "x_pool")
#: Estimators whose transforms are splines (the only ones that use ``num_bins``).
SPLINE_ESTIMATORS = ("nsf", "maf_rqs", "zuko_nsf")
#: Estimators without a stack of transforms (``num_transforms`` does not apply).
SINGLE_LAYER_ESTIMATORS = ("mdn", "made")
#: Keys of checkpoint configs that were renamed since: old name -> field name (none so far).
RENAMED_KEYS: dict[str, str] = {}


def _opt(default: Any, help: str, **meta: Any) -> Any:
    return field(default=default, metadata={"help": help, **meta})


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines the density estimator and its training (stored in checkpoints).

    Measured on the shipped posteriors: dropout in the embedding makes the flow learn
    q(theta | features with dropout noise), which is wider than q(theta | features) (a dropout-0.1
    M31 posterior fine-tuned with ``dropout=0`` went from +0.045 to +0.017 mean coverage deviation
    in log mass); a jointly trained M31 flow was conservative (max coverage deviation 0.082), its
    flow refitted alone (``train_embedding=False``) on 16000 fresh simulations reached 0.044.
    """

    density_estimator: str = _opt("nsf", "kind of flow or mixture (sbi posterior_nn)", choices=ESTIMATORS)
    hidden_features: int = _opt(50, "width of the flow's conditioner nets")
    num_transforms: int = _opt(5, "number of flow transforms (not for mdn, made)")
    num_bins: int = _opt(10, "spline bins per transform (nsf, maf_rqs, zuko_nsf only)")
    z_score_x: str = _opt("channel", "x standardisation: channel (one mean and std per channel of the training x), "
                          "or sbi's independent (per pixel), structured or none", choices=Z_SCORE_X)
    x_pool: int = _opt(1, "average-pool the images by this factor before z-scoring and the embedding net, here and "
                       "at every later use of the posterior; saves memory: sbi holds about four copies of the "
                       "training x (16000 unpooled 6x128x128 images need ~25 GB, pooled 2x ~6 GB)")
    max_num_epochs: int = _opt(200, "maximum number of epochs of each learning-rate stage")
    stop_after_epochs: int = _opt(20, "early stopping: epochs without a better validation loss")
    batch_size: int = _opt(200, "training batch size")
    learning_rate: float = _opt(5e-4, "learning rate of the first stage")
    validation_fraction: float = _opt(0.1, "fraction of the simulations held out for validation")
    clip_max_norm: float | None = _opt(5.0, "clip the gradient norm to this value (none: no clipping)")
    refine_learning_rates: tuple[float, ...] = _opt(
        (), "learning rates of extra stages: after early stopping, training resumes from the best weights at "
            "each of these (smaller) rates in turn, on the same train/validation split (e.g. 3e-4 1e-4)")
    dropout: float | None = _opt(None, "dropout probability of every dropout layer of the estimator while training "
                                 "(none: each layer's own)")
    train_embedding: bool = _opt(True, "train the embedding net with the flow; false (needs init_from) keeps the "
                                 "parent's embedding and input standardisation fixed and trains its flow only, on "
                                 "the embedded x (use fresh simulations the embedding never saw)")
    seed: int = _opt(0, "seeds the weight initialisation, the train/validation split and the batches")
    device: str = _opt("cpu", "torch device to train on")
    n_reference: int = _opt(500, "embedded simulations kept in the checkpoint for the out-of-distribution test "
                            "(validation rows first)")
    init_embedding: bool = _opt(True, "re-initialise the embedding net's parameters from the seed (each "
                                "submodule's reset_parameters) so the result does not depend on how the net was "
                                "created; false starts from its current weights (with init_from: the parent's)")

    def __post_init__(self) -> None:
        if self.density_estimator not in ESTIMATORS:
            raise GcsbiValueError(f"density_estimator must be one of {ESTIMATORS}, got {self.density_estimator!r}")
        if self.z_score_x not in Z_SCORE_X:
            raise GcsbiValueError(f"z_score_x must be one of {Z_SCORE_X}, got {self.z_score_x!r}")
        if not 0.0 < self.validation_fraction < 1.0:
            raise GcsbiValueError(f"validation_fraction must be in (0, 1), got {self.validation_fraction}")
        for name in ("max_num_epochs", "stop_after_epochs", "batch_size", "hidden_features", "num_transforms",
                     "num_bins", "x_pool"):
            if int(getattr(self, name)) < 1:
                raise GcsbiValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if int(self.n_reference) < 0:
            raise GcsbiValueError(f"n_reference must be >= 0, got {self.n_reference}")
        object.__setattr__(self, "refine_learning_rates", tuple(float(r) for r in self.refine_learning_rates))
        if self.dropout is not None and not 0.0 <= float(self.dropout) < 1.0:
            raise GcsbiValueError(f"dropout must be in [0, 1) or None, got {self.dropout}")
        for lr in (self.learning_rate, *self.refine_learning_rates):
            if not (lr > 0 and math.isfinite(lr)):
                raise GcsbiValueError(f"learning rates must be positive, got {lr}")
        unused = self.inapplicable()
        if unused:
            raise GcsbiValueError(f"{', '.join(unused)}: not used by density_estimator={self.density_estimator!r}; "
                                  "leave it at its default")

    def inapplicable(self) -> list[str]:
        """``"name=value"`` of the fields set away from their default that this estimator does not use."""
        unused = []
        if self.density_estimator not in SPLINE_ESTIMATORS and self.num_bins != _DEFAULTS["num_bins"]:
            unused.append(f"num_bins={self.num_bins}")
        if self.density_estimator in SINGLE_LAYER_ESTIMATORS and self.num_transforms != _DEFAULTS["num_transforms"]:
            unused.append(f"num_transforms={self.num_transforms}")
        return unused

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any], **overrides: Any) -> TrainConfig:
        """A config from a checkpoint's ``meta["config"]``: renamed keys mapped, missing fields at their
        defaults, architecture values that the estimator never used (``inapplicable``) reset."""
        d = {RENAMED_KEYS.get(k, k): v for k, v in dict(d).items()}
        d.update(overrides)
        kind = d.get("density_estimator", _DEFAULTS["density_estimator"])
        if kind not in SPLINE_ESTIMATORS:
            d["num_bins"] = _DEFAULTS["num_bins"]
        if kind in SINGLE_LAYER_ESTIMATORS:
            d["num_transforms"] = _DEFAULTS["num_transforms"]
        return cls(**d)


_DEFAULTS: dict[str, Any] = {f.name: f.default for f in dataclasses.fields(TrainConfig)}


def field_help() -> dict[str, str]:
    """Field name -> its help text."""
    return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(TrainConfig)}


def build_estimator(config: TrainConfig, embedding_net: nn.Module, theta: Any, x: Any) -> nn.Module:
    """Build the (untrained) sbi density estimator; ``theta``/``x`` set shapes and z-scoring."""
    from sbi.neural_nets import posterior_nn

    from ..nets.standardize import ChannelStandardize

    z_score_x = config.z_score_x
    if z_score_x == "channel":
        embedding_net, z_score_x = nn.Sequential(ChannelStandardize.from_data(x), embedding_net), "none"
    builder = posterior_nn(config.density_estimator, z_score_theta="independent", z_score_x=z_score_x,
                           hidden_features=config.hidden_features, num_transforms=config.num_transforms,
                           num_bins=config.num_bins, embedding_net=embedding_net)
    return builder(theta, x)
