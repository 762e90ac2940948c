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
