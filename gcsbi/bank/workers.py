"""Where the chunks of ``SimulationBank.generate`` run: local worker processes or Dask.

Local workers come from a ``forkserver`` (they fork from a server that already imported
``gcsbi.bank.chunks``), else ``spawn``; never plain ``fork``, which torch and zarr's event-loop
thread do not survive. Each worker

* uses one torch thread;
* ignores SIGINT: a terminal's Ctrl-C reaches the whole process group, and the parent,
  not each worker, decides what happens (it terminates them, see :func:`run_pool`), so no
  worker prints a traceback;
* exits as soon as the process that started the pool is gone, even when that one was
  killed with SIGKILL. A forkserver child's parent is the forkserver, which itself stays alive
  as long as any of its children does, so parent-death signals cannot do this; instead a
  daemon thread waits on the main process (a Linux ``pidfd``, else polling every 0.5 s) and
  calls ``os._exit``. The forkserver and the resource tracker then exit by themselves once
  their last client is gone.

A chunk interrupted half-way never has its ``done`` flag set, so it is recomputed by the
next ``generate``: terminating a worker at any moment loses no finished work.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ..simulator.processes import ignore_sigint_and_watch, terminate_pool
from ..simulator.processes import mp_context as _mp_context

__all__ = ["mp_context", "pool_init", "run_pool", "run_dask"]



def mp_context() -> Any:
    """The multiprocessing context of the local workers (forkserver, else spawn)."""
    return _mp_context("gcsbi.bank.chunks")


def pool_init(main_pid: int) -> None:
    """Initializer of every local worker (see the module docstring)."""
    ignore_sigint_and_watch(main_pid)  # first: a Ctrl-C while torch imports must not reach us
    import torch

    torch.set_num_threads(1)


def run_pool(fn: Callable[..., Any], calls: list[tuple[Any, ...]], workers: int) -> Iterator[Any]:
    """Yield ``fn(*args)`` for each ``args`` in ``calls`` as it completes, on ``workers`` processes.

    An exception from a chunk cancels the chunks not started and waits for the running ones
    (their data is good). Ctrl-C (KeyboardInterrupt) and an abandoned iteration terminate the
    workers at once instead of waiting for their chunks.
    """
    import concurrent.futures as cf

    pool = cf.ProcessPoolExecutor(max_workers=min(workers, len(calls)), mp_context=mp_context(),
                                  initializer=pool_init, initargs=(os.getpid(),))
    try:
        futures = [pool.submit(fn, *args) for args in calls]
        for fut in cf.as_completed(futures):
            yield fut.result()
    except Exception:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    except BaseException:  # KeyboardInterrupt, SystemExit, GeneratorExit
        terminate_pool(pool)
        raise
    pool.shutdown(wait=True)


def _dask_task(path: str, chunk: int, trusted_factory: str | None) -> Any:
    import torch

    from .chunks import _compute_and_write

    torch.set_num_threads(1)
    return _compute_and_write(path, chunk, trusted_factory)


def run_dask(path: str, todo: list[int], scheduler: str, trusted_factory: str | None) -> Iterable[Any]:
    """Yield chunk results computed by the Dask distributed cluster at ``scheduler``."""
    try:
        from distributed import Client, as_completed
    except ImportError as exc:  # pragma: no cover - distributed is a dependency of the venv
        from ..errors import GcsbiDependencyError

        raise GcsbiDependencyError("generate(scheduler=...) needs 'distributed' (pip install distributed)") from exc
    client = Client(scheduler)
    try:
        futures = client.map(_dask_task, [path] * len(todo), todo, [trusted_factory] * len(todo), pure=False)
        try:
            for fut in as_completed(futures):
                yield fut.result()
        except BaseException:
            client.cancel(futures)
            raise
    finally:
        client.close()
