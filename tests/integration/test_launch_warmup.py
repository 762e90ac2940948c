"""launch.py compiles the map's kernels once per install and numba cache, and survives a failed warm-up."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def launch(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("launch_under_test", ROOT / "launch.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "WARM_STAMP", tmp_path / "venv" / ".tweetscope-compiled")
    (tmp_path / "venv").mkdir()
    calls = []

    def call(cmd, **kwargs):
        calls.append((cmd, kwargs["env"]["NUMBA_CACHE_DIR"]))
        Path(kwargs["env"]["NUMBA_CACHE_DIR"]).mkdir(parents=True, exist_ok=True)  # numba creates it
        return module.WARMUP_EXIT

    module.WARMUP_EXIT = 0
    monkeypatch.setattr(module.subprocess, "call", call)
    module.calls = calls
    return module


def test_warm_up_runs_once_per_install_and_cache(launch, tmp_path):
    env = {"NUMBA_CACHE_DIR": str(tmp_path / "cache")}
    launch.ensure_compiled(env)
    assert launch.calls == [([str(launch.PYTHON), "-m", "pipeline.stages.warmup"], env["NUMBA_CACHE_DIR"])]
    launch.ensure_compiled(env)  # stamp matches: nothing to do
    assert len(launch.calls) == 1
    launch.ensure_compiled({"NUMBA_CACHE_DIR": str(tmp_path / "other-cache")})  # another cache dir
    assert len(launch.calls) == 2
    (tmp_path / "cache").rename(tmp_path / "gone")  # the cache was deleted
    launch.ensure_compiled(env)
    assert len(launch.calls) == 3


def test_a_failed_warm_up_is_retried_next_time(launch, tmp_path, capsys):
    env = {"NUMBA_CACHE_DIR": str(tmp_path / "cache")}
    launch.WARMUP_EXIT = 1
    launch.ensure_compiled(env)
    assert "compiling ahead failed" in capsys.readouterr().out
    assert not launch.WARM_STAMP.exists()
    launch.WARMUP_EXIT = 0
    launch.ensure_compiled(env)
    assert len(launch.calls) == 2 and launch.WARM_STAMP.exists()
