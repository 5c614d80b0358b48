"""Training the map heads of an image posterior on a bank with truth maps.

Two stages, both on a copy of the posterior's encoder:

1. the :class:`~gcsbi.maps.net.MapDecoder` learns per-pixel Gaussians of log10 mass and of
   asinh clean light (loss: mean per-pixel negative log-likelihood of the mass map plus
   ``lambda_flux`` times that of the clean image, the seed's weighting), with the encoder
   frozen (``joint=False``) or trained along with the parameter posterior's own loss
   (``joint=True``: the NPE loss -log q(theta | x) of the posterior's flow is added and
   encoder, flow and decoder all train; the result is a new posterior to recalibrate);
2. the summary flow learns q(derived quantities | embedding, summaries of the predicted
   maps) by maximum likelihood, with early stopping on a validation split.

Every draw (splits, batches, initialisation) comes from ``seed``. :func:`train_maps` keeps a
resumable state file next to its output: run it again after an interruption and it goes on
from the last finished epoch.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import GcsbiValueError
from .model import MAP_FEATURE_NAMES, MapModel, encoder_digest
from .net import MapDecoder, MapDecoderConfig, encoder_features
from .targets import Photometry, clean_to_asinh, log_mass, summaries

__all__ = ["MapTrainConfig", "MapData", "HeldOut", "truth_bank", "load_map_data", "load_held_out", "build_map_model",
           "train_maps", "train_maps_joint", "train_summary_flow"]


@dataclass(frozen=True)
class MapTrainConfig:
    """Options of :func:`train_maps`."""

    epochs: int = 12
    batch_size: int = 32
    learning_rate: float = 2e-3
    lambda_flux: float = 0.2
    validation_fraction: float = 0.1
    stop_after_epochs: int = 3
    flow_epochs: int = 300
    flow_stop_after: int = 20
    flow_transforms: int = 4
    flow_hidden: tuple[int, ...] = (128, 128)
    width: int = 8
    full_width: int = 8
    joint: bool = False
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "stop_after_epochs", "flow_epochs", "flow_stop_after", "width",
                     "full_width", "flow_transforms"):
            if int(getattr(self, name)) < 1:
                raise GcsbiValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 < self.validation_fraction < 0.5:
            raise GcsbiValueError(f"validation_fraction must be in (0, 0.5), got {self.validation_fraction}")
        if not (self.learning_rate > 0 and self.lambda_flux >= 0):
            raise GcsbiValueError("learning_rate must be > 0 and lambda_flux >= 0")


@dataclass
class MapData:
    """Training rows in memory: x (N, C, H, W) float16, targets float16, summaries float32."""

    theta: torch.Tensor
    x: torch.Tensor
    log_mass: torch.Tensor
    clean: torch.Tensor
    summaries: np.ndarray

    def __len__(self) -> int:
        return len(self.x)


def load_map_data(path: str | Path, *, photometry: Photometry, param_names: tuple[str, ...],
                  max_rows: int | None = None) -> MapData:
    """Rows of a bank created with ``--truth mass_map,clean`` as :class:`MapData`."""
    from ..bank import SimulationBank

    bank = SimulationBank.open(path)
    missing = {"mass_map", "clean"} - set(bank.config.truth_names)
    if missing:
        raise GcsbiValueError(f"{path} stores no truth {sorted(missing)}; create it with --truth mass_map,clean")
    if tuple(bank.param_names) != tuple(param_names):
        raise GcsbiValueError(f"{path} has parameters {bank.param_names}, the posterior {param_names}")
    names = list(param_names)
    rows = bank.row_mask()
    parts: dict[str, list] = {"theta": [], "x": [], "log_mass": [], "clean": [], "summaries": []}
    n = 0
    for chunk in range(bank.n_chunks):  # chunk by chunk: float16 copies only, never the whole bank in float64
        lo, hi = bank.config.chunk_bounds(chunk)
        sel = rows[lo:hi]
        if max_rows is not None:
            sel = sel & (np.cumsum(sel) + n <= max_rows)
        if not sel.any():
            continue
        t, x = bank._read_chunk(chunk)
        mass, clean = bank._read_truth_chunk(chunk, "mass_map")[sel], bank._read_truth_chunk(chunk, "clean")[sel]
        t, x = t[sel], x[sel]
        parts["summaries"].append(summaries(mass, clean, distance_kpc=t[:, names.index("distance_kpc")],
                                            ebv=t[:, names.index("ebv")], photometry=photometry))
        parts["theta"].append(torch.from_numpy(t))
        parts["x"].append(torch.from_numpy(x).to(torch.float16))
        parts["log_mass"].append(torch.from_numpy(log_mass(mass)).to(torch.float16))
        parts["clean"].append(torch.from_numpy(clean_to_asinh(clean, photometry.noise_scale)).to(torch.float16))
        n += int(sel.sum())
    if not n:
        raise GcsbiValueError(f"{path} has no finished rows")
    return MapData(theta=torch.cat(parts["theta"]), x=torch.cat(parts["x"]), log_mass=torch.cat(parts["log_mass"]),
                   clean=torch.cat(parts["clean"]), summaries=np.concatenate(parts["summaries"]))


@dataclass
class HeldOut:
    """Held-out rows with their truths: theta, x (float32 tensors), mass and clean maps, derived quantities."""

    theta: torch.Tensor
    x: torch.Tensor
    mass: np.ndarray
    clean: np.ndarray
    truth: np.ndarray


def truth_bank(path: str | Path, *, spec: str, prior: str, n: int, seed: int, workers: int = 1,
               progress: bool = True) -> Any:
    """The bank at ``path`` (created when missing: the gcsbi simulator of ``spec``/``prior``, storing the
    ``mass_map`` and ``clean`` truths), with its missing chunks computed."""
    from ..bank import SimulationBank

    if Path(path).exists():
        bank = SimulationBank.open(path)
    else:
        bank = SimulationBank.create(path, simulator_factory="gcsbi.simulator:load_simulator",
                                     factory_kwargs={"spec": spec, "prior": prior}, n=n, chunk_size=50, seed=seed,
                                     truth=["mass_map", "clean"])
    bank.generate(workers=workers, progress=progress)
    return bank


def load_held_out(path: str | Path, *, photometry: Photometry, param_names: tuple[str, ...]) -> HeldOut:
    """Every finished row of a truth bank in float32, with the true derived quantities."""
    from ..bank import SimulationBank

    bank = SimulationBank.open(path)
    theta, x = bank.load()
    mass, clean = bank.load_truth("mass_map"), bank.load_truth("clean")
    names = list(param_names)
    truth = summaries(mass, clean, distance_kpc=theta[:, names.index("distance_kpc")].numpy(),
                      ebv=theta[:, names.index("ebv")].numpy(), photometry=photometry)
    return HeldOut(theta=theta, x=x, mass=mass, clean=clean, truth=truth)


def build_map_model(posterior: Any, *, photometry: Photometry, config: MapTrainConfig) -> MapModel:
    """A fresh map model on a copy of ``posterior``'s encoder (PiDocEmbedding with x_pool 1 or 2)."""
    from ..nets.recipe import embedding_recipe

    encoder = copy.deepcopy(posterior.estimator.embedding_net)
    if not (isinstance(encoder, nn.Sequential) and len(encoder) == 2):
        raise GcsbiValueError("map heads need a posterior whose embedding net is (input standardisation, "
                              "PiDocEmbedding), i.e. trained with z_score_x 'channel' or 'independent'")
    pidoc = encoder[1]
    c, h, w = posterior.x_shape
    pool = int(posterior.config.x_pool)
    with torch.no_grad():
        pidoc.eval()
        emb, skips = encoder_features(pidoc, torch.zeros(1, c, h // pool, w // pool))
    cfg = MapDecoderConfig(skip_channels=tuple(int(s.shape[1]) for s in skips), embedding_features=int(emb.shape[1]),
                           n_bands=len(photometry.noise_scale), in_channels=c, x_pool=pool, width=config.width,
                           full_width=config.full_width)
    torch.manual_seed(config.seed)
    decoder = MapDecoder(cfg)
    flow = MapModel.build_flow(cfg.embedding_features + len(MAP_FEATURE_NAMES), transforms=config.flow_transforms,
                               hidden=config.flow_hidden)
    meta = {"spec": posterior.spec, "x_shape": list(posterior.x_shape), "param_names": list(posterior.param_names),
            "encoder": embedding_recipe(pidoc), "encoder_sha256": encoder_digest(encoder),
            "flow": {"transforms": config.flow_transforms, "hidden": list(config.flow_hidden)}}
    return MapModel(encoder=encoder, decoder=decoder, photometry=photometry, meta=meta, summary_flow=flow)


def _split(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.default_rng([seed, 7]).permutation(n)
    n_val = max(1, int(round(fraction * n)))
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def _nll(mean: torch.Tensor, log_sigma: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean Gaussian negative log-likelihood (without the constant)."""
    return (log_sigma + 0.5 * ((target - mean) * torch.exp(-log_sigma)) ** 2).mean()


def _map_loss(out: torch.Tensor, log_m: torch.Tensor, clean: torch.Tensor, lambda_flux: float) -> torch.Tensor:
    """Per-pixel NLL of the mass map + lambda_flux x that of the clean image."""
    f = clean.shape[1]
    return _nll(out[:, 0], out[:, 1], log_m) + lambda_flux * _nll(out[:, 2:2 + f], out[:, 2 + f:2 + 2 * f], clean)


def _batches(rows: np.ndarray, batch_size: int, rng: np.random.Generator | None) -> list[np.ndarray]:
    order = rows if rng is None else rng.permutation(rows)
    return [order[s:s + batch_size] for s in range(0, len(order), batch_size)]


def _decoder_epoch(model: MapModel, data: MapData, rows: np.ndarray, cfg: MapTrainConfig,
                   opt: torch.optim.Optimizer | None, rng: np.random.Generator | None, npe: Any, bar: Any) -> float:
    train = opt is not None
    model.decoder.train(train)
    model.encoder.train(train and cfg.joint)
    if npe is not None:
        npe.train(train)
    total, n = 0.0, 0
    dev = cfg.device
    for idx in _batches(rows, cfg.batch_size, rng):
        t = torch.from_numpy(idx)
        x = data.x[t].to(dev).float()
        log_m, clean = data.log_mass[t].to(dev).float(), data.clean[t].to(dev).float()
        with torch.set_grad_enabled(train):
            if cfg.joint and npe is not None:
                _, out = model._forward(x)
                loss = _map_loss(out, log_m, clean, cfg.lambda_flux)
                xp = nn.functional.avg_pool2d(x, model.x_pool) if model.x_pool > 1 else x
                loss = loss + npe.loss(data.theta[t].to(dev), xp).mean()  # the NPE loss -log q(theta | x)
            else:
                with torch.no_grad():
                    emb, skips, xs = model.encode(x)
                out = model.decoder(emb, skips, xs)
                loss = _map_loss(out, log_m, clean, cfg.lambda_flux)
        if train:
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]], 5.0)
            opt.step()
        total += float(loss.detach()) * len(idx)
        n += len(idx)
        if bar is not None:
            bar.update(len(idx))
            bar.set_postfix(loss=f"{total / n:.3f}")
    return total / max(n, 1)


def _train_decoder(model: MapModel, data: MapData, cfg: MapTrainConfig, state_path: Path | None,
                   progress: bool, npe: Any = None) -> dict[str, Any]:
    from tqdm.auto import tqdm

    tr, va = _split(len(data), cfg.validation_fraction, cfg.seed)
    model.to(cfg.device)
    params = list(model.decoder.parameters())
    if cfg.joint:  # the estimator holds the (shared) encoder
        params += list(npe.parameters())
    opt = torch.optim.Adam(params, lr=cfg.learning_rate)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs)
    hist: dict[str, Any] = {"train_loss": [], "validation_loss": [], "epoch_seconds": []}
    best, best_state, start = math.inf, None, 0
    if state_path is not None and state_path.is_file():  # resume after an interruption
        st = torch.load(state_path, map_location="cpu", weights_only=False)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        sched.load_state_dict(st["sched"])
        hist, best, best_state, start = st["hist"], st["best"], st["best_state"], st["epoch"]
    for epoch in range(start, cfg.epochs):
        t0 = time.perf_counter()
        rng = np.random.default_rng([cfg.seed, epoch])
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed * 1000 + epoch)
            bar = tqdm(total=len(tr), desc=f"map decoder epoch {epoch + 1}/{cfg.epochs}", unit="mock",
                       disable=not progress, leave=False)
            loss = _decoder_epoch(model, data, tr, cfg, opt, rng, npe, bar)
            bar.close()
        val = _decoder_epoch(model, data, va, cfg, None, None, npe, None)
        sched.step()
        hist["train_loss"].append(loss)
        hist["validation_loss"].append(val)
        hist["epoch_seconds"].append(time.perf_counter() - t0)
        if val < best:
            best, best_state = val, copy.deepcopy(model.state_dict())
        if progress:
            print(f"map decoder epoch {epoch + 1}: train {loss:.4f}, validation {val:.4f}", flush=True)
        if state_path is not None:
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                        "hist": hist, "best": best, "best_state": best_state, "epoch": epoch + 1}, state_path)
        if len(hist["validation_loss"]) - 1 - int(np.argmin(hist["validation_loss"])) >= cfg.stop_after_epochs:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.to("cpu")
    if npe is not None:
        npe.to("cpu").eval()
    hist["best_validation_loss"] = best
    return hist


def train_summary_flow(model: MapModel, data: MapData, cfg: MapTrainConfig, progress: bool = True) -> dict[str, Any]:
    """Fit the summary flow (and its standardisation) of ``model`` on ``data``; returns its history."""
    from tqdm.auto import tqdm

    ctx_raw = model.contexts(data.x, batch_size=64)
    s = data.summaries
    ok = np.isfinite(s).all(axis=1) & np.isfinite(ctx_raw).all(axis=1)
    tr, va = _split(len(s), cfg.validation_fraction, cfg.seed + 1)
    tr, va = tr[ok[tr]], va[ok[va]]
    ctx_raw, s = torch.from_numpy(ctx_raw), torch.from_numpy(s)
    with torch.no_grad():
        model.ctx_mean.copy_(ctx_raw[tr].mean(0))
        model.ctx_std.copy_(ctx_raw[tr].std(0).clamp_min(1e-6))
        model.sum_mean.copy_(s[tr].mean(0))
        model.sum_std.copy_(s[tr].std(0).clamp_min(1e-6))
    ctx = (ctx_raw - model.ctx_mean) / model.ctx_std
    flow = model.summary_flow
    torch.manual_seed(cfg.seed)
    opt = torch.optim.Adam(flow.parameters(), lr=1e-3)
    hist: dict[str, Any] = {"flow_train_loss": [], "flow_validation_loss": []}
    best, best_state = math.inf, None
    bar = tqdm(range(cfg.flow_epochs), desc="summary flow", disable=not progress)
    for epoch in bar:
        flow.train()
        rng = np.random.default_rng([cfg.seed, 99, epoch])
        tot = 0.0
        for idx in _batches(tr, 256, rng):
            t = torch.from_numpy(idx)
            loss = -model.summary_log_prob(s[t], ctx[t]).mean()
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(flow.parameters(), 5.0)
            opt.step()
            tot += float(loss.detach()) * len(idx)
        flow.eval()
        with torch.no_grad():
            val = float(-model.summary_log_prob(s[torch.from_numpy(va)], ctx[torch.from_numpy(va)]).mean())
        hist["flow_train_loss"].append(tot / len(tr))
        hist["flow_validation_loss"].append(val)
        bar.set_postfix(validation=f"{val:.3f}")
        if val < best:
            best, best_state = val, copy.deepcopy(flow.state_dict())
        if epoch - int(np.argmin(hist["flow_validation_loss"])) >= cfg.flow_stop_after:
            break
    flow.load_state_dict(best_state)
    hist["flow_best_validation_loss"] = best
    return hist


def train_maps(posterior: Any, data: MapData, *, photometry: Photometry, config: MapTrainConfig | None = None,
               state_path: str | Path | None = None, progress: bool = True) -> MapModel:
    """Train the map heads of ``posterior`` on ``data`` (see the module docstring)."""
    cfg = config or MapTrainConfig()
    if cfg.joint:
        raise GcsbiValueError("joint=True changes the posterior's encoder: use train_maps_joint, which returns the "
                              "new posterior too")
    model = build_map_model(posterior, photometry=photometry, config=cfg)
    return _finish(model, data, cfg, state_path, progress, None)


def _finish(model: MapModel, data: MapData, cfg: MapTrainConfig, state_path: str | Path | None, progress: bool,
            npe: Any) -> MapModel:
    t0 = time.perf_counter()
    hist = _train_decoder(model, data, cfg, Path(state_path) if state_path else None, progress, npe)
    model.meta["encoder_sha256"] = encoder_digest(model.encoder)
    hist |= train_summary_flow(model, data, cfg, progress)
    hist["n_train_rows"] = len(data)
    hist["seconds"] = time.perf_counter() - t0
    model.meta["history"] = hist
    model.meta["train_config"] = {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(cfg).items()}
    return model


def train_maps_joint(posterior: Any, data: MapData, *, photometry: Photometry, config: MapTrainConfig | None = None,
                     state_path: str | Path | None = None, progress: bool = True) -> tuple[Any, MapModel]:
    """Train encoder, posterior flow and map decoder together (loss: NPE + map terms).

    Returns (a new posterior, its map model); ``posterior`` is left untouched. The new posterior's
    encoder differs from the old one's, so its calibration must be checked again.
    """
    import dataclasses

    cfg = dataclasses.replace(config or MapTrainConfig(), joint=True)
    post = copy.deepcopy(posterior)
    model = build_map_model(post, photometry=photometry, config=cfg)
    model.encoder = post.estimator.embedding_net  # shared: one encoder for the posterior and the maps
    model = _finish(model, data, cfg, state_path, progress, post.estimator)
    post.estimator.eval()
    _, va = _split(len(data), cfg.validation_fraction, cfg.seed)  # rows no step was trained on
    ref = data.x[torch.from_numpy(va[: int(post.config.n_reference)])].float()
    post.reference_embeddings = post.embed(ref)  # the OOD test compares with embeddings of the new encoder
    post.history = dict(post.history) | {"joint_map_training": model.meta["history"]}
    return post, model
