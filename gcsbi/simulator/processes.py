"""Worker processes that behave: the policy shared by the simulator's pool and the bank's workers.

Workers come from a ``forkserver`` (its server preloads a module, so workers start without
re-importing torch), else ``spawn``; never plain ``fork``, which torch and zarr's event-loop
thread do not survive. A worker ignores SIGINT (Ctrl-C is the parent's business: it terminates
its workers) and exits as soon as the process that started it is gone, even after a SIGKILL: a
forkserver child's parent is the forkserver, which outlives the main process, so parent-death
signals cannot do this; a daemon thread waits on the main process instead (a Linux ``pidfd``,
else polling) and calls ``os._exit``.
"""

from __future__ import annotations

import os
import select
import signal
import threading
import time
from typing import Any

__all__ = ["mp_context", "ignore_sigint_and_watch", "terminate_pool"]

_POLL_S = 0.5


def mp_context(preload: str) -> Any:
    """The multiprocessing context of local workers (forkserver preloading ``preload``, else spawn)."""
    import multiprocessing as mp

    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload([preload])  # only matters if the server is not running yet
        return ctx
    return mp.get_context("spawn")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else (the pid was reused): keep going
        return True
    return True


def _exit_with(pid: int) -> None:
    """Block until process ``pid`` has exited, then end this process at once."""
    try:
        fd = os.pidfd_open(pid)  # Linux >= 5.3: readable once the process exits (zombie or not)
    except (AttributeError, OSError):
        fd = None
    if fd is not None:
        select.select([fd], [], [])
    else:
        while _alive(pid):
            time.sleep(_POLL_S)
    os._exit(1)


def ignore_sigint_and_watch(main_pid: int) -> None:
    """In a worker: ignore SIGINT and exit when process ``main_pid`` is gone (call it first)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if os.name == "posix":  # on Windows os.kill(pid, 0) would terminate the process
        threading.Thread(target=_exit_with, args=(main_pid,), name="gcsbi-parent-watch", daemon=True).start()


def terminate_pool(pool: Any) -> None:
    """Stop a ``ProcessPoolExecutor`` now: running tasks are abandoned, the workers killed."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    for p in procs:
        if p.is_alive():
            p.terminate()
    for p in procs:
        p.join(timeout=5)
        if p.is_alive():
            p.kill()
            p.join(timeout=5)
    try:
        pool.shutdown(wait=True, cancel_futures=True)
    except Exception:  # pragma: no cover - at interpreter exit the pool may already be gone
        pass
