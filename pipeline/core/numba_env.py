"""Point numba's on-disk cache at one folder per machine, before any kernel is declared.

Import this module before ``numba`` (or before any module that declares kernels): compiled
kernels then load from ``NUMBA_CACHE_DIR`` (default ``~/.cache/tweetscope/numba``) instead of
compiling again in every process.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault(
    "NUMBA_CACHE_DIR",
    str(Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tweetscope" / "numba"),
)

if "numba" in sys.modules:  # imported earlier (e.g. by datashader): re-read the env
    from numba.core import config as _numba_config

    _numba_config.reload_config()
