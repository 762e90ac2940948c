"""Archive ingest: X archives (ZIP or folder, modern and pre-2019) and Community Archive JSON
→ a dataset's ``input.parquet`` + ``meta.json`` (spec §1-2)."""

from pipeline.core.errors import IngestError
from pipeline.stages.ingest.config import IngestConfig
from pipeline.stages.ingest.core import default_dataset_name, ingest_archive, open_source, skipped_records_lines
from pipeline.stages.ingest.records import COLUMNS, SCHEMA, TWEET_TYPES
from pipeline.stages.ingest.safe_zip import ArchiveLimits

__all__ = [
    "ArchiveLimits", "COLUMNS", "IngestConfig", "IngestError", "SCHEMA", "TWEET_TYPES",
    "default_dataset_name", "ingest_archive", "open_source", "skipped_records_lines",
]
