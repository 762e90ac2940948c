"""Tweetscope Studio's headless pipeline: ingest, embed, map, cluster, label, scope, publish.

Nothing in this package imports UI code; the studio and the CLI both call it.
"""

__version__ = "0.1.0"
