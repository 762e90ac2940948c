"""Privacy scan: tombstoned text, deleted rows not blanked, the archive's email, env secrets —
each fails the publish before anything is uploaded, and no finding prints the private value."""

from __future__ import annotations

import pandas as pd
import pyarrow.parquet as pq
import pytest

from kits.publish_kit import make_handmade_dataset, no_gate
from pipeline.core.workspace import atomic_write_json, read_json, write_parquet
from pipeline.publish.execute import PublishError, execute_publish, plan_publish
from pipeline.publish.privacy import archive_emails, build_needles, scan_files

ENV = {"AWS_SECRET_ACCESS_KEY": "aws-secret-value-123", "HOME": "/root"}


@pytest.fixture
def handmade(tmp_path):
    return make_handmade_dataset(tmp_path / "data", deleted_rows=(3, 7))


def _scan(ds, env=ENV):
    plan = plan_publish(ds, "scopes-001", f"file://{ds.path.parent.parent}/cdn-plan", validator=no_gate, env=env)
    scope_input = ds.path / "scopes" / "scopes-001-input.parquet"
    return scan_files([(o.key, o.path) for o in plan.objects], build_needles(ds, scope_input, env=env))


def _publish_fails(ds, tmp_path, env=ENV, match="privacy scan failed"):
    plan = plan_publish(ds, "scopes-001", f"file://{tmp_path}/cdn", validator=no_gate, env=env)
    with pytest.raises(PublishError, match=match) as err:
        execute_publish(plan)
    assert not (tmp_path / "cdn" / ds.name).exists(), "nothing may be uploaded when the scan fails"
    assert ds.list_ids("publish") == []
    return err.value


def _original_text(ds, row):
    return pd.read_parquet(ds.input_path, columns=["text"])["text"].iat[row]


def test_clean_dataset_passes(handmade):
    assert _scan(handmade) == []


def test_deleted_row_with_text_fails(handmade, tmp_path):
    path = handmade.path / "scopes" / "scopes-001-input.parquet"
    df = pd.read_parquet(path)
    df.loc[3, "text"] = _original_text(handmade, 3)
    write_parquet(df, path)
    err = _publish_fails(handmade, tmp_path)
    findings = err.report["privacy_findings"]
    assert any("deleted=true but its text" in f for f in findings)
    assert any("tombstoned tweet id=" in f for f in findings)
    assert _original_text(handmade, 3) not in str(err) + " ".join(findings)


def test_tombstoned_text_inside_a_label_fails(handmade, tmp_path):
    path = handmade.path / "clusters" / "toponymy-001.parquet"
    labels = pd.read_parquet(path)
    labels.loc[0, "description"] = "summary: " + _original_text(handmade, 7) + " and more"
    write_parquet(labels, path)
    findings = _scan(handmade)
    assert [(f.kind, f.key) for f in findings] == [("tombstoned_text", "handmade/clusters/toponymy-001.parquet")]
    assert "ls_index 7" in findings[0].detail
    _publish_fails(handmade, tmp_path)


def test_unapplied_tombstone_fails(handmade, tmp_path):
    # tombstones.json lists row 11, but the scope still serves its text
    atomic_write_json(handmade.path / "tombstones.json", {"dataset": handmade.name, "deleted": [3, 7, 11]})
    findings = _scan(handmade)
    assert any(f.kind == "tombstoned_text" and "ls_index 11" in f.detail for f in findings)


def test_text_shared_with_a_kept_row_is_not_flagged(handmade):
    path = handmade.path / "scopes" / "scopes-001-input.parquet"
    df = pd.read_parquet(path)
    df.loc[20, "text"] = _original_text(handmade, 3)  # e.g. the same retweet kept elsewhere
    write_parquet(df, path)
    assert _scan(handmade) == []


def test_archive_email_found_case_insensitively(handmade, tmp_path, sample_zip):
    meta = read_json(handmade.meta_path)
    atomic_write_json(handmade.meta_path, {**meta, "archive_path": str(sample_zip)})
    assert archive_emails(handmade) == ["owner@example.invalid"]  # read from the archive's account.js
    assert _scan(handmade) == []
    scope_path = handmade.path / "scopes" / "scopes-001.json"
    atomic_write_json(scope_path, {**read_json(scope_path), "description": "mail me: OWNER@Example.invalid"})
    err = _publish_fails(handmade, tmp_path)
    assert "email" in str(err) and "owner@example.invalid" not in str(err).lower()


def test_archive_email_from_archive_argument_and_env(handmade, tmp_path, sample_zip):
    """Ingest never stores the email, so the curator points the scan at the original archive."""
    labels_path = handmade.path / "clusters" / "toponymy-001.parquet"
    labels = pd.read_parquet(labels_path)
    labels.loc[0, "description"] = "write to owner@example.invalid"
    write_parquet(labels, labels_path)
    assert _scan(handmade) == []  # unknown email: nothing to match
    plan = plan_publish(handmade, "scopes-001", f"file://{tmp_path}/cdn", validator=no_gate, env=ENV,
                        archives=(sample_zip,))
    with pytest.raises(PublishError, match="email"):
        execute_publish(plan)
    assert not (tmp_path / "cdn" / handmade.name).exists()
    findings = _scan(handmade, env={**ENV, "TWEETSCOPE_ACCOUNT_EMAILS": "Owner@Example.invalid"})
    assert [f.kind for f in findings] == ["email"]


def test_email_in_meta_account(handmade):
    meta = read_json(handmade.meta_path)
    atomic_write_json(handmade.meta_path, {**meta, "account": {"username": "u", "email": "me@mail.test"}})
    findings = _scan(handmade)
    # meta.json itself now holds the email: the scan catches the object that carries it
    assert [(f.kind, f.key) for f in findings] == [("email", "handmade/meta.json")]


def test_env_secret_in_json_fails_and_is_never_printed(handmade, tmp_path):
    secret = "tok-" + "abcdef0123456789"
    env = {**ENV, "MY_SERVICE_TOKEN": secret, "SHORT_KEY": "abc"}
    atomic_write_json(handmade.links_dir / "meta.json", {"edges": 1, "debug": f"Bearer {secret}"})
    err = _publish_fails(handmade, tmp_path, env=env)
    assert "$MY_SERVICE_TOKEN" in str(err)
    assert secret not in str(err) and secret not in repr(err.report)


def test_env_secret_in_nested_parquet_list(handmade):
    secret = "r2-secret-" + "9" * 12
    path = handmade.path / "clusters" / "toponymy-001.parquet"
    labels = pd.read_parquet(path)
    labels.at[2, "children"] = ["0_1", f"x{secret}y"]
    write_parquet(labels, path)
    findings = _scan(handmade, env={"R2_SECRET_ACCESS_KEY": secret})
    assert [(f.kind, f.where.split(",")[0]) for f in findings] == [("secret", "column children")]


def test_regex_special_characters_match_literally(handmade):
    special = "Price (a+b)*[c]? costs $5.00 | ^caret\\slash {x}"
    src = pd.read_parquet(handmade.input_path)
    src.loc[3, "text"] = special
    write_parquet(src, handmade.input_path)
    path = handmade.path / "clusters" / "toponymy-001.parquet"
    labels = pd.read_parquet(path)
    labels.loc[4, "label"] = "quote: " + special
    write_parquet(labels, path)
    findings = _scan(handmade)
    assert [f.kind for f in findings] == ["tombstoned_text"]
    assert pq.read_table(path).num_rows == 5
