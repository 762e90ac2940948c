"""One progress and cancellation interface for every stage.

A stage receives a :class:`Progress` and calls ``progress.update(done, total, message)``
as it works. The caller supplies a callback (the CLI draws a bar, the studio a widget)
and may cancel: the next ``update``/``check`` then raises :class:`Cancelled`, which
the stage lets propagate so its atomic writes leave nothing behind.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable, Optional


class Cancelled(Exception):
    """Raised inside a stage when its caller asked it to stop."""


@dataclass(frozen=True)
class ProgressEvent:
    stage: str
    done: float
    total: Optional[float]
    message: str
    elapsed: float


ProgressCallback = Callable[[ProgressEvent], None]


class Progress:
    """Reports (stage, done, total, message) to a callback and carries a cancel flag."""

    def __init__(
        self,
        callback: Optional[ProgressCallback] = None,
        stage: str = "",
        cancel_event: Optional[threading.Event] = None,
    ):
        self.callback = callback
        self.stage = stage
        self.cancel_event = cancel_event or threading.Event()
        self._started = time.perf_counter()

    def for_stage(self, stage: str) -> "Progress":
        """A view of this progress for a sub-stage, sharing the callback and cancel flag."""
        return Progress(self.callback, stage, self.cancel_event)

    def cancel(self) -> None:
        self.cancel_event.set()

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    def check(self) -> None:
        """Raise :class:`Cancelled` if the caller asked the stage to stop."""
        if self.cancel_event.is_set():
            raise Cancelled(f"{self.stage or 'stage'} cancelled")

    def update(self, done: float, total: Optional[float] = None, message: str = "") -> None:
        self.check()
        if self.callback is not None:
            self.callback(
                ProgressEvent(self.stage, done, total, message, time.perf_counter() - self._started)
            )

    def message(self, message: str) -> None:
        self.update(0, None, message)


def null_progress(stage: str = "") -> Progress:
    return Progress(None, stage)
