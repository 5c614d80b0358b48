"""Catalogue-mode simulators: the image simulator followed by PHAT-catalogue measurements.

Two ``sbi``/``gcsbi.bank`` simulators (same contract as :class:`gcsbi.simulator.ClusterSimulator`:
``prior``, ``param_names``, ``output_shape``, ``spec``, ``__call__(theta, seed=)`` -> float32):

* :class:`ProfileSimulator` (``output_shape = (9K + 3,)``): mock HST images (``hst-phat`` on a
  larger stamp, default 256x256 at 0.05"/pix = 12.8", so that the aperture + background annulus
  of the M31 clusters fit) reduced to curves of growth around the cluster centre -- what any
  aperture measurement needs. Banked once (expensive), measured many times (cheap).
* :class:`CatalogueSimulator` (``output_shape = (2F + 2,)`` for F bands): profiles -> the PHAT
  catalogue vector of :mod:`gcsbi.catalogue.model` (magnitudes, errors, Reff, Rap, with
  catalogue-level noise, upper limits and missing bands).

The spec ``hst-phat6`` gives all six PHAT bands; ``hst-phat`` the three F336W, F475W, F814W.
Layout of a profile vector (K radii r_k = k * 0.05", k = 1..K; F bands in the spec's order)::

    [0, FK)      cumulative (noisy image - sky) counts, band-major (e-)
    [FK, 2FK)    cumulative per-pixel variance (expected counts + read-noise variance)
    [2FK, 3FK)   cumulative noiseless cluster-only counts
    [3FK, 3FK+F) noiseless cluster-only counts in the whole stamp
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import GcsbiValueError
from ..simulator.core import resolve_seed
from ..spec.priors import NamedBoxPrior
from .photometry import curves_of_growth, pixel_counts, radial_grid

__all__ = ["ProfileSimulator", "CatalogueSimulator", "profile_simulator", "catalogue_simulator",
           "split_profiles", "DEFAULT_STAMP"]

DEFAULT_STAMP = 256


def _spec_with_size(spec: Any, size: int):
    from ..spec.simulator_spec import SimulatorSpec, load_simulator_spec

    s = spec if isinstance(spec, SimulatorSpec) else load_simulator_spec(spec)
    if size and tuple(s.observation.size) != (int(size), int(size)):
        s = dataclasses.replace(s, observation=dataclasses.replace(s.observation, size=(int(size), int(size))))
    return s


class ProfileSimulator:
    """Image simulator + curves of growth (see module docstring).

    Args:
        spec: simulator spec name/path (``"hst-phat6"``, ``"hst-phat"``); its filters must be PHAT bands.
        prior: prior name/path/object (default: the spec's ``default_prior``).
        stamp: square stamp size in pixels (replaces the spec's ``[observation] size``).
    """

    def __init__(self, spec: str | Path = "hst-phat6", prior: str | Path | NamedBoxPrior | None = None, *,
                 stamp: int = DEFAULT_STAMP) -> None:
        from ..simulator.core import ClusterSimulator

        if int(stamp) < 32:
            raise GcsbiValueError(f"stamp must be >= 32 pixels, got {stamp}")
        self.spec_name = str(spec)
        self.stamp = int(stamp)
        self.image_simulator = ClusterSimulator(_spec_with_size(spec, self.stamp), prior)
        self.prior = self.image_simulator.prior
        ss = self.image_simulator.sim_spec
        self.filters = tuple(ss.filters)
        from .model import BANDS

        if not set(self.filters) <= set(BANDS):
            raise GcsbiValueError(f"catalogue mode needs PHAT bands {list(BANDS)}; spec {ss.name!r} has {list(self.filters)}")
        self.pixel_scale = float(ss.instrument.pixel_scale_arcsec)
        self.radii = radial_grid((self.stamp, self.stamp), self.pixel_scale)
        self.npix = pixel_counts((self.stamp, self.stamp), self.radii, self.pixel_scale)
        self.zeropoints = np.array([b.zeropoint_vega for b in ss.instrument.bands], dtype=np.float64)
        self.exposure_s = np.array([b.exposure_s for b in ss.instrument.bands], dtype=np.float64)
        self.read_var = np.array([b.read_noise_total_e ** 2 if ss.noise.read_noise else 0.0
                                  for b in ss.instrument.bands], dtype=np.float64)
        k, f = len(self.radii), len(self.filters)
        self.output_shape = (3 * f * k + f,)

    @property
    def param_names(self) -> tuple[str, ...]:
        return self.prior.names

    @property
    def spec(self) -> dict[str, Any]:
        s = self.image_simulator.spec
        s["simulator"].update(kind="profiles", stamp=self.stamp, filters=list(self.filters),
                              radii_arcsec=[float(self.radii[0]), float(self.radii[-1]), len(self.radii)],
                              output_shape=list(self.output_shape))
        return s

    def __repr__(self) -> str:
        return f"ProfileSimulator(spec={self.spec_name!r}, prior={self.prior.name!r}, stamp={self.stamp})"

    def profiles_one(self, row: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One mock -> its profile vector (float64)."""
        _, obs = self.image_simulator.simulate_one(row, rng=rng, return_truth=True)
        sky = np.asarray(obs.sky, dtype=np.float64)[:, None, None]
        expected = obs.clean.astype(np.float64) + obs.background + sky
        var = np.clip(expected, 0.0, None) + self.read_var[:, None, None]
        cog = curves_of_growth(np.stack([obs.image - sky, var, obs.clean]), self.radii, self.pixel_scale)
        total = obs.clean.astype(np.float64).sum(axis=(-2, -1))
        return np.concatenate([cog.reshape(-1), total])

    def __call__(self, theta: torch.Tensor, *, seed: int | None = None) -> torch.Tensor:
        t = self.prior.check_in_support(theta).double().numpy()
        seed = resolve_seed(seed)
        out = np.empty((len(t), *self.output_shape), dtype=np.float64)
        for i, row in enumerate(t):
            rng = np.random.default_rng(np.random.SeedSequence([int(seed), i]))
            out[i] = self.profiles_one(row, rng)
        return torch.from_numpy(out.astype(np.float32))


def split_profiles(profiles: np.ndarray, n_filters: int = 3) -> dict[str, np.ndarray]:
    """Profile vectors (..., 9K+3) -> ``noisy``, ``var``, ``clean`` (..., F, K) and ``total`` (..., F)."""
    p = np.asarray(profiles, dtype=np.float64)
    f = int(n_filters)
    k = (p.shape[-1] - f) // (3 * f)
    if 3 * f * k + f != p.shape[-1]:
        raise GcsbiValueError(f"profile vectors of length {p.shape[-1]} do not match {f} filters")
    lead = p.shape[:-1]
    cog = p[..., : 3 * f * k].reshape(*lead, 3, f, k)
    return {"noisy": cog[..., 0, :, :], "var": cog[..., 1, :, :], "clean": cog[..., 2, :, :],
            "total": p[..., 3 * f * k:]}


def profile_simulator(spec: str = "hst-phat6", prior: str | None = None, stamp: int = DEFAULT_STAMP) -> ProfileSimulator:
    """``gcsbi.bank`` factory (``"gcsbi.catalogue.simulator:profile_simulator"``)."""
    return ProfileSimulator(spec, prior, stamp=stamp)


def catalogue_simulator(spec: str = "hst-phat6", prior: str | None = None, stamp: int = DEFAULT_STAMP,
                        **model_kwargs: Any) -> "CatalogueSimulator":
    """``gcsbi.bank`` factory (``"gcsbi.catalogue.simulator:catalogue_simulator"``).

    ``model_kwargs`` go to :class:`CatalogueSimulator` (``model``; ``near_uv`` only as ``"shipped"``
    or ``None``: a bank's kwargs must not name files to read).
    """
    nuv = model_kwargs.get("near_uv", "shipped")
    if nuv is not None and nuv != "shipped":
        raise GcsbiValueError(f"near_uv in bank kwargs must be 'shipped' or null, got {nuv!r}")
    return CatalogueSimulator(spec, prior, stamp=stamp, **model_kwargs)


class CatalogueSimulator:
    """Catalogue-mode ``sbi`` simulator: theta (B, D) -> PHAT catalogue features (B, 2F + 2) float32.

    ``__call__(theta, seed=)`` simulates images (:class:`ProfileSimulator`), measures them like the
    catalogue (:class:`~gcsbi.catalogue.model.CatalogueModel`) and returns
    :func:`~gcsbi.catalogue.model.features`. Row i's image noise comes from ``SeedSequence([seed, i])``
    (as in the image simulator) and its catalogue noise from ``SeedSequence([seed, i, 1])``.
    :meth:`from_profiles` measures banked profiles (cheap; used for training).

    ``near_uv``: the near-UV model discrepancy (:mod:`gcsbi.catalogue.discrepancy`) that dims each
    mock's cluster light in F275W/F336W before it is measured: ``"shipped"`` (default, the Harris
    calibration), a :class:`~gcsbi.catalogue.discrepancy.NearUVDiscrepancy`, a path to one, or
    ``None`` (the stellar models as they are). Its draws come from ``SeedSequence([seed, i, 2])``.
    """

    def __init__(self, spec: str | Path = "hst-phat6", prior: str | Path | NamedBoxPrior | None = None, *,
                 stamp: int = DEFAULT_STAMP, model: Any = None, near_uv: Any = "shipped") -> None:
        from .discrepancy import NearUVDiscrepancy, load_near_uv
        from .model import CatalogueModel, feature_names

        self.profiles = ProfileSimulator(spec, prior, stamp=stamp)
        if model is None:
            model = CatalogueModel()
        elif isinstance(model, dict):
            model = CatalogueModel.from_dict(model)
        self.model = model
        if isinstance(near_uv, str) and near_uv == "shipped":
            near_uv = load_near_uv()
        elif isinstance(near_uv, (str, Path)):
            near_uv = load_near_uv(near_uv)
        elif isinstance(near_uv, dict):
            near_uv = NearUVDiscrepancy.from_dict(near_uv)
        elif near_uv is not None and not isinstance(near_uv, NearUVDiscrepancy):
            raise GcsbiValueError(f"near_uv must be 'shipped', a path, a NearUVDiscrepancy or None; got {near_uv!r}")
        self.near_uv = near_uv
        self.prior = self.profiles.prior
        names = self.prior.names
        if near_uv is not None and not ("feh" in names and {"log10_age_yr", "age_gyr"} & set(names)):
            raise GcsbiValueError(f"near_uv needs feh and log10_age_yr or age_gyr among the parameters; the prior has {list(names)}")
        self.feature_names = feature_names(self.profiles.filters)
        self.output_shape = (len(self.feature_names),)
        max_rap = self.profiles.radii[-1] / self.model.annulus[1]
        if self.model.rap_range[1] > max_rap + 1e-9:
            raise GcsbiValueError(f"rap_range upper bound {self.model.rap_range[1]}\" needs a stamp of at least "
                                  f"{2 * self.model.rap_range[1] * self.model.annulus[1] / self.profiles.pixel_scale:.0f} px")

    @property
    def param_names(self) -> tuple[str, ...]:
        return self.prior.names

    @property
    def spec(self) -> dict[str, Any]:
        s = self.profiles.image_simulator.spec
        s["simulator"].update(kind="catalogue", stamp=self.profiles.stamp, filters=list(self.profiles.filters),
                              features=list(self.feature_names), output_shape=list(self.output_shape),
                              catalogue_model=self.model.to_dict(),
                              near_uv=None if self.near_uv is None else self.near_uv.to_dict())
        s["simulator"].pop("channels", None)
        return s

    def __repr__(self) -> str:
        return f"CatalogueSimulator(prior={self.prior.name!r}, stamp={self.profiles.stamp}, x={self.output_shape})"

    def measure(self, profiles: np.ndarray, rng: np.random.Generator, *, rap: np.ndarray | None = None,
                offsets: np.ndarray | None = None) -> dict:
        """Catalogue values (dict of arrays, see ``CatalogueModel.measure``) for profile vectors (N, 9K+3).

        ``offsets`` (N, F) mag dim the cluster light of each band before it is measured (the noisy
        curve keeps its noise; its cluster part, the clean curve, the total and the Poisson variance
        are scaled).
        """
        p = self.profiles
        prof = split_profiles(profiles, len(p.filters))
        if offsets is not None:
            s = 10.0 ** (-0.4 * np.asarray(offsets, dtype=np.float64))
            extra = prof["clean"] * (s[..., None] - 1.0)
            prof = {"noisy": prof["noisy"] + extra, "var": prof["var"] + extra, "clean": prof["clean"] + extra,
                    "total": prof["total"] * s}
        return self.model.measure(prof, radii=p.radii, npix=p.npix, zeropoints=p.zeropoints,
                                  exposure_s=p.exposure_s, rng=rng, bands=p.filters, rap=rap)

    def near_uv_offsets(self, theta: Any, *, seed: int) -> np.ndarray | None:
        """Per-row near-UV offsets (N, F) mag drawn for parameters ``theta`` (None without a discrepancy)."""
        if self.near_uv is None:
            return None
        t = np.asarray(torch.as_tensor(theta).detach().cpu(), dtype=np.float64)
        if t.ndim != 2 or t.shape[1] != len(self.param_names):
            raise GcsbiValueError(f"theta must have shape (N, {len(self.param_names)}), got {tuple(t.shape)}")
        names = self.param_names
        log_age = (t[:, names.index("log10_age_yr")] if "log10_age_yr" in names
                   else np.log10(t[:, names.index("age_gyr")] * 1e9))
        feh = t[:, names.index("feh")]
        out = np.empty((len(t), len(self.profiles.filters)))
        for i in range(len(t)):
            rng = np.random.default_rng(np.random.SeedSequence([int(seed), i, 2]))
            out[i] = self.near_uv.draw_offsets(log_age[i:i + 1], feh[i:i + 1], self.profiles.filters, rng)[0]
        return out

    def from_profiles(self, profiles: Any, *, seed: int, theta: Any = None) -> torch.Tensor:
        """Features (N, 2F + 2) float32 for banked profile vectors; same seed -> same bytes.

        ``theta`` (N, D), the parameters the profiles were simulated with, is needed when the
        simulator has a near-UV discrepancy (its offsets depend on age and [Fe/H]).
        """
        from .model import drop_bands, features

        prof = np.asarray(torch.as_tensor(profiles).detach().cpu(), dtype=np.float64)
        if self.near_uv is not None and theta is None:
            raise GcsbiValueError("from_profiles needs theta: this simulator applies the near-UV discrepancy "
                                  "(or build it with near_uv=None)")
        off = self.near_uv_offsets(theta, seed=seed)
        if off is not None and len(off) != len(prof):
            raise GcsbiValueError(f"theta has {len(off)} rows but profiles have {len(prof)}")
        out = np.empty((len(prof), *self.output_shape), dtype=np.float32)
        for i in range(len(prof)):
            rng = np.random.default_rng(np.random.SeedSequence([int(seed), i, 1]))
            o = None if off is None else off[i:i + 1]
            v = drop_bands(self.measure(prof[i:i + 1], rng, offsets=o), self.profiles.filters, self.model, rng)
            out[i] = features(v["mag"], v["err"], v["reff"], v["rap"])[0]
        return torch.from_numpy(out)

    def __call__(self, theta: torch.Tensor, *, seed: int | None = None) -> torch.Tensor:
        seed = resolve_seed(seed)
        return self.from_profiles(self.profiles(theta, seed=seed), seed=seed, theta=theta)
