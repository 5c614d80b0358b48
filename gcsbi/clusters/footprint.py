"""Stars an observation would detect one by one, drawn individually where the image sees them.

For a nearby cluster (Milky Way globulars at 2-50 kpc) the stars that a count-based cut leaves
in luminosity groups (:func:`gcsbi.stars.light_groups.sample_resolved`) are still detected one by
one: a group's mean colour and a Gaussian flux spread would blur the colour-magnitude information
they carry. Drawing every such star of the whole cluster is wasteful (a 10^6 Msun cluster at
2 kpc holds millions of detectable stars, of which the 40" stamp sees a few per cent), so
:func:`resolve_in_footprint` draws them only inside the *footprint*: a cylinder along the line of
sight whose projection covers the padded stamp.

Detection depends on where a star sits: its flux must reach ``detection_sigma`` times the noise
summed over its PSF's effective area, the noise per pixel being the sky, the read noise and the
confusion noise of the cluster's unresolved stars fainter than it (their pixel variance
``sum_g lambda_g <f^2>_g``, which falls with radius; brighter stars are detected and fitted in their
turn, so they are not noise). So each
main-sequence/RGB group has a radius R_g beyond which its brightest stars (half a group width,
``GROUP_DEX / 2`` dex, above its mean flux) are detected in some band. Inside the cylinder and
beyond R_g its stars are drawn one by one: a Poisson number with mean (stars in the group) x
(fraction of its model component's mass projecting between R_g and the cylinder's radius), each
with an initial mass from the IMF within the group's range (then the isochrone), a 3D radius
from the component's model conditioned on that projected annulus, and a direction conditioned the
same way (exact: the fraction of a shell of radius r inside projected radius R is
1 - sqrt(1 - R^2/r^2), :func:`_shell_antiderivative`). Inside R_g the
group stays unresolved light, with its expected number reduced to the stars projecting there.
White-dwarf groups stay unresolved.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from ..errors import GcsbiValueError
from ..stars.imf import IMF
from ..stars.light_groups import GROUP_DEX, UnresolvedStars
from ..stars.population import StarSample
from .models import _unit_vectors
from .snapshot import Snapshot

__all__ = ["Footprint", "resolve_in_footprint"]


@dataclass(frozen=True, eq=False)
class Footprint:
    """Where and how deep an observation sees one cluster.

    Attributes:
        radius_pc: radius (pc, in the cluster's own frame) of the line-of-sight cylinder holding
            every position that projects onto the padded stamp.
        pixel_area_pc2: area of a pixel at the cluster, pc^2.
        counts_per_flux: (F,) e- per unit absolute flux 10^(-0.4 M) in each band of the population
            (same order as its filters): distance, extinction, zero point, exposure.
        noise_e2: (F,) sky plus read-noise variance per pixel, e-^2.
        psf_area: (F,) effective area 1 / sum(p^2) of each band's PSF, pixels.
        detection_sigma: the detection threshold in units of the noise over the PSF's effective area.
    """

    radius_pc: float
    pixel_area_pc2: float
    counts_per_flux: np.ndarray
    noise_e2: np.ndarray
    psf_area: np.ndarray
    detection_sigma: float = 5.0

    def __post_init__(self) -> None:
        for name in ("radius_pc", "pixel_area_pc2", "detection_sigma"):
            v = float(getattr(self, name))
            if not (np.isfinite(v) and v > 0):
                raise GcsbiValueError(f"footprint {name} must be finite and > 0, got {v}")
            object.__setattr__(self, name, v)
        arrays = [np.asarray(getattr(self, n), dtype=np.float64) for n in ("counts_per_flux", "noise_e2", "psf_area")]
        if any(a.ndim != 1 or a.shape != arrays[0].shape or not np.all(np.isfinite(a)) for a in arrays):
            raise GcsbiValueError("footprint counts_per_flux, noise_e2 and psf_area must be finite, one per band")
        if np.any(arrays[0] <= 0) or np.any(arrays[1] < 0) or np.any(arrays[2] <= 0):
            raise GcsbiValueError("footprint counts_per_flux and psf_area must be > 0, noise_e2 >= 0")
        for name, a in zip(("counts_per_flux", "noise_e2", "psf_area"), arrays):
            object.__setattr__(self, name, a)

    def detected(self, flux: np.ndarray, pixel_variance_e2: np.ndarray) -> np.ndarray:
        """(..., ) bool: a star of absolute flux ``flux`` (..., F) detected in some band where the cluster's
        own light adds ``pixel_variance_e2`` (..., F) e-^2 per pixel."""
        limit = self.detection_sigma * np.sqrt(self.psf_area * (self.noise_e2 + pixel_variance_e2))
        return np.any(np.asarray(flux) * self.counts_per_flux >= limit, axis=-1)


def _shell_antiderivative(r: np.ndarray, big_r: np.ndarray) -> np.ndarray:
    """G(r) with dG/dr = fraction of a thin shell of radius r inside projected radius R (1 for r <= R).

    For r > R the fraction is 1 - sqrt(1 - R^2/r^2), whose antiderivative is
    r - sqrt(r^2 - R^2) + R arccos(R / r); G is continuous at r = R.
    """
    rr = np.maximum(r, big_r)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.where(rr > 0, np.clip(big_r / np.where(rr > 0, rr, 1.0), 0.0, 1.0), 1.0)
    return r - np.sqrt(np.maximum(rr**2 - big_r**2, 0.0)) + big_r * np.arccos(cos)


def _shell_fraction(r: np.ndarray, rc: float) -> np.ndarray:
    """Fraction of a thin shell of radius r that projects inside radius rc."""
    r = np.asarray(r, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = 1.0 - np.sqrt(np.clip(1.0 - (rc / np.where(r > 0, r, 1.0)) ** 2, 0.0, 1.0))
    return np.where(r <= rc, 1.0, out)


def interval_fractions(radius_q: np.ndarray, rc) -> np.ndarray:
    """Fraction inside projected radius ``rc`` of each equal-mass radius interval of each component.

    ``radius_q`` (J, Q + 1) are a model's mass-quantile radii (:attr:`ModelTables.radius_q`: equal
    mass per interval, uniform in r inside it); for interval [a, b] the fraction is
    (G(b) - G(a)) / (b - a) (:func:`_shell_antiderivative`). ``rc`` is a scalar, giving (J, Q), or
    an array that broadcasts against (J, Q) (e.g. (K, 1, 1) radii, giving (K, J, Q)).
    """
    rq = np.asarray(radius_q, dtype=np.float64)
    lo, hi = rq[:, :-1], rq[:, 1:]
    width = hi - lo
    inside = (_shell_antiderivative(hi, rc) - _shell_antiderivative(lo, rc)) / np.where(width > 0, width, 1.0)
    return np.where(width > 0, inside, (lo <= rc).astype(float))


def cylinder_fractions(radius_q: np.ndarray, rc: float) -> np.ndarray:
    """(J, Q) :func:`interval_fractions` inside one projected radius ``rc`` (zero for ``rc <= 0``), within [0, 1].

    A component's fraction inside is the mean over its Q intervals.
    """
    rq = np.asarray(radius_q, dtype=np.float64)
    if rc <= 0:
        return np.zeros((rq.shape[0], rq.shape[1] - 1))
    return np.clip(interval_fractions(rq, rc), 0.0, 1.0)


def _sample_in_annulus(rq: np.ndarray, weight: np.ndarray, r_in: float, r_out: float, n: int,
                       rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """n radii (model units) and unit vectors of one component, conditioned on projecting between r_in and r_out.

    ``weight`` (Q,): each interval's fraction projecting there (cylinder fractions at r_out minus r_in).
    """
    i = rng.choice(weight.size, size=n, p=weight / weight.sum())
    a, b = rq[i], rq[i + 1]

    def frac(r):
        return _shell_fraction(r, r_out) - (_shell_fraction(r, r_in) if r_in > 0 else 0.0)

    bound = frac(np.clip(r_out, a, b))  # the fraction rises up to r = r_out and falls beyond
    r = np.empty(n)
    todo = np.arange(n)
    while todo.size:
        u = rng.random((2, todo.size))
        cand = a[todo] + (b[todo] - a[todo]) * u[0]
        ok = u[1] * bound[todo] <= frac(cand)
        r[todo[ok]] = cand[ok]
        todo = todo[~ok]
    # projected radius r sqrt(1 - mu^2) in [r_in, r_out] <=> |mu| in [mu_lo, mu_hi]; uniform on the sphere
    rr = np.maximum(r, 1e-300)
    mu_lo = np.sqrt(np.clip(1.0 - (r_out / rr) ** 2, 0.0, 1.0))
    mu_hi = np.sqrt(np.clip(1.0 - (r_in / rr) ** 2, 0.0, 1.0))
    u = rng.random((3, n))
    mu = np.where(u[0] < 0.5, -1.0, 1.0) * (mu_lo + (mu_hi - mu_lo) * u[1])
    phi = 2.0 * np.pi * u[2]
    s = np.sqrt(np.clip(1.0 - mu * mu, 0.0, 1.0))
    return r, np.column_stack((s * np.cos(phi), s * np.sin(phi), mu))


def detection_radii(faint: UnresolvedStars, density: np.ndarray, radius_pc: np.ndarray,
                    footprint: Footprint) -> np.ndarray:
    """(G,) projected radius (pc) beyond which each group's brightest stars are detected, out to the footprint.

    ``density`` (nR, G): the groups' expected stars per pc^2 at ``radius_pc``. A group's stars are seen
    against the sky, the read noise and the pixel variance of the unresolved stars fainter than them
    (the confusion noise; brighter stars are detected and fitted in their turn). ``inf``: never detected
    inside the footprint (white dwarfs: never resolved here).
    """
    ranges = faint.initial_mass_range
    if ranges is None:
        raise GcsbiValueError("the unresolved stars carry no initial-mass ranges (sample_resolved makes them)")
    brightest = faint.flux * 10.0 ** (GROUP_DEX / 2.0)  # (G, F)
    # pixel variance (e-^2) of each group's stars vs radius, (nR, G, F); a star is seen against the
    # confusion of the stars fainter than itself (brighter ones are detected and fitted in their turn)
    var = density[:, :, None] * faint.flux2[None, :, :] * footprint.pixel_area_pc2 * footprint.counts_per_flux**2
    fainter = np.empty_like(var)
    for b in range(var.shape[2]):
        order = np.argsort(brightest[:, b], kind="stable")
        cum = np.cumsum(var[:, order, b], axis=1) - var[:, order, b]  # exclusive: the groups before it
        fainter[:, order, b] = cum
    det = footprint.detected(brightest[None, :, :], fainter)  # (nR, G)
    det &= np.isfinite(ranges[:, 0])[None, :]
    det[radius_pc > footprint.radius_pc] = True  # off the image: no constraint
    tail = np.flip(np.logical_and.accumulate(np.flip(det, axis=0), axis=0), axis=0)  # detected from here out
    first = np.argmax(tail, axis=0)
    some = tail.any(axis=0)
    out = np.where(some, radius_pc[first], np.inf)
    out[some & (first == 0)] = 0.0  # detected at every radius
    out[out >= footprint.radius_pc] = np.inf
    return out


def resolve_in_footprint(snap: Snapshot, faint: UnresolvedStars, comp: np.ndarray, density: np.ndarray,
                         radius_pc: np.ndarray, *, population, grid, w0: float, delta: float, velocity_scale: float,
                         footprint: Footprint, rng: np.random.Generator) -> tuple[Snapshot, np.ndarray, np.ndarray]:
    """(snapshot with the detected stars added, (G,) radius within which each group stays unresolved light,
    (G,) the fraction of each group's stars that projects there) -- see the module docstring.

    ``comp`` (G,) is each group's model component; ``density`` (nR, G) their expected stars per pc^2 at
    ``radius_pc``; ``velocity_scale`` converts model speeds to km/s (``sqrt(M / length)`` as in
    :func:`gcsbi.clusters.models._place`); ``snap.meta["length_scale_pc"]`` is the model's length unit.
    """
    if faint.flux.shape[1] != footprint.counts_per_flux.size:
        raise GcsbiValueError(f"the footprint has {footprint.counts_per_flux.size} bands, the stars {faint.flux.shape[1]}")
    r_cut = detection_radii(faint, density, radius_pc, footprint)
    kept = np.ones(faint.n.size)
    todo = np.flatnonzero(np.isfinite(r_cut))
    meta = {**snap.meta, "footprint_radius_pc": footprint.radius_pc, "footprint_groups": int(todo.size),
            "footprint_stars": 0}
    if not todo.size:
        return snap.replace(meta=meta), r_cut, kept
    length = float(snap.meta["length_scale_pc"])
    r_out = footprint.radius_pc / length
    nodes = grid.node_weights(w0, delta)
    tabs = [grid.tables(wn, dn) for wn, dn, _ in nodes]
    outer = [cylinder_fractions(np.asarray(t.radius_q), r_out) for t in tabs]  # per node (J, Q)
    imf = IMF(population.imf, population.m_min, population.m_max)
    mi, cj, ann = [], [], []
    for g in todo:
        j = int(comp[g])
        r_in = r_cut[g] / length
        inner = [cylinder_fractions(np.asarray(t.radius_q[j:j + 1]), r_in)[0] for t in tabs]
        w_nodes = np.array([w * np.clip(o[j] - i, 0.0, None).mean() for (_, _, w), o, i in zip(nodes, outer, inner)])
        kept[g] = sum(w * i.mean() for (_, _, w), i in zip(nodes, inner))
        n_g = int(rng.poisson(faint.n[g] * w_nodes.sum()))
        if n_g:
            lo, hi = faint.initial_mass_range[g]
            mi.append(imf.sample(n_g, rng, m_lo=lo, m_hi=hi))
            cj.append(np.full(n_g, j))
            ann.append((g, r_in, w_nodes, inner, n_g))
    if not mi:
        return snap.replace(meta=meta), r_cut, kept
    mi = np.concatenate(mi)
    stars = population.evolve(mi)
    n = mi.size
    r, unit, speed = np.empty(n), np.empty((n, 3)), np.empty(n)
    start = 0
    for g, r_in, w_nodes, inner, n_g in ann:
        j = int(comp[g])
        sl = np.arange(start, start + n_g)
        start += n_g
        which = rng.choice(len(nodes), size=n_g, p=w_nodes / w_nodes.sum())
        for k, t in enumerate(tabs):
            sel = sl[which == k]
            if sel.size:
                weight = np.clip(outer[k][j] - inner[k], 0.0, None)
                r[sel], unit[sel] = _sample_in_annulus(np.asarray(t.radius_q[j]), weight, r_in, r_out, sel.size, rng)
                speed[sel] = t.sample_speed(np.full(sel.size, j), r[sel], rng.random(sel.size))
    positions = r[:, None] * unit * length
    velocities = speed[:, None] * _unit_vectors(rng, n) * velocity_scale
    cols = {f.name: np.concatenate([getattr(snap, f.name), getattr(stars, f.name)])
            for f in fields(StarSample) if f.name != "filters"}
    meta["footprint_stars"] = int(n)
    return snap.replace(positions=np.concatenate([snap.positions, positions]),
                        velocities=np.concatenate([snap.velocities, velocities]), meta=meta, **cols), r_cut, kept
