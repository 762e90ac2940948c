"""What a curator may choose about an ingest: one declaration for the CLI flags and the studio checkboxes."""

from __future__ import annotations

import param

from pipeline.core.config import StageConfig


class IngestConfig(StageConfig):
    """Options of ``ingest_archive`` (``tweetscope ingest`` flags, the studio's load box)."""

    include_likes = param.Boolean(default=False, label="Include likes",
                                  doc="add liked tweets as rows (tweet_type 'like')")
    include_deleted = param.Boolean(default=False, label="Include deleted tweets",
                                    doc="add the archive's deleted tweets as rows")
    skip_bad_records = param.Boolean(
        default=False, label="Skip bad records",
        doc="ingest the other records when some are malformed (no id, no date, impossible size, "
            "wrong wrapper) and list each skipped one in meta.json; by default the first stops the ingest")
