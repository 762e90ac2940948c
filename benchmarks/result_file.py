"""Writing a benchmark's JSON result, with the machine and the time it ran: one place for it."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def write_result(name: str, payload: dict) -> Path:
    """``results/<name>.json``: ``payload`` plus ``machine`` and ``created_at`` (UTC); prints the path."""
    out = RESULTS / f"{name}.json"
    record = {**payload, "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
              "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {out}")
    return out
