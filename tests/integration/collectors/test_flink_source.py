"""flink.job and flink.checkpoint from a real Flink JobManager (MiniCluster, REST on loopback).

The Flink jars come with `mvn` (flink-clients, flink-streaming-java, flink-runtime-web);
tests/fixtures/flink/MiniClusterJob.java runs a throttled streaming job with exactly-once
checkpoints every 500 ms.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from services.collectors.flink import FlinkCollector, Settings
from services.collectors.polling import Poller
from services.core.events import rfc3339_to_ms
from services.stack.maven import classpath

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[3]
FLINK_VERSION = "1.20.4"
JOB_NAME = "orders-enricher"


@pytest.fixture(scope="module")
def flink_url(tmp_path_factory: pytest.TempPathFactory, unused_port_module: int) -> Iterator[str]:
    if shutil.which("javac") is None or shutil.which("mvn") is None:
        pytest.skip("needs a JDK (javac) and mvn: apt-get install openjdk-17-jdk-headless maven")
    jars = classpath(
        [
            f"org.apache.flink:{a}:{FLINK_VERSION}"
            for a in ("flink-clients", "flink-streaming-java", "flink-runtime-web")
        ],
        REPO / ".stack" / "tools" / "flink-classpath",
        lambda m: print(m),
    )
    cp = ":".join(str(j) for j in jars)
    classes = tmp_path_factory.mktemp("flink-job")
    subprocess.run(
        [
            "javac",
            "-nowarn",
            "-cp",
            cp,
            "-d",
            str(classes),
            str(REPO / "tests" / "fixtures" / "flink" / "MiniClusterJob.java"),
        ],
        check=True,
        capture_output=True,
    )
    log = (classes / "flink.log").open("w")
    proc = subprocess.Popen(
        [
            "java",
            "-Xmx512m",
            "-cp",
            f"{cp}:{classes}",
            "MiniClusterJob",
            str(unused_port_module),
            JOB_NAME,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{unused_port_module}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, (classes / "flink.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "Flink did not start a RUNNING job in 120 s"
            try:
                jobs = httpx.get(f"{url}/jobs/overview", timeout=2).json()["jobs"]
                if jobs and jobs[0]["state"] == "RUNNING":
                    break
            except (httpx.HTTPError, KeyError, ValueError):
                pass
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _wait_for_checkpoints(url: str, n: int) -> None:
    job = httpx.get(f"{url}/jobs/overview").json()["jobs"][0]["jid"]
    deadline = time.monotonic() + 60
    while httpx.get(f"{url}/jobs/{job}/checkpoints").json()["counts"]["completed"] < n:
        assert time.monotonic() < deadline, f"fewer than {n} checkpoints in 60 s"
        time.sleep(0.3)


def test_job_plan_mode_and_checkpoints(
    env, make_poller: Callable[..., Poller], flink_url: str, platform_id: str
) -> None:
    _wait_for_checkpoints(flink_url, 3)
    poller = make_poller(FlinkCollector(Settings(url=flink_url), platform_id))
    first = poller.step()
    events = env.read("platform.flink", platform_id)
    assert first == len(events)
    [job] = [e for e in events if e.type == "flink.job"]
    assert job.data["job_name"] == JOB_NAME and job.data["state"] == "RUNNING"
    assert job.data["checkpointing_mode"] == "exactly_once"
    assert job.data["checkpoint_interval_ms"] == 500
    assert any("throttle" in op and "Source: numbers" in op for op in job.data["operators"])
    cps = [e for e in events if e.type == "flink.checkpoint"]
    assert len(cps) >= 3
    assert all(c.data["job_id"] == job.data["job_id"] for c in cps)
    assert all(c.data["status"] == "COMPLETED" and not c.data["is_savepoint"] for c in cps)
    assert all(c.ts_ms >= rfc3339_to_ms(c.data["trigger_ts"]) > 0 for c in cps)

    # the REST API refreshes its view of a job every few seconds (web.refresh-interval)
    _wait_for_checkpoints(flink_url, max(c.data["checkpoint_id"] for c in cps) + 2)
    assert poller.step() >= 1
    again = env.read("platform.flink", platform_id)
    ids = [e.data["checkpoint_id"] for e in again if e.type == "flink.checkpoint"]
    assert len(ids) == len(set(ids)) > len(cps)
    assert [e for e in again if e.type == "flink.job"] == [job]  # unchanged job: not repeated
