"""Publish faults against a real boto3 client and moto's S3 server: a failing k-th upload,
retries, wrong credentials, a missing bucket, an unreachable endpoint, a process killed
mid-publish, cancellation — and CDN-style HTTP Range reads of the published parquet."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import pandas as pd
import pytest

from kits.publish_kit import bucket, make_handmade_dataset, moto, moto_s3, no_gate, s3_client  # noqa: F401 (fixtures)
from pipeline.core.progress import Cancelled, Progress
from pipeline.core.workspace import atomic_write_json, read_json, write_parquet
from pipeline.publish.execute import PublishConfig, PublishError, execute_publish, plan_publish, verify_remote

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def handmade(tmp_path):
    return make_handmade_dataset(tmp_path / "data")


def _plan(ds, moto, bucket, env=None, **config):
    endpoint, base_env = moto
    return plan_publish(ds, "scopes-001", f"s3://{bucket}/site", endpoint_url=endpoint,
                        env=env or base_env, validator=no_gate, config=PublishConfig(**config))


def _keys(moto, bucket):
    endpoint, env = moto
    return sorted(o["Key"] for o in s3_client(endpoint, env).list_objects_v2(Bucket=bucket).get("Contents", []))


def _change_two_objects(ds):
    """A new label (parquet) and a new scope JSON field: two objects the next publish overwrites."""
    path = ds.path / "clusters" / "toponymy-001.parquet"
    labels = pd.read_parquet(path)
    labels.loc[1, "label"] = f"Renamed {uuid.uuid4().hex[:6]}"
    write_parquet(labels, path)
    scope_path = ds.path / "scopes" / "scopes-001.json"
    atomic_write_json(scope_path, {**read_json(scope_path), "description": "edited"})


def _fail_put(target, key_suffix: str, times: int = 99):
    """Make PutObject of the key ending in ``key_suffix`` fail on the wire ``times`` times."""
    from botocore.exceptions import ConnectionClosedError

    attempts = []

    def hook(request, **kwargs):
        if request.url.split("?")[0].endswith(key_suffix) and len(attempts) < times:
            attempts.append(request.url)
            raise ConnectionClosedError(endpoint_url=request.url)

    target.client.meta.events.register("before-send.s3.PutObject", hook)
    return attempts


def test_kth_upload_fails_then_rerun_sends_only_the_rest(handmade, moto, bucket):
    plan = _plan(handmade, moto, bucket, max_concurrency=1, max_attempts=2)
    order = [o.key for o in plan.objects]
    attempts = _fail_put(plan.target, order[2])  # the 3rd upload
    with pytest.raises(PublishError) as err:
        execute_publish(plan)
    report = err.value.report
    assert len(attempts) >= 2  # retried before giving up
    assert list(report["failed"]) == [order[2]]
    assert report["uploaded"] == order[:2]
    assert set(report["not_uploaded"]) == set(order[3:])
    assert report["manifest_written"] is False
    assert "manifest was not changed" in str(err.value) and order[2] in str(err.value)
    assert "site/handmade/manifest.json" not in _keys(moto, bucket)
    assert handmade.list_ids("publish") == []

    rerun = _plan(handmade, moto, bucket)
    assert {o.key for o in rerun.objects if o.status == "unchanged"} == set(order[:2])
    record = execute_publish(rerun)
    assert sorted(record["uploaded"]) == sorted(order[2:])
    assert record["bytes_uploaded"] == sum(o.size for o in rerun.objects[2:])
    assert verify_remote(rerun.target, handmade) == []


def test_failed_republish_keeps_old_manifest(handmade, moto, bucket):
    first = _plan(handmade, moto, bucket)
    execute_publish(first)
    old_manifest = first.target.get_bytes("handmade/manifest.json")
    _change_two_objects(handmade)
    plan = _plan(handmade, moto, bucket, max_concurrency=1, max_attempts=1)
    _fail_put(plan.target, "scopes/scopes-001.json")
    with pytest.raises(PublishError):
        execute_publish(plan)
    assert plan.target.get_bytes("handmade/manifest.json") == old_manifest


def test_transient_error_is_retried(handmade, moto, bucket):
    plan = _plan(handmade, moto, bucket, max_attempts=3)
    attempts = _fail_put(plan.target, "scopes-001-input.parquet", times=1)
    record = execute_publish(plan)
    assert len(attempts) == 1 and "handmade/scopes/scopes-001-input.parquet" in record["uploaded"]
    assert verify_remote(plan.target, handmade) == []


def set_auth(endpoint: str, count: bytes) -> None:
    req = urllib.request.Request(f"{endpoint}/moto-api/reset-auth", data=count, method="POST",
                                 headers={"Content-Type": "text/plain"})
    urllib.request.urlopen(req, timeout=30).read()


def test_wrong_credentials_fail_before_any_upload(handmade, moto, bucket):
    endpoint, env = moto
    bad_env = {"R2_ACCESS_KEY_ID": "AKIAWRONGWRONGWRONG", "R2_SECRET_ACCESS_KEY": "not-the-secret-123"}
    set_auth(endpoint, b"0")  # moto now checks every request's credentials
    try:
        with pytest.raises(PublishError, match="refused the credentials from R2_ACCESS_KEY_ID") as err:
            _plan(handmade, moto, bucket, env=bad_env)
        assert "not-the-secret-123" not in str(err.value)
    finally:
        set_auth(endpoint, b"inf")
    assert _keys(moto, bucket) == []


def test_missing_bucket_fails_before_any_upload(handmade, moto):
    with pytest.raises(PublishError, match="bucket 'no-such-bucket' does not exist"):
        _plan(handmade, moto, "no-such-bucket")


def test_unreachable_endpoint_is_a_clear_error(handmade):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(PublishError, match="cannot reach"):
        plan_publish(handmade, "scopes-001", "s3://cdn", endpoint_url=f"http://127.0.0.1:{port}",
                     env={"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"}, validator=no_gate,
                     config=PublishConfig(max_attempts=1))


KILL_SCRIPT = """
import sys, time, pathlib
from pipeline.core.workspace import Dataset
from pipeline.publish.execute import PublishConfig, execute_publish, plan_publish
dataset_path, endpoint, bucket, marker = sys.argv[1:5]
env = {"AWS_ACCESS_KEY_ID": "testing-access", "AWS_SECRET_ACCESS_KEY": "testing-secret-value"}
plan = plan_publish(Dataset(dataset_path), "scopes-001", f"s3://{bucket}/site", endpoint_url=endpoint,
                    env=env, validator=lambda d, s: [], config=PublishConfig(max_concurrency=1))
put = plan.target.put_file
def put_then_hang(*a, **kw):
    put(*a, **kw)
    pathlib.Path(marker).write_text("uploaded one")
    time.sleep(300)  # killed here, after the first overwrite
plan.target.put_file = put_then_hang
execute_publish(plan)
"""


def test_process_killed_mid_publish_leaves_consistent_manifest(handmade, moto, bucket, tmp_path):
    endpoint, _ = moto
    first = _plan(handmade, moto, bucket)
    execute_publish(first)
    old_manifest = first.target.get_bytes("handmade/manifest.json")
    _change_two_objects(handmade)
    marker = tmp_path / "marker"
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(handmade.path), endpoint, bucket, str(marker)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert marker.exists(), proc.stderr.read().decode()[-2000:] if proc.poll() is not None else "no upload"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    # The old manifest is still there, complete; the overwritten fixed path is reported...
    assert first.target.get_bytes("handmade/manifest.json") == old_manifest
    problems = verify_remote(first.target, handmade)
    assert problems and all(p.startswith("handmade/clusters/toponymy-001.parquet:") for p in problems)
    # ...and a rerun heals it, sending only what the killed run did not.
    rerun = _plan(handmade, moto, bucket)
    assert any("differ from the remote manifest" in w for w in rerun.warnings)
    status = {o.rel: o.status for o in rerun.objects}
    assert status["clusters/toponymy-001.parquet"] == "unchanged"
    assert status["scopes/scopes-001.json"] == "changed"
    record = execute_publish(rerun)
    # the map page (it shows the changed labels) was not sent by the killed run either
    assert record["uploaded"] == ["handmade/index.html", "handmade/scopes/scopes-001.json"]
    assert verify_remote(rerun.target, handmade, deep=True) == []


def test_cancel_stops_before_manifest(handmade, moto, bucket):
    plan = _plan(handmade, moto, bucket, max_concurrency=1)
    cancel = threading.Event()
    events = []

    def on_event(event):
        events.append(event)
        if event.done > 0 and event.total:
            cancel.set()  # cancel as soon as bytes start to flow

    with pytest.raises(Cancelled, match="manifest was not changed"):
        execute_publish(plan, Progress(on_event, "publish", cancel))
    assert "site/handmade/manifest.json" not in _keys(moto, bucket)
    assert len([k for k in _keys(moto, bucket)]) < len(plan.objects)


def _get(url: str, byte_range: str | None = None, method: str = "GET"):
    req = urllib.request.Request(url, method=method, headers={"Range": byte_range} if byte_range else {})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return resp.status, resp.headers, resp.read()


def test_cdn_range_reads_of_published_input_parquet(tmp_path, moto, bucket):
    """Read the published -input.parquet the way hyparquet does: size, footer, one column chunk."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    ds = make_handmade_dataset(tmp_path / "data", n_rows=4000)
    execute_publish(_plan(ds, moto, bucket))
    endpoint, env = moto
    # a public-read bucket, as R2 behind its custom domain: anonymous GETs, no signature
    s3_client(endpoint, env).put_bucket_policy(Bucket=bucket, Policy=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*",
                                                "Action": ["s3:GetObject", "s3:HeadObject"],  # moto names HEAD so
                                                "Resource": f"arn:aws:s3:::{bucket}/*"}]}))
    url = f"{endpoint}/{bucket}/site/handmade/scopes/scopes-001-input.parquet"
    local = (ds.path / "scopes" / "scopes-001-input.parquet").read_bytes()

    status, headers, _ = _get(url, method="HEAD")
    size = int(headers["Content-Length"])
    assert status == 200 and size == len(local)

    status, headers, tail = _get(url, "bytes=-8")
    assert status == 206 and len(tail) == 8 and tail[4:] == b"PAR1"
    footer_len = int.from_bytes(tail[:4], "little")
    start = size - 8 - footer_len
    status, headers, footer = _get(url, f"bytes={start}-{size - 9}")
    assert status == 206 and len(footer) == footer_len
    if headers.get("Content-Range"):  # moto omits it; R2 sends it
        assert headers["Content-Range"] == f"bytes {start}-{size - 9}/{size}"

    meta = pq.ParquetFile(pa.BufferReader(b"PAR1" + footer + tail)).metadata  # only the footer was fetched
    assert meta.num_rows == 4000 and meta.num_row_groups >= 2
    col = meta.schema.to_arrow_schema().get_field_index("text")
    chunk = meta.row_group(1).column(col)
    first = chunk.dictionary_page_offset if chunk.has_dictionary_page else chunk.data_page_offset
    last = first + chunk.total_compressed_size - 1
    status, headers, data = _get(url, f"bytes={first}-{last}")
    assert status == 206 and len(data) == chunk.total_compressed_size < size // 4
    assert data == local[first:last + 1]
    # the fetched column chunk decodes to the text values of that row group
    rebuilt = bytearray(size)
    rebuilt[first:last + 1] = data
    rebuilt[start:] = footer + tail
    rebuilt[:4] = b"PAR1"
    texts = pq.ParquetFile(pa.BufferReader(bytes(rebuilt))).read_row_group(1, columns=["text"]).column("text")
    expected = pq.ParquetFile(pa.BufferReader(local)).read_row_group(1, columns=["text"]).column("text")
    assert texts.equals(expected)
    assert json.loads(_get(f"{endpoint}/{bucket}/site/handmade/manifest.json")[2])["dataset"] == "handmade"
