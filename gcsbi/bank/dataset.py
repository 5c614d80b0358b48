"""A torch ``Dataset`` over a simulation bank that reads rows lazily (larger-than-RAM banks).

Build it with :meth:`gcsbi.bank.SimulationBank.dataset`, which selects the usable rows
(finished chunks, failed rows skipped).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import GcsbiFileError

__all__ = ["BankDataset"]


class BankDataset(torch.utils.data.Dataset):
    """Rows ``rows`` of a bank as ``(theta, x)`` float32 tensors, read on demand.

    Picklable (it stores the path, and re-opens the store in each DataLoader worker). Each
    row of x is its own Zarr inner chunk, so random access reads only that row.
    """

    def __init__(self, path: str | Path, rows: np.ndarray) -> None:
        self.path = Path(path)
        self.rows = np.asarray(rows, dtype=np.int64)
        self._arrays: tuple[Any, Any] | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def _open(self) -> tuple[Any, Any]:
        if self._arrays is None:
            from .format import open_group as _open_group

            g = _open_group(self.path, mode="r")
            self._arrays = (g["theta"], g["x"])
        return self._arrays

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        theta, x = self._open()
        r = int(self.rows[i])
        t, xx = np.asarray(theta[r], dtype=np.float32), np.asarray(x[r], dtype=np.float32)
        if not (np.isfinite(t).all() and np.isfinite(xx).all()):
            raise GcsbiFileError(f"{self.path}: row {r} is missing from the store; "
                                 f"run `gcsbi bank repair {self.path}` (Python: bank.repair())")
        return torch.from_numpy(t), torch.from_numpy(xx)

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "rows": self.rows, "_arrays": None}

