"""Helpers for tests that start and kill processes (imported by test modules in this folder)."""

from __future__ import annotations

import time


def wait_gone(pids, timeout: float = 10.0) -> list[int]:
    """Wait until none of ``pids`` is a live (non-zombie) process; return those still alive."""
    import psutil

    deadline = time.monotonic() + timeout
    while True:
        alive = []
        for pid in pids:
            try:
                if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                    alive.append(pid)
            except psutil.NoSuchProcess:
                pass
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.1)
