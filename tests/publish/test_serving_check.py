"""The serving check against a moto S3 server (bucket CORS rules) and a local static Range server."""

from __future__ import annotations

import json
import uuid

import pytest

from kits.publish_kit import make_handmade_dataset, moto_s3, no_gate, s3_client
from kits.static_server import static_server
from pipeline.publish.execute import PublishConfig, execute_publish, plan_publish
from pipeline.publish.serving_check import ServingObject, check_serving, cors_rules, serving_objects

ORIGIN = "https://app.example.org"


def _published(plan) -> list[ServingObject]:
    return serving_objects(plan.objects)


@pytest.fixture(scope="module")
def moto_public():
    """A moto server that answers CORS only from bucket rules, like S3/R2.

    moto's server wraps every response in a permissive global CORS layer by default, which
    would let a bucket without rules pass; MOTO_DISABLE_GLOBAL_CORS is read at import, so the
    module flag is set for this server's lifetime.
    """
    from moto.moto_server import werkzeug_app

    saved = werkzeug_app.DISABLE_GLOBAL_CORS
    werkzeug_app.DISABLE_GLOBAL_CORS = True
    try:
        with moto_s3(bucket=None) as server:
            yield server
    finally:
        werkzeug_app.DISABLE_GLOBAL_CORS = saved


@pytest.fixture
def bucket(moto_public):
    """A bucket readable without credentials (an R2 bucket behind its public URL)."""
    endpoint, env = moto_public
    name = f"pub-{uuid.uuid4().hex[:10]}"
    s3 = s3_client(endpoint, env)
    s3.create_bucket(Bucket=name)
    # moto authorises anonymous HEAD/OPTIONS under actions other than s3:GetObject, so the
    # public-read policy of this fake bucket grants s3:* to anonymous callers.
    s3.put_bucket_policy(Bucket=name, Policy=json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": "*", "Action": "s3:*",
        "Resource": [f"arn:aws:s3:::{name}", f"arn:aws:s3:::{name}/*"]}]}))
    return name


@pytest.fixture
def s3_published(tmp_path, moto_public, bucket):
    endpoint, env = moto_public
    ds = make_handmade_dataset(tmp_path / "data")
    plan = plan_publish(ds, "scopes-001", f"s3://{bucket}", endpoint_url=endpoint, env=env, validator=no_gate,
                        config=PublishConfig(webmap=False))
    execute_publish(plan)
    return endpoint, env, f"{endpoint}/{bucket}", plan


def test_moto_bucket_without_cors_fails_and_says_which_rule_to_set(s3_published, bucket):
    endpoint, env, public_url, plan = s3_published
    report = check_serving(public_url, _published(plan), origin=ORIGIN)
    by_name = {c.name: c for c in report.checks}
    assert not report.ok
    # the data itself serves: HEAD, footer by two explicit Range GETs, plan headers
    assert by_name["parquet HEAD"].ok and by_name["parquet Range GET"].ok
    assert all(c.ok for c in report.checks if c.name.startswith("headers of "))
    # but a browser on ORIGIN cannot read it
    assert not by_name["CORS preflight"].ok and not by_name["CORS on the ranged GET"].ok
    fix = by_name["CORS preflight"].fix
    assert json.dumps(cors_rules(ORIGIN)) in fix and "put-bucket-cors" in fix
    assert "Access-Control-Allow-Origin" in report.format() and "fix:" in report.format()


def test_moto_bucket_with_the_printed_cors_rule_passes(s3_published, bucket):
    endpoint, env, public_url, plan = s3_published
    s3_client(endpoint, env).put_bucket_cors(Bucket=bucket, CORSConfiguration=cors_rules(ORIGIN))
    report = check_serving(public_url, _published(plan), origin=ORIGIN)
    assert report.ok, report.format()
    names = [c.name for c in report.checks]
    assert {"parquet HEAD", "parquet Range GET", "CORS preflight", "CORS on the ranged GET"} <= set(names)
    assert sum(n.startswith("headers of ") for n in names) == len(plan.objects)
    # another origin is still refused: the rule is for ORIGIN only
    other = check_serving(public_url, _published(plan), origin="https://elsewhere.example")
    assert [c.name for c in other.failures] == ["CORS preflight", "CORS on the ranged GET"]


def _folder_publish(tmp_path):
    ds = make_handmade_dataset(tmp_path / "data")
    root = tmp_path / "site"
    plan = plan_publish(ds, "scopes-001", f"file://{root}", validator=no_gate,
                        config=PublishConfig(webmap=False))
    execute_publish(plan)
    by_key = {o.key: o for o in plan.objects}

    def headers_for(rel: str) -> dict:  # what a bucket returns: the metadata the publish set
        obj = by_key.get(rel)
        return {"Content-Type": obj.content_type, "Cache-Control": obj.cache_control} if obj else {}

    return root, plan, headers_for


def test_static_server_with_ranges_and_cors_passes(tmp_path):
    root, plan, headers_for = _folder_publish(tmp_path)
    with static_server(root, cors_origin="*", headers_for=headers_for) as url:
        report = check_serving(url, _published(plan), origin=ORIGIN)
    assert report.ok, report.format()


def test_static_server_without_range_support_fails_with_a_fix(tmp_path):
    root, plan, headers_for = _folder_publish(tmp_path)
    with static_server(root, ranges=False, cors_origin="*", headers_for=headers_for) as url:
        report = check_serving(url, _published(plan), origin=ORIGIN)
    failed = {c.name: c for c in report.failures}
    assert list(failed) == ["parquet Range GET"]
    assert "Range" in failed["parquet Range GET"].fix


def test_static_server_wrong_headers_and_no_cors_are_each_reported(tmp_path):
    root, plan, _ = _folder_publish(tmp_path)
    # a plain static host: guessed types (parquet -> octet-stream), no Cache-Control, no CORS
    with static_server(root, cors_origin=None) as url:
        report = check_serving(url, _published(plan), origin=ORIGIN)
    failed = {c.name: c for c in report.failures}
    assert "CORS preflight" in failed and "CORS on the ranged GET" in failed
    parquet_key = next(o.key for o in plan.objects if o.key.endswith("-input.parquet"))
    problem = failed[f"headers of {parquet_key}"]
    assert "application/vnd.apache.parquet" in problem.detail and "Cache-Control" in problem.detail
    assert "re-run the publish" in problem.fix


def test_unreachable_public_url_is_one_failed_check(tmp_path):
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    report = check_serving(f"http://127.0.0.1:{port}", [ServingObject("d/scopes/s-input.parquet",
                                                                      "application/vnd.apache.parquet", "")],
                           timeout=3)
    assert not report.ok and report.failures[-1].name == "reach the public URL"


def _publish_cli(argv):
    from kits.cli import cli
    from pipeline.cli import publish as publish_cli

    return cli(argv, modules=(publish_cli,))


@pytest.mark.parametrize("cors", ["*", None])
def test_cli_publish_runs_the_serving_check_through_the_public_url(scoped_dataset, tmp_path, capsys, cors):
    from pipeline.publish.plan import cache_control_for, content_type_for
    from support import copy_dataset

    ds = copy_dataset(scoped_dataset, tmp_path)
    site = tmp_path / "site"
    config = PublishConfig()

    def headers_for(rel: str) -> dict:  # a bucket returns the type and cache header the publish set
        name = rel.split("/", 1)[1] if "/" in rel else rel
        cache = config.manifest_cache_control if name == "manifest.json" else cache_control_for(name, config)
        return {"Content-Type": content_type_for(name), "Cache-Control": cache}

    with static_server(site, cors_origin=cors, headers_for=headers_for) as url:
        code = _publish_cli(["publish", "--data-dir", str(ds.path.parent), "--dataset", ds.name,
                             "--target", f"file://{site}", "--no-lancedb", "--execute",
                             "--public-url", url, "--cors-origin", ORIGIN])
    out = capsys.readouterr()
    text = out.out + out.err
    assert f"headers of {ds.name}/index.html" in text and f"headers of {ds.name}/manifest.json" in text
    if cors:
        assert code == 0 and "all checks passed" in text, text
    else:
        assert code == 1 and "FAIL CORS preflight" in text and '"CORSRules"' in text, text
