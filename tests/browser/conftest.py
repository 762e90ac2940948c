"""Browser-test fixtures: a real ``tweetscope studio`` subprocess and headless Chromium.

The server runs on a copy of the session's labelled sample dataset (built by the real stages
in tests/conftest.py), bound to 127.0.0.1 on a free port; it is stopped by its pid at the end.
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from support import RUNNING_STUDIO_SERVERS

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-output" / "screenshots"
CHROMIUM = os.environ.get("TWEETSCOPE_CHROMIUM") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]
SERVER_START_TIMEOUT = 420  # the CLI imports every stage (toponymy is slow to import on a busy box)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tweetscope() -> str:
    exe = Path(sys.executable).with_name("tweetscope")
    return str(exe) if exe.exists() else str(ROOT / ".venv" / "bin" / "tweetscope")


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


@pytest.fixture(scope="session")
def studio_data_dir(tmp_path_factory, request) -> Path:
    """A private data dir holding a copy of the labelled sample (the server may add artifacts).

    ``TWEETSCOPE_STUDIO_TEST_DATASET=<dataset folder>`` reuses a sample dataset already built by
    the real stages (handy when iterating on the browser tests; it is copied, never changed).
    """
    data_dir = tmp_path_factory.mktemp("studio") / "data"
    prebuilt = os.environ.get("TWEETSCOPE_STUDIO_TEST_DATASET")
    source = Path(prebuilt) if prebuilt else request.getfixturevalue("labelled_dataset").path
    shutil.copytree(source, data_dir / source.name)
    return data_dir


TRACEBACK = "Traceback (most recent call last)"
OWN_CODE = (str(ROOT / "studio") + os.sep, str(ROOT / "pipeline") + os.sep)


class StudioServer:
    def __init__(self, data_dir: Path, extra_args: tuple[str, ...] = ()):
        self.data_dir = data_dir
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        env = dict(os.environ, LITELLM_LOCAL_MODEL_COST_MAP="True", TWEETSCOPE_QUIET="1",
                   PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            [_tweetscope(), "studio", "--no-browser", "--port", str(self.port), "--data-dir", str(data_dir),
             *extra_args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT,
            start_new_session=True,
        )
        self.lines: "queue.Queue[str]" = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()
        RUNNING_STUDIO_SERVERS.append(self)  # checked after every browser test (server_raised_nothing)

    def _pump(self) -> None:
        for line in self.proc.stdout:
            self.output.append(line)
            self.lines.put(line)

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("studio exited early:\n" + "".join(self.output[-40:]))
            try:
                line = self.lines.get(timeout=1)
            except queue.Empty:
                continue
            match = re.search(r"Studio running at (http://127\.0\.0\.1:\d+/)", line)
            if match:
                assert match.group(1) == self.url
                return
        raise TimeoutError("studio did not start:\n" + "".join(self.output[-40:]))

    def stop(self) -> None:
        if self in RUNNING_STUDIO_SERVERS:
            RUNNING_STUDIO_SERVERS.remove(self)
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # its own session: only the server and its children
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=20)


@pytest.fixture(autouse=True)
def server_raised_nothing():
    """Fail a browser test during which a studio server printed a traceback through our code: the
    page may still look right (a later event can mend it), but a callback that raised is a bug.
    (Tornado's own "stream closed" tracebacks when a test's page goes away are not ours.)"""
    seen = {id(server): len(server.output) for server in RUNNING_STUDIO_SERVERS}
    yield
    time.sleep(0.3)  # the server's last lines reach ``output`` through a reader thread
    for server in RUNNING_STUDIO_SERVERS:
        printed = "".join(server.output[seen.get(id(server), 0):]).split(TRACEBACK)[1:]
        ours = [text for text in printed if any(folder in text for folder in OWN_CODE)]
        assert not ours, "the studio server raised during this test:\n" + TRACEBACK + ours[0][:4000]


@pytest.fixture(scope="session")
def studio_server(studio_data_dir):
    server = StudioServer(studio_data_dir)
    try:
        server.wait_ready(SERVER_START_TIMEOUT)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def chromium():
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed")
    with playwright_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium):
    """A fresh page that records every request leaving 127.0.0.1."""
    context = chromium.new_context(viewport={"width": 1500, "height": 1150})
    page = context.new_page()
    page.set_default_timeout(120_000)
    page.external_requests = []
    page.on("request", lambda r: page.external_requests.append(r.url)
            if not re.match(r"^(https?|wss?)://127\.0\.0\.1[:/]|^(data|blob|about):", r.url) else None)
    yield page
    context.close()
