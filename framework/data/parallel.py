"""The audit's per-item work (decoding, probing, fingerprinting) on every core, or on a Dask cluster.

``audit.workers=auto`` (the default) maps the work over a process pool as wide as the cores this
process may use; ``audit.workers=1`` runs it in the calling process. ``audit.engine=dask`` sends
it to a Dask cluster: ``audit.address=tcp://scheduler:8786`` names a running scheduler, and without
an address a ``LocalCluster`` of ``audit.workers`` processes is started for the audit and closed
after it. Only the per-item work is distributed: its results come back in item order, and the
duplicate search, the split-leak check and every gate run on them in the calling process, so the
audit's results do not depend on where the items were fingerprinted.

Work goes out in chunks of up to ``audit.chunk_size`` consecutive items, smaller where that gives
every worker at least eight (items differ in cost, and the last chunks should not leave cores
idle for long); readers list items in file order, so a chunk's items mostly sit in one tar shard,
whose member index each worker keeps.

Worker start-up is paid once per process, not once per worker: the pool's workers are forked
from a ``forkserver`` that has imported, once, the main script, the mapped function's module and
the modules the caller names (``preload``, e.g. the image decoders). Without the main script in
the forkserver every worker would run the script's imports again (``torch`` takes seconds), which
on a busy machine costs more than a small audit's whole per-item work. Each worker limits the
thread pools of torch, OpenCV and BLAS/OpenMP to one thread: the workers already fill the cores.
"""

from __future__ import annotations

import functools
import logging
import math
import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence, TypeVar

from framework.errors import FrameworkError

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")
ENGINES = ("processes", "dask")
CHUNKS_PER_WORKER = 8


@dataclass
class AuditConfig:
    """Where the audit's per-item work runs (``audit:`` in the run config).

    Attributes:
        workers: Processes: ``auto`` (every core this process may use) or a number; 1 runs in the
            calling process. With ``engine=dask`` and no ``address``, the local cluster's size.
        engine: ``processes`` (a local process pool) or ``dask`` (a Dask cluster; needs the
            ``cluster`` extra: ``pip install 'framework[cluster]'``).
        address: A running Dask scheduler (``tcp://host:8786``); every worker must see the data
            at the same paths (a shared filesystem).
        chunk_size: Items per task sent to a worker, at most: fewer where that leaves a worker
            under eight tasks (:meth:`ItemPool.chunk_for`).
        min_items: Fewer items than this stay in the calling process (starting worker processes
            costs a second or two, more than a small audit's whole per-item work).
    """

    workers: Any = "auto"
    engine: str = "processes"
    address: Optional[str] = None
    chunk_size: int = 64
    min_items: int = 2000


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


def resolve_workers(workers: Any) -> int:
    """``auto`` -> :func:`available_cores`; a positive integer as is.

    Raises:
        FrameworkError: naming ``audit.workers`` for anything else.
    """
    if workers in ("auto", None):
        return available_cores()
    try:
        n = int(workers)
    except (TypeError, ValueError):
        n = 0
    if n < 1 or isinstance(workers, bool):
        raise FrameworkError(f"audit.workers={workers!r} must be 'auto' or a positive integer")
    return n


def _run_chunk(fn: Callable[[T], R], chunk: Sequence[T]) -> list[R]:
    return [fn(item) for item in chunk]


def _one_thread_each() -> None:
    """Pool initializer: one thread for each library thread pool this worker has loaded."""
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)
    cv2 = sys.modules.get("cv2")
    if cv2 is not None:
        cv2.setNumThreads(1)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - scikit-learn brings it
        return
    threadpool_limits(1)  # BLAS and OpenMP pools already loaded (numpy's, scipy's)


def _process_context(preload: Sequence[str]) -> Any:
    """The forkserver context, its server started with the main script and ``preload`` imported
    (where it is not running yet: it is one per process); ``spawn`` where there is no forkserver."""
    if "forkserver" not in multiprocessing.get_all_start_methods():  # pragma: no cover - Windows
        return multiprocessing.get_context("spawn")
    from multiprocessing import forkserver

    from framework.data._forkserver_main import MAIN_ENV, SYS_PATH_ENV

    context = multiprocessing.get_context("forkserver")
    # The main script first, so workers forked from the server find it imported instead of each
    # running it again (see framework/data/_forkserver_main.py); a -m entry point is never re-run.
    context.set_forkserver_preload(["__main__", "framework.data._forkserver_main", "threadpoolctl",  # for _one_thread_each
                                    *dict.fromkeys(m for m in preload if m)])
    main = sys.modules.get("__main__")
    main_file = getattr(main, "__file__", None)
    if main_file and getattr(getattr(main, "__spec__", None), "name", None) is None:  # a script, not -m
        os.environ[MAIN_ENV] = os.path.normpath(os.path.abspath(main_file))
    os.environ[SYS_PATH_ENV] = os.pathsep.join(sys.path)
    try:
        forkserver.ensure_running()  # no-op when the server runs already
    finally:
        os.environ.pop(MAIN_ENV, None)
        os.environ.pop(SYS_PATH_ENV, None)
    return context


def _chunks(items: Sequence[T], size: int) -> list[Sequence[T]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


class ItemPool:
    """Maps a function over items, in order, where :class:`AuditConfig` says.

    Args:
        cfg: The ``audit:`` config; the default runs on every core of this machine.
    """

    def __init__(self, cfg: AuditConfig | None = None) -> None:
        self.cfg = cfg or AuditConfig()
        if self.cfg.engine not in ENGINES:
            raise FrameworkError(f"audit.engine={self.cfg.engine!r} is not known; valid: {', '.join(ENGINES)}")
        if int(self.cfg.chunk_size) < 1:
            raise FrameworkError(f"audit.chunk_size={self.cfg.chunk_size!r} must be a positive integer")
        self.workers = resolve_workers(self.cfg.workers)

    def describe(self) -> str:
        """Where the work runs, for logs and ``audit.json``."""
        if self.cfg.engine == "dask":
            return f"dask ({self.cfg.address or f'local cluster of {self.workers} processes'})"
        return "in process" if self.workers == 1 else f"{self.workers} processes"

    def chunk_for(self, n: int) -> int:
        """Items per task for ``n`` items: ``audit.chunk_size``, or fewer so that every worker gets
        at least :data:`CHUNKS_PER_WORKER` tasks. Items differ in cost (a 1024 px photo decodes
        sixteen times slower than a 256 px one); with a few large chunks per worker, the last ones
        leave the other cores idle."""
        return max(1, min(int(self.cfg.chunk_size), math.ceil(n / (self.workers * CHUNKS_PER_WORKER))))

    def map(self, fn: Callable[[T], R], items: Sequence[T], preload: Sequence[str] = ()) -> list[R]:
        """``[fn(item) for item in items]``, computed where the config says; ``fn`` and the items
        must pickle (a module-level function and plain data). ``preload`` names modules ``fn``
        imports on its first call (decoders), for the process pool's forkserver to import once."""
        items = list(items)
        size = int(self.cfg.chunk_size)
        if self.cfg.engine != "dask" and (self.workers == 1 or len(items) < max(int(self.cfg.min_items), size + 1)):
            return [fn(item) for item in items]
        size = self.chunk_for(len(items))
        if self.cfg.engine == "dask":
            return self._dask(fn, items, size)
        # forkserver: workers start from a clean interpreter, not from a copy of a process that may
        # hold threads (torch's) or locks; what they import is imported once, then forked.
        context = _process_context([getattr(fn, "__module__", "") or "framework", *preload])
        chunks = _chunks(items, size)
        with ProcessPoolExecutor(max_workers=min(self.workers, len(chunks)), mp_context=context,
                                 initializer=_one_thread_each) as pool:
            return [r for part in pool.map(functools.partial(_run_chunk, fn), chunks) for r in part]

    def _dask(self, fn: Callable[[T], R], items: Sequence[T], size: int) -> list[R]:
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise FrameworkError("audit.engine=dask needs Dask's distributed scheduler: "
                                 "pip install 'framework[cluster]' (or audit.engine=processes)") from None
        cluster = None
        if self.cfg.address:
            client = Client(self.cfg.address)
        else:
            cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1, processes=True,
                                   dashboard_address=None)
            client = Client(cluster)
        try:
            futures = client.map(functools.partial(_run_chunk, fn), _chunks(items, size), pure=False)
            return [r for part in client.gather(futures) for r in part]
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
