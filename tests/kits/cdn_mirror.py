"""Serve a page's CDN scripts from local npm packages, so a browser test runs offline.

The pinned packages (``pipeline.serving.webmap.JS_PINS``) are fetched once with ``npm pack``
from the npm registry into a cache folder (``$TWEETSCOPE_NPM_CACHE`` or
``test-output/npm-cache``) at test setup; Playwright's ``route`` then answers
``https://<cdn>/<package>@<version>/<file>`` from the tarball and aborts every other request
that leaves 127.0.0.1.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from pipeline.serving.webmap import JS_PINS

ROOT = Path(__file__).resolve().parents[2]
_CDN_URL = re.compile(r"^https://[^/]+/(@?[^@/]+(?:/[^@/]+)?)@([^/]+)/(.+)$")
_LOCAL = re.compile(r"^(https?://127\.0\.0\.1[:/]|file:|data:|blob:|about:)")


def npm_cache_dir() -> Path:
    return Path(os.environ.get("TWEETSCOPE_NPM_CACHE") or ROOT / "test-output" / "npm-cache")


def npm_tarballs(pins: dict[str, str] = JS_PINS) -> dict[str, Path]:
    """``{package: tarball}`` for the pinned versions, packed from the registry when not cached yet."""
    cache = npm_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, version in pins.items():
        tarball = cache / f"{name.lstrip('@').replace('/', '-')}-{version}.tgz"
        if not tarball.is_file():
            npm = shutil.which("npm")
            if not npm:
                pytest.skip("npm is not installed: cannot fetch the map's JavaScript packages for the offline test")
            proc = subprocess.run([npm, "pack", f"{name}@{version}", "--pack-destination", str(cache)],
                                  capture_output=True, text=True, timeout=300)
            if proc.returncode != 0 or not tarball.is_file():
                raise RuntimeError(f"npm pack {name}@{version} failed:\n{proc.stderr[-2000:]}")
        out[name] = tarball
    return out


class CdnMirror:
    """A Playwright route handler: pinned CDN files from the tarballs, everything else external aborted."""

    def __init__(self, tarballs: dict[str, Path]):
        self._members: dict[tuple[str, str], bytes] = {}
        self.tarballs = tarballs
        self.served: list[str] = []
        self.blocked: list[str] = []

    def _file(self, package: str, version: str, path: str) -> bytes | None:
        if JS_PINS.get(package) != version or package not in self.tarballs:
            return None
        key = (package, path)
        if key not in self._members:
            with tarfile.open(self.tarballs[package]) as tar:
                try:
                    member = tar.extractfile(f"package/{path}")
                except KeyError:
                    return None
                self._members[key] = member.read() if member else b""
        return self._members[key]

    def __call__(self, route) -> None:
        url = route.request.url
        if _LOCAL.match(url):
            route.continue_()
            return
        match = _CDN_URL.match(url.split("?", 1)[0])
        body = self._file(*match.groups()) if match else None
        if body is None:
            self.blocked.append(url)
            route.abort()
            return
        self.served.append(url)
        route.fulfill(status=200, body=body, headers={"Content-Type": "application/javascript",
                                                      "Access-Control-Allow-Origin": "*"})
