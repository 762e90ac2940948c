"""Background job runner: one job at a time per dataset, cancel, progress, logs, timings, errors.

Stages run in worker threads so the studio stays responsive. Workers never touch a Bokeh
document: they only update :class:`Job` records under a lock and bump ``runner.version``.
Each browser session polls that counter from a periodic callback (which runs with the
session's document lock) and redraws what changed.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from pipeline.core.progress import Cancelled, Progress, ProgressEvent
from pipeline.core.workspace import atomic_write_json, utc_now_iso

log = logging.getLogger(__name__)

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
FINISHED = (DONE, FAILED, CANCELLED)
MAX_LOG_LINES = 400

JobFunction = Callable[[Progress], Any]


@dataclass
class Job:
    """One unit of background work (a stage run, an ingest, a re-cluster save)."""

    id: str
    dataset: str
    stage: str
    title: str
    fn: JobFunction = field(repr=False)
    status: str = QUEUED
    created_at: str = field(default_factory=utc_now_iso)
    started: Optional[float] = None
    finished: Optional[float] = None
    done: float = 0.0
    total: Optional[float] = None
    message: str = ""
    log: list[str] = field(default_factory=list)
    result: Any = None
    error: Optional[str] = None
    error_type: Optional[str] = None
    cancel_event: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def fraction(self) -> Optional[float]:
        if self.status == DONE:
            return 1.0
        if self.total:
            return max(0.0, min(1.0, self.done / self.total))
        return None

    @property
    def elapsed(self) -> Optional[float]:
        if self.started is None:
            return None
        return (self.finished or time.perf_counter()) - self.started

    @property
    def is_active(self) -> bool:
        return self.status in (QUEUED, RUNNING)

    def summary(self) -> dict:
        """A JSON-safe snapshot (what the UI and the job record show)."""
        return {
            "id": self.id, "dataset": self.dataset, "stage": self.stage, "title": self.title,
            "status": self.status, "created_at": self.created_at,
            "elapsed_s": None if self.elapsed is None else round(self.elapsed, 3),
            "done": self.done, "total": self.total, "message": self.message,
            "result": _json_safe(self.result), "error": self.error, "error_type": self.error_type,
            "log": list(self.log),
            # what the submitter attached as ``job.params`` (stage config, inputs; issue 9's Jobs view)
            "params": _json_safe(getattr(self, "params", None) or {}),
        }


def _json_safe(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    return getattr(value, "name", None) or repr(value)


class JobRunner:
    """Runs submitted jobs in one worker thread per dataset (jobs of a dataset run in order).

    ``version`` increases on every change, so pollers redraw only when something happened.
    Finished jobs are also written to ``<log_dir>/<job id>.json`` when a log dir is given.
    """

    def __init__(self, log_dir: Optional[Path] = None):
        self.log_dir = Path(log_dir) if log_dir else None
        self._lock = threading.RLock()
        self._jobs: list[Job] = []
        self._queues: dict[str, queue.Queue] = {}
        self._workers: dict[str, threading.Thread] = {}
        self._counter = itertools.count(1)
        self._listeners: list[Callable[[Job], None]] = []
        self.version = 0
        self._prefix = time.strftime("%Y%m%d-%H%M%S")

    # ---- submit / cancel
    def submit(self, dataset: str, stage: str, fn: JobFunction, title: str = "") -> Job:
        with self._lock:
            job = Job(id=f"job-{self._prefix}-{next(self._counter):03d}", dataset=dataset,
                      stage=stage, title=title or f"{stage} ({dataset})", fn=fn)
            self._jobs.append(job)
            self._append_log(job, f"queued: {job.title}")
            q = self._queues.setdefault(dataset, queue.Queue())
            q.put(job)
            worker = self._workers.get(dataset)
            if worker is None or not worker.is_alive():
                worker = threading.Thread(target=self._work, args=(dataset,), daemon=True,
                                          name=f"tweetscope-jobs-{dataset}")
                self._workers[dataset] = worker
                worker.start()
            self._changed(job)
        return job

    def cancel(self, job_id: str) -> bool:
        """Ask a job to stop; a queued job is dropped, a running one stops at its next progress update."""
        with self._lock:
            job = self.get(job_id)
            if job is None or not job.is_active:
                return False
            job.cancel_event.set()
            self._append_log(job, "cancel requested")
            if job.status == QUEUED:
                self._finish(job, CANCELLED, error="cancelled before it started")
            else:
                self._changed(job)
            return True

    # ---- queries
    def get(self, job_id: str) -> Optional[Job]:
        with self._lock:
            return next((j for j in self._jobs if j.id == job_id), None)

    def jobs(self, dataset: Optional[str] = None) -> list[Job]:
        with self._lock:
            return [j for j in self._jobs if dataset is None or j.dataset == dataset]

    def active(self, dataset: Optional[str] = None, stage: Optional[str] = None) -> list[Job]:
        with self._lock:
            return [j for j in self._jobs if j.is_active
                    and (dataset is None or j.dataset == dataset) and (stage is None or j.stage == stage)]

    def latest(self, dataset: Optional[str] = None, stage: Optional[str] = None) -> Optional[Job]:
        with self._lock:
            for job in reversed(self._jobs):
                if (dataset is None or job.dataset == dataset) and (stage is None or job.stage == stage):
                    return job
        return None

    def add_listener(self, callback: Callable[[Job], None]) -> None:
        """Called (in the worker thread) after every change; must not touch a Bokeh document."""
        self._listeners.append(callback)

    def wait(self, job: Job, timeout: Optional[float] = None) -> Job:
        """Block until ``job`` finished (for tests, the CLI and the bootstrap)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while job.is_active:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"{job.title} still {job.status} after {timeout} s")
            time.sleep(0.05)
        return job

    def wait_idle(self, timeout: Optional[float] = None) -> None:
        for job in self.jobs():
            self.wait(job, timeout)

    # ---- worker
    def _work(self, dataset: str) -> None:
        q = self._queues[dataset]
        while True:
            try:
                job = q.get(timeout=30)
            except queue.Empty:
                with self._lock:
                    if q.empty():  # retire an idle worker; submit() starts a new one
                        self._workers.pop(dataset, None)
                        return
                continue
            if job.status != QUEUED:
                continue
            self._run(job)

    def _run(self, job: Job) -> None:
        with self._lock:
            job.status = RUNNING
            job.started = time.perf_counter()
            self._append_log(job, "started")
            self._changed(job)
        progress = Progress(self._progress_callback(job), job.stage, job.cancel_event)
        try:
            progress.check()
            result = job.fn(progress)
        except Cancelled:
            self._finish(job, CANCELLED, error="cancelled; nothing half-written was kept")
        except BaseException as exc:  # noqa: BLE001 - every failure must reach the UI
            log.debug("job %s failed", job.id, exc_info=True)
            message = str(exc) or type(exc).__name__
            self._finish(job, FAILED, error=message, error_type=type(exc).__name__,
                         trace=traceback.format_exc(limit=8))
        else:
            job.result = result
            self._finish(job, DONE)

    def _progress_callback(self, job: Job) -> Callable[[ProgressEvent], None]:
        last = {"message": None, "logged": 0.0}

        def on_progress(event: ProgressEvent) -> None:
            with self._lock:
                job.done, job.total = event.done, event.total
                prefix = f"{event.stage}: " if event.stage and event.stage != job.stage else ""
                if event.message:
                    job.message = prefix + event.message
                now = time.monotonic()
                # Log message changes and a heartbeat every few seconds, not every tick.
                if event.message != last["message"] or now - last["logged"] > 5:
                    count = f" {event.done:g}/{event.total:g}" if event.total else ""
                    self._append_log(job, f"{prefix}{event.message or 'working'}{count}")
                    last["message"], last["logged"] = event.message, now
                self._changed(job)

        return on_progress

    def _finish(self, job: Job, status: str, error: Optional[str] = None,
                error_type: Optional[str] = None, trace: Optional[str] = None) -> None:
        with self._lock:
            job.status = status
            job.finished = time.perf_counter()
            if job.started is None:
                job.started = job.finished
            job.error, job.error_type = error, error_type
            if status == DONE:
                self._append_log(job, f"done in {job.elapsed:.1f} s -> {_json_safe(job.result)}")
            else:
                self._append_log(job, f"{status}: {error}")
                if trace:
                    job.log.extend(line for line in trace.rstrip().splitlines()[-12:])
            self._changed(job)
        self._write_record(job)

    def _write_record(self, job: Job) -> None:
        if self.log_dir is None:
            return
        try:
            atomic_write_json(self.log_dir / f"{job.id}.json", job.summary())
        except OSError:  # a read-only data dir must not break the job itself
            log.warning("could not write the job record of %s", job.id, exc_info=True)

    def _append_log(self, job: Job, line: str) -> None:
        job.log.append(f"{time.strftime('%H:%M:%S')} {line}")
        if len(job.log) > MAX_LOG_LINES:
            del job.log[: len(job.log) - MAX_LOG_LINES]

    def _changed(self, job: Job) -> None:
        self.version += 1
        for callback in list(self._listeners):
            try:
                callback(job)
            except Exception:  # noqa: BLE001 - a bad listener must not kill the worker
                log.warning("job listener failed", exc_info=True)


_RUNNERS: dict[str, JobRunner] = {}
_RUNNERS_LOCK = threading.Lock()


def get_runner(data_dir: Path) -> JobRunner:
    """The process-wide runner of a data directory (shared by every browser session)."""
    key = str(Path(data_dir).resolve())
    with _RUNNERS_LOCK:
        runner = _RUNNERS.get(key)
        if runner is None:
            runner = _RUNNERS[key] = JobRunner(Path(key) / ".jobs")
        return runner
