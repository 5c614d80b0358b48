"""Exception hierarchy of gcsbi.

Every error raised on purpose by gcsbi derives from :class:`GcsbiError`, and
also from the matching built-in exception so callers that catch ``ValueError``
or ``OSError`` keep working::

    GcsbiError
    ├── GcsbiValueError(ValueError)        bad argument value, shape, NaN, out of range
    │   ├── UnknownFilterError(KeyError)   filter name not supported
    │   └── SpecError                      malformed / unknown keys in a TOML spec
    ├── GcsbiFileError(OSError)            missing, corrupt or unreadable file
    ├── GcsbiDependencyError(ImportError)  optional dependency or data package missing
    └── GcsbiRuntimeError(RuntimeError)    a numerical procedure failed

Warnings::

    GcsbiWarning(UserWarning)
    ├── OutOfDistributionWarning           observation unlike the training simulations (MMD test
    │                                      in embedding space, or most posterior mass outside the prior)
    └── PriorEdgeWarning                   posterior mass piled up at a prior bound: the data may
                                           prefer values outside the prior, or the truth lies near it

``PriorEdgeWarning`` is not an ``OutOfDistributionWarning``: a legitimate prior draw near a bound
triggers it, so silencing one category leaves the other visible.
"""

from __future__ import annotations

__all__ = [
    "GcsbiError",
    "GcsbiValueError",
    "UnknownFilterError",
    "SpecError",
    "GcsbiFileError",
    "GcsbiDependencyError",
    "GcsbiRuntimeError",
    "GcsbiWarning",
    "OutOfDistributionWarning",
    "PriorEdgeWarning",
    "one_line",
]


def one_line(text: object, limit: int = 300) -> str:
    """``text`` on one line (gcsbi's error messages are one line), cut to ``limit`` characters."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class GcsbiError(Exception):
    """Base class of every exception gcsbi raises on purpose."""


class GcsbiValueError(GcsbiError, ValueError):
    """An argument has a bad value, shape, dtype, NaN, or is out of range."""


class UnknownFilterError(GcsbiValueError, KeyError):
    """A filter (band) name is not supported."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class SpecError(GcsbiValueError):
    """A simulator or prior specification (TOML) is malformed or has unknown keys."""


class GcsbiFileError(GcsbiError, OSError):
    """A file is missing, corrupt, or in an unsupported format."""


class GcsbiDependencyError(GcsbiError, ImportError):
    """An optional dependency or a data package is missing."""


class GcsbiRuntimeError(GcsbiError, RuntimeError):
    """A numerical procedure failed (no convergence, empty sample, ...)."""


class GcsbiWarning(UserWarning):
    """Base class of gcsbi warnings."""


class OutOfDistributionWarning(GcsbiWarning):
    """An observation lies outside the training distribution (the simulations the posterior saw)."""


class PriorEdgeWarning(GcsbiWarning):
    """Posterior mass piles up at a prior bound of a parameter.

    Either the data prefer values outside the prior (then the posterior is truncated and biased),
    or the true value simply lies near the bound, which happens for legitimate prior draws too.
    """
