"""Exception hierarchy of gcsbi_jeans (self-contained: gcsbi_jeans imports nothing else from gcsbi)."""

from __future__ import annotations

__all__ = ["JeansError", "JeansValueError", "JeansFileError", "JeansRuntimeError", "JeansWarning"]


class JeansError(Exception):
    """Base class of every exception gcsbi_jeans raises on purpose."""


class JeansValueError(JeansError, ValueError):
    """A bad argument value, shape, NaN, unknown option or missing column."""


class JeansFileError(JeansError, OSError):
    """A missing, unreadable or corrupt file."""


class JeansRuntimeError(JeansError, RuntimeError):
    """A numerical procedure failed (non-finite loss, sampler failure)."""


class JeansWarning(UserWarning):
    """A suspicious but usable input (a few duplicated stars, heavy velocity tails); one line, names the rows."""
