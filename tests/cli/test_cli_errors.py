"""Every user mistake ends in one ``error: ...`` line on stderr and exit code 1 — no traceback,
nothing written. Driven in-process through ``pipeline.cli.main.main`` on the cheap hand-made
``scoped`` dataset (a complete artifact chain); nothing here embeds, fits or uploads.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipeline.cli.main import main

SECRET_PREFIXES = ("VOYAGE_", "AWS_", "R2_", "S3_")


@pytest.fixture
def no_keys(monkeypatch, tmp_path):
    """No provider key or cloud credential from the developer's shell or ~/.aws reaches the CLI."""
    for key in list(os.environ):
        if key.startswith(SECRET_PREFIXES) or key in ("TWEETSCOPE_PUBLISH_TARGET",):
            monkeypatch.delenv(key, raising=False)
    empty = tmp_path / "no-aws"
    empty.mkdir()
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # belt and braces: never probe the IMDS


@pytest.fixture
def fake(scoped, no_keys):
    """(data dir, dataset name) of the hand-made dataset, with no credentials in the environment."""
    ds, _ = scoped
    return ds.path.parent, ds.name


def _listing(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_size for p in sorted(folder.rglob("*"))}


def _run_fails(capsys, folder: Path, argv: list[str]) -> str:
    """Run the CLI; assert exit 1, exactly one 'error:' line on stderr and no change in ``folder``."""
    before = _listing(folder)
    capsys.readouterr()
    code = main(argv)
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 1, (code, out, err)
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    assert "Traceback" not in err
    assert _listing(folder) == before, "the failed command wrote into the data folder"
    return lines[0]


def test_unknown_model(fake, capsys):
    data_dir, name = fake
    line = _run_fails(capsys, data_dir, ["embed", "--data-dir", str(data_dir), "--dataset", name,
                                         "--provider", "local", "--model", "typo-model"])
    assert "typo-model" in line
    assert "wordllama-l2-supercat-256" in line  # a known model is named


def test_unknown_dataset(fake, capsys):
    data_dir, name = fake
    line = _run_fails(capsys, data_dir, ["embed", "--data-dir", str(data_dir), "--dataset", "no-such-set"])
    assert "no-such-set" in line


def test_unknown_artifact_id(fake, capsys):
    data_dir, name = fake
    line = _run_fails(capsys, data_dir, ["cluster", "--data-dir", str(data_dir), "--dataset", name,
                                         "--umap-id", "umap-099"])
    assert "umap-099" in line


def test_out_of_range_flag(fake, capsys):
    data_dir, name = fake
    line = _run_fails(capsys, data_dir, ["umap", "--data-dir", str(data_dir), "--dataset", name,
                                         "--min-dist", "5"])
    assert line == "error: --min-dist 5.0 is out of range 0.0..1.0"


def test_voyage_without_key(fake, capsys):
    data_dir, name = fake
    line = _run_fails(capsys, data_dir, ["embed", "--data-dir", str(data_dir), "--dataset", name,
                                         "--provider", "voyage"])
    assert "VOYAGE_API_KEY" in line


def test_publish_target_without_credentials(fake, capsys, monkeypatch):
    import socket

    def no_network(*args, **kwargs):
        raise AssertionError("publish without credentials tried to open a connection")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    data_dir, name = fake
    line = _run_fails(capsys, data_dir, ["publish", "--data-dir", str(data_dir), "--dataset", name,
                                         "--target", "s3://bucket", "--execute"])
    assert "no credentials" in line and "s3://bucket" in line
    assert "R2_ACCESS_KEY_ID" in line


def test_multi_line_message_becomes_one_line():
    from pipeline.cli.main import one_line
    from pipeline.core.errors import ContractError

    exc = ContractError("links contract 1.0 violated", ["column 'a' is missing", "3 rows have no id"])
    assert "\n" in str(exc) and exc.problems == ["column 'a' is missing", "3 rows have no id"]
    assert one_line(exc) == "links contract 1.0 violated: column 'a' is missing; 3 rows have no id"


def test_old_homes_re_export_the_one_hierarchy():
    from pipeline.cli.common import UserError
    from pipeline.core import errors
    from pipeline.core.workspace import WorkspaceError
    from pipeline.publish.execute import PublishError
    from pipeline.publish.targets import TargetError
    from pipeline.serving.contracts import ContractError
    from pipeline.serving.control_plane import ControlPlaneError
    from pipeline.serving.lance_target import LanceExportError
    from pipeline.stages.embed.embedders import EmbedderError
    from pipeline.stages.ingest import IngestError
    from pipeline.stages.labels import NamingError

    for cls in (WorkspaceError, PublishError, TargetError, ContractError, ControlPlaneError,
                LanceExportError, EmbedderError, IngestError, NamingError):
        assert cls is getattr(errors, cls.__name__)
    assert issubclass(UserError, errors.TweetscopeError)
    assert issubclass(IngestError, ValueError) and issubclass(EmbedderError, RuntimeError)
