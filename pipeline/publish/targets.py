"""Publish targets: where CDN objects go, behind one small interface.

* ``file://DIR`` — a folder laid out exactly like the CDN bucket (the offline default).
* ``s3://bucket[/prefix]`` — any S3 API: Cloudflare R2 (``https://<account>.r2.cloudflarestorage.com``),
  AWS, MinIO, moto. The endpoint comes from ``--endpoint-url``, ``S3_ENDPOINT_URL`` or
  ``R2_ACCOUNT_ID``; credentials from ``R2_ACCESS_KEY_ID``/``R2_SECRET_ACCESS_KEY`` or the standard
  AWS chain. Secrets are read from the environment only and never appear in ``repr``/``describe``.

Every object we upload carries its SHA-256 in user metadata (``x-amz-meta-sha256``): R2 multipart
ETags are not MD5 digests, so the ETag is never used as a checksum (DESIGN §8).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping, Optional, Protocol
from urllib.parse import urlsplit, urlunsplit

from pipeline.core.errors import TargetError
from pipeline.core.workspace import atomic_path, atomic_write_bytes, is_temp_name

BytesCallback = Callable[[int], None]


@dataclass(frozen=True)
class RemoteObject:
    key: str
    size: int
    sha256: Optional[str]  # from our metadata; None when the object was not uploaded by us
    etag: Optional[str] = None
    content_type: Optional[str] = None
    cache_control: Optional[str] = None


class Target(Protocol):
    """What the publisher needs from a place to put objects. Keys are '/'-separated, no prefix."""

    uri: str

    def describe(self) -> dict: ...
    def preflight(self) -> None: ...
    def head(self, key: str) -> Optional[RemoteObject]: ...
    def get_bytes(self, key: str) -> Optional[bytes]: ...
    def put_file(self, key: str, path: Path, *, size: int, sha256: str, content_type: str,
                 cache_control: str, callback: Optional[BytesCallback] = None) -> None: ...
    def put_bytes(self, key: str, data: bytes, *, sha256: str, content_type: str,
                  cache_control: str) -> None: ...
    def list_keys(self, prefix: str) -> list[str]: ...
    def delete(self, keys: Iterable[str]) -> None: ...
    def public_url(self, key: str) -> Optional[str]: ...


def sha256_file(path: os.PathLike | str, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def redact_url(url: Optional[str]) -> Optional[str]:
    """Drop any user:password@ part of a URL so it can be shown or stored."""
    if not url:
        return url
    parts = urlsplit(url)
    if parts.username or parts.password:
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    return url


def _join(prefix: str, key: str) -> str:
    return f"{prefix}/{key}" if prefix else key


# --------------------------------------------------------------------------- file://

class FileTarget:
    """A local folder laid out like the bucket; writes are atomic renames."""

    def __init__(self, root: os.PathLike | str):
        self.root = Path(root).expanduser().resolve()
        self.uri = f"file://{self.root}"
        self._hash_cache: dict[tuple[str, int, int], str] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"FileTarget({str(self.root)!r})"

    def describe(self) -> dict:
        return {"kind": "file", "uri": self.uri, "root": str(self.root)}

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root not in path.parents:
            raise TargetError(f"key {key!r} escapes the target folder {self.root}")
        return path

    def preflight(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TargetError(f"cannot create the publish folder {self.root}: {exc}") from None
        if not os.access(self.root, os.W_OK):
            raise TargetError(f"the publish folder {self.root} is not writable")

    def head(self, key: str) -> Optional[RemoteObject]:
        path = self._path(key)
        try:
            st = path.stat()
        except FileNotFoundError:
            return None
        # A folder has no metadata store, so the checksum is the file's own hash (cached by mtime).
        cache_key = (str(path), st.st_size, st.st_mtime_ns)
        with self._lock:
            digest = self._hash_cache.get(cache_key)
        if digest is None:
            digest = sha256_file(path)
            with self._lock:
                self._hash_cache[cache_key] = digest
        return RemoteObject(key, st.st_size, digest)

    def get_bytes(self, key: str) -> Optional[bytes]:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    def put_file(self, key, path, *, size, sha256, content_type, cache_control, callback=None) -> None:
        with atomic_path(self._path(key)) as tmp:
            with open(path, "rb") as src, open(tmp, "wb") as dst:
                for block in iter(lambda: src.read(1 << 20), b""):
                    dst.write(block)
                    if callback:
                        callback(len(block))
                dst.flush()
                os.fsync(dst.fileno())

    def put_bytes(self, key, data, *, sha256, content_type, cache_control) -> None:
        atomic_write_bytes(self._path(key), data)

    def list_keys(self, prefix: str) -> list[str]:
        base = self._path(prefix.rstrip("/")) if prefix else self.root
        if not base.is_dir():
            return []
        keys = []
        for dirpath, _dirs, files in os.walk(base):
            for name in files:
                if is_temp_name(name):
                    continue
                keys.append(Path(dirpath, name).relative_to(self.root).as_posix())
        return sorted(keys)

    def delete(self, keys: Iterable[str]) -> None:
        for key in keys:
            with contextlib.suppress(FileNotFoundError):
                self._path(key).unlink()

    def public_url(self, key: str) -> Optional[str]:
        return (self.root / key).as_uri()


# --------------------------------------------------------------------------- s3://

@dataclass(frozen=True)
class S3Settings:
    """Transfer knobs (from PublishConfig)."""

    multipart_threshold: int = 16 * 1024 * 1024
    multipart_chunksize: int = 8 * 1024 * 1024
    max_concurrency: int = 4  # threads per multipart object
    max_attempts: int = 5
    retry_mode: str = "standard"
    connect_timeout: float = 10.0
    read_timeout: float = 60.0


def resolve_endpoint(endpoint_url: Optional[str], env: Mapping[str, str]) -> Optional[str]:
    """--endpoint-url, else S3_ENDPOINT_URL, else the R2 endpoint of R2_ACCOUNT_ID, else AWS."""
    if endpoint_url:
        return endpoint_url
    if env.get("S3_ENDPOINT_URL"):
        return env["S3_ENDPOINT_URL"]
    if env.get("R2_ACCOUNT_ID"):
        return f"https://{env['R2_ACCOUNT_ID'].strip()}.r2.cloudflarestorage.com"
    return None


def credential_source(env: Mapping[str, str]) -> str:
    """Which credentials will be used — a name, never a value."""
    if env.get("R2_ACCESS_KEY_ID") and env.get("R2_SECRET_ACCESS_KEY"):
        return "R2_ACCESS_KEY_ID/R2_SECRET_ACCESS_KEY"
    if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
        return "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
    if env.get("AWS_PROFILE"):
        return f"AWS profile {env['AWS_PROFILE']}"
    return "default AWS credential chain"


class S3Target:
    """An S3-API bucket (R2, AWS, moto) through boto3, with retries, multipart and sha256 metadata."""

    def __init__(self, bucket: str, prefix: str = "", *, endpoint_url: Optional[str] = None,
                 env: Optional[Mapping[str, str]] = None, settings: Optional[S3Settings] = None):
        env = os.environ if env is None else env
        if not bucket:
            raise TargetError("an s3:// target needs a bucket name: s3://bucket[/prefix]")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint_url = resolve_endpoint(endpoint_url, env)
        self.settings = settings or S3Settings()
        self.credentials = credential_source(env)
        self.uri = f"s3://{bucket}" + (f"/{self.prefix}" if self.prefix else "")
        self._env = env
        self._client = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"S3Target({self.uri!r}, endpoint={redact_url(self.endpoint_url)!r})"

    def describe(self) -> dict:
        return {"kind": "s3", "uri": self.uri, "bucket": self.bucket, "prefix": self.prefix,
                "endpoint": redact_url(self.endpoint_url) or "AWS default",
                "credentials": self.credentials}

    @property
    def is_r2(self) -> bool:
        return bool(self.endpoint_url and ".r2.cloudflarestorage.com" in self.endpoint_url)

    @property
    def client(self):
        with self._lock:
            if self._client is None:
                self._client = self._make_client()
            return self._client

    def _make_client(self):
        import boto3
        import botocore.session
        from botocore.config import Config
        from botocore.exceptions import NoCredentialsError

        env, s = self._env, self.settings
        kwargs = {}
        if env.get("R2_ACCESS_KEY_ID") and env.get("R2_SECRET_ACCESS_KEY"):
            kwargs = {"aws_access_key_id": env["R2_ACCESS_KEY_ID"],
                      "aws_secret_access_key": env["R2_SECRET_ACCESS_KEY"]}
        elif env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
            # passed explicitly so an injected env mapping wins over the process environment
            kwargs = {"aws_access_key_id": env["AWS_ACCESS_KEY_ID"],
                      "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
                      "aws_session_token": env.get("AWS_SESSION_TOKEN") or None}
        region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
        if not region:
            region = "auto" if self.is_r2 else "us-east-1"
        checksums = {}
        if self.is_r2 and not env.get("AWS_REQUEST_CHECKSUM_CALCULATION"):
            # boto3 >= 1.36 sends a CRC32 aws-chunked trailer by default, which R2 has rejected;
            # integrity is ours anyway: sha256 metadata + HEAD verification (DESIGN §8).
            checksums = {"request_checksum_calculation": "when_required",
                         "response_checksum_validation": "when_required"}
        config = Config(
            **checksums,
            retries={"mode": s.retry_mode, "max_attempts": s.max_attempts},
            connect_timeout=s.connect_timeout,
            read_timeout=s.read_timeout,
            max_pool_connections=max(10, 4 * s.max_concurrency),
            signature_version="s3v4",
            # Custom endpoints (R2, moto on 127.0.0.1) are addressed by path, not virtual host.
            s3={"addressing_style": "path" if self.endpoint_url else "auto"},
        )
        core = botocore.session.get_session()
        if not kwargs:
            # The rest of the default chain (AWS_PROFILE, ~/.aws files, ...) minus the container and
            # instance metadata services: those are network calls, and credentials come from the
            # environment only. Nothing found -> fail here, before any request is made.
            resolver = core.get_component("credential_provider")
            for method in ("container-role", "iam-role"):
                resolver.remove(method)
            if core.get_credentials() is None:
                raise NoCredentialsError()
        session = boto3.session.Session(botocore_session=core)
        return session.client("s3", endpoint_url=self.endpoint_url, region_name=region,
                              config=config, **kwargs)

    def _key(self, key: str) -> str:
        return _join(self.prefix, key)

    def _explain(self, exc: Exception, action: str) -> TargetError:
        """Turn a botocore error into one line that says what to fix (and no secret)."""
        from botocore.exceptions import (
            ClientError,
            EndpointConnectionError,
            NoCredentialsError,
            PartialCredentialsError,
        )

        where = f"{self.uri} at {redact_url(self.endpoint_url) or 'AWS'}"
        if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
            return TargetError(f"{action}: no credentials for {where}; set R2_ACCESS_KEY_ID and "
                               "R2_SECRET_ACCESS_KEY (or the AWS_* variables)")
        if isinstance(exc, EndpointConnectionError):
            return TargetError(f"{action}: cannot reach {where}; check --endpoint-url / "
                               "S3_ENDPOINT_URL / R2_ACCOUNT_ID and the network")
        if isinstance(exc, ClientError):
            err = exc.response.get("Error", {})
            code = str(err.get("Code", ""))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in ("NoSuchBucket",) or (code == "404" and action.startswith("preflight")):
                return TargetError(f"{action}: bucket '{self.bucket}' does not exist at "
                                   f"{redact_url(self.endpoint_url) or 'AWS'}; create it "
                                   f"(e.g. `wrangler r2 bucket create {self.bucket}`) or fix --target")
            if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken",
                        "ExpiredToken", "AccessDenied", "403", "401") or status in (401, 403):
                return TargetError(f"{action}: {where} refused the credentials from "
                                   f"{self.credentials} ({code or status}); check the key pair "
                                   "and that it may read and write this bucket")
            return TargetError(f"{action}: {where} answered {code or status}: "
                               f"{err.get('Message') or exc}")
        return TargetError(f"{action}: {where}: {type(exc).__name__}: {exc}")

    def preflight(self) -> None:
        """HEAD the bucket and list the prefix: wrong credentials or a missing bucket fail here."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
            self.client.list_objects_v2(Bucket=self.bucket, Prefix=self._key(""), MaxKeys=1)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a clear TargetError
            raise self._explain(exc, "preflight") from None

    def head(self, key: str) -> Optional[RemoteObject]:
        from botocore.exceptions import ClientError

        try:
            resp = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ("404", "NoSuchKey", "NotFound"):
                return None
            raise self._explain(exc, f"HEAD {key}") from None
        except Exception as exc:  # noqa: BLE001
            raise self._explain(exc, f"HEAD {key}") from None
        meta = {k.lower(): v for k, v in (resp.get("Metadata") or {}).items()}
        return RemoteObject(key, int(resp["ContentLength"]), meta.get("sha256"),
                            (resp.get("ETag") or "").strip('"') or None,
                            resp.get("ContentType"), resp.get("CacheControl"))

    def get_bytes(self, key: str) -> Optional[bytes]:
        from botocore.exceptions import ClientError

        try:
            resp = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
            return resp["Body"].read()
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code", "")) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise self._explain(exc, f"GET {key}") from None
        except Exception as exc:  # noqa: BLE001
            raise self._explain(exc, f"GET {key}") from None

    def _extra_args(self, sha256: str, content_type: str, cache_control: str) -> dict:
        return {"ContentType": content_type, "CacheControl": cache_control,
                "Metadata": {"sha256": sha256}}

    def put_file(self, key, path, *, size, sha256, content_type, cache_control, callback=None) -> None:
        from boto3.s3.transfer import TransferConfig

        s = self.settings
        transfer = TransferConfig(multipart_threshold=s.multipart_threshold,
                                  multipart_chunksize=s.multipart_chunksize,
                                  max_concurrency=s.max_concurrency, use_threads=True)
        try:
            self.client.upload_file(str(path), self.bucket, self._key(key),
                                    ExtraArgs=self._extra_args(sha256, content_type, cache_control),
                                    Config=transfer, Callback=callback)
        except Exception as exc:  # noqa: BLE001
            raise self._explain(getattr(exc, "last_exception", None) or exc, f"upload {key}") from None

    def put_bytes(self, key, data, *, sha256, content_type, cache_control) -> None:
        try:
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data,
                                   **self._extra_args(sha256, content_type, cache_control))
        except Exception as exc:  # noqa: BLE001
            raise self._explain(exc, f"upload {key}") from None

    def list_keys(self, prefix: str) -> list[str]:
        keys = []
        full = self._key(prefix)
        strip = len(self.prefix) + 1 if self.prefix else 0
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=full):
                keys.extend(obj["Key"][strip:] for obj in page.get("Contents", []))
        except Exception as exc:  # noqa: BLE001
            raise self._explain(exc, f"list {prefix}") from None
        return sorted(keys)

    def delete(self, keys: Iterable[str]) -> None:
        keys = list(keys)
        for start in range(0, len(keys), 1000):
            batch = [{"Key": self._key(k)} for k in keys[start:start + 1000]]
            try:
                resp = self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
            except Exception as exc:  # noqa: BLE001
                raise self._explain(exc, "delete") from None
            if resp.get("Errors"):
                first = resp["Errors"][0]
                raise TargetError(f"delete: {len(resp['Errors'])} object(s) not deleted, e.g. "
                                  f"{first.get('Key')}: {first.get('Code')}")

    def public_url(self, key: str) -> Optional[str]:
        base = self._env.get("TWEETSCOPE_PUBLIC_URL") or self._env.get("DATA_URL")
        if base:
            return f"{base.rstrip('/')}/{key}"
        return None


# --------------------------------------------------------------------------- factory

def open_target(uri: str, *, endpoint_url: Optional[str] = None,
                env: Optional[Mapping[str, str]] = None,
                settings: Optional[S3Settings] = None) -> Target:
    """A target from its URI: ``file:///abs/dir``, a plain folder path, or ``s3://bucket[/prefix]``."""
    if not uri:
        raise TargetError("no publish target: pass --target file://DIR or s3://bucket[/prefix]")
    if uri.startswith("s3://"):
        rest = uri[len("s3://"):]
        bucket, _, prefix = rest.partition("/")
        return S3Target(bucket, prefix, endpoint_url=endpoint_url, env=env, settings=settings)
    if uri.startswith("file://"):
        path = uri[len("file://"):]
        if not path:
            raise TargetError("file:// target needs a folder, e.g. file:///srv/cdn")
        return FileTarget(path)
    if "://" in uri:
        scheme = uri.split("://", 1)[0]
        raise TargetError(f"unsupported publish target scheme '{scheme}://' in {uri!r}; "
                          "use file://DIR or s3://bucket[/prefix] (LanceDB goes in --lancedb)")
    return FileTarget(uri)

