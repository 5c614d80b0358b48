"""The population of M31's clusters, learnt from the PHAT catalogue itself (hierarchical inference).

Per-cluster posteriors under a flat box prior leave bright old clusters in the young-and-reddened
valley of the age-reddening degeneracy: nothing in a box says that massive 300-Myr clusters are
rare in M31. The catalogue says it, once all ~2700 clusters are read together. Model:

    theta_i = (log10 age, log10 M, [Fe/H], E(B-V)) of cluster i  ~  p_pop(theta | R_i)

with R_i the cluster's deprojected disc radius (:func:`gcsbi.catalogue.geometry.m31_disc_radius_kpc`)
in one of a few radial bins, so reddening (and age, mass) may change across the disc.

**The population density** is a histogram: a mixture of uniform boxes (bins) tiling the training
box, with E(B-V) from the Milky Way foreground :data:`~gcsbi.catalogue.geometry.EBV_FOREGROUND` up
(the physical floor), one set of bin weights per radial bin. It needs no shape assumption, puts all
its mass inside the box, and cannot collapse onto a single cluster (a bin is never narrower than
its edges).

**The fit** maximises the marginal likelihood of the catalogue. Each cluster's posterior draws
under the flat training box tell what fraction f_ib of its likelihood lies in bin b, so

    p(x_i | w) ∝ sum_b w_b f_ib / vol_b

and EM for the weights is the Richardson-Lucy iteration ``w_b <- mean_i w_b (f_ib / vol_b) / p(x_i | w)``
(Lucy 1974; Vardi, Shepp & Kaufman 1985), each step raising the likelihood. A Dirichlet
pseudo-count ``alpha`` per bin (maximum a posteriori) keeps empty bins from reaching zero, so a
cluster is never forbidden a corner of the box only because no other cluster lives there; it is
chosen by cross-validation over clusters. The population's uncertainty comes from refitting on
bootstrap resamples of the clusters, and the prior density used for inference is the average over
the bootstrap fits (:class:`PopulationModel`). A cluster's posterior under the population is its
own draws re-weighted by ``w_b / vol_b`` (:func:`gcsbi.catalogue.priors.reweight`).

No literature label (ages, [Fe/H], masses or reddenings from Caldwell et al. 2011 or Johnson et al.
2016) enters the fit: only catalogue magnitudes, errors, sizes and positions. The model is stored
as JSON with the SHA-256 of its content (:func:`save_population`, :func:`load_population`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import GcsbiValueError
from ..integrity import read_json_model, write_json_model

__all__ = ["POP_PARAMS", "PopulationModel", "bin_fractions", "fit_weights", "bootstrap_weights",
           "load_population", "save_population", "SHIPPED_POPULATION"]

#: The parameters the population describes (the others keep the training prior).
POP_PARAMS = ("log10_age_yr", "log10_mass", "feh", "ebv")
SHIPPED_POPULATION = Path(__file__).resolve().parents[1] / "data" / "populations" / "m31-phat.json"
#: Largest population file read (bytes).
MAX_BYTES = 4_000_000


@dataclass(frozen=True)
class PopulationModel:
    """A histogram population: bin ``edges`` per parameter (:data:`POP_PARAMS` order), disc-radius
    bin edges ``radial_edges_kpc``, ``weights`` (M, n_radial, n_bins): the maximum-likelihood fit
    first, then M - 1 bootstrap refits (each row sums to 1), and ``meta`` (provenance)."""

    name: str
    edges: tuple[np.ndarray, ...]
    radial_edges_kpc: np.ndarray
    weights: np.ndarray
    meta: dict[str, Any]

    def __post_init__(self) -> None:
        edges = tuple(np.asarray(e, dtype=float) for e in self.edges)
        if len(edges) != 4 or any(e.ndim != 1 or len(e) < 2 or not np.all(np.diff(e) > 0) for e in edges):
            raise GcsbiValueError("a population needs 4 increasing bin-edge arrays (>= 2 edges each)")
        r = np.asarray(self.radial_edges_kpc, dtype=float)
        if r.ndim != 1 or len(r) < 2 or r[0] != 0 or not np.all(np.diff(r) > 0):
            raise GcsbiValueError(f"radial edges must increase from 0, got {r}")
        w = np.asarray(self.weights, dtype=float)
        n_bins = int(np.prod([len(e) - 1 for e in edges]))
        if w.ndim != 3 or w.shape[1:] != (len(r) - 1, n_bins):
            raise GcsbiValueError(f"weights must be (M, {len(r) - 1}, {n_bins}), got {w.shape}")
        if not (np.all(np.isfinite(w)) and np.all(w >= 0) and np.allclose(w.sum(-1), 1, atol=1e-6)):
            raise GcsbiValueError("population weights must be finite, >= 0 and sum to 1 per radial bin")
        object.__setattr__(self, "edges", edges)
        object.__setattr__(self, "radial_edges_kpc", r)
        object.__setattr__(self, "weights", w)

    @property
    def low(self) -> np.ndarray:
        return np.array([e[0] for e in self.edges])

    @property
    def high(self) -> np.ndarray:
        return np.array([e[-1] for e in self.edges])

    @property
    def names(self) -> tuple[str, ...]:
        return POP_PARAMS

    @property
    def volumes(self) -> np.ndarray:
        """Volume of every bin (flat, C order over the four parameters)."""
        widths = np.meshgrid(*[np.diff(e) for e in self.edges], indexing="ij")
        return np.prod(np.stack(widths), axis=0).reshape(-1)

    def bin_index(self, theta: np.ndarray) -> np.ndarray:
        """Flat bin index of each draw (..., 4); -1 outside the box (or below the E(B-V) floor)."""
        t = np.asarray(theta, dtype=float)
        shape = [len(e) - 1 for e in self.edges]
        idx = np.zeros(t.shape[:-1], dtype=np.int64)
        inside = np.ones(t.shape[:-1], dtype=bool)
        for j, e in enumerate(self.edges):
            k = np.searchsorted(e, t[..., j], side="right") - 1
            k = np.where(t[..., j] == e[-1], len(e) - 2, k)  # the upper edge belongs to the last bin
            inside &= (k >= 0) & (k < len(e) - 1)
            idx = idx * shape[j] + np.clip(k, 0, len(e) - 2)
        return np.where(inside, idx, -1)

    def radial_bin(self, radius_kpc: Any) -> np.ndarray:
        r = np.asarray(radius_kpc, dtype=float)
        return np.clip(np.searchsorted(self.radial_edges_kpc, r, side="right") - 1, 0, len(self.radial_edges_kpc) - 2)

    def prior_weights(self) -> np.ndarray:
        """Bin weights (n_radial, n_bins) of the prior: the mean over the bootstrap fits (or the only fit)."""
        w = self.weights[1:] if len(self.weights) > 1 else self.weights
        return w.mean(axis=0)

    def log_density(self, theta: np.ndarray, radius_kpc: Any = None) -> np.ndarray:
        """log p_pop(theta | R) for theta (..., 4); -inf outside the box. ``radius_kpc`` None: radius-averaged."""
        b = self.bin_index(theta)
        w = self.prior_weights()
        if radius_kpc is None:
            wr = w.mean(axis=0)
            dens = wr[np.maximum(b, 0)] / self.volumes[np.maximum(b, 0)]
        else:
            rb = np.broadcast_to(self.radial_bin(radius_kpc), b.shape)
            dens = w[rb, np.maximum(b, 0)] / self.volumes[np.maximum(b, 0)]
        with np.errstate(divide="ignore"):
            return np.where(b >= 0, np.log(dens), -np.inf)

    def sample(self, radius_kpc: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One theta (4,) per radius: a random bootstrap fit, a bin by its weight, uniform inside the bin."""
        r = np.asarray(radius_kpc, dtype=float).reshape(-1)
        fits = self.weights[1:] if len(self.weights) > 1 else self.weights
        which = rng.integers(0, len(fits), len(r))
        rb = self.radial_bin(r)
        shape = [len(e) - 1 for e in self.edges]
        out = np.empty((len(r), 4))
        for i in range(len(r)):
            b = rng.choice(fits.shape[-1], p=fits[which[i], rb[i]] / fits[which[i], rb[i]].sum())
            ks = np.unravel_index(b, shape)
            for j, e in enumerate(self.edges):
                out[i, j] = rng.uniform(e[ks[j]], e[ks[j] + 1])
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"format": "gcsbi-population-2", "name": self.name, "names": list(POP_PARAMS),
                "edges": [e.tolist() for e in self.edges], "radial_edges_kpc": self.radial_edges_kpc.tolist(),
                "weights": np.round(self.weights, 7).tolist(), "meta": self.meta}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "PopulationModel":
        if not isinstance(d, dict) or d.get("format") != "gcsbi-population-2":
            raise GcsbiValueError("not a gcsbi population (format 'gcsbi-population-2')")
        if tuple(d.get("names", ())) != POP_PARAMS:
            raise GcsbiValueError(f"population parameters must be {POP_PARAMS}, got {d.get('names')}")
        w = np.asarray(d["weights"], dtype=float)
        w = w / w.sum(axis=-1, keepdims=True)  # undo the rounding of the stored weights
        return cls(str(d["name"]), tuple(np.asarray(e, float) for e in d["edges"]),
                   np.asarray(d["radial_edges_kpc"], float), w, dict(d.get("meta", {})))


def bin_fractions(pop_shape: PopulationModel, draws: np.ndarray) -> tuple[Any, np.ndarray]:
    """(sparse (N, n_bins) matrix of f_ib / vol_b, usable (N,) bool) from posterior draws (N, K, 4).

    f_ib: fraction of cluster i's draws (under the flat training box) in bin b. A cluster with no
    draw inside the population's box (all below the E(B-V) floor, say) is not usable.
    """
    from scipy import sparse

    b = pop_shape.bin_index(draws)
    n, k = b.shape
    rows = np.repeat(np.arange(n), k)
    cols = b.reshape(-1)
    ok = cols >= 0
    n_bins = len(pop_shape.volumes)
    f = sparse.csr_matrix((np.full(ok.sum(), 1.0 / k), (rows[ok], cols[ok])), shape=(n, n_bins))
    f = f @ sparse.diags(1.0 / pop_shape.volumes)
    usable = np.asarray((b >= 0).any(axis=1))
    return f.tocsr(), usable


def fit_weights(f: Any, *, alpha: float, w0: np.ndarray | None = None, max_iter: int = 3000,
                tol: float = 1e-7) -> tuple[np.ndarray, np.ndarray]:
    """Bin weights maximising sum_i log(f_i . w) + alpha sum_b log w_b (EM; see the module docstring).

    ``f``: sparse (N, n_bins) f_ib / vol_b of one radial bin's clusters. Returns (weights (n_bins,),
    per-cluster log-likelihood log(f_i . w) (N,)).
    """
    n, n_bins = f.shape
    w = np.full(n_bins, 1.0 / n_bins) if w0 is None else np.asarray(w0, float).copy()
    ft = f.T.tocsr()
    prev = -np.inf
    for _ in range(int(max_iter)):
        denom = f @ w
        ll = float(np.mean(np.log(denom)))
        if ll - prev < tol:
            break
        prev = ll
        w = (w * (ft @ (1.0 / denom)) + alpha) / (n + n_bins * alpha)
        w /= w.sum()
    return w, np.log(f @ w)


def bootstrap_weights(f: Any, w: np.ndarray, *, alpha: float, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot, n_bins) refits on resamples of the clusters (rows of ``f``), each started from ``w``."""
    out = np.empty((int(n_boot), len(w)))
    for j in range(int(n_boot)):
        idx = rng.integers(0, f.shape[0], f.shape[0])
        out[j], _ = fit_weights(f[idx], alpha=alpha, w0=w)
    return out


def save_population(pop: PopulationModel, path: str | Path) -> Path:
    """Write ``pop`` as JSON with the SHA-256 of its content (``sha256``); refuses to replace a non-population file."""
    return write_json_model(path, "population", pop.to_dict())


def load_population(path: str | Path | None = None) -> PopulationModel:
    """Read a population file (default: the shipped M31 population), checking its size and SHA-256."""
    path = SHIPPED_POPULATION if path is None else Path(path)
    return read_json_model(path, "population", max_bytes=MAX_BYTES, parse=PopulationModel.from_dict)
