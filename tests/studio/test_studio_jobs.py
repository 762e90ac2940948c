"""The studio's background job runner: ordering per dataset, progress, cancel, errors, records."""

from __future__ import annotations

import json
import threading
import time

from studio.jobs import CANCELLED, DONE, FAILED, JobRunner


def test_jobs_of_one_dataset_run_one_at_a_time_in_order(tmp_path):
    runner = JobRunner(tmp_path / "jobs")
    running, order, overlap = [], [], []
    lock = threading.Lock()

    def work(name):
        def fn(progress):
            with lock:
                running.append(name)
                if len(running) > 1:
                    overlap.append(tuple(running))
            time.sleep(0.05)
            with lock:
                running.remove(name)
                order.append(name)
            return name
        return fn

    jobs = [runner.submit("ds", f"s{i}", work(f"s{i}")) for i in range(4)]
    for job in jobs:
        runner.wait(job, timeout=30)
    assert order == ["s0", "s1", "s2", "s3"]
    assert overlap == []
    assert all(j.status == DONE and j.result == j.stage for j in jobs)


def test_progress_reaches_the_job_and_the_log(tmp_path):
    runner = JobRunner(tmp_path / "jobs")
    seen = []
    runner.add_listener(lambda job: seen.append((job.status, job.done, job.total)))

    def fn(progress):
        for i in range(5):
            progress.update(i + 1, 5, f"batch {i + 1}")
        return "embedding-001"

    job = runner.wait(runner.submit("ds", "embed", fn), timeout=30)
    assert job.status == DONE and job.fraction == 1.0
    assert (job.done, job.total, job.message) == (5, 5, "batch 5")
    assert any("batch 3" in line for line in job.log)
    assert any(s == ("running", 3, 5) for s in seen)
    assert job.elapsed is not None and job.elapsed >= 0
    record = json.loads((tmp_path / "jobs" / f"{job.id}.json").read_text())
    assert record["status"] == "done" and record["result"] == "embedding-001"


def test_cancel_a_running_job_stops_it_at_its_next_update(tmp_path):
    runner = JobRunner()
    started = threading.Event()

    def fn(progress):
        started.set()
        for i in range(10_000):
            progress.update(i, 10_000, "working")
            time.sleep(0.01)
        return "never"

    job = runner.submit("ds", "umap", fn)
    assert started.wait(30)
    assert runner.cancel(job.id)
    runner.wait(job, timeout=30)
    assert job.status == CANCELLED and job.result is None
    assert "cancelled" in job.error


def test_cancel_a_queued_job_never_runs_it(tmp_path):
    runner = JobRunner()
    gate = threading.Event()
    ran = []
    first = runner.submit("ds", "a", lambda p: gate.wait(30))
    second = runner.submit("ds", "b", lambda p: ran.append("b"))
    assert runner.cancel(second.id)
    gate.set()
    runner.wait(first, timeout=30)
    runner.wait(second, timeout=30)
    assert second.status == CANCELLED and ran == []
    assert not runner.cancel(first.id)  # finished jobs cannot be cancelled


def test_a_failing_job_records_its_error_and_the_next_one_still_runs(tmp_path):
    runner = JobRunner(tmp_path / "jobs")

    def boom(progress):
        raise ValueError("input.parquet has no text column")

    bad = runner.submit("ds", "embed", boom)
    good = runner.submit("ds", "umap", lambda p: "umap-001")
    runner.wait(good, timeout=30)
    assert bad.status == FAILED and bad.error_type == "ValueError"
    assert bad.error == "input.parquet has no text column"
    assert any("ValueError" in line for line in bad.log)
    assert good.status == DONE
    assert runner.active() == []


def test_different_datasets_do_not_wait_for_each_other():
    runner = JobRunner()
    gate = threading.Event()
    slow = runner.submit("a", "embed", lambda p: gate.wait(30))
    fast = runner.submit("b", "embed", lambda p: "ok")
    runner.wait(fast, timeout=30)
    assert fast.status == DONE and slow.is_active
    gate.set()
    runner.wait(slow, timeout=30)
    assert runner.latest(dataset="a").id == slow.id


def test_version_changes_with_every_event():
    runner = JobRunner()
    before = runner.version
    runner.wait(runner.submit("ds", "x", lambda p: p.update(1, 2, "half")), timeout=30)
    assert runner.version >= before + 4  # queued, started, progress, done


def test_job_summary_is_json_safe():
    runner = JobRunner()
    job = runner.wait(runner.submit("ds", "x", lambda p: ("umap-001", "umap-002", object())), timeout=30)
    text = json.dumps(job.summary())
    assert "umap-001" in text
