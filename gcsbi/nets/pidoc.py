"""A π-DOC-style CNN embedding net: (B, C, H, W) images -> (B, F) summary features.

Reference architecture: π-DOC, Chardin & Bianchini 2021, MNRAS 504, 5656
(arXiv:2103.05649); the published Keras model is ``../shared/data/pidoc/CNN.json``
(github.com/paolobianchini87/piDOC). π-DOC regresses (distance, age) of a globular cluster
from one 160x160 V-band flux map (0.25"/pix)::

    4 x [Conv2D(16|32|64|128, kernel 10|10|5|5, valid, relu) -> BatchNorm
         -> SpatialDropout2D(0.003) -> ReLU -> MaxPool 2x2]          160 -> 5x5x128
    Flatten -> Dropout(0.1) -> 3 x [Dense(64|32|16) -> BatchNorm -> ReLU] -> Dense(2)

:class:`PiDocEmbedding` keeps that pattern -- conv blocks with channels doubling from
``width`` (16, 32, 64, 128 at the default, as in π-DOC), batch norm, spatial dropout,
2x2 max-pooling, then flatten, dropout and a batch-normalised dense head -- and changes:

* **multi-input**: the C input channels are split into named *groups* (e.g. log-flux bands,
  colours, a pixel colour-magnitude diagram rendered on the same H x W grid); each group has
  its own conv branch ending in a dense layer (``branch_features``); the branch outputs
  are concatenated before the shared head. One group holding every channel (the default)
  is a single-branch π-DOC. Groups are channel index lists of the one input tensor, so the
  net stays an sbi ``embedding_net`` taking the simulator's (B, C, H, W) output as is.
* **any size >= 16 px** (128x128 for our HST/JWST cut-outs instead of 160x160): 'same'
  padding, ceil-mode pooling and an adaptive average pool to ``pool_output`` x
  ``pool_output`` before flattening (π-DOC flattens a fixed 5x5 map).
* **smaller kernels** (5, 3, 3, 3 instead of 10, 10, 5, 5): one branch costs ~65-100 M
  multiply-adds per 128x128 image (π-DOC: ~320 M at 160 px; ~300 M with its kernels at
  128 px); configurable through ``kernel_sizes`` (its length sets the depth).
* conv -> BN -> ReLU -> dropout (π-DOC applies ReLU twice, before and after BN), bias-free
  convs (BN has the shift), and a linear output of ``features`` units (the embedding)
  instead of the 2 regressed quantities. The head's hidden sizes default to (128, 64).

Defaults stay below ~1M parameters for up to three groups (~0.25M per group plus a ~25k
head; π-DOC has 0.52M). Measured on one CPU thread, batch 32 of 128x128 images, eval mode:
~13 ms per image with one group, ~40 ms with three (flux/colour/cmd) groups.
A batch of one in training mode (sbi probes nets with ``x[:1]``) is normalised with the
running statistics; call ``.eval()`` for inference anyway (dropout).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..errors import GcsbiValueError

__all__ = ["PiDocConfig", "PiDocEmbedding", "MIN_IMAGE_SIZE"]

MIN_IMAGE_SIZE = 16


@dataclass(frozen=True)
class PiDocConfig:
    """Hyper-parameters of :class:`PiDocEmbedding` (hashable; stored in checkpoints)."""

    in_channels: int
    groups: tuple[tuple[str, tuple[int, ...]], ...]
    features: int = 64
    width: int = 16
    kernel_sizes: tuple[int, ...] = (5, 3, 3, 3)
    pool_output: int = 4
    branch_features: int = 64
    hidden: tuple[int, ...] = (128, 64)
    dropout: float = 0.1
    spatial_dropout: float = 0.0
    image_size: tuple[int, int] | None = None
    input_pool: int = 1  # average-pool the input by this factor first (CPU-sized models)

    @classmethod
    def build(cls, *, in_channels: int, groups: Mapping[str, Sequence[int]] | None = None,
              **options: Any) -> PiDocConfig:
        """A config from user-style arguments: ``groups`` a mapping (``None``: one group of every
        channel), ``image_size`` an int or (H, W), sequences for the tuple fields; any other field
        keeps its default. Unknown options raise."""
        known = {f.name for f in dataclasses.fields(cls)} - {"in_channels", "groups"}
        unknown = sorted(set(options) - known)
        if unknown:
            raise GcsbiValueError(f"unknown PiDocEmbedding option(s) {unknown}; known: {sorted(known)}")
        if groups is None:
            groups = {"image": range(int(in_channels))}
        size = options.get("image_size")
        if size is not None:
            options["image_size"] = tuple(int(v) for v in ((size, size) if isinstance(size, int) else size))
        for name in ("kernel_sizes", "hidden"):
            if name in options:
                options[name] = tuple(int(v) for v in options[name])
        for name in ("dropout", "spatial_dropout"):
            if name in options:
                options[name] = float(options[name])
        return cls(in_channels=in_channels, groups=tuple((str(k), tuple(int(i) for i in v)) for k, v in groups.items()),
                   **options)

    def __post_init__(self) -> None:
        for name in ("in_channels", "features", "width", "pool_output", "branch_features", "input_pool"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise GcsbiValueError(f"{name} must be a positive integer, got {value!r}")
        if not self.kernel_sizes or any(int(k) < 1 or int(k) % 2 == 0 for k in self.kernel_sizes):
            raise GcsbiValueError(f"kernel_sizes must be odd positive integers, got {self.kernel_sizes}")
        if any(int(h) < 1 for h in self.hidden):
            raise GcsbiValueError(f"hidden sizes must be positive, got {self.hidden}")
        for name in ("dropout", "spatial_dropout"):
            if not 0.0 <= float(getattr(self, name)) < 1.0:
                raise GcsbiValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if not self.groups:
            raise GcsbiValueError("groups must name at least one group of channels")
        names = [name for name, _ in self.groups]
        if len(set(names)) != len(names) or not all(n.isidentifier() for n in names):
            raise GcsbiValueError(f"group names must be distinct Python identifiers, got {names}")
        seen: list[int] = []
        for name, idx in self.groups:
            if not idx:
                raise GcsbiValueError(f"group {name!r} has no channels")
            bad = [i for i in idx if not 0 <= i < self.in_channels]
            if bad:
                raise GcsbiValueError(f"group {name!r}: channels {bad} out of range [0, {self.in_channels})")
            seen.extend(idx)
        dup = sorted({i for i in seen if seen.count(i) > 1})
        unused = sorted(set(range(self.in_channels)) - set(seen))
        if dup or unused:
            raise GcsbiValueError(f"every channel must belong to exactly one group: duplicated {dup}, unused "
                                  f"{unused} (slice the input first to drop channels)")
        if self.image_size is not None and min(self.image_size) < MIN_IMAGE_SIZE:
            raise GcsbiValueError(f"image_size must be >= {MIN_IMAGE_SIZE}, got {self.image_size}")


class _OneSampleSafe:
    """BatchNorm that accepts a single value per channel in training mode.

    sbi probes an embedding net with ``x[:1]`` while it is in training mode; plain BatchNorm
    then raises. With one value per channel this normalises with the running statistics
    and leaves them untouched; otherwise it is the ordinary layer.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and x.numel() == x.shape[1]:
            return nn.functional.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                                            False, 0.0, self.eps)
        return super().forward(x)  # type: ignore[misc]


class _BatchNorm1d(_OneSampleSafe, nn.BatchNorm1d):
    pass


class _BatchNorm2d(_OneSampleSafe, nn.BatchNorm2d):
    pass


class _Pool(nn.Module):
    """2x2 max-pool (ceil mode) that leaves maps smaller than 2 pixels alone."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if min(x.shape[-2:]) < 2:
            return x
        return nn.functional.max_pool2d(x, 2, ceil_mode=True)


def _branch(c_in: int, cfg: PiDocConfig) -> nn.Sequential:
    layers: list[nn.Module] = [nn.AvgPool2d(cfg.input_pool)] if cfg.input_pool > 1 else []
    c = c_in
    for k, ks in enumerate(cfg.kernel_sizes):
        c_out = cfg.width * 2**k
        layers += [nn.Conv2d(c, c_out, ks, padding=ks // 2, bias=False), _BatchNorm2d(c_out), nn.ReLU()]
        if cfg.spatial_dropout > 0:
            layers.append(nn.Dropout2d(cfg.spatial_dropout))
        layers.append(_Pool())
        c = c_out
    layers += [nn.AdaptiveAvgPool2d(cfg.pool_output), nn.Flatten()]
    if cfg.dropout > 0:
        layers.append(nn.Dropout(cfg.dropout))
    layers += [nn.Linear(c * cfg.pool_output**2, cfg.branch_features, bias=False),
               _BatchNorm1d(cfg.branch_features), nn.ReLU()]
    return nn.Sequential(*layers)


def _head(cfg: PiDocConfig) -> nn.Sequential:
    layers: list[nn.Module] = []
    n = cfg.branch_features * len(cfg.groups)
    for h in cfg.hidden:
        layers += [nn.Linear(n, h, bias=False), _BatchNorm1d(h), nn.ReLU()]
        n = h
    layers.append(nn.Linear(n, cfg.features))
    return nn.Sequential(*layers)


class PiDocEmbedding(nn.Module):
    """Multi-branch π-DOC-style CNN: (B, C, H, W) -> (B, features); see the module docstring.

    Args:
        in_channels: C of the input.
        groups: ``{"flux": [0, 1, 2], "colour": [3, 4], "cmd": [5]}``: channel indices of each
            branch; every channel in exactly one group. ``None``: one group with all channels.
        features: output dimension F (the embedding fed to the density estimator).
        width: channels of the first conv block (doubling per block).
        kernel_sizes: odd kernel size of each conv block (its length = number of blocks).
        pool_output: side of the adaptive average pool before flattening.
        branch_features: output units of each branch's dense layer.
        hidden: hidden units of the shared head.
        dropout, spatial_dropout: dropout before the dense layers / on conv feature maps.
        image_size: optional (H, W) (or int) every input must have; ``None`` accepts any
            H, W >= 16.
        input_pool: average-pool the input by this factor first (CPU-sized models).

    Every option but ``in_channels`` and ``groups`` is a :class:`PiDocConfig` field and takes
    its default from there (one source); unknown options raise.

    Example::

        net = PiDocEmbedding(in_channels=6, groups={"flux": [0, 1, 2], "colour": [3, 4], "cmd": [5]},
                             image_size=128, features=64, width=16, dropout=0.1)
        posterior_net = sbi.neural_nets.posterior_nn("nsf", embedding_net=net)
    """

    def __init__(self, *, in_channels: int, groups: Mapping[str, Sequence[int]] | None = None,
                 **options: Any) -> None:
        super().__init__()
        self._build(PiDocConfig.build(in_channels=in_channels, groups=groups, **options))

    @classmethod
    def from_config(cls, config: PiDocConfig) -> PiDocEmbedding:
        options = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
        return cls(**(options | {"groups": dict(options["groups"])}))

    def _build(self, config: PiDocConfig) -> None:
        self.config = config
        self.group_names = tuple(name for name, _ in config.groups)
        self.branches = nn.ModuleDict({name: _branch(len(idx), config) for name, idx in config.groups})
        for name, idx in config.groups:
            self.register_buffer(f"_idx_{name}", torch.tensor(idx, dtype=torch.long), persistent=False)
        self.head = _head(config)

    @property
    def output_dim(self) -> int:
        return self.config.features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        if x.ndim != 4 or x.shape[1] != cfg.in_channels:
            raise GcsbiValueError(f"expected input (B, {cfg.in_channels}, H, W), got {tuple(x.shape)}")
        if min(x.shape[-2:]) < MIN_IMAGE_SIZE:
            raise GcsbiValueError(f"images must be at least {MIN_IMAGE_SIZE}x{MIN_IMAGE_SIZE}, got {tuple(x.shape[-2:])}")
        if cfg.image_size is not None and tuple(x.shape[-2:]) != cfg.image_size:
            raise GcsbiValueError(f"this net was configured for {cfg.image_size} images, got {tuple(x.shape[-2:])}")
        parts = [self.branches[name](x.index_select(1, getattr(self, f"_idx_{name}"))) for name in self.group_names]
        return self.head(torch.cat(parts, dim=1))

    def extra_repr(self) -> str:
        groups = ", ".join(f"{n}={list(i)}" for n, i in self.config.groups)
        return f"groups({groups}), features={self.config.features}"
