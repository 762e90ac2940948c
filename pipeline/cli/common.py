"""What every ``tweetscope`` command shares: the data-dir flags, the workspace, a progress bar."""

from __future__ import annotations

import argparse
import os
import sys
import threading
import weakref
from pathlib import Path

from tqdm import tqdm

from pipeline.core.errors import TweetscopeError
from pipeline.core.progress import Progress, ProgressEvent
from pipeline.core.workspace import Workspace, default_data_dir


class UserError(TweetscopeError):
    """An error the user can fix; printed as one line, exit code 1 (2 for usage)."""


def add_data_dir(parser: argparse.ArgumentParser, dataset: bool = True) -> None:
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="data directory (default: $TWEETSCOPE_DATA_DIR or ./data)")
    if dataset:
        parser.add_argument("--dataset", required=True, help="dataset name")


def add_target_arguments(parser: argparse.ArgumentParser, execute_help: str) -> None:
    """The target options shared by publish and unpublish (same names, same defaults)."""
    parser.add_argument("--target", default=None,
                        help="file://DIR or s3://bucket[/prefix] (default: $TWEETSCOPE_PUBLISH_TARGET "
                             "or <data-dir>/_cdn)")
    parser.add_argument("--endpoint-url", default=None,
                        help="S3 endpoint (default: $S3_ENDPOINT_URL, or R2 from $R2_ACCOUNT_ID)")
    parser.add_argument("--lancedb", default=None,
                        help="the LanceDB target (folder, s3:// or db:// URI); default $LANCEDB_URI when set")
    parser.add_argument("--no-lancedb", action="store_true",
                        help="leave LanceDB alone even when $LANCEDB_URI is set")
    parser.add_argument("--execute", action="store_true", help=execute_help)
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")


def workspace_from_args(args: argparse.Namespace) -> Workspace:
    return Workspace(args.data_dir or default_data_dir())


class ProgressBar:
    """A progress callback that draws a bar on stderr (tqdm) for anything slower than a second."""

    def __init__(self, stream=None, min_seconds: float = 1.0):
        self.stream = stream or sys.stderr
        self.min_seconds = min_seconds
        self._bars: dict[str, object] = {}
        self._lock = threading.Lock()
        _OPEN_BARS.add(self)

    def __call__(self, event: ProgressEvent) -> None:
        with self._lock:
            bar = self._bars.get(event.stage)
            if bar is None:
                if event.elapsed < self.min_seconds and not (event.total and event.done < event.total):
                    return
                bar = tqdm(total=event.total, desc=event.stage or "working", file=self.stream,
                           leave=True, dynamic_ncols=True, mininterval=0.2)
                self._bars[event.stage] = bar
            if event.total is not None and bar.total != event.total:
                bar.total = event.total
            bar.n = event.done
            if event.message:
                bar.set_postfix_str(event.message[:60], refresh=False)
            bar.refresh()
            if event.total and event.done >= event.total:
                bar.close()
                self._bars.pop(event.stage, None)

    def close(self, clear: bool = False) -> None:
        with self._lock:
            for bar in self._bars.values():
                if clear:
                    bar.leave = False  # erase the bar: an error line then starts a clean line
                bar.close()
            self._bars.clear()


_OPEN_BARS: "weakref.WeakSet[ProgressBar]" = weakref.WeakSet()


def clear_progress_bars() -> None:
    """Erase every bar still drawn (a command failed mid-way), so the error is a line of its own."""
    for bars in list(_OPEN_BARS):
        bars.close(clear=True)


def cli_progress(stage: str = "") -> Progress:
    """A Progress wired to a stderr bar (shown for anything slower than a second); ``TWEETSCOPE_QUIET=1`` hides it."""
    quiet = os.environ.get("TWEETSCOPE_QUIET") == "1"
    return Progress(None if quiet else ProgressBar(), stage)
