"""Run one benchmark stage in a child process and measure it (wall, CPU, peak RSS).

Both sides use the same protocol: the parent starts ``python <stage script> <stage> --result
FILE ...``; the child writes ``{"ok": ..., "work_s": ..., "info": {...}}`` to FILE (see
:func:`child_main`). The parent reaps the child with ``os.wait4`` so the resource usage is that
child's own (peak RSS = ``ru_maxrss`` of the child and anything it waited for), not the
cumulative ``RUSAGE_CHILDREN`` of every stage so far. A crash, a timeout or a missing result
becomes ``{"ok": false, "error": ...}``: one failing stage never stops the run.

Stdlib only: the stage scripts import it from both virtual environments.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Callable, NoReturn, Optional, Sequence


def run_child(cmd: Sequence[str], *, result_path: Path, log_path: Path, env: Optional[dict] = None,
              cwd: Optional[Path] = None, timeout_s: float = 3600.0) -> dict:
    """Run ``cmd`` to completion; return its measurements merged with the child's result JSON."""
    result_path = Path(result_path)
    result_path.unlink(missing_ok=True)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    with open(log_path, "ab") as log:
        log.write(f"\n$ {' '.join(map(str, cmd))}\n".encode())
        log.flush()
        # Own session: a timeout kills the stage and anything it started, nothing else.
        proc = subprocess.Popen([str(c) for c in cmd], stdout=log, stderr=subprocess.STDOUT,
                                env=env, cwd=cwd, start_new_session=True)
    timed_out = threading.Event()

    def _kill() -> None:
        timed_out.set()
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    timer = threading.Timer(timeout_s, _kill)
    timer.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    except BaseException:  # interrupted runner (Ctrl-C, SIGTERM): leave no stage running
        _kill()
        os.waitpid(proc.pid, 0)
        raise
    finally:
        timer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    measured = {
        "wall_s": round(wall, 3),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),  # Linux: KiB
        "exit_code": proc.returncode,
        "load_1m_before": round(load_before, 2),
        "load_1m_after": round(os.getloadavg()[0], 2),
    }
    child: dict = {}
    if result_path.is_file():
        try:
            child = json.loads(result_path.read_text())
        except ValueError as exc:
            child = {"ok": False, "error": f"unreadable result file: {exc}"}
    if timed_out.is_set():
        child = {**child, "ok": False, "error": f"timed out after {timeout_s:.0f} s"}
    elif not child:
        child = {"ok": False, "error": f"exited with code {proc.returncode} without a result "
                                       f"(see {log_path})"}
    elif proc.returncode != 0 and child.get("ok"):
        # the stage finished and reported; the process died while shutting down
        child = {**child, "exit_note": f"exited with code {proc.returncode} after writing its result"}
    return {**measured, **child}


def child_main(stages: dict[str, Callable[..., dict]], argv: Optional[Sequence[str]] = None) -> NoReturn:
    """Child side: ``<script> STAGE --result FILE [--key value ...]`` → run ``stages[STAGE](**kw)``;
    writes the result file and ends the process (never returns).

    The stage function returns an info dict; it may put the seconds of its real work (without
    interpreter start-up and imports) under ``"work_s"``, else the whole call is timed.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    stage, rest = argv[0], argv[1:]
    kwargs: dict[str, str] = {}
    for key, value in zip(rest[::2], rest[1::2]):
        kwargs[key.lstrip("-").replace("-", "_")] = value
    result_path = Path(kwargs.pop("result"))
    t0 = time.perf_counter()
    try:
        info = stages[stage](**kwargs) or {}
        work_s = info.pop("work_s", time.perf_counter() - t0)
        out = {"ok": True, "work_s": round(work_s, 3), "info": info}
        code = 0
    except BaseException as exc:  # noqa: BLE001 - recorded, never raised to the runner
        out = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:2000],
               "traceback": traceback.format_exc()[-4000:]}
        code = 1
    tmp = result_path.with_name(result_path.name + ".tmp")
    tmp.write_text(json.dumps(out, default=str, indent=1))
    tmp.replace(result_path)
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter finalization (same for both tools): lancedb 0.30's background threads can
    # abort the interpreter at shutdown (PyGILState_Release) after the stage's work is complete.
    os._exit(code)


class Timer:
    """``with Timer() as t: ...`` then ``t.seconds``."""

    def __enter__(self) -> "Timer":
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self.t0
