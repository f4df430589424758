"""Worker threads for the exact ranking scans: one per core faiss uses, each with one BLAS thread.

The scans alternate matrix products with numpy passes over their results; threads that each run
single-threaded BLAS keep both kinds of work on every core, where one multi-threaded product at a
time would leave the cores idle during the passes.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import faiss


def parallel(work: Callable[[int, int], None], tasks: int) -> None:
    """Run ``work(worker, workers)`` on ``workers`` threads (``faiss.omp_get_max_threads()``,
    ``OMP_NUM_THREADS``, at most the CPU count and ``tasks``), BLAS limited to one thread each;
    ``work`` takes every ``workers``-th of the ``tasks``. Nothing runs when ``tasks`` is 0."""
    if tasks == 0:
        return
    workers = max(1, min(faiss.omp_get_max_threads(), os.cpu_count() or 1, tasks))
    with one_blas_thread(), ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda worker: work(worker, workers), range(workers)))


def one_blas_thread() -> Any:
    """A context in which the loaded BLAS libraries use one thread (threadpoolctl)."""
    return _blas_controller().limit(limits=1, user_api="blas")


@functools.cache
def _blas_controller() -> Any:
    """threadpoolctl's view of the loaded BLAS libraries (finding them takes ~10 ms: do it once)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()
