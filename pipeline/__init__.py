"""Tweetscope Studio's headless pipeline: ingest, embed, map, cluster, label, scope, publish.

Nothing in this package imports UI code; the studio and the CLI both call it.
"""

import os as _os

__version__ = "0.1.0"

# We run offline by design: libraries pulled in by toponymy must not reach for model hubs or
# price lists at import or run time (litellm fetches its cost map, transformers its hub).
for _var, _value in (
    ("LITELLM_LOCAL_MODEL_COST_MAP", "True"),
    ("HF_HUB_OFFLINE", "1"),
    ("TRANSFORMERS_OFFLINE", "1"),
    ("HF_DATASETS_OFFLINE", "1"),
    ("TOKENIZERS_PARALLELISM", "false"),
):
    _os.environ.setdefault(_var, _value)

# Our frames are written for pandas 3 semantics (text columns are `str` with NaN for missing,
# copy-on-write). datamapplot's dependency pylabeladjust caps pandas below 3, so a fresh install
# resolves pandas 2.3: there the same semantics are opt-in, and we opt in once, here.
import pandas as _pd  # noqa: E402

if int(_pd.__version__.split(".")[0]) < 3:
    _pd.set_option("future.infer_string", True)
    _pd.set_option("mode.copy_on_write", True)
    _pd.set_option("future.no_silent_downcasting", True)
