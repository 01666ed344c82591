"""A person's view of the scoreboard: headless Chromium logs into Superset after a
simulated exam and reads the dashboard; its numbers must equal Trino's.

The exam is the real pipeline (``proctor demo --once``: simulator -> broker -> grader
worker -> Iceberg -> Trino), which itself checks that Trino equals an offline replay.
The browser then reads the Scoreboard table's cells and the data the charts fetched
(Chrome's network log), and compares both with a query of ``grading.exam_scores``. A
screenshot of the dashboard goes to docs/scoreboard.png.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from services.errors import ProctorError
from services.scoreboard.watch import summary_sql
from services.stack.catalog import trino_connect
from services.stack.config import REPO_ROOT
from services.stack.superset import SupersetComponent

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SCREENSHOT = REPO_ROOT / "docs" / "scoreboard.png"
CANDIDATES = ("erin=clean_pass", "finn=wrong_diagnosis:fault=cdc/dropped_events", "gus=no_100k")


def _worker_available() -> str | None:
    """Why the live pipeline cannot grade here, or None when it can."""
    import httpx

    try:
        if httpx.get("http://127.0.0.1:9464/healthz", timeout=1).status_code == 200:
            return None
    except httpx.HTTPError:
        pass
    try:
        from services.grader.engines import core_engine_store

        core_engine_store()
    except (ImportError, AttributeError, ProctorError) as exc:
        return f"the grader worker cannot start in this checkout: {exc}"
    return None


@pytest.fixture(scope="module")
def graded_exam(stack: Any) -> Iterator[Any]:
    """Run the demo once (the whole live pipeline); stop Superset afterwards if it started it."""
    if not (Path(CHROMIUM).is_file() and Path(CHROMEDRIVER).is_file()):
        pytest.skip(
            "needs Debian's chromium and chromedriver: apt-get install chromium chromium-driver"
        )
    why = _worker_available()
    if why:
        pytest.skip(why)
    config = stack.require("postgres", "kafka", "registry", "trino")
    superset = SupersetComponent(config)
    was_running = superset.pid() is not None
    argv = [
        sys.executable,
        "-m",
        "services.cli",
        "demo",
        "--once",
        "--timeout",
        "600",
        "--speed",
        "1000",
    ]
    for c in CANDIDATES:
        argv += ["-c", c]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=1500, check=False)
    assert done.returncode == 0, (
        f"proctor demo --once failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    assert "equals the offline replay" in done.stdout
    try:
        yield config, superset
    finally:
        if not was_running:
            from services.stack.sampler import HealthSamplerComponent

            superset.stop(lambda _m: None)
            HealthSamplerComponent(config).stop(lambda _m: None)


def _trino_summary(config: Any) -> dict[str, dict[str, Any]]:
    conn = trino_connect(config)
    cur = conn.cursor()
    cur.execute(f"SELECT * FROM ({summary_sql()}) s")
    names = [d[0] for d in cur.description]
    return {r[names.index("exam_id")]: dict(zip(names, r, strict=True)) for r in cur.fetchall()}


def _driver() -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="proctor-chromium-")
    for arg in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1600,2100",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.profile_dir = profile
    return driver


def _login(driver: Any, base: str, user: str, password: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(f"{base}/login/")
    WebDriverWait(driver, 90).until(
        ec.presence_of_element_located((By.CSS_SELECTOR, "input#username, input[name=username]"))
    )
    driver.find_element(By.CSS_SELECTOR, "input#username, input[name=username]").send_keys(user)
    driver.find_element(By.CSS_SELECTOR, "input#password, input[name=password]").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "button[type=submit], input[type=submit]").click()
    WebDriverWait(driver, 60).until(lambda d: "/login" not in d.current_url)


def _table_rows(driver: Any) -> list[dict[str, str]]:
    """The Scoreboard chart's rendered rows, by column header."""
    from selenium.webdriver.common.by import By

    for chart in driver.find_elements(By.CSS_SELECTOR, ".dashboard-component-chart-holder"):
        if "Scoreboard" not in chart.text.splitlines()[0:2]:
            continue
        heads = [h.text.strip() for h in chart.find_elements(By.CSS_SELECTOR, "table thead th")]
        rows = []
        for tr in chart.find_elements(By.CSS_SELECTOR, "table tbody tr"):
            cells = [td.text.strip() for td in tr.find_elements(By.CSS_SELECTOR, "td")]
            if len(cells) == len(heads):
                rows.append(dict(zip(heads, cells, strict=True)))
        return rows
    return []


def _chart_data(driver: Any) -> list[dict[str, Any]]:
    """Bodies of the /api/v1/chart/data responses the dashboard received."""
    bodies = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") != "Network.responseReceived":
            continue
        response = message["params"]["response"]
        if "/api/v1/chart/data" not in response["url"] or response["status"] != 200:
            continue
        try:
            body = driver.execute_cdp_cmd(
                "Network.getResponseBody", {"requestId": message["params"]["requestId"]}
            )
        except Exception:  # a body the browser has already dropped
            continue
        bodies.append(json.loads(body["body"]))
    return bodies


def _num(text: str) -> float:
    return float(text.replace(",", "").replace("%", ""))


def test_the_dashboard_shows_what_trino_says(graded_exam: Any) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    config, superset = graded_exam
    expected = _trino_summary(config)
    assert len(expected) >= len(CANDIDATES)
    driver = _driver()
    try:
        _login(driver, superset.address, superset.settings.user, superset.password())
        driver.get(superset.dashboard_url())
        deadline = time.monotonic() + 180
        rows: list[dict[str, str]] = []
        while time.monotonic() < deadline:
            rows = _table_rows(driver)
            if len(rows) >= len(expected):
                break
            time.sleep(2)
        assert len(rows) == len(expected), (
            f"the Scoreboard shows {len(rows)} exams, Trino has {len(expected)}"
        )
        for row in rows:
            want = expected[row["exam"]]
            assert row["candidate"] == want["candidate_id"]
            for head, col in (
                ("part 1", "part_1"),
                ("part 2", "part_2"),
                ("part 3", "part_3"),
                ("total %", "total_pct"),
            ):
                assert _num(row[head]) == pytest.approx(want[col]), (row["exam"], head)
            assert row["verdict"] == want["verdict"]
            assert int(row["met"]) == want["criteria_met"]
            assert int(row["failed"]) == want["criteria_failed"]

        # every chart got its data, and the charts' numbers are Trino's
        WebDriverWait(driver, 120).until(
            lambda d: (
                len(
                    d.find_elements("css selector", ".chart-container canvas, .chart-container svg")
                )
                >= 5
            )
        )
        time.sleep(5)
        bodies = _chart_data(driver)
        assert bodies, "the dashboard fetched no chart data"
        results = [r for b in bodies for r in b.get("result", [])]
        assert all(not r.get("error") for r in results)
        parts = next(r for r in results if "Part 1" in (r.get("colnames") or []))
        by_exam = {d["exam_id"]: d for d in parts["data"]}
        assert set(by_exam) == set(expected)
        for exam_id, want in expected.items():
            got = by_exam[exam_id]
            assert (got["Part 1"], got["Part 2"], got["Part 3"]) == pytest.approx(
                (want["part_1"], want["part_2"], want["part_3"])
            )
        minutes = next(r for r in results if "minutes to root cause" in (r.get("colnames") or []))
        for d in minutes["data"]:
            assert d["minutes to root cause"] == expected[d["exam_id"]]["root_cause_minutes"]
        verdicts = next(r for r in results if (r.get("colnames") or [])[:2] == ["verdict", "exams"])
        counts: dict[str, int] = {}
        for want in expected.values():
            counts[want["verdict"]] = counts.get(want["verdict"], 0) + 1
        assert {d["verdict"]: d["exams"] for d in verdicts["data"]} == counts

        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        assert driver.save_screenshot(str(SCREENSHOT))
        assert SCREENSHOT.stat().st_size > 50_000
    finally:
        driver.quit()
        shutil.rmtree(getattr(driver, "profile_dir", ""), ignore_errors=True)
    assert os.path.getsize(SCREENSHOT) > 0
