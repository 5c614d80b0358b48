"""Simulator parameters, the ``[snapshot]`` table of a simulator spec, and the spec's content digest."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from ..errors import SpecError
from ..spec.simulator_spec import SimulatorSpec, load_simulator_spec

__all__ = ["PARAMETERS", "ALTERNATIVES", "SnapshotSource", "with_snapshot", "PHYSICS_VERSION", "spec_digest"]

#: Parameter name -> (default or None if required, description).
PARAMETERS: dict[str, tuple[float | None, str]] = {
    "distance_kpc": (None, "heliocentric distance, kpc"),
    "log10_mass": (None, "log10 present-day mass, Msun"),
    "age_gyr": (None, "age, Gyr"),
    "feh": (None, "[Fe/H]"),
    "log10_r_half": (float(np.log10(3.0)), "log10 3D half-mass radius, pc"),
    "w0": (7.0, "King W0"),
    "segregation": (0.0, "mass-segregation delta (0-0.5)"),
    "ellipticity": (0.0, "projected ellipticity 1-b/a"),
    "position_angle": (0.0, "major-axis position angle, deg E of N"),
    "ebv": (0.0, "E(B-V), mag"),
    "background_sb": (float("nan"), "field surface brightness, mag/arcsec^2 (NaN: spec default)"),
    "log10_age_yr": (float("nan"), "log10 age in yr: an alternative to age_gyr (young clusters)"),
}

#: Alternative parametrisations: name -> (the parameter it sets, conversion).
ALTERNATIVES: dict[str, tuple[str, Callable[[float], float]]] = {
    "log10_age_yr": ("age_gyr", lambda v: 10.0 ** (v - 9.0)),
}



@dataclass(frozen=True)
class SnapshotSource:
    """The validated ``[snapshot]`` table of a simulator spec."""

    source: str = "limepy"
    library: str | None = None
    max_faint_particles: int = 2000
    faint_light: str = "particles"
    max_resolved_stars: int = 2000
    detection_sigma: float | None = None
    truncation_g: float = 1.0
    default_prior: str | None = None
    fixed: tuple[tuple[str, float], ...] = ()

    @classmethod
    def from_mapping(cls, table: Mapping[str, Any], *, base_dir: Path | None = None) -> "SnapshotSource":
        keys = [f.name for f in dataclasses.fields(cls)]
        unknown = set(table) - set(keys)
        if unknown:
            raise SpecError(f"[snapshot]: unknown keys {sorted(unknown)}; allowed {keys}")
        default = cls()  # the dataclass defaults are the only defaults
        source = str(table.get("source", default.source))
        if source not in ("limepy", "library"):
            raise SpecError(f"[snapshot] source must be 'limepy' or 'library', got {source!r}")
        library = table.get("library")
        if source == "library":
            if not library:
                raise SpecError("[snapshot] source = 'library' needs library = '<folder>'")
            path = Path(str(library)).expanduser()
            library = str(path if path.is_absolute() or base_dir is None else (base_dir / path).resolve())
        fixed = table.get("fixed", {})
        if not isinstance(fixed, Mapping):
            raise SpecError("[snapshot.fixed] must be a table of parameter = value")
        bad = set(fixed) - set(PARAMETERS)
        if bad:
            raise SpecError(f"[snapshot.fixed]: unknown parameters {sorted(bad)}; known {list(PARAMETERS)}")
        faint_light = str(table.get("faint_light", default.faint_light))
        if faint_light not in ("particles", "smooth"):
            raise SpecError(f"[snapshot] faint_light must be 'particles' or 'smooth', got {faint_light!r}")
        if faint_light == "smooth" and source != "limepy":
            raise SpecError("[snapshot] faint_light = 'smooth' needs source = 'limepy' (library snapshots are particles)")
        unused = {"smooth": "max_faint_particles", "particles": "max_resolved_stars"}[faint_light]
        if unused in table:
            raise SpecError(f"[snapshot] {unused} does not apply with faint_light = {faint_light!r}")
        try:
            n_resolved = int(table.get("max_resolved_stars", default.max_resolved_stars))
            n_faint = int(table.get("max_faint_particles", default.max_faint_particles))
            g = float(table.get("truncation_g", default.truncation_g))
            fixed_t = tuple((k, float(v)) for k, v in fixed.items())
        except (TypeError, ValueError) as exc:
            raise SpecError(f"[snapshot]: bad value: {exc}") from exc
        if n_faint < 2:
            raise SpecError("[snapshot] max_faint_particles must be >= 2")
        if n_resolved < 1:
            raise SpecError("[snapshot] max_resolved_stars must be >= 1")
        detection = table.get("detection_sigma", default.detection_sigma)
        if detection is not None:
            if faint_light != "smooth":
                raise SpecError("[snapshot] detection_sigma applies only with faint_light = 'smooth'")
            try:
                detection = float(detection)
            except (TypeError, ValueError) as exc:
                raise SpecError(f"[snapshot] detection_sigma must be a number, got {detection!r}") from exc
            if not (np.isfinite(detection) and detection > 0):
                raise SpecError(f"[snapshot] detection_sigma must be finite and > 0, got {detection}")
        prior = table.get("default_prior", default.default_prior)
        return cls(source=source, library=library, max_faint_particles=n_faint, faint_light=faint_light,
                   max_resolved_stars=n_resolved, detection_sigma=detection, truncation_g=g,
                   default_prior=None if prior is None else str(prior), fixed=fixed_t)


def with_snapshot(spec: str | Path | SimulatorSpec, **changes: Any) -> SimulatorSpec:
    """A copy of ``spec`` with ``[snapshot]`` keys changed (``None`` removes a key), validated.

    Changing ``faint_light`` drops the size key of the other mode (``max_faint_particles`` /
    ``max_resolved_stars``) unless it is given too, e.g. ``with_snapshot("hst-phat",
    faint_light="particles")`` renders every faint star as mass-stratified particles. The copy's
    :func:`spec_digest` covers the changed table, so posteriors trained on the file's spec refuse it.
    """
    s = spec if isinstance(spec, SimulatorSpec) else load_simulator_spec(spec)
    table = dict(s.snapshot)
    if "faint_light" in changes:
        other = {"smooth": "max_faint_particles", "particles": "max_resolved_stars"}.get(str(changes["faint_light"]))
        if other is not None and other not in changes:
            table.pop(other, None)
        if str(changes["faint_light"]) == "particles" and "detection_sigma" not in changes:
            table.pop("detection_sigma", None)
    for key, value in changes.items():
        if value is None:
            table.pop(key, None)
        else:
            table[key] = value
    base = Path(s.source).parent if s.source else None
    SnapshotSource.from_mapping(table, base_dir=base)  # raises SpecError on a bad combination
    return dataclasses.replace(s, snapshot=MappingProxyType(table))


#: Version of the physics behind an unchanged spec (stellar photometry, observation model). Part
#: of :func:`spec_digest`: raise it when a change of gcsbi alters the images a spec simulates, so
#: that posteriors trained on the old images refuse the new simulator. 2: the HST near-UV
#: transfer takes the u band's residual across its passband (F336W brighter for cool stars).
PHYSICS_VERSION = 2


def spec_digest(spec: SimulatorSpec) -> str:
    """Content hash of a simulator spec (its parsed TOML) and :data:`PHYSICS_VERSION`, independent of
    where the file lives.

    Checkpoints and banks store it instead of the file path, so a posterior trained in one
    checkout loads in another, and any edit of the spec's content is detected.
    """
    import hashlib
    import json

    from ..spec.resources import read_toml

    doc = read_toml(Path(spec.source)) if spec.source else {"repr": repr(spec)}
    if spec.source and dict(spec.snapshot) != doc.get("snapshot", {}):  # changed in memory (with_snapshot)
        doc["snapshot"] = dict(spec.snapshot)
    doc["_physics_version"] = PHYSICS_VERSION
    blob = json.dumps(doc, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
