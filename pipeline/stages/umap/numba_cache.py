"""Keep umap-learn's and pynndescent's compiled kernels between processes.

Both libraries declare most kernels without ``cache=True``, so every process recompiles
them: ~55 s for NN-descent and ~9 s for UMAP's graph and epoch loop on 2 cores, paid by
each ``tweetscope umap`` and each side-by-side worker. numba caches a kernel when asked
(``Dispatcher.enable_caching``) and itself refuses the ones it cannot cache safely
("dynamic globals"); those two (NN-descent's outer loops, ~15 s) still compile.
The cache lives in ``NUMBA_CACHE_DIR`` (set by ``pipeline.stages.umap.stage``).
"""

from __future__ import annotations

import functools
import importlib
import warnings

MODULES = (
    "pynndescent.pynndescent_", "pynndescent.rp_trees", "pynndescent.utils", "pynndescent.distances",
    "umap.umap_", "umap.layouts", "umap.utils", "umap.distances",
)


@functools.cache
def cache_library_kernels() -> int:
    """Enable numba's on-disk cache for the kernels of ``MODULES``; returns how many (once per process)."""
    from numba.core.dispatcher import Dispatcher
    from numba.core.errors import NumbaWarning

    # numba warns, per process, about the kernels it refuses to cache; nothing to act on.
    warnings.filterwarnings("ignore", message="Cannot cache compiled function", category=NumbaWarning)
    enabled = 0
    for name in MODULES:
        module = importlib.import_module(name)
        for value in vars(module).values():
            if isinstance(value, Dispatcher):
                value.enable_caching()
                enabled += 1
    return enabled
