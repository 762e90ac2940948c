#!/usr/bin/env python3
"""Set up and start Tweetscope Studio, or run its whole test suite.

    python3 launch.py              open the studio on the bundled sample (offline)
    python3 launch.py test         run every test, browser tests included

Both create ``.venv`` when missing and (re)install the project into it when
``pyproject.toml`` changed, then compile the map's numba kernels once into the cache the
studio uses (``pipeline.stages.warmup``), so the first map does not wait for them. Only the
standard library is used here, so this file runs on a fresh machine with nothing but
Python >= 3.11.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / "python"
STAMP = VENV / ".tweetscope-installed"
WARM_STAMP = VENV / ".tweetscope-compiled"
CHROMIUM = Path("/usr/bin/chromium")


def say(message: str) -> None:
    print(f"[launch] {message}", flush=True)


def run(cmd: list, **kwargs) -> None:
    subprocess.run([str(c) for c in cmd], check=True, **kwargs)


def install_stamp(extras: str) -> str:
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    return f"{digest} {extras}\n"


def ensure_venv(extras: str = "") -> None:
    """Create .venv and install the project (editable) when pyproject.toml or the extras changed."""
    if sys.version_info < (3, 11):
        sys.exit(f"Tweetscope Studio needs Python >= 3.11; this is {sys.version.split()[0]}")
    if not PYTHON.exists():
        say(f"creating {VENV.relative_to(ROOT)}")
        run([sys.executable, "-m", "venv", VENV])
        run([PYTHON, "-m", "pip", "install", "--quiet", "--upgrade", "pip"])
    wanted = install_stamp(extras)
    have = STAMP.read_text() if STAMP.exists() else ""
    # a stamp for the dev extras also covers a plain install
    if have == wanted or (not extras and have.split(" ")[0] == wanted.split(" ")[0]):
        return
    target = f".[{extras}]" if extras else "."
    say(f"installing the project and its dependencies into .venv ({target}); the first time takes a few minutes")
    run([PYTHON, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-e", target], cwd=ROOT)
    STAMP.write_text(wanted)


def ensure_chromium() -> str:
    """The system Chromium for browser tests; installed with apt when missing and we are root."""
    found = shutil.which("chromium") or (str(CHROMIUM) if CHROMIUM.exists() else None)
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        sys.exit("browser tests need Chromium: install Debian's 'chromium' package (apt-get install chromium)")
    say("installing Debian's chromium for the browser tests (2-3 minutes)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run(["apt-get", "update", "-q"], env=env, stdout=subprocess.DEVNULL)
    run(["apt-get", "install", "-y", "-q", "--no-install-recommends", "chromium", "fonts-dejavu-core"],
        env=env, stdout=subprocess.DEVNULL)
    return shutil.which("chromium") or str(CHROMIUM)


def tool_env() -> dict:
    env = dict(os.environ)
    env.setdefault("NUMBA_CACHE_DIR", str(ROOT / ".numba-cache"))
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def ensure_compiled(env: dict) -> None:
    """Fill the numba cache the studio uses, once per install and cache dir (a failure only costs speed).

    numba keys its cache on the installed libraries' files, so a new venv or a reinstall
    needs a new warm-up: the stamp lives in the venv and names the pyproject digest and the cache.
    """
    cache = Path(env["NUMBA_CACHE_DIR"])
    wanted = f"{install_stamp('').split()[0]} {cache}\n"
    if cache.is_dir() and WARM_STAMP.exists() and WARM_STAMP.read_text() == wanted:
        return
    say("compiling the map's numba kernels once, so the first map does not wait for them (1-3 minutes)")
    if subprocess.call([str(PYTHON), "-m", "pipeline.stages.warmup"], cwd=ROOT, env=env) == 0:
        WARM_STAMP.write_text(wanted)
    else:
        say("compiling ahead failed; the first map compiles what it needs instead (slower, same result)")


def cmd_test(pytest_args: list[str]) -> int:
    ensure_venv("dev")
    env = tool_env()
    ensure_compiled(env)
    env["TWEETSCOPE_CHROMIUM"] = ensure_chromium()
    say("running the test suite")
    return subprocess.call([str(PYTHON), "-m", "pytest", *pytest_args], cwd=ROOT, env=env)


def cmd_studio(args: argparse.Namespace) -> int:
    ensure_venv()
    cmd = [str(BIN / "tweetscope"), "studio", "--sample", "--data-dir", str(args.data_dir),
           "--host", args.host, "--port", str(args.port)]
    if args.no_browser:
        cmd.append("--no-browser")
    env = tool_env()
    ensure_compiled(env)
    say(f"starting the studio on {args.host}:{args.port} with data in {args.data_dir}")
    try:
        return subprocess.call(cmd, cwd=ROOT, env=env)
    except KeyboardInterrupt:
        return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["test"]:
        return cmd_test(argv[1:])
    parser = argparse.ArgumentParser(description="Open Tweetscope Studio (use 'launch.py test' to run the tests)")
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("TWEETSCOPE_DATA_DIR") or ROOT / "data"))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5006)
    parser.add_argument("--no-browser", action="store_true", help="do not open a browser window")
    return cmd_studio(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
