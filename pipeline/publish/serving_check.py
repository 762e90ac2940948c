"""Serving check: does the public URL answer the way the TypeScript API and the browser read it?

After a publish, through the *public* base URL (``--public-url`` / ``$R2_PUBLIC_URL``), never the
S3 API:

* the scope's ``-input.parquet`` answers a HEAD with its size and explicit byte-range GETs of
  its footer with ``206`` (hyparquet's ``asyncBufferFromUrl`` reads parquet footers so);
* a CORS preflight (``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method/Headers``
  incl. ``Range``) for the app's origin is allowed, and the ranged GET itself carries
  ``Access-Control-Allow-Origin`` and exposes ``Content-Range``/``Content-Length``;
* every published object has the content type and cache header the publish plan gave it.

Each failed check says what to change (for CORS: the exact bucket rule). Standard library only.
"""

from __future__ import annotations

import json
import os
import struct
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Optional

from pipeline.core.errors import PublishError
from pipeline.publish.plan import manifest_key

#: the Origin sent when none is configured: any rule narrower than "*" will (rightly) ask for the real one
DEFAULT_PROBE_ORIGIN = "https://tweetscope-serving-check.invalid"
EXPOSED_HEADERS = ["Content-Length", "Content-Range", "Accept-Ranges", "ETag"]
_HOP_PARAMS = ";"  # content types compare without their parameters (charset=...)


@dataclass
class ServingObject:
    """A published object as the plan describes it."""

    key: str
    content_type: str
    cache_control: str


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""

    def __str__(self) -> str:
        line = f"{'ok  ' if self.ok else 'FAIL'} {self.name}: {self.detail}"
        return line + (f"\n     fix: {self.fix}" if self.fix and not self.ok else "")


@dataclass
class ServingReport:
    public_url: str
    origin: str
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    def to_dict(self) -> dict:
        return {"public_url": self.public_url, "origin": self.origin, "ok": self.ok,
                "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail, "fix": c.fix} for c in self.checks]}

    def format(self) -> str:
        head = f"serving check of {self.public_url} (origin {self.origin}): " + (
            "all checks passed" if self.ok else f"{len(self.failures)} of {len(self.checks)} check(s) failed")
        return "\n".join([head] + [f"  {c}" for c in self.checks])


# --------------------------------------------------------------------------- what to change

def cors_rules(origin: str) -> dict:
    """The bucket CORS configuration the front end needs (S3 ``put-bucket-cors`` / R2 S3 API form)."""
    return {"CORSRules": [{
        "AllowedOrigins": [origin], "AllowedMethods": ["GET", "HEAD"],
        "AllowedHeaders": ["Range", "Content-Type"], "ExposeHeaders": list(EXPOSED_HEADERS),
        "MaxAgeSeconds": 86400}]}


def r2_cors_rules(origin: str) -> dict:
    """The same rule in the form of Cloudflare's API, dashboard and ``wrangler r2 bucket cors set --file``."""
    rule = cors_rules(origin)["CORSRules"][0]
    return {"rules": [{"allowed": {"origins": rule["AllowedOrigins"], "methods": rule["AllowedMethods"],
                                   "headers": rule["AllowedHeaders"]},
                       "exposeHeaders": rule["ExposeHeaders"], "maxAgeSeconds": rule["MaxAgeSeconds"]}]}


def cors_fix(origin: str) -> str:
    if origin == DEFAULT_PROBE_ORIGIN:
        origin = "*"  # no app origin was given: the rule that lets any site read the (public) data
    rules = json.dumps(cors_rules(origin))
    return (f"set the bucket's CORS rules to {rules} — e.g. `aws s3api put-bucket-cors --bucket BUCKET "
            f"--endpoint-url ENDPOINT --cors-configuration '{rules}'`; on R2 the same rule can go in the "
            f"dashboard or `wrangler r2 bucket cors set BUCKET --file r2-cors.json` with the file "
            f"{json.dumps(r2_cors_rules(origin))}; if the app runs on another origin, pass it with --cors-origin "
            "(or the studio's CORS origin)")


# --------------------------------------------------------------------------- HTTP

@dataclass
class _Response:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Redirects are reported, not followed: hyparquet's Range reads must hit the object itself."""

    def redirect_request(self, *args, **kwargs):
        return None


def _request(url: str, method: str = "GET", headers: Optional[dict] = None, timeout: float = 15.0,
             max_body: int = 1 << 20) -> _Response:
    req = urllib.request.Request(url, method=method, headers=headers or {})
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(req, timeout=timeout) as resp:
            body = resp.read(max_body) if method != "HEAD" else b""
            return _Response(resp.status, {k.lower(): v for k, v in resp.headers.items()}, body)
    except urllib.error.HTTPError as exc:
        body = exc.read(4096) if method != "HEAD" else b""
        return _Response(exc.code, {k.lower(): v for k, v in (exc.headers or {}).items()}, body)


def object_url(public_url: str, key: str) -> str:
    return f"{public_url.rstrip('/')}/{urllib.parse.quote(key)}"


# --------------------------------------------------------------------------- checks

def _parquet_checks(url: str, origin: str, timeout: float) -> list[Check]:
    checks = []
    head = _request(url, "HEAD", timeout=timeout)
    size = int(head.header("content-length") or -1)
    if head.status != 200 or size < 12:
        return [Check("parquet HEAD", False, f"HEAD {url} -> {head.status}, Content-Length {head.header('content-length') or 'missing'}",
                      "make the bucket (or its custom domain) publicly readable and check the public URL: "
                      "it must be the base under which <dataset>/scopes/... is served")]
    checks.append(Check("parquet HEAD", True, f"{size} bytes"))
    tail = _request(url, headers={"Range": f"bytes={size - 8}-{size - 1}"}, timeout=timeout)
    content_range = tail.header("content-range")
    if tail.status != 206 or len(tail.body) != 8 or not content_range.startswith("bytes "):
        checks.append(Check("parquet Range GET", False,
                            f"Range: bytes={size - 8}-{size - 1} -> {tail.status}, {len(tail.body)} bytes, "
                            f"Content-Range '{content_range or 'missing'}'",
                            "serve the objects from storage that honours HTTP Range requests (R2, S3, or a "
                            "CDN with range support); a proxy that strips Range makes the API download whole files"))
        return checks
    if tail.body[4:] != b"PAR1":
        checks.append(Check("parquet Range GET", False, "the last 4 bytes are not the parquet magic PAR1",
                            "re-run the publish: the object at this URL is not the published parquet"))
        return checks
    footer_len = struct.unpack("<I", tail.body[:4])[0]
    start = size - 8 - footer_len
    footer = _request(url, headers={"Range": f"bytes={start}-{size - 9}"}, timeout=timeout,
                      max_body=footer_len + 1)
    ok = footer.status == 206 and len(footer.body) == footer_len
    checks.append(Check("parquet Range GET", ok,
                        f"footer ({footer_len} bytes) read with two Range requests" if ok else
                        f"footer Range: bytes={start}-{size - 9} -> {footer.status}, {len(footer.body)} bytes",
                        "" if ok else "serve the objects from storage that honours HTTP Range requests"))

    pre = _request(url, "OPTIONS", headers={"Origin": origin, "Access-Control-Request-Method": "GET",
                                            "Access-Control-Request-Headers": "range"}, timeout=timeout)
    allow_origin = pre.header("access-control-allow-origin")
    allow_methods = pre.header("access-control-allow-methods").upper()
    allow_headers = pre.header("access-control-allow-headers").lower()
    problems = []
    if pre.status not in (200, 204):
        problems.append(f"preflight answered {pre.status}")
    if allow_origin not in (origin, "*"):
        problems.append(f"Access-Control-Allow-Origin is '{allow_origin or 'missing'}'")
    if allow_methods and "GET" not in allow_methods and "*" not in allow_methods:
        problems.append(f"Access-Control-Allow-Methods '{allow_methods}' lacks GET")
    if "range" not in allow_headers and "*" not in allow_headers:
        problems.append(f"Access-Control-Allow-Headers '{allow_headers or 'missing'}' lacks Range")
    checks.append(Check("CORS preflight", not problems,
                        "; ".join(problems) if problems else f"OPTIONS allows GET with Range from {origin}",
                        cors_fix(origin) if problems else ""))

    got = _request(url, headers={"Origin": origin, "Range": f"bytes={size - 8}-{size - 1}"}, timeout=timeout)
    exposed = {h.strip().lower() for h in got.header("access-control-expose-headers").split(",") if h.strip()}
    problems = []
    if got.header("access-control-allow-origin") not in (origin, "*"):
        problems.append(f"the ranged GET has Access-Control-Allow-Origin "
                        f"'{got.header('access-control-allow-origin') or 'missing'}'")
    missing = [h for h in ("Content-Range", "Content-Length") if h.lower() not in exposed and "*" not in exposed]
    if missing:
        problems.append(f"Access-Control-Expose-Headers lacks {', '.join(missing)}")
    checks.append(Check("CORS on the ranged GET", not problems,
                        "; ".join(problems) if problems else "allowed, Content-Range exposed",
                        cors_fix(origin) if problems else ""))
    return checks


def _header_checks(public_url: str, objects: Iterable[ServingObject], timeout: float) -> list[Check]:
    checks = []
    for obj in objects:
        resp = _request(object_url(public_url, obj.key), "HEAD", timeout=timeout)
        if resp.status != 200:
            checks.append(Check(f"headers of {obj.key}", False, f"HEAD -> {resp.status}",
                                "re-run the publish; if it persists, check the bucket's public access"))
            continue
        problems, fixes = [], []
        got_type = resp.header("content-type").split(_HOP_PARAMS)[0].strip().lower()
        if got_type != obj.content_type.split(_HOP_PARAMS)[0].strip().lower():
            problems.append(f"Content-Type '{resp.header('content-type') or 'missing'}' (plan: {obj.content_type})")
            fixes.append("re-run the publish (objects are uploaded with the plan's Content-Type); a CDN "
                         "transform rule that rewrites Content-Type must leave these objects alone")
        if obj.cache_control and resp.header("cache-control").strip() != obj.cache_control.strip():
            problems.append(f"Cache-Control '{resp.header('cache-control') or 'missing'}' (plan: {obj.cache_control})")
            fixes.append("re-run the publish (objects carry the plan's Cache-Control); on a custom domain, a "
                         "Cache Rule that overrides the origin's Cache-Control must respect it")
        checks.append(Check(f"headers of {obj.key}", not problems,
                            "; ".join(problems) if problems else f"{obj.content_type}, {obj.cache_control}",
                            " / ".join(fixes)))
    return checks


def check_serving(public_url: str, objects: Iterable[ServingObject], *, origin: Optional[str] = None,
                  timeout: float = 15.0) -> ServingReport:
    """Run every check against ``public_url`` for the published ``objects`` (keys below that URL)."""
    check_public_url(public_url or "")
    objects = list(objects)
    origin = origin or DEFAULT_PROBE_ORIGIN
    report = ServingReport(public_url.rstrip("/"), origin)
    parquet = next((o for o in objects if o.key.endswith("-input.parquet")), None)
    try:
        if parquet is None:
            report.checks.append(Check("parquet", False, "the publish has no -input.parquet to read",
                                       "publish a scope (`tweetscope publish --scope scopes-NNN`)"))
        else:
            report.checks += _parquet_checks(object_url(public_url, parquet.key), origin, timeout)
        report.checks += _header_checks(public_url, objects, timeout)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        report.checks.append(Check("reach the public URL", False, f"{type(exc).__name__}: {reason}",
                                   "check the public URL (custom domain or r2.dev URL of the bucket) and "
                                   "that the bucket allows public reads"))
    return report


def public_url_from_env(env: Optional[Mapping[str, str]] = None) -> Optional[str]:
    env = os.environ if env is None else env
    return env.get("R2_PUBLIC_URL") or env.get("TWEETSCOPE_PUBLIC_URL") or None


def cors_origin_from_env(env: Optional[Mapping[str, str]] = None) -> Optional[str]:
    env = os.environ if env is None else env
    return env.get("TWEETSCOPE_CORS_ORIGIN") or None


def serving_objects(planned: Iterable) -> list[ServingObject]:
    """ServingObjects of a plan's objects (anything with ``key``, ``content_type``, ``cache_control``)."""
    return [ServingObject(o.key, o.content_type, o.cache_control) for o in planned]


def published_objects(plan) -> list[ServingObject]:
    """Everything a publish plan puts online: its objects, then the dataset's manifest."""
    return serving_objects(plan.objects) + [ServingObject(
        manifest_key(plan.dataset.name), "application/json", plan.config.manifest_cache_control)]


def check_public_url(public_url: str) -> None:
    """Refuse a public URL the check cannot read, before anything is published."""
    if not public_url.startswith(("http://", "https://")):
        raise PublishError(f"the public URL must be an http(s) URL, got '{public_url}' "
                           "(--public-url, $R2_PUBLIC_URL or the studio's Public URL: the bucket's public base URL, "
                           "its custom domain or r2.dev URL)")


__all__ = ["ServingObject", "Check", "ServingReport", "check_serving", "cors_rules", "r2_cors_rules", "cors_fix",
           "public_url_from_env", "cors_origin_from_env", "serving_objects", "published_objects",
           "check_public_url", "DEFAULT_PROBE_ORIGIN"]
