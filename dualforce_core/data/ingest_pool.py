"""Where ingestion cuts its sources: in this process, or in `workers` spawned processes (`--workers N`).

The pool does not know how a source is cut. `ingest` hands `Cutter` the function that cuts one `Job`
(`source_cut.cut_source`, module-level, so a spawned worker unpickles it by name) and a picklable
zero-argument loader of what that function needs once per process (`source_cut.load_finder`: the face
finder, dlib's models, SyncNet), so this module imports neither and a worker loads its models once, not
per file.

Lance is not fork-safe and no table is opened in a worker: workers only decode, crop and encode; the
parent hashes, decides what to skip and does every Lance read and write. Results are asked for in
submission order, so batches, progress lines and rows do not depend on the number of workers.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
import traceback
from collections.abc import Callable
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar, cast

from dualforce_core.data.config import DataConfig

log = logging.getLogger(__name__)

Loaded = TypeVar("Loaded")
"""What a process loads once and every cut in it reuses (opaque to the pool)."""


@dataclass(frozen=True)
class Job:
    """What a worker needs to cut one source (picklable: it crosses to a spawned process)."""

    path: Path
    dataset: str
    source_hash: str
    config: DataConfig


@dataclass
class Cut:
    """What became of one source: its clip rows, or the stage where it failed and why."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    frames_decoded: int = 0
    skipped: bool = False
    stage: str = ""
    reason: str = ""
    detail: str = ""
    trace: str = ""
    value: float | None = None
    segment_rejects: list[dict[str, Any]] = field(default_factory=list)
    curation_stats: dict[str, Any] | None = None


def internal(stage: str, err: Exception) -> Cut:
    """An unexpected failure as a result (`internal_error`, traceback kept for the debug log)."""
    return Cut(
        stage=stage,
        reason="internal_error",
        detail=f"{type(err).__name__}: {err}",
        trace=traceback.format_exc(),
    )


_worker: tuple[Callable[[Job, Any], Cut], Any] | None = None
"""In a spawned worker: the cut function and what `worker_start` loaded for it."""


def worker_start(load: Callable[[], Any], cut: Callable[[Job, Any], Cut]) -> None:
    """Initializer of a spawned worker: Ctrl-C is the parent's to handle, the worker exits when its parent
    dies (even by SIGKILL, which leaves no chance to stop it), and it loads its own models once."""
    global _worker
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ.setdefault(
        "OMP_NUM_THREADS", "1"
    )  # N workers are the parallelism: torch must not add N × cores
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_exit_with, args=(parent.sentinel,), daemon=True).start()
    _worker = (cut, load())


def _exit_with(sentinel: int) -> None:
    multiprocessing.connection.wait([sentinel])
    os._exit(1)


def cut_in_worker(job: Job) -> Cut:
    """What a worker runs per job: the cut function on what the worker loaded at its start."""
    if _worker is None:
        raise RuntimeError("cut_in_worker runs in a worker started by worker_start")
    cut, loaded = _worker
    return cut(job, loaded)


@dataclass
class Handle:
    job: Job
    future: Future[Cut] | None  # None: cut in this process when its result is asked for
    generation: int = 0


class Cutter(Generic[Loaded]):
    """Cuts sources in this process (workers=1) or in `workers` spawned processes (see the module doc).

    In this process, `loaded` (what the parent already has) is used, or `load()` runs once when the first
    file is cut here. A worker that dies (a decoder crash, the OOM killer) breaks the whole pool: every
    job that was in it is then re-run alone in a fresh pool, so only a job that kills its worker again is
    blamed (`internal_error`, retried next run).
    """

    def __init__(
        self,
        workers: int,
        cut: Callable[[Job, Loaded], Cut],
        load: Callable[[], Loaded],
        loaded: Loaded | None = None,
        work: Callable[[Job], Cut] = cut_in_worker,
    ) -> None:
        self.workers = workers
        self.cut = cut
        self.load = load
        self.loaded = loaded
        self.ready = loaded is not None  # whether this process has what `cut` needs
        self.work = work
        self.pool: ProcessPoolExecutor | None = None
        self.generation = 0
        self.live = 0  # unresolved jobs in the current pool
        self.orphans = 0  # unresolved jobs of a pool that died

    def __enter__(self) -> Cutter[Loaded]:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        self._stop(kill=kind is not None)

    @property
    def busy(self) -> bool:
        """Whether the next result must be taken before another job is submitted: two jobs per worker keep
        every worker fed while the parent commits; none while a dead pool's jobs are re-run one by one."""
        if self.workers == 1:
            return self.live >= 1
        return self.live + self.orphans >= (0 if self.orphans else 2 * self.workers)

    def submit(self, job: Job) -> Handle:
        if self.workers == 1:
            self.live += 1
            return Handle(job, None)
        try:
            future = self._pool().submit(self.work, job)
        except BrokenProcessPool:  # a worker died while the parent was busy elsewhere
            self._broken()
            self.orphans += 1
            return Handle(job, None, -1)
        self.live += 1
        return Handle(job, future, self.generation)

    def result(self, handle: Handle) -> Cut:
        if self.workers == 1:
            self.live -= 1
            if not self.ready:
                self.loaded, self.ready = self.load(), True  # e.g. dlib's models: once a file is cut here
            return self.cut(handle.job, cast(Loaded, self.loaded))
        if handle.future is not None and handle.generation == self.generation:
            try:
                cut = handle.future.result()
            except BrokenProcessPool:
                self._broken()
            except Exception as err:  # the result could not come back (pickling, ...): still one reject
                self.live -= 1
                return internal("worker", err)
            else:
                self.live -= 1
                return cut
        self.orphans -= 1
        if handle.future is not None:
            with contextlib.suppress(BrokenProcessPool, CancelledError):
                return handle.future.result()  # it finished before the pool died
        return self._alone(handle.job)

    def _broken(self) -> None:
        log.debug("an ingest worker died; re-running the %d jobs it shared a pool with one by one", self.live)
        self.orphans += self.live
        self.live = 0
        self._stop(kill=True)

    def _alone(self, job: Job) -> Cut:
        try:
            return self._pool().submit(self.work, job).result()
        except BrokenProcessPool:
            self._stop(kill=True)
            return Cut(
                stage="worker",
                reason="internal_error",
                detail="the worker process died cutting this file (a crash in the decoder, or out of memory)",
            )
        except Exception as err:
            return internal("worker", err)

    def _pool(self) -> ProcessPoolExecutor:
        if self.pool is None:
            self.pool = ProcessPoolExecutor(
                self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=worker_start,
                initargs=(self.load, self.cut),
            )
        return self.pool

    def _stop(self, kill: bool) -> None:
        """Shut the pool down; `kill` stops the running jobs too (an error, Ctrl-C or a dead worker)."""
        pool, self.pool = self.pool, None
        if pool is None:
            return
        if kill:
            self.generation += 1
            processes = list((getattr(pool, "_processes", None) or {}).values())
            pool.shutdown(wait=False, cancel_futures=True)
            for process in processes:
                with contextlib.suppress(OSError, ValueError):
                    process.kill()
        else:
            pool.shutdown(wait=True)
