"""The population of M31's clusters, learnt from the PHAT catalogue itself (hierarchical inference).

Per-cluster posteriors under a flat box prior leave bright old clusters in the young-and-reddened
valley of the age-reddening degeneracy: nothing in a box says that massive 300-Myr clusters are
rare in M31. The catalogue says it, once all ~2700 clusters are read together. Model:

    theta_i = (log10 age, log10 M, [Fe/H], E(B-V)) of cluster i  ~  p_pop(theta | R_i)

with R_i the cluster's deprojected disc radius (:func:`gcsbi.catalogue.geometry.m31_disc_radius_kpc`),
so reddening (and age, mass) may change across the disc. p_pop is a Gaussian mixture over
``(theta, log10 R)``; the conditional p(theta | log10 R) is the joint mixture divided by its
log10 R marginal, restricted to the box: the training prior's, with E(B-V) from the Milky Way
foreground :data:`~gcsbi.catalogue.geometry.EBV_FOREGROUND` up (the physical floor).

Fit (:func:`fit_mixture`): extreme deconvolution (Bovy, Hogg & Roweis 2011). Each cluster's
posterior draws under the flat training prior -- its likelihood inside the box -- are summarised
by their mean and covariance (:func:`cluster_summaries`), and the mixture maximises the analytic
marginal likelihood of all clusters, ``sum_i log sum_c pi_c N((m_i, log R_i); mu_c, Sigma_c + S_i)``.
(Re-weighting each cluster's draws by the population instead -- the Monte Carlo form of the same
likelihood -- fails once the population is narrower than a single cluster's posterior: with a
few hundred draws per cluster its log is biased by a whole unit per cluster towards wide
populations; known-answer test in ``tests/catalogue/test_population.py``.) The number of
components is chosen by BIC; the population's uncertainty comes from refitting on bootstrap
resamples of the clusters, and the prior used for inference is the average density of the
bootstrap populations (:class:`PopulationModel`). Per-cluster posteriors under the population are
exact up to sampling: the cluster's own draws re-weighted by p_pop / pi
(:func:`gcsbi.catalogue.priors.reweight`). No literature label (ages, [Fe/H], masses or reddenings
from Caldwell et al. 2011 or Johnson et al. 2016) enters the fit: only catalogue magnitudes,
errors, sizes and positions.

The learnt model is stored as JSON with a SHA-256 of its content (:func:`save_population`, :func:`load_population`);
`scripts/fit_m31_population.py` fits it. It is not yet the prior of `gcsbi m31`: wiring and validation come next.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import logsumexp

from ..errors import GcsbiFileError, GcsbiValueError

__all__ = ["POP_PARAMS", "Mixture", "PopulationModel", "cluster_summaries", "fit_mixture", "bootstrap_mixtures",
           "load_population", "save_population", "SHIPPED_POPULATION"]

#: The parameters the population describes (the others keep the training prior).
POP_PARAMS = ("log10_age_yr", "log10_mass", "feh", "ebv")
SHIPPED_POPULATION = Path(__file__).resolve().parents[1] / "data" / "populations" / "m31-phat.json"
#: Largest population file read (bytes): a few mixtures of 5-D Gaussians need far less.
MAX_BYTES = 2_000_000
_EPS = 1e-6


@dataclass(frozen=True)
class Mixture:
    """A Gaussian mixture over ``(theta_1..theta_4, log10 R)``: ``weights`` (C,), ``means`` (C, 5), ``covs`` (C, 5, 5)."""

    weights: np.ndarray
    means: np.ndarray
    covs: np.ndarray

    def __post_init__(self) -> None:
        w, m, c = (np.asarray(a, dtype=float) for a in (self.weights, self.means, self.covs))
        if w.ndim != 1 or m.shape != (len(w), 5) or c.shape != (len(w), 5, 5):
            raise GcsbiValueError(f"mixture shapes must be (C,), (C, 5), (C, 5, 5); got {w.shape}, {m.shape}, {c.shape}")
        if not (np.all(np.isfinite(w)) and np.all(w >= 0) and abs(w.sum() - 1) < 1e-6
                and np.all(np.isfinite(m)) and np.all(np.isfinite(c))):
            raise GcsbiValueError("mixture weights must be >= 0 and sum to 1, means and covariances finite")
        try:
            np.linalg.cholesky(c)
        except np.linalg.LinAlgError as exc:
            raise GcsbiValueError("mixture covariances must be positive definite") from exc
        object.__setattr__(self, "weights", w)
        object.__setattr__(self, "means", m)
        object.__setattr__(self, "covs", c)

    def _log_components(self, y: np.ndarray, dims: slice | list[int]) -> np.ndarray:
        """log(w_c N(y; mu_c, S_c)) over the dimensions ``dims``: (..., C)."""
        idx = np.arange(5)[dims]
        mu, cov = self.means[:, idx], self.covs[:, idx][:, :, idx]
        chol = np.linalg.cholesky(cov)
        whiten = np.linalg.inv(chol)  # L^-1: |L^-1 (y - mu)|^2 is the Mahalanobis distance
        diff = y[..., None, :] - mu  # (..., C, d)
        maha = np.sum(np.einsum("cij,...cj->...ci", whiten, diff) ** 2, axis=-1)
        logdet = 2 * np.sum(np.log(np.diagonal(chol, axis1=-2, axis2=-1)), axis=-1)
        return np.log(np.maximum(self.weights, 1e-300)) - 0.5 * (maha + logdet + len(idx) * np.log(2 * np.pi))

    def log_joint_components(self, z: np.ndarray, log_r: np.ndarray) -> np.ndarray:
        """log(w_c N((z, log10 R); mu_c, S_c)) for z (..., 4) and log_r broadcastable to z[..., 0]: (..., C)."""
        y = np.concatenate([z, np.broadcast_to(np.asarray(log_r, float)[..., None], z.shape[:-1] + (1,))], axis=-1)
        return self._log_components(y, slice(0, 5))

    def log_conditional(self, z: np.ndarray, log_r: Any = None) -> np.ndarray:
        """log p(z | log10 R) (or the z marginal when ``log_r`` is None) for z (..., 4)."""
        if log_r is None:
            return logsumexp(self._log_components(z, slice(0, 4)), axis=-1)
        lr = np.asarray(log_r, dtype=float)
        joint = logsumexp(self.log_joint_components(z, lr), axis=-1)
        marg = logsumexp(self._log_components(lr[..., None], [4]), axis=-1)
        return joint - marg

    def sample(self, log_r: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One z (4,) per entry of ``log_r`` (N,), drawn from p(z | log10 R): (N, 4)."""
        lr = np.asarray(log_r, dtype=float).reshape(-1)
        logits = self._log_components(lr[:, None], [4])
        p = np.exp(logits - logsumexp(logits, axis=-1, keepdims=True))
        comp = np.array([rng.choice(len(self.weights), p=row) for row in p])
        out = np.empty((len(lr), 4))
        for c in np.unique(comp):
            sel = comp == c
            s = self.covs[c]
            gain = s[:4, 4] / s[4, 4]
            mean = self.means[c, :4] + gain[None] * (lr[sel, None] - self.means[c, 4])
            cov = s[:4, :4] - np.outer(gain, s[4, :4])
            out[sel] = mean + rng.standard_normal((int(sel.sum()), 4)) @ np.linalg.cholesky(cov).T
        return out

    def n_parameters(self) -> int:
        c = len(self.weights)
        return (c - 1) + 5 * c + 15 * c

    def to_dict(self) -> dict[str, Any]:
        return {"weights": self.weights.tolist(), "means": self.means.tolist(), "covs": self.covs.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Mixture":
        return cls(np.asarray(d["weights"], float), np.asarray(d["means"], float), np.asarray(d["covs"], float))


def cluster_summaries(draws: np.ndarray, low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian approximations (means (N, 4), covariances (N, 4, 4)) of each cluster's likelihood.

    ``draws`` (N, K, 4): posterior draws under the flat training box [``low``, ``high``]. Their mean
    and covariance describe likelihood x box, not the likelihood: where the data say nothing the
    draws fill the box, and taking their spread for a measurement would tell the deconvolution
    that every cluster was measured at the box's centre. So the box, approximated by a Gaussian of
    the same mean and variance (precision 12 / width^2), is divided out in precision:
    ``Lambda_lik = Lambda_post - Lambda_box`` (eigenvalues kept >= 1e-3 of the box's), the usual
    way of removing a Gaussian factor. A parameter the data constrain keeps its posterior
    width; one they do not gets a variance of up to 1000 times the box's: no information.
    """
    d = np.asarray(draws, dtype=float)
    lo, hi = np.asarray(low, float), np.asarray(high, float)
    m = d.mean(axis=1)
    c = d - m[:, None]
    cov = np.einsum("nki,nkj->nij", c, c) / (d.shape[1] - 1) + 1e-9 * np.eye(4)
    box_prec = np.diag(12.0 / (hi - lo) ** 2)
    box_mean = (lo + hi) / 2
    # work in units of the box width, where the box precision is 12 * I
    scale = hi - lo
    prec = np.linalg.inv(cov / np.outer(scale, scale))
    lik = prec - 12.0 * np.eye(4)
    vals, vecs = np.linalg.eigh(0.5 * (lik + lik.transpose(0, 2, 1)))
    vals = np.maximum(vals, 12e-3)
    lik_cov = np.einsum("nij,nj,nkj->nik", vecs, 1.0 / vals, vecs) * np.outer(scale, scale)
    post_prec = np.linalg.inv(cov)
    rhs = np.einsum("nij,nj->ni", post_prec, m) - box_prec @ box_mean
    mean = np.einsum("nij,nj->ni", lik_cov, rhs)
    return mean, 0.5 * (lik_cov + lik_cov.transpose(0, 2, 1))


def _xd_terms(mix: Mixture, w: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(log(pi_c N(w_i; mu_c, Sigma_c + S_i)) (N, C), (Sigma_c + S_i)^-1 (N, C, 5, 5))."""
    t = mix.covs[None] + s[:, None]  # (N, C, 5, 5)
    chol = np.linalg.cholesky(t)
    tinv = np.linalg.inv(t)
    diff = w[:, None, :] - mix.means[None]
    maha = np.einsum("nci,ncij,ncj->nc", diff, tinv, diff)
    logdet = 2 * np.sum(np.log(np.diagonal(chol, axis1=-2, axis2=-1)), axis=-1)
    return np.log(np.maximum(mix.weights, 1e-300))[None] - 0.5 * (maha + logdet + 5 * np.log(2 * np.pi)), tinv


def fit_mixture(means: np.ndarray, covs: np.ndarray, log_r: np.ndarray, *, n_components: int,
                rng: np.random.Generator, init: Mixture | None = None, em_steps: int = 30, max_iter: int = 2000,
                tol: float = 1e-9, reg: float = 1e-4, n_init: int = 3) -> tuple[Mixture, dict[str, Any]]:
    """Population mixture by extreme deconvolution (Bovy, Hogg & Roweis 2011, AnnApSt 5, 657).

    Each cluster i is a noisy measurement (``means[i]``, ``covs[i]``: :func:`cluster_summaries`) of its
    parameters; ``log_r[i]`` is known exactly. The marginal likelihood of a mixture is analytic,
    ``sum_i log sum_c pi_c N((m_i, log R_i); mu_c, Sigma_c + S_i)``, and the EM below increases it
    at every step; ``em_steps`` of it, then L-BFGS on the same likelihood (:func:`_refine`) to
    ``max_iter`` iterations or a change below ``tol``. ``reg`` is added to each component's
    covariance (the smallest population width allowed). ``init``: start from this mixture (bootstrap refits), else ``n_init`` random starts
    (the best is kept). Returns (mixture, info) with ``loglik``, ``n_iter``, ``per_cluster_loglik``.
    """
    m = np.asarray(means, float)
    n = len(m)
    log_r = np.asarray(log_r, float)
    if m.shape != (n, 4) or np.shape(covs) != (n, 4, 4) or log_r.shape != (n,):
        raise GcsbiValueError(f"expected means (N, 4), covs (N, 4, 4), log_r (N,); got {m.shape}, "
                              f"{np.shape(covs)}, {log_r.shape}")
    if not (np.all(np.isfinite(m)) and np.all(np.isfinite(covs)) and np.all(np.isfinite(log_r))):
        raise GcsbiValueError("cluster summaries and radii must be finite")
    w = np.concatenate([m, log_r[:, None]], axis=1)
    s = np.zeros((n, 5, 5))
    s[:, :4, :4] = covs
    s[:, 4, 4] = 1e-8  # the radius is known
    starts: list[Mixture] = [init] if init is not None else []
    if init is None:
        cov0 = np.cov(w.T) + reg * np.eye(5)
        for _ in range(int(n_init)):
            pick = rng.choice(n, size=n_components, replace=False)
            starts.append(Mixture(np.full(n_components, 1.0 / n_components), w[pick], np.repeat(cov0[None], n_components, 0)))
    best: tuple[Mixture, dict[str, Any]] | None = None
    for mix in starts:
        for it in range(1, int(em_steps) + 1):  # EM: robust first steps, slow near the optimum
            mix = _xd_em_step(mix, w, s, reg)
        mix, it2 = _refine(mix, w, s, reg, max_iter=max_iter, tol=tol)
        logp, _ = _xd_terms(mix, w, s)
        ll = logsumexp(logp, axis=1)
        info = {"loglik": float(ll.sum()), "n_iter": it + it2, "per_cluster_loglik": ll}
        if best is None or info["loglik"] > best[1]["loglik"]:
            best = (mix, info)
    return best  # type: ignore[return-value]


def _xd_em_step(mix: Mixture, w: np.ndarray, s: np.ndarray, reg: float) -> Mixture:
    """One EM step of extreme deconvolution (Bovy et al. 2011, eqs. 16-20)."""
    logp, tinv = _xd_terms(mix, w, s)
    q = np.exp(logp - logsumexp(logp, axis=1, keepdims=True))  # (N, C)
    diff = w[:, None, :] - mix.means[None]
    sig_tinv = np.einsum("cij,ncjk->ncik", mix.covs, tinv)
    b = mix.means[None] + np.einsum("ncij,ncj->nci", sig_tinv, diff)
    bb = mix.covs[None] - np.einsum("ncij,cjk->ncik", sig_tinv, mix.covs)
    qc = q.sum(0)
    mu = np.einsum("nc,nci->ci", q, b) / qc[:, None]
    d2 = b - mu[None]
    cov = (np.einsum("nc,nci,ncj->cij", q, d2, d2) + np.einsum("nc,ncij->cij", q, bb)) / qc[:, None, None]
    return Mixture(qc / len(w), mu, 0.5 * (cov + cov.transpose(0, 2, 1)) + reg * np.eye(5))


def _refine(mix: Mixture, w: np.ndarray, s: np.ndarray, reg: float, *, max_iter: int, tol: float) -> tuple[Mixture, int]:
    """Maximise the analytic marginal likelihood from ``mix`` with L-BFGS (torch autograd).

    EM converges at a rate 1 - (intrinsic / total variance)^2 per step, i.e. barely, where the
    measurement errors dominate; the likelihood's gradient does not stall there.
    """
    import torch

    wt, st = torch.as_tensor(w, dtype=torch.float64), torch.as_tensor(s, dtype=torch.float64)
    eye = torch.eye(5, dtype=torch.float64)
    chol0 = np.linalg.cholesky(mix.covs - reg * np.eye(5) + 1e-9 * np.eye(5))
    logits = torch.tensor(np.log(np.maximum(mix.weights, 1e-12)), requires_grad=True)
    means = torch.tensor(mix.means, requires_grad=True)
    off = torch.tensor(np.tril(chol0, -1), requires_grad=True)
    logdiag = torch.tensor(np.log(np.diagonal(chol0, axis1=1, axis2=2)), requires_grad=True)
    params = [logits, means, off, logdiag]

    def build() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        chol = torch.tril(off, -1) + torch.diag_embed(torch.exp(logdiag))
        return torch.log_softmax(logits, 0), means, chol @ chol.transpose(1, 2) + reg * eye

    def nll() -> torch.Tensor:
        lw, mu, cov = build()
        dist = torch.distributions.MultivariateNormal(mu[None], covariance_matrix=cov[None] + st[:, None])
        return -torch.logsumexp(lw[None] + dist.log_prob(wt[:, None]), dim=1).mean()

    opt = torch.optim.LBFGS(params, max_iter=int(max_iter), tolerance_change=float(tol), tolerance_grad=1e-9,
                            history_size=50, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = nll()
        loss.backward()
        return loss

    opt.step(closure)
    n_iter = int(opt.state[opt._params[0]].get("n_iter", 0))
    with torch.no_grad():
        lw, mu, cov = (t.detach().numpy() for t in build())
    return Mixture(np.exp(lw) / np.exp(lw).sum(), mu.copy(), cov), n_iter


def bootstrap_mixtures(means: np.ndarray, covs: np.ndarray, log_r: np.ndarray, base: Mixture, *, n_boot: int,
                       rng: np.random.Generator, progress: bool = True, **kw: Any) -> list[Mixture]:
    """Refits of ``base`` on ``n_boot`` resamples of the clusters (with replacement): the population's uncertainty."""
    out = []
    it = range(int(n_boot))
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc="bootstrap", unit="fit")
    for _ in it:
        idx = rng.integers(0, len(log_r), len(log_r))
        mix, _ = fit_mixture(means[idx], covs[idx], log_r[idx], n_components=len(base.weights), rng=rng, init=base, **kw)
        out.append(mix)
    return out


@dataclass(frozen=True)
class PopulationModel:
    """The learnt population: the box it lives in, its bootstrap mixtures, and where it came from.

    ``names`` (:data:`POP_PARAMS`), ``low``/``high`` (the latent box: the training prior's, with
    E(B-V) from the foreground floor), ``mixtures`` (the maximum-likelihood fit first, then the
    bootstrap refits), ``meta`` (provenance: catalogue, posterior, number of clusters, BIC table).
    The prior density is the mean over ``mixtures[1:]`` (or the single mixture when there is no
    bootstrap): the population's uncertainty is averaged over, not ignored.
    """

    name: str
    names: tuple[str, ...]
    low: np.ndarray
    high: np.ndarray
    mixtures: tuple[Mixture, ...]
    meta: dict[str, Any]

    def __post_init__(self) -> None:
        if tuple(self.names) != POP_PARAMS:
            raise GcsbiValueError(f"population parameters must be {POP_PARAMS}, got {tuple(self.names)}")
        lo, hi = np.asarray(self.low, float), np.asarray(self.high, float)
        if lo.shape != (4,) or hi.shape != (4,) or not np.all(np.isfinite(lo) & np.isfinite(hi) & (lo < hi)):
            raise GcsbiValueError(f"population box must be 4 finite (low < high) pairs, got {self.low}, {self.high}")
        if not self.mixtures:
            raise GcsbiValueError("a population needs at least one mixture")
        object.__setattr__(self, "low", lo)
        object.__setattr__(self, "high", hi)
        object.__setattr__(self, "names", tuple(self.names))
        object.__setattr__(self, "mixtures", tuple(self.mixtures))

    @property
    def prior_mixtures(self) -> tuple[Mixture, ...]:
        return self.mixtures[1:] if len(self.mixtures) > 1 else self.mixtures

    def log_density(self, theta: np.ndarray, radius_kpc: Any = None) -> np.ndarray:
        """log p_pop(theta | R) for theta (..., 4) in :data:`POP_PARAMS` order; -inf outside the box.

        ``radius_kpc``: disc radius broadcastable to theta[..., 0], or None for the radius-averaged population.
        """
        t = np.asarray(theta, dtype=float)
        inside = np.all((t >= self.low) & (t <= self.high), axis=-1)
        log_r = None if radius_kpc is None else np.log10(np.maximum(np.asarray(radius_kpc, float), 0.1))
        lp = np.stack([m.log_conditional(t, log_r) for m in self.prior_mixtures])
        return np.where(inside, logsumexp(lp, axis=0) - np.log(len(lp)), -np.inf)

    def sample(self, radius_kpc: np.ndarray, rng: np.random.Generator, *, member: int | None = None) -> np.ndarray:
        """One theta (4,) per radius from the population (a random bootstrap member each, or ``member``)."""
        r = np.asarray(radius_kpc, float).reshape(-1)
        mix = self.prior_mixtures
        out = np.full((len(r), 4), np.nan)
        todo = np.arange(len(r))
        for _ in range(1000):  # draws outside the box are redrawn (the population lives in the box)
            which = rng.integers(0, len(mix), len(todo)) if member is None else np.full(len(todo), int(member))
            for m in np.unique(which):
                sel = todo[which == m]
                out[sel] = mix[m].sample(np.log10(np.maximum(r[sel], 0.1)), rng)
            bad = ~np.all((out[todo] >= self.low) & (out[todo] <= self.high), axis=1)
            todo = todo[bad]
            if not len(todo):
                return out
        raise GcsbiValueError("the population puts (almost) no mass inside its box at these radii")

    def to_dict(self) -> dict[str, Any]:
        return {"format": "gcsbi-population-1", "name": self.name, "names": list(self.names),
                "low": self.low.tolist(), "high": self.high.tolist(),
                "mixtures": [m.to_dict() for m in self.mixtures], "meta": self.meta}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "PopulationModel":
        if not isinstance(d, dict) or d.get("format") != "gcsbi-population-1":
            raise GcsbiValueError("not a gcsbi population (format 'gcsbi-population-1')")
        return cls(str(d["name"]), tuple(d["names"]), np.asarray(d["low"], float), np.asarray(d["high"], float),
                   tuple(Mixture.from_dict(m) for m in d["mixtures"]), dict(d.get("meta", {})))


def _digest(content: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def save_population(pop: PopulationModel, path: str | Path) -> Path:
    """Write ``pop`` as JSON with the SHA-256 of its content (``sha256``); refuses to replace a non-population file."""
    path = Path(path)
    if path.exists():
        try:
            json.loads(path.read_text())["population"]
        except Exception as exc:  # noqa: BLE001 - any unreadable file is someone else's
            raise GcsbiFileError(f"{path}: exists and is not a gcsbi population file; not overwriting") from exc
    content = pop.to_dict()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"population": content, "sha256": _digest(content)}, indent=1))
    tmp.replace(path)
    return path


def load_population(path: str | Path | None = None) -> PopulationModel:
    """Read a population file (default: the shipped M31 population), checking its size and SHA-256."""
    path = SHIPPED_POPULATION if path is None else Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise GcsbiFileError(f"{path}: cannot read the population file ({exc.strerror})") from exc
    if size > MAX_BYTES:
        raise GcsbiFileError(f"{path}: {size} bytes, more than a population file may have ({MAX_BYTES})")
    try:
        doc = json.loads(path.read_text())
        content, digest = doc["population"], doc["sha256"]
    except (ValueError, KeyError, TypeError) as exc:
        raise GcsbiFileError(f"{path}: not a gcsbi population file (JSON with 'population' and 'sha256')") from exc
    if _digest(content) != digest:
        raise GcsbiFileError(f"{path}: SHA-256 of the content does not match the stored one; the file was changed")
    try:
        return PopulationModel.from_dict(content)
    except (GcsbiValueError, KeyError, TypeError, ValueError) as exc:
        raise GcsbiFileError(f"{path}: invalid population: {exc}") from exc
