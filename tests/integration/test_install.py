"""`pip install .` (not editable) into a fresh venv, then `tweetscope ingest` + `tweetscope run`.

What this proves: the wheel carries everything the pipeline reads at run time (every package,
the contracts/ schemas as ``pipeline.contracts``, the vendored MiniLM tokenizer, the studio's
entry point), because the commands run from a directory outside the repo with nothing of the
source tree on ``sys.path``.

A full dependency install would need the network and many minutes, so the fresh venv borrows
the dependencies already installed in the dev venv: a ``.pth`` file lists that venv's
site-packages directory. A path line in a ``.pth`` does not run the ``.pth`` files inside the
directory it names, so the dev venv's editable-install finder stays out. The project itself is
built with ``--no-build-isolation --no-index`` (the dev extras bring setuptools >= 70.1, whose
bdist_wheel needs no ``wheel`` package) from a copy of the sources, so nothing is written into
the checkout.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_ZIP = ROOT / "assets" / "sample" / "twitter-archive.zip"
#: What a wheel is built from (pyproject's `readme` needs README.md).
SOURCES = ("pyproject.toml", "README.md", "pipeline", "studio", "contracts")
MAPPED = {"pipeline.contracts": "contracts"}


def _listed_packages() -> list[str]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]


def test_every_source_package_is_listed_in_pyproject():
    """pyproject.toml lists its packages (to map contracts/ in); a folder left off would be
    missing from the wheel while the editable install still works."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert config["package-dir"] == MAPPED
    listed = set(config["packages"])
    on_disk = set()
    for top in ("pipeline", "studio"):
        for folder in [ROOT / top, *(ROOT / top).rglob("*")]:
            parts = folder.relative_to(ROOT).parts
            if not folder.is_dir() or any(p == "__pycache__" or p.startswith(".") for p in parts):
                continue
            if any(f.is_file() and f.suffix != ".pyc" for f in folder.iterdir()):
                on_disk.add(".".join(parts))
    missing = sorted(on_disk - listed)
    assert not missing, f"add to [tool.setuptools] packages in pyproject.toml: {missing}"
    gone = sorted(p for p in listed - set(MAPPED) if not (ROOT / p.replace(".", "/")).is_dir())
    assert not gone, f"listed in pyproject.toml but not in the tree: {gone}"
    assert (ROOT / "contracts" / "scope_input.schema.json").is_file()
    assert (ROOT / "contracts" / "links.schema.json").is_file()


def _build_tools_problem() -> str | None:
    try:
        import setuptools
    except ImportError:
        return "setuptools is not installed"
    major, minor = (int(x) for x in setuptools.__version__.split(".")[:2])
    if (major, minor) >= (70, 1):
        return None
    try:
        import wheel  # noqa: F401
    except ImportError:
        return f"setuptools {setuptools.__version__} < 70.1 and no `wheel` package"
    return None


def _run(cmd: list, *, cwd: Path, env: dict, timeout: float) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, (
        f"{' '.join(map(str, cmd))} exited {proc.returncode}\n"
        f"--- stdout ---\n{proc.stdout[-4000:]}\n--- stderr ---\n{proc.stderr[-6000:]}")
    return proc


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_wheel_install_runs_the_sample_offline(tmp_path):
    problem = _build_tools_problem()
    assert problem is None, (f"building the wheel offline needs setuptools >= 70.1 in the dev venv ({problem}); "
                             "reinstall the dev extras: python3 launch.py test")
    started = time.monotonic()
    dev_site = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    editable_pth = sorted(p.name for d in dev_site for p in Path(d).glob("__editable__*tweetscope*.pth"))

    # Sources copied out, so the in-tree build leaves nothing in the checkout.
    src = tmp_path / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=ignore)
        else:
            shutil.copy2(ROOT / name, src / name)

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    vpy = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONUSERBASE", "PIP_USER")}
    env.update({
        "VIRTUAL_ENV": str(venv),
        "PATH": f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        "PYTHONNOUSERSITE": "1",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "VOYAGE_API_KEY": "", "OPENAI_API_KEY": "", "ANTHROPIC_API_KEY": "", "LANCEDB_API_KEY": "",
        "TWEETSCOPE_QUIET": "1",
        # umap/pynndescent kernels compiled by the rest of the suite (same library paths) are reused
        "NUMBA_CACHE_DIR": os.environ.get("NUMBA_CACHE_DIR") or str(ROOT / ".numba-cache"),
    })
    new_site = Path(_run([vpy, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                         cwd=tmp_path, env=env, timeout=60).stdout.strip())
    assert new_site.is_relative_to(venv)
    (new_site / "_tweetscope_dev_deps.pth").write_text("".join(f"{d}\n" for d in sorted(dev_site)))

    # Non-editable, offline; --ignore-installed so pip never touches the dev venv's install.
    _run([vpy, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
          "--ignore-installed", str(src)], cwd=tmp_path, env=env, timeout=600)
    installed = new_site / "pipeline"
    assert (installed / "contracts" / "scope_input.schema.json").is_file()
    assert (installed / "contracts" / "links.schema.json").is_file()
    assert (installed / "stages" / "embed" / "models" / "minilm" / "tokenizer.json").is_file()
    for package in _listed_packages():
        folder = new_site / package.replace(".", "/")
        assert folder.is_dir(), f"{package} is not in the installed wheel"
    # the dev venv's editable install is untouched
    assert sorted(p.name for d in dev_site for p in Path(d).glob("__editable__*tweetscope*.pth")) == editable_pth

    work = tmp_path / "elsewhere"  # cwd outside the repo: the source tree cannot shadow the install
    work.mkdir()
    where = _run([vpy, "-c", (
        "import json, importlib.resources as r, pipeline, studio, pipeline.serving.contracts as c\n"
        "print(json.dumps({'pipeline': pipeline.__file__, 'studio': studio.__file__,\n"
        "                  'contracts': str(r.files('pipeline.contracts')), 'dir': str(c.CONTRACTS_DIR)}))")],
        cwd=work, env=env, timeout=300)
    files = json.loads(where.stdout.strip().splitlines()[-1])
    for key, value in files.items():
        assert Path(value).resolve().is_relative_to(new_site.resolve()), f"{key} resolved to {value}, not {new_site}"

    tweetscope = venv / "bin" / "tweetscope"
    data = tmp_path / "data"
    _run([tweetscope, "ingest", SAMPLE_ZIP, "--data-dir", data, "--dataset", "sample"], cwd=work, env=env, timeout=600)
    _run([tweetscope, "run", "--data-dir", data, "--dataset", "sample"], cwd=work, env=env, timeout=1500)

    scopes = sorted((data / "sample").rglob("scopes-*-input.parquet"))
    assert scopes, f"no scope parquet under {data / 'sample'}"
    check = _run([vpy, "-c", (
        "import json, sys, pipeline\n"
        "from pipeline.core.workspace import Workspace\n"
        "from pipeline.serving.validate import validate_scope\n"
        "ds = Workspace(sys.argv[1]).dataset('sample')\n"
        "ids = ds.list_ids('scopes')\n"
        "print(json.dumps({'pipeline': pipeline.__file__, 'ids': ids,\n"
        "                  'problems': {i: validate_scope(ds, i) for i in ids}}))"), data],
        cwd=work, env=env, timeout=300)
    report = json.loads(check.stdout.strip().splitlines()[-1])
    assert Path(report["pipeline"]).resolve().is_relative_to(new_site.resolve())
    assert report["ids"], "tweetscope run made no scope"
    assert report["problems"] == {i: [] for i in report["ids"]}
    _run([tweetscope, "validate", "--data-dir", data, "--dataset", "sample"], cwd=work, env=env, timeout=300)
    print(f"install + ingest + run + validate: {time.monotonic() - started:.0f} s")
