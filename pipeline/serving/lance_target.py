"""Where a LanceDB database lives and how to connect to it: a local folder, ``s3://`` or ``db://`` Cloud.

Shared by the scope-table export and the ``_meta`` control plane; secrets come from the
environment and stay in memory (``redact_uri`` is what gets logged and recorded).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Optional
from urllib.parse import urlsplit, urlunsplit

from pipeline.core.errors import LanceExportError
from pipeline.core.workspace import Dataset

ENV_URI = "LANCEDB_URI"
ENV_API_KEY = "LANCEDB_API_KEY"
ENV_REGION = "LANCEDB_REGION"
ENV_HOST_OVERRIDE = "LANCEDB_HOST_OVERRIDE"


# --------------------------------------------------------------------------- connection

@dataclass
class LanceTarget:
    """Where a LanceDB database lives and how to reach it (secrets stay in memory only)."""

    uri: str
    api_key: Optional[str] = field(default=None, repr=False)
    region: Optional[str] = None
    host_override: Optional[str] = None
    storage_options: Optional[dict] = field(default=None, repr=False)

    @property
    def kind(self) -> str:
        scheme = urlsplit(self.uri).scheme
        return {"db": "cloud", "s3": "s3", "": "local", "file": "local"}.get(scheme, scheme)

    @property
    def display_uri(self) -> str:
        return redact_uri(self.uri)

    def table_options(self) -> dict:
        """Per-table keyword arguments: Lance does not pass the connection's storage options on to
        tables opened inside a namespace (seen with S3 in 0.40), so every call repeats them."""
        if self.kind == "cloud" or not self.storage_options:
            return {}
        return {"storage_options": self.storage_options}

    def connect(self):
        import lancedb

        if self.kind == "cloud":
            if not self.api_key:
                raise LanceExportError(
                    f"LanceDB Cloud target {self.display_uri} needs an API key: set {ENV_API_KEY}"
                )
            kwargs: dict[str, Any] = {"api_key": self.api_key, "region": self.region or "us-east-1"}
            if self.host_override:
                kwargs["host_override"] = self.host_override
            return lancedb.connect(self.uri, **kwargs)
        if self.kind == "local":
            os.makedirs(self.uri, exist_ok=True)
        return lancedb.connect(self.uri, storage_options=self.storage_options or None)


def redact_uri(uri: str) -> str:
    """The URI without credentials or query string (safe to log and record)."""
    parts = urlsplit(str(uri))
    if not parts.scheme:
        return str(uri)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def resolve_target(
    dataset: Optional[Dataset] = None,
    uri: Optional[str] = None,
    *,
    api_key: Optional[str] = None,
    region: Optional[str] = None,
    host_override: Optional[str] = None,
    storage_options: Optional[dict] = None,
) -> LanceTarget:
    """The target for ``uri``; ``None`` means ``$LANCEDB_URI``, else the dataset's ``lancedb/`` folder."""
    uri = uri or os.environ.get(ENV_URI) or None
    if uri is None:
        if dataset is None:
            raise LanceExportError(f"no LanceDB URI given and {ENV_URI} is not set")
        uri = str(dataset.lancedb_dir)
    uri = str(uri)
    target = LanceTarget(uri=uri, storage_options=dict(storage_options) if storage_options else None)
    if target.kind == "cloud":
        target.api_key = api_key or os.environ.get(ENV_API_KEY)
        target.region = region or os.environ.get(ENV_REGION)
        target.host_override = host_override or os.environ.get(ENV_HOST_OVERRIDE)
    elif target.kind not in ("local", "s3", "gs", "az"):
        raise LanceExportError(
            f"unsupported LanceDB URI {target.display_uri}: use a folder, s3://bucket/prefix or db://name"
        )
    return target
