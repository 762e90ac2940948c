"""The one error type of ingest."""


class IngestError(ValueError):
    """The archive cannot be ingested; the message names the file, the problem and the fix (one line)."""
