"""Decoder heads on the π-DOC encoder: per-pixel mass and clean-image maps with uncertainties.

π-DOC's mass-map network (Chardin & Bianchini 2021; Keras model ``../shared/data/pidoc/CED.json``)
is a U-Net: conv blocks with doubling channels and 2x2 max-pooling down to the bottleneck,
then nearest-neighbour 2x upsampling, concatenation with the encoder block of the same size
(skip connection) and conv blocks back up to a linear one-channel output. :class:`MapDecoder`
keeps that pattern on top of a trained :class:`~gcsbi.nets.pidoc.PiDocEmbedding` (the NPE
embedding, so both outputs share one encoder):

* the skips are the feature maps of every branch (flux, colour, CMD) just before each of the
  encoder's poolings, concatenated per scale; the bottleneck also gets the embedding vector
  (the features the parameter posterior sees), broadcast over the smallest map;
* each up-step is ``upsample 2x -> concat skip -> (conv 3x3 -> ReLU) x 2``;
* when the encoder saw a pooled image (the posterior's ``x_pool``), a last step goes back to
  the simulator's full grid with the standardised full-resolution input as its skip (one
  conv: the full-resolution layers dominate the cost on a CPU);
* the output has ``2 + 2 F`` channels: mean and log-sigma of log10 mass per pixel, then mean
  and log-sigma of asinh(clean / s_b) per band (a heteroscedastic Gaussian per pixel).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import GcsbiValueError

__all__ = ["MapDecoderConfig", "MapDecoder", "encoder_features"]

#: log-sigma outputs are kept in [LOG_SIGMA_MIN, LOG_SIGMA_MAX] (sigma 0.005 .. 20).
LOG_SIGMA_MIN, LOG_SIGMA_MAX = -5.3, 3.0
#: the means are kept in [-2.5, 8] (log10 Msun per pixel) and [-10, 30] (asinh units): no pixel
#: holds 1e8 Msun, and an input far outside the training set must not overflow the maps.
LOG_MASS_RANGE, ASINH_RANGE = (-2.5, 8.0), (-10.0, 30.0)


@dataclass(frozen=True)
class MapDecoderConfig:
    """Hyper-parameters of :class:`MapDecoder` (stored in checkpoints)."""

    skip_channels: tuple[int, ...]   # channels of the concatenated skips, finest scale first
    embedding_features: int          # length of the embedding vector joined at the bottleneck
    n_bands: int                     # F clean-image bands
    in_channels: int                 # C of the full-resolution input (last skip when x_pool > 1)
    x_pool: int = 1                  # the encoder's input pooling (1 or 2)
    width: int = 8                   # channels of the finest decoder block (doubling per scale)
    full_width: int = 8              # channels of the full-resolution block (x_pool > 1)

    def __post_init__(self) -> None:
        if not self.skip_channels or any(int(c) < 1 for c in self.skip_channels):
            raise GcsbiValueError(f"skip_channels must be positive, got {self.skip_channels}")
        for name in ("embedding_features", "n_bands", "in_channels", "width", "full_width"):
            if int(getattr(self, name)) < 1:
                raise GcsbiValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.x_pool not in (1, 2):
            raise GcsbiValueError(f"x_pool must be 1 or 2, got {self.x_pool}")

    @property
    def out_channels(self) -> int:
        return 2 + 2 * self.n_bands


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(c_out, c_out, 3, padding=1), nn.ReLU())


def encoder_features(embedding: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """(embedding vector (B, F), skips) of a PiDocEmbedding for its (standardised, pooled) input.

    ``skips[k]`` is the concatenation over branches of each branch's feature map just before
    its k-th 2x2 pooling (finest first). The embedding equals ``embedding(x)``.
    """
    from ..nets.pidoc import PiDocEmbedding, _Pool

    if not isinstance(embedding, PiDocEmbedding):
        raise GcsbiValueError(f"map heads need a PiDocEmbedding encoder, got {type(embedding).__name__}")
    per_branch, outs = [], []
    for name in embedding.group_names:
        h = x.index_select(1, getattr(embedding, f"_idx_{name}"))
        skips = []
        for layer in embedding.branches[name]:
            if isinstance(layer, _Pool):
                skips.append(h)
            h = layer(h)
        per_branch.append(skips)
        outs.append(h)
    skips = [torch.cat([b[k] for b in per_branch], dim=1) for k in range(len(per_branch[0]))]
    return embedding.head(torch.cat(outs, dim=1)), skips


class MapDecoder(nn.Module):
    """U-Net decoder from encoder skips to per-pixel Gaussian maps; see the module docstring."""

    def __init__(self, config: MapDecoderConfig) -> None:
        super().__init__()
        self.config = config
        skips = [int(c) for c in config.skip_channels]
        widths = [config.width * 2**k for k in range(len(skips))]
        self.bottom = _block(skips[-1] + config.embedding_features, widths[-1])
        self.up = nn.ModuleList(_block(widths[k + 1] + skips[k], widths[k]) for k in range(len(skips) - 1))
        last = widths[0]
        if config.x_pool > 1:
            self.full = nn.Sequential(nn.Conv2d(last + config.in_channels, config.full_width, 3, padding=1), nn.ReLU())
            last = config.full_width
        self.out = nn.Conv2d(last, config.out_channels, 1)

    def to_json(self) -> dict:
        d = dataclasses.asdict(self.config)
        d["skip_channels"] = list(d["skip_channels"])
        return d

    def forward(self, embedding: torch.Tensor, skips: list[torch.Tensor], x_full: torch.Tensor | None = None
                ) -> torch.Tensor:
        """(B, 2 + 2F, H, W): [mean log10 mass, log-sigma, F x mean asinh flux, F x log-sigma]."""
        cfg = self.config
        if len(skips) != len(cfg.skip_channels):
            raise GcsbiValueError(f"expected {len(cfg.skip_channels)} skip maps, got {len(skips)}")
        s = skips[-1]
        e = embedding[:, :, None, None].expand(-1, -1, *s.shape[-2:])
        h = self.bottom(torch.cat([s, e], dim=1))
        for k in range(len(skips) - 2, -1, -1):
            h = nn.functional.interpolate(h, size=skips[k].shape[-2:], mode="nearest")
            h = self.up[k](torch.cat([h, skips[k]], dim=1))
        if cfg.x_pool > 1:
            if x_full is None:
                raise GcsbiValueError("this decoder needs the full-resolution input (x_pool > 1)")
            h = nn.functional.interpolate(h, size=x_full.shape[-2:], mode="nearest")
            h = self.full(torch.cat([h, x_full], dim=1))
        out = self.out(h)
        f = cfg.n_bands
        log_sigma = out[:, [1, *range(2 + f, 2 + 2 * f)]].clamp(LOG_SIGMA_MIN, LOG_SIGMA_MAX)
        mean = torch.cat([out[:, :1].clamp(*LOG_MASS_RANGE), out[:, 2:2 + f].clamp(*ASINH_RANGE)], dim=1)
        # back to [mass mean, mass log-sigma, flux means..., flux log-sigmas...]
        return torch.cat([mean[:, :1], log_sigma[:, :1], mean[:, 1:], log_sigma[:, 1:]], dim=1)
