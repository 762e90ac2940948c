"""An older download of an archive: the same ZIP with only its oldest tweets (a time split).

The split lives beside the generator (``benchmarks/synth_archive.py``), which the update benchmark uses too.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from synth_archive import older_download  # noqa: E402


def older_archive(source: Path, dest: Path, keep: float = 0.8) -> tuple[Path, int, int]:
    """``dest``: ``source`` with only the oldest ``keep`` share of its tweets; returns (dest, kept, total)."""
    return older_download(source, dest, keep)
