"""Prior choices for catalogue-mode posteriors, applied at inference time.

A posterior is trained under one prior (its training prior, e.g. ``m31-clusters``: log age
7 - 10.15, E(B-V) 0 - 1). Inference may use another one ``pi'``: because it is given relative to
the training prior ``pi``, ``p'(theta | x) ∝ p(theta | x) pi'(theta) / pi(theta)``: posterior draws are
weighted by ``pi' / pi`` and resampled. Box restrictions keep the draws inside the box; a
Gaussian E(B-V) prior weights them by its density (the training prior is flat in E(B-V)); a
population (:mod:`gcsbi.catalogue.population`) weights them by its density at the cluster's M31
disc radius.

Presets (:data:`PRESETS`):

* ``box`` (the default of ``gcsbi m31``): the training box with E(B-V) >= the Milky Way foreground
  (:data:`~gcsbi.catalogue.geometry.EBV_FOREGROUND`), the physical lower bound of every M31
  cluster's reddening;
* ``population`` (experimental): the population of M31's clusters learnt from the PHAT catalogue
  itself (``m31-phat``, :mod:`gcsbi.catalogue.population`: age, mass, [Fe/H] and E(B-V) jointly, in
  three disc-radius bins, averaged over its bootstrap fits; E(B-V) >= the Milky Way foreground).
  Calibrated on mocks drawn from it, but learnt through a model that misses real clusters' colours
  (too blue in the near-UV): against the literature it improves old clusters' masses and worsens
  young clusters' ages (``docs/catalogue-mode.md``), so it is not the default yet. It applies only to
  a posterior with the parameters and box it was learnt for;
* ``old``: old clusters (8 - 14 Gyr, mass >= 10^4 Msun, i.e. the ``m31-old`` prior; when a posterior
  trained on that prior is shipped, :func:`gcsbi.catalogue.inference.load_catalogue_posterior` gives
  it), E(B-V) >= the foreground;
* ``training``: no change -- the posterior's own training prior, E(B-V) from 0: for checks on the
  training simulations; unphysical for M31, whose clusters all lie behind the Milky Way's dust.

The choice is described in every output (``describe``), so a result always says which prior it used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import GcsbiValueError
from .geometry import EBV_FOREGROUND

__all__ = ["PriorChoice", "PRESETS", "DEFAULT_PRESET", "POPULATIONS", "population_applies", "prior_choice", "reweight",
           "training_box", "check_within_training"]


@dataclass(frozen=True)
class PriorChoice:
    """Restrictions (``age_gyr``, ``log10_mass``, ``ebv`` boxes; ``ebv_min``, a lower bound only), a
    Gaussian ``ebv_gaussian`` = (mean, sd), and a learnt ``population`` (a name from
    :data:`POPULATIONS`, or the path of a population file, :mod:`gcsbi.catalogue.population`)."""

    name: str = "training"
    age_gyr: tuple[float, float] | None = None
    log10_mass: tuple[float, float] | None = None
    ebv: tuple[float, float] | None = None
    ebv_gaussian: tuple[float, float] | None = None
    ebv_min: float | None = None
    population: str | None = None

    def __post_init__(self) -> None:
        for key in ("age_gyr", "log10_mass", "ebv"):
            box = getattr(self, key)
            if box is not None and not (len(box) == 2 and np.all(np.isfinite(box)) and box[0] < box[1]):
                raise GcsbiValueError(f"prior {key} range must be (low, high) with low < high, got {box}")
        if self.age_gyr is not None and self.age_gyr[0] <= 0:
            raise GcsbiValueError(f"prior age range must be positive, got {self.age_gyr}")
        g = self.ebv_gaussian
        if g is not None and not (len(g) == 2 and np.all(np.isfinite(g)) and g[1] > 0):
            raise GcsbiValueError(f"E(B-V) prior must be (mean, sd > 0), got {g}")
        if self.ebv_min is not None and not (np.isfinite(self.ebv_min) and 0 <= self.ebv_min < 1):
            raise GcsbiValueError(f"E(B-V) lower bound must be in [0, 1) mag, got {self.ebv_min}")

    @property
    def is_training(self) -> bool:
        return (self.age_gyr is None and self.log10_mass is None and self.ebv is None and self.ebv_gaussian is None
                and self.ebv_min is None and self.population is None)

    def population_model(self) -> Any:
        """The :class:`~gcsbi.catalogue.population.PopulationModel` of ``population`` (loaded once, checked)."""
        return None if self.population is None else _population(self.population)

    def describe(self, training_prior: Any = None) -> str:
        """One line naming the training prior and what this choice changes."""
        base = getattr(training_prior, "name", None) or "training prior"
        parts = []
        if self.age_gyr is not None:
            parts.append(f"age {self.age_gyr[0]:g}-{self.age_gyr[1]:g} Gyr")
        if self.log10_mass is not None:
            parts.append(f"log M {self.log10_mass[0]:g}-{self.log10_mass[1]:g}")
        if self.ebv is not None:
            parts.append(f"E(B-V) {self.ebv[0]:g}-{self.ebv[1]:g}")
        if self.ebv_gaussian is not None:
            parts.append(f"E(B-V) ~ N({self.ebv_gaussian[0]:g}, {self.ebv_gaussian[1]:g})")
        if self.ebv_min is not None:
            parts.append(f"E(B-V) >= {self.ebv_min:g} (Milky Way foreground)")
        text = f"{base}" if not parts else f"{base} restricted to {', '.join(parts)} ({self.name})"
        if self.population is not None:
            pop = self.population_model()
            m = pop.meta
            text = (f"population {pop.name} learnt from {m.get('n_clusters', '?')} PHAT clusters (histogram over "
                    f"log age, log M, [Fe/H], E(B-V) in {len(pop.radial_edges_kpc) - 1} disc-radius bins, averaged over "
                    f"{max(len(pop.weights) - 1, 1)} bootstrap fits; E(B-V) >= {pop.low[3]:g}) on {text}")
        return text

    def log_weights(self, draws: np.ndarray, names: tuple[str, ...], radius_kpc: Any = None) -> np.ndarray:
        """log(pi'/pi) per draw (..., D) up to a constant; -inf outside a restriction.

        ``radius_kpc``: the cluster's M31 disc radius, for a population prior (None: its radius average).
        """
        d = np.asarray(draws, dtype=float)
        lw = np.zeros(d.shape[:-1])
        if self.population is not None:
            pop = self.population_model()
            missing = [n for n in pop.names if n not in names]
            if missing:
                raise GcsbiValueError(f"population {pop.name} needs parameters {missing}; this posterior has "
                                      f"{list(names)} (use the prior 'box' or 'training')")
            lw = lw + pop.log_density(d[..., [names.index(n) for n in pop.names]], radius_kpc)
        if self.age_gyr is not None:
            if "log10_age_yr" in names:
                age = 10.0 ** (d[..., names.index("log10_age_yr")] - 9.0)
            elif "age_gyr" in names:
                age = d[..., names.index("age_gyr")]
            else:
                raise GcsbiValueError(f"an age prior needs an age parameter; this posterior has {list(names)}")
            lw = np.where((age >= self.age_gyr[0]) & (age <= self.age_gyr[1]), lw, -np.inf)
        if self.log10_mass is not None:
            m = d[..., names.index("log10_mass")]
            lw = np.where((m >= self.log10_mass[0]) & (m <= self.log10_mass[1]), lw, -np.inf)
        if self.ebv is not None or self.ebv_gaussian is not None or self.ebv_min is not None:
            if "ebv" not in names:
                raise GcsbiValueError(f"an E(B-V) prior needs the parameter 'ebv'; this posterior has {list(names)}")
            e = d[..., names.index("ebv")]
            if self.ebv is not None:
                lw = np.where((e >= self.ebv[0]) & (e <= self.ebv[1]), lw, -np.inf)
            if self.ebv_gaussian is not None:
                mu, sd = self.ebv_gaussian
                lw = lw - 0.5 * ((e - mu) / sd) ** 2
            if self.ebv_min is not None:
                lw = np.where(e >= self.ebv_min, lw, -np.inf)
        return lw


#: Populations that ship with gcsbi (name -> :data:`gcsbi.catalogue.population.SHIPPED_POPULATION`);
#: other population files load by path.
POPULATIONS = ("m31-phat",)
_LOADED: dict[str, Any] = {}


def _population(name: str) -> Any:
    from .population import SHIPPED_POPULATION, load_population

    if name not in _LOADED:
        _LOADED[name] = load_population(SHIPPED_POPULATION if name in POPULATIONS else name)  # size, SHA-256 checked
    return _LOADED[name]


#: Named prior choices.
PRESETS: dict[str, PriorChoice] = {
    "population": PriorChoice(name="population", population="m31-phat"),
    "box": PriorChoice(name="box", ebv_min=EBV_FOREGROUND),
    "old": PriorChoice(name="old", age_gyr=(8.0, 14.0), log10_mass=(4.0, 6.7), ebv_min=EBV_FOREGROUND),
    "training": PriorChoice(),
}
#: The preset ``gcsbi m31`` uses when none is named.
DEFAULT_PRESET = "box"


def prior_choice(preset: str = "box", *, age_gyr: tuple[float, float] | None = None,
                 ebv: tuple[float, float] | None = None,
                 ebv_gaussian: tuple[float, float] | None = None) -> PriorChoice:
    """A preset (:data:`PRESETS`; default ``box``, which fits any posterior with an ``ebv``) with optional
    changes, e.g. ``prior_choice("old", ebv_gaussian=(0.1, 0.03))``."""
    if preset not in PRESETS:
        raise GcsbiValueError(f"unknown prior preset {preset!r}; choose from {sorted(PRESETS)}")
    base = PRESETS[preset]
    changed = {k: v for k, v in (("age_gyr", age_gyr), ("ebv", ebv), ("ebv_gaussian", ebv_gaussian)) if v is not None}
    if not changed:
        return base
    name = base.name if base.name != "training" else "user"
    kw = {"age_gyr": base.age_gyr, "log10_mass": base.log10_mass, "ebv": base.ebv, "ebv_gaussian": base.ebv_gaussian,
          **changed}
    return PriorChoice(name=name + "+" + "+".join(changed), population=base.population, ebv_min=base.ebv_min,
                       **{k: (tuple(float(x) for x in v) if v is not None else None) for k, v in kw.items()})


#: What each restriction is called in messages, and its unit.
_LABELS = {"age_gyr": ("age", " Gyr"), "log10_mass": ("log10 mass", " dex(Msun)"), "ebv": ("E(B-V)", " mag")}


def training_box(names: tuple[str, ...], low: Any, high: Any) -> dict[str, tuple[float, float]]:
    """The training prior's box in the variables of :class:`PriorChoice`: ``age_gyr`` (Gyr), ``log10_mass``, ``ebv``.

    ``names``, ``low``, ``high``: the posterior's parameter names and prior bounds. A posterior in
    ``log10_age_yr`` gets its age box converted to Gyr. Variables the posterior lacks are left out.
    """
    names = tuple(names)
    lo, hi = np.asarray(low, dtype=float), np.asarray(high, dtype=float)
    box: dict[str, tuple[float, float]] = {}
    if "log10_age_yr" in names:
        k = names.index("log10_age_yr")
        box["age_gyr"] = (float(10.0 ** (lo[k] - 9.0)), float(10.0 ** (hi[k] - 9.0)))
    elif "age_gyr" in names:
        k = names.index("age_gyr")
        box["age_gyr"] = (float(lo[k]), float(hi[k]))
    for key in ("log10_mass", "ebv"):
        if key in names:
            box[key] = (float(lo[names.index(key)]), float(hi[names.index(key)]))
    return box


def check_within_training(choice: PriorChoice, names: tuple[str, ...], low: Any, high: Any,
                          training_name: str | None = None) -> None:
    """Refuse a choice that reaches outside the training prior's box.

    A posterior knows nothing outside the box it was trained on, so a range there would only be
    a wrong label on the output. Every range of ``choice`` must lie inside the box (to a relative
    1e-5, as the bounds are stored in float32), and a Gaussian E(B-V) prior's mean too; else
    :class:`GcsbiValueError` names the range asked for and the one allowed.
    """
    box = training_box(names, low, high)
    where = f"the training prior {training_name}" if training_name else "the training prior"
    for key, (label, unit) in _LABELS.items():
        want = getattr(choice, key)
        if want is None:
            continue
        if key not in box:
            raise GcsbiValueError(f"a {label} range needs a {label} parameter; this posterior has {list(names)}")
        lo, hi = box[key]
        tol = 1e-5 * max(abs(lo), abs(hi), 1.0)
        if want[0] < lo - tol or want[1] > hi + tol:
            raise GcsbiValueError(f"{label} range {want[0]:g}-{want[1]:g}{unit} lies outside {where}: "
                                  f"allowed {lo:.4g}-{hi:.4g}{unit}")
    if choice.ebv_min is not None:
        if "ebv" not in box:
            raise GcsbiValueError(f"an E(B-V) bound needs the parameter 'ebv'; this posterior has {list(names)}")
        if not box["ebv"][0] - 1e-5 <= choice.ebv_min < box["ebv"][1]:
            raise GcsbiValueError(f"E(B-V) lower bound {choice.ebv_min:g} mag lies outside {where}: "
                                  f"allowed {box['ebv'][0]:.4g}-{box['ebv'][1]:.4g} mag")
    if choice.population is not None and not population_applies(choice, names, low, high):
        pop = choice.population_model()
        raise GcsbiValueError(f"population {pop.name} was learnt for parameters {list(pop.names)} in the box "
                              f"{pop.meta.get('training_box')}; {where} differs (use the prior 'box' or 'training')")
    if choice.ebv_gaussian is not None:
        if "ebv" not in box:
            raise GcsbiValueError(f"an E(B-V) prior needs the parameter 'ebv'; this posterior has {list(names)}")
        lo, hi = box["ebv"]
        mean = choice.ebv_gaussian[0]
        if not lo - 1e-5 <= mean <= hi + 1e-5:
            raise GcsbiValueError(f"E(B-V) prior mean {mean:g} mag lies outside {where}: allowed {lo:.4g}-{hi:.4g} mag")


def reweight(draws: np.ndarray, names: tuple[str, ...], choice: PriorChoice, n_out: int,
             rng: np.random.Generator, radius_kpc: Any = None) -> tuple[np.ndarray, dict[str, float]]:
    """Resample ``n_out`` of the draws (S, D) with weights pi'/pi; returns (draws (n_out, D), info).

    ``info``: ``kept_fraction`` (posterior mass the choice keeps) and ``ess`` (effective sample
    size of the weighted draws). ``radius_kpc``: the cluster's disc radius (population priors).
    Raises :class:`GcsbiValueError` when no draw survives.
    """
    d = np.asarray(draws, dtype=float)
    if choice.is_training:
        return d[:n_out], {"kept_fraction": 1.0, "ess": float(min(len(d), n_out))}
    lw = choice.log_weights(d, names, radius_kpc)
    ok = np.isfinite(lw)
    if not ok.any():
        raise GcsbiValueError(f"prior choice '{choice.describe()}' excludes every posterior draw: "
                              "the data and this prior disagree")
    w = np.exp(lw - lw[ok].max())
    w /= w.sum()
    idx = rng.choice(len(d), size=int(n_out), replace=True, p=w)
    return d[idx], {"kept_fraction": float(ok.mean()), "ess": float(1.0 / np.sum(w**2))}


def population_applies(choice: PriorChoice, names: tuple[str, ...], low: Any, high: Any) -> bool:
    """Whether ``choice``'s population was learnt for a posterior with these parameters and this training box.

    The population's parameters must all be there, and the box it was learnt under (its file's
    ``meta["training_box"]``) must contain the posterior's box for them.
    """
    pop = choice.population_model()
    if pop is None:
        return True
    if any(n not in names for n in pop.names):
        return False
    tb = pop.meta.get("training_box")
    if not tb:
        return False
    lo, hi = np.asarray(low, float), np.asarray(high, float)
    for j, n in enumerate(pop.names):
        k = names.index(n)
        if lo[k] < tb[0][j] - 1e-5 * max(1, abs(tb[0][j])) or hi[k] > tb[1][j] + 1e-5 * max(1, abs(tb[1][j])):
            return False
    return True
