"""The map model: per-pixel mass and clean-image maps plus a posterior over derived quantities.

A :class:`MapModel` belongs to one trained image posterior: it holds a copy of that
posterior's encoder (input standardisation + :class:`~gcsbi.nets.pidoc.PiDocEmbedding`,
frozen when trained as a second stage), a :class:`~gcsbi.maps.net.MapDecoder` and a
conditional normalising flow (zuko NSF) q(s | x) over the derived quantities ``s`` of
:data:`gcsbi.maps.targets.SUMMARY_NAMES` (enclosed masses, M/L ratios, half-light radius,
mass-to-light half-radius ratio). The flow is conditioned on the embedding and on summaries
measured on the predicted maps, so its intervals are amortised posteriors checked for
coverage on held-out mocks like the parameter posterior, not sums of per-pixel errors (which
are correlated, so summing independent per-pixel variances gives intervals far too narrow).

Checkpoint (``torch.save`` of plain containers, read with ``weights_only=True``)::

    {"format": "gcsbi-maps", "format_version": 1, "meta": <JSON>, "state_dict": {...},
     "sha256": <hex SHA-256 over all of the above (gcsbi.integrity), required on load>}

``meta`` names the parent posterior (its ``weights_sha256``), the spec, the photometry used
for luminosities, the decoder and flow configs, the training history and metrics.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import GcsbiFileError, GcsbiValueError, one_line
from ..integrity import read_model_file, stamp
from ..outputs import check_file_target
from ..nets.standardize import ChannelStandardize
from .net import MapDecoder, MapDecoderConfig, encoder_features
from .targets import APERTURES, MASS_FLOOR, SUMMARY_NAMES, Photometry, enclosed, half_radius

__all__ = ["MapModel", "MapPrediction", "load_map_model", "save_map_model", "FORMAT", "FORMAT_VERSION",
           "MAP_FEATURE_NAMES", "check_parent", "encoder_digest"]

FORMAT, FORMAT_VERSION = "gcsbi-maps", 1
#: sigma (asinh units) above which the mean of the clean light stops growing (99.9% of pixels of
#: held-out M31 mocks have sigma < 1.6)
SIGMA_CAP = 2.0
#: Summaries measured on the predicted maps (observed units), fed to the flow with the embedding.
MAP_FEATURE_NAMES = ("log10_mass_fov_map", "log10_mass_0.5rh_map", "log10_mass_1rh_map", "log10_mass_2rh_map",
                     "log10_counts_fov_map", "log10_counts_1rh_map", "log10_rh_light_pix_map",
                     "log10_rh_mass_pix_map")


class MapPrediction(dict):
    """Per-pixel predictions for a batch (numpy, float32):

    ``log_mass`` / ``log_mass_std`` (B, H, W): mean and sigma of log10(Msun per pixel + MASS_FLOOR);
    ``mass`` (B, H, W): Msun per pixel (the median, 10**log_mass - MASS_FLOOR, >= 0);
    ``clean`` (B, F, H, W): expected clean cluster light (e-; the Gaussian's mean, see SIGMA_CAP);
    ``clean_median``, ``clean_lo`` / ``clean_hi``: its median, 16th and 84th percentiles per pixel;
    ``clean_asinh`` / ``clean_asinh_std``: the Gaussian in asinh units they come from.
    """


class MapModel(nn.Module):
    """Encoder + map decoder + summary flow of one image posterior; see the module docstring."""

    def __init__(self, *, encoder: nn.Module, decoder: MapDecoder, photometry: Photometry, meta: dict[str, Any],
                 summary_flow: nn.Module | None = None, n_context: int | None = None) -> None:
        super().__init__()
        self.encoder = encoder  # nn.Sequential(ChannelStandardize, PiDocEmbedding)
        self.decoder = decoder
        self.photometry = photometry
        self.meta = dict(meta)
        self.summary_flow = summary_flow
        n_ctx = int(n_context or (decoder.config.embedding_features + len(MAP_FEATURE_NAMES)))
        for name, n in (("ctx", n_ctx), ("sum", len(SUMMARY_NAMES))):
            self.register_buffer(f"{name}_mean", torch.zeros(n))
            self.register_buffer(f"{name}_std", torch.ones(n))

    # -- building -------------------------------------------------------------------------------
    @staticmethod
    def build_flow(n_context: int, *, transforms: int = 4, hidden: tuple[int, ...] = (128, 128)) -> nn.Module:
        import zuko

        return zuko.flows.NSF(features=len(SUMMARY_NAMES), context=n_context, transforms=transforms,
                              hidden_features=hidden)

    @property
    def x_pool(self) -> int:
        return int(self.decoder.config.x_pool)

    @property
    def encoder_sha256(self) -> str:
        return str(self.meta.get("encoder_sha256", ""))

    # -- per-pixel maps ---------------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor | None]:
        """(embedding, skips, standardised full-resolution x or None) for x (B, C, H, W) as simulated.

        The encoder sees x as the posterior does: pooled by ``x_pool``, then standardised (per
        channel, or per pixel of the pooled image with sbi's ``Standardize``). The full-resolution
        skip is standardised the same way (per-pixel statistics repeated over each pooled pixel).
        """
        standardize, pidoc = self.encoder[0], self.encoder[1]
        xp = nn.functional.avg_pool2d(x, self.x_pool) if self.x_pool > 1 else x
        emb, skips = encoder_features(pidoc, standardize(xp))
        if self.x_pool == 1:
            return emb, skips, None
        if isinstance(standardize, ChannelStandardize):  # any resolution
            return emb, skips, standardize(x)

        def up(t: torch.Tensor) -> torch.Tensor:  # sbi's Standardize: statistics per pooled pixel
            return nn.functional.interpolate(t.reshape(1, *xp.shape[1:]), size=x.shape[-2:], mode="nearest")

        return emb, skips, (x - up(standardize._mean)) / up(standardize._std)

    def _forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(embedding (B, F), raw decoder output (B, 2 + 2F, H, W)) for x (B, C, H, W) as simulated."""
        emb, skips, xs = self.encode(x)
        return emb, self.decoder(emb, skips, xs)

    def check_input(self, x: Any) -> torch.Tensor:
        """x as a (B, C, H, W) floating tensor (float16 kept: batches are converted one by one)."""
        x = torch.as_tensor(x)
        if not x.is_floating_point():
            x = x.to(torch.float32)
        shape = tuple(self.meta.get("x_shape", ()))
        if x.ndim == len(shape) and tuple(x.shape) == shape:
            x = x[None]
        if x.ndim != 4 or (shape and tuple(x.shape[1:]) != shape):
            raise GcsbiValueError(f"x must be (B, *{shape}) or {shape}, got {tuple(x.shape)}")
        if not all(bool(torch.isfinite(x[s:s + 256]).all()) for s in range(0, len(x), 256)):
            raise GcsbiValueError("x contains NaN or inf values; mask or inpaint them first")
        return x

    @torch.no_grad()
    def raw(self, x: Any, *, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
        """(embeddings (B, F), decoder outputs (B, 2 + 2F, H, W)) as numpy, in eval mode."""
        return self._raw(self.check_input(x), batch_size)

    @torch.no_grad()
    def _raw(self, x: torch.Tensor, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`raw` of an input :meth:`check_input` has passed."""
        self.eval()
        embs, outs = [], []
        for s in range(0, len(x), batch_size):
            e, o = self._forward(x[s:s + batch_size].to(torch.float32))
            embs.append(e.numpy())
            outs.append(o.numpy())
        return np.concatenate(embs), np.concatenate(outs)

    def maps_from_raw(self, out: np.ndarray) -> MapPrediction:
        f = self.decoder.config.n_bands
        mu_m, ls_m = out[:, 0], out[:, 1]
        mu_c, ls_c = out[:, 2:2 + f].astype(np.float64), out[:, 2 + f:2 + 2 * f].astype(np.float64)
        sig_c = np.exp(ls_c)
        scale = np.asarray(self.photometry.noise_scale, np.float64).reshape(1, -1, 1, 1)
        # percentiles map through the monotonic asinh; the mean of s sinh(t), t ~ N(mu, sig^2), is
        # s sinh(mu) exp(sig^2 / 2), with sig capped at SIGMA_CAP (rare pixels that may hold a bright
        # field or cluster star have a bimodal distribution the Gaussian describes badly)
        mean = scale * np.sinh(mu_c) * np.exp(0.5 * np.minimum(sig_c, SIGMA_CAP) ** 2)
        med, lo, hi = (scale * np.sinh(t) for t in (mu_c, mu_c - sig_c, mu_c + sig_c))
        return MapPrediction(log_mass=mu_m.astype(np.float32), log_mass_std=np.exp(ls_m).astype(np.float32),
                             mass=np.clip(10.0 ** mu_m.astype(np.float64) - MASS_FLOOR, 0.0, None).astype(np.float32),
                             clean=mean.astype(np.float32), clean_median=med.astype(np.float32),
                             clean_lo=lo.astype(np.float32), clean_hi=hi.astype(np.float32),
                             clean_asinh=mu_c.astype(np.float32), clean_asinh_std=sig_c.astype(np.float32))

    def predict_maps(self, x: Any, *, batch_size: int = 64) -> MapPrediction:
        """Per-pixel mass and clean-image maps (:class:`MapPrediction`) of observations x."""
        return self.maps_from_raw(self.raw(x, batch_size=batch_size)[1])

    # -- derived quantities -----------------------------------------------------------------------
    def map_features(self, pred: MapPrediction) -> np.ndarray:
        """(B, len(MAP_FEATURE_NAMES)) summaries of predicted maps in observed units (pixels, e-)."""
        mass = pred["mass"].astype(np.float64)
        light = np.clip(pred["clean"][:, self.photometry.band].astype(np.float64), 0.0, None)
        rh = np.clip(np.nan_to_num(half_radius(light), nan=1.0), 0.5, None)
        rh_m = np.clip(np.nan_to_num(half_radius(mass), nan=1.0), 0.5, None)
        m_in = enclosed(mass, rh[:, None] * np.asarray(APERTURES)[None])
        l_in = enclosed(light, rh[:, None])
        cols = [mass.sum(axis=(1, 2)), *m_in.T, light.sum(axis=(1, 2)), l_in[:, 0], rh, rh_m]
        return np.log10(np.clip(np.stack(cols, axis=1), 1e-3, None)).astype(np.float32)

    def context_of(self, emb: np.ndarray, pred: MapPrediction) -> np.ndarray:
        """The summary flow's (unstandardised) condition: embedding and summaries of the predicted maps."""
        return np.concatenate([emb, self.map_features(pred)], axis=1).astype(np.float32)

    def batches(self, x: Any, *, batch_size: int = 64):
        """(slice, embeddings, :class:`MapPrediction`) batch by batch (memory: one batch of maps)."""
        x = self.check_input(x)
        for s in range(0, len(x), batch_size):
            emb, out = self._raw(x[s:s + batch_size], batch_size)
            yield slice(s, s + len(emb)), emb, self.maps_from_raw(out)

    def contexts(self, x: Any, *, batch_size: int = 64) -> np.ndarray:
        """:meth:`context_of` for every observation of x, batch by batch."""
        return np.concatenate([self.context_of(e, p) for _, e, p in self.batches(x, batch_size=batch_size)])

    @torch.no_grad()
    def sample_summaries(self, x: Any, n: int, *, seed: int = 0, batch_size: int = 64,
                         contexts: np.ndarray | None = None) -> np.ndarray:
        """(n, B, len(SUMMARY_NAMES)) posterior draws of the derived quantities for observations x
        (or for their precomputed ``contexts``)."""
        if self.summary_flow is None:
            raise GcsbiValueError("this map model has no summary flow (train it with train_maps(..., summaries=True))")
        raw_ctx = contexts if contexts is not None else self.contexts(x, batch_size=batch_size)
        ctx = (torch.as_tensor(raw_ctx, dtype=torch.float32) - self.ctx_mean) / self.ctx_std
        g = torch.Generator().manual_seed(int(seed))
        draws = []
        self.eval()
        for i in range(len(ctx)):
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(torch.randint(0, 2**62, (1,), generator=g)))
                z = self.summary_flow(ctx[i]).sample((int(n),))
            draws.append((z * self.sum_std + self.sum_mean).numpy())
        return np.stack(draws, axis=1).astype(np.float32)

    def summary_log_prob(self, s: torch.Tensor, ctx: torch.Tensor) -> torch.Tensor:
        """log q(s | context) for standardised context (training)."""
        z = (s - self.sum_mean) / self.sum_std
        return self.summary_flow(ctx).log_prob(z) - torch.log(self.sum_std).sum()


# ----------------------------------------------------------------------------- files


def save_map_model(model: MapModel, path: str | Path) -> Path:
    path = Path(path)
    meta = dict(model.meta)
    meta["decoder"] = model.decoder.to_json()
    meta["photometry"] = asdict(model.photometry)
    meta["n_context"] = int(model.ctx_mean.numel())
    meta["has_summary_flow"] = model.summary_flow is not None
    check_file_target(path)  # never over a file of another kind
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, "meta": json.dumps(meta),
               "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}}
    torch.save(stamp(payload), tmp)  # the SHA-256 covers metadata and weights
    tmp.replace(path)  # never a half-written file under the final name
    return path


def _build(meta: dict[str, Any], state: dict[str, torch.Tensor]) -> MapModel:
    """An untrained map model of the architecture ``meta`` describes."""
    from ..nets.recipe import build_embedding

    dec = meta["decoder"]
    decoder = MapDecoder(MapDecoderConfig(**(dec | {"skip_channels": tuple(dec["skip_channels"])})))
    encoder = nn.Sequential(_standardizer(state), build_embedding(meta["encoder"]))
    flow = None
    if meta.get("has_summary_flow"):
        fcfg = meta.get("flow", {})
        flow = MapModel.build_flow(int(meta["n_context"]), transforms=int(fcfg.get("transforms", 4)),
                                   hidden=tuple(fcfg.get("hidden", (128, 128))))
    return MapModel(encoder=encoder, decoder=decoder, photometry=Photometry(**(meta["photometry"] | {
        "noise_scale": tuple(meta["photometry"]["noise_scale"]),
        "bands": tuple(meta["photometry"].get("bands", ()))})), meta=meta, summary_flow=flow,
        n_context=int(meta["n_context"]))


def _declared_size(meta: dict[str, Any]) -> int:
    """A lower bound on the number of weights ``meta`` declares, found without allocating them."""
    from ..nets.recipe import build_embedding

    dec = meta["decoder"]
    with torch.device("meta"):
        parts = (MapDecoder(MapDecoderConfig(**(dec | {"skip_channels": tuple(dec["skip_channels"])}))),
                 build_embedding(meta["encoder"]))
    n = sum(int(v.numel()) for part in parts for v in part.state_dict().values())
    if meta.get("has_summary_flow"):  # each NSF transform holds at least one hidden x hidden layer
        fcfg = meta.get("flow", {})
        n += int(fcfg.get("transforms", 4)) * max(int(h) for h in fcfg.get("hidden", (128, 128))) ** 2
    return n


def load_map_model(path: str | Path, *, posterior: Any = None, trust_unverified: bool | None = None) -> MapModel:
    """Load a map model; with ``posterior`` check that it was trained for that posterior.

    The file is verified first (:func:`gcsbi.integrity.read_model_file`: size caps, zip CRCs,
    the SHA-256 over metadata and weights); its metadata may name only gcsbi's embedding
    classes, and the architecture it declares must fit the weights it stores. Every failure is
    a one-line :class:`GcsbiFileError`.
    """
    path = Path(path)
    ck = read_model_file(path, fmt=FORMAT, what="map model", trust_unverified=trust_unverified)
    if ck.get("format_version") != FORMAT_VERSION:
        raise GcsbiFileError(f"{path}: not a {FORMAT} v{FORMAT_VERSION} file")
    state = ck.get("state_dict")
    if not isinstance(state, dict) or not all(isinstance(k, str) and torch.is_tensor(v) for k, v in state.items()):
        raise GcsbiFileError(f"{path}: map model key 'state_dict' is not a mapping of names to tensors")
    if not all(bool(torch.isfinite(v).all()) for v in state.values() if v.is_floating_point()):
        raise GcsbiFileError(f"{path}: non-finite weights")
    try:
        meta = json.loads(ck["meta"])
        if not isinstance(meta, dict):
            raise TypeError("meta is not a JSON object")
        n_declared = _declared_size(meta)
        n_stored = sum(int(v.numel()) for v in state.values())
        if n_declared > n_stored:
            raise GcsbiFileError(f"{path}: map model declares {n_declared} parameters but stores {n_stored}")
        model = _build(meta, state)
        model.load_state_dict(state, strict=True)
    except GcsbiFileError:
        raise
    except Exception as exc:  # missing or extra keys, wrong types, names outside gcsbi's registry, ...
        raise GcsbiFileError(f"{path}: map model metadata or weights do not describe a gcsbi map model: "
                             f"{type(exc).__name__}: {one_line(exc)}") from exc
    model.eval()
    if posterior is not None:
        check_parent(model, posterior, where=str(path))
    return model


def _standardizer(state: dict[str, torch.Tensor]) -> nn.Module:
    """An empty input standardisation of the kind the stored weights hold (per channel or sbi's per pixel)."""
    if "encoder.0.mean" in state:
        n = state["encoder.0.mean"].shape
        return ChannelStandardize(torch.zeros(n), torch.ones(n))
    if "encoder.0._mean" in state:
        from sbi.utils.sbiutils import Standardize

        n = state["encoder.0._mean"].shape
        return Standardize(torch.zeros(n), torch.ones(n))
    raise GcsbiFileError("the map model stores no input standardisation (encoder.0.mean / encoder.0._mean)")


def encoder_digest(encoder: nn.Module) -> str:
    """SHA-256 of an encoder's weights (input standardisation + embedding net)."""
    from ..nets.recipe import weights_digest

    return weights_digest(encoder.state_dict(), torch.zeros(0))


def check_parent(model: MapModel, posterior: Any, *, where: str = "map model") -> None:
    """Raise unless ``model`` was trained on ``posterior``'s encoder (same encoder weights)."""
    digest = encoder_digest(posterior.estimator.embedding_net)
    if model.encoder_sha256 and digest != model.encoder_sha256:
        raise GcsbiValueError(f"{where} was trained on another posterior's encoder (weights "
                              f"{model.encoder_sha256[:12]}, this posterior's {digest[:12]}); retrain it with "
                              "scripts/train_maps.py")
