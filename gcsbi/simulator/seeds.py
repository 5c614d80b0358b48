"""Seeds of the simulator: checked, or drawn from torch's global generator as sbi expects."""

from __future__ import annotations

import operator
from typing import Any

import numpy as np
import torch

from ..errors import GcsbiValueError

__all__ = ["check_seed", "resolve_seed"]

def check_seed(seed: Any) -> int | None:
    """``seed`` as a Python int (or None), refusing anything that is not a non-negative integer.

    Accepted: None, ``int`` and integer scalars (numpy integers, 0-d integer tensors) >= 0, of any size
    (``numpy.random.SeedSequence`` takes arbitrarily large entropy). Refused with
    :class:`~gcsbi.errors.GcsbiValueError`: bools, floats (even 2.0), strings, negative numbers.
    """
    if seed is None:
        return None
    if not isinstance(seed, (bool, np.bool_)):
        try:
            value = operator.index(seed)
        except TypeError:
            value = None
        if value is not None and value >= 0:
            return int(value)
    raise GcsbiValueError(f"seed must be a non-negative integer (or None), got {seed!r:.40}")


def resolve_seed(seed: Any) -> int:
    """:func:`check_seed`, and for ``seed=None`` a seed drawn from torch's global generator.

    Drawing from torch (not from OS entropy) is what sbi expects: ``torch.manual_seed(s)``, or
    ``sbi.inference.simulate_for_sbi(sim, prior, n, seed=s)`` which seeds torch, then makes the
    simulations reproducible too.
    """
    seed = check_seed(seed)
    if seed is None:
        seed = int(torch.randint(0, 2**63 - 1, (1,), dtype=torch.int64).item())
    return seed


def _positive_int(value: Any, name: str) -> int:
    try:
        n = None if isinstance(value, (bool, np.bool_)) else operator.index(value)
    except TypeError:
        n = None
    if n is None or n < 1:
        raise GcsbiValueError(f"{name} must be a positive integer, got {value!r:.40}")
    return int(n)
