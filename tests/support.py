"""Helpers shared by test modules (import as ``from support import ...``).

Kept out of conftest.py: tests/ and tests/browser/ each have a conftest, and a plain
``from support import`` would pick whichever was imported last.
"""

from __future__ import annotations

import shutil
from pathlib import Path


def copy_dataset(dataset, dest_dir: Path):
    """A private copy of a (session) dataset that a test may change."""
    from pipeline.core.workspace import Dataset

    target = Path(dest_dir) / "data" / dataset.name
    shutil.copytree(dataset.path, target)
    return Dataset(target)


#: studio servers the browser tests have running; one list however often tests/browser/conftest.py
#: is loaded (some test modules load a private copy of it for its StudioServer class)
RUNNING_STUDIO_SERVERS: list = []
