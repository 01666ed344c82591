"""The language-model judge over a real HTTP exchange with a tiny server on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from services.errors import ConfigError
from services.judge.llm import LlmJudge, LlmSettings, judge_from_env
from services.judge.offline import OfflineJudge

pytestmark = pytest.mark.unit

TEXT = (
    "# Review\n\nThanks Sam, the RFC is clear.\n\n"
    "There is no cost projection, and the bill grows with every query.\n\n"
    "Let's pilot the warehouse for the revenue dashboard only; we'd run two engines for a while."
)


@dataclass
class Script:
    """What the fake model service answers next, and what it received."""

    status: int = 200
    content: str = '{"findings": []}'
    raw_body: str | None = None
    delay_s: float = 0.0
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)


@pytest.fixture
def server() -> Iterator[tuple[str, Script]]:
    script = Script()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            script.requests.append(json.loads(self.rfile.read(length)))
            script.headers.append({k.lower(): v for k, v in self.headers.items()})
            script.headers[-1]["path"] = self.path
            time.sleep(script.delay_s)
            body = (
                script.raw_body
                if script.raw_body is not None
                else json.dumps(
                    {"choices": [{"message": {"role": "assistant", "content": script.content}}]}
                )
            )
            data = body.encode()
            try:
                self.send_response(script.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                return  # the client gave up (the timeout test): nothing left to answer

        def log_message(self, *args: object) -> None:
            return

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/v1", script
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def make(url: str, timeout: float = 5.0) -> LlmJudge:
    return LlmJudge(LlmSettings(url=url, model="tiny-judge", api_key="sk-test", timeout_s=timeout))


def test_a_valid_answer_becomes_a_verdict_with_the_cited_sentences(
    server: tuple[str, Script],
) -> None:
    url, script = server
    script.content = json.dumps(
        {
            "findings": [
                {
                    "point": "issue.no_cost_projection",
                    "sentences": [2],
                    "why": "no projection; grows with queries",
                },
                {"point": "tone.opens_positive", "sentences": [1], "why": "credits clarity"},
            ]
        }
    )
    verdict = make(url).judge("design_review", TEXT)
    assert verdict.judge == "llm:tiny-judge" and verdict.fallback_reason == ""
    by_point = {f.point: f for f in verdict.findings}
    assert by_point["issue.no_cost_projection"].sentences == (
        "There is no cost projection, and the bill grows with every query.",
    )
    assert by_point["tone.opens_positive"].sentences == ("Thanks Sam, the RFC is clear.",)
    request, headers = script.requests[0], script.headers[0]
    assert headers["path"] == "/v1/chat/completions"
    assert headers["authorization"] == "Bearer sk-test"
    assert request["model"] == "tiny-judge" and request["temperature"] == 0
    assert "[2] There is no cost projection" in request["messages"][1]["content"]
    assert "issue.no_cost_projection" in request["messages"][0]["content"]
    assert "postmortem.action_items" not in request["messages"][0]["content"]


def test_a_fenced_json_answer_is_accepted_and_duplicates_merge(server: tuple[str, Script]) -> None:
    url, script = server
    script.content = (
        '```json\n{"findings": [{"point": "tone.proposes", "sentences": [3], "why": "a pilot"},'
        ' {"point": "tone.proposes", "sentences": [3, 1], "why": "again"}]}\n```'
    )
    verdict = make(url).judge("design_review", TEXT)
    assert verdict.judge == "llm:tiny-judge"
    (finding,) = verdict.findings
    assert finding.point == "tone.proposes" and len(finding.sentences) == 2


@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        (lambda s: setattr(s, "content", "the design is fine"), "not JSON"),
        (lambda s: setattr(s, "content", '{"verdict": "ok"}'), 'no "findings" list'),
        (
            lambda s: setattr(
                s, "content", '{"findings": [{"point": "issue.made_up", "sentences": [1]}]}'
            ),
            "issue.made_up",
        ),
        (
            lambda s: setattr(
                s, "content", '{"findings": [{"point": "action.new_alert", "sentences": [1]}]}'
            ),
            "not a design_review point",
        ),
        (
            lambda s: setattr(
                s, "content", '{"findings": [{"point": "tone.proposes", "sentences": [99]}]}'
            ),
            "sentences [99]",
        ),
        (
            lambda s: setattr(
                s, "content", '{"findings": [{"point": "tone.proposes", "sentences": []}]}'
            ),
            "sentences []",
        ),
        (lambda s: setattr(s, "status", 500), "HTTP 500"),
        (lambda s: setattr(s, "raw_body", '{"id": "x"}'), "not an OpenAI-style chat completion"),
        (lambda s: setattr(s, "raw_body", "<html>"), "not an OpenAI-style chat completion"),
    ],
)
def test_any_bad_answer_falls_back_to_the_offline_verdict(
    server: tuple[str, Script], setup: Any, reason: str
) -> None:
    url, script = server
    setup(script)
    verdict = make(url).judge("design_review", TEXT)
    offline = OfflineJudge().judge("design_review", TEXT)
    assert verdict.judge == "offline"
    assert verdict.findings == offline.findings and verdict.findings
    assert reason in verdict.fallback_reason and "llm:tiny-judge failed" in verdict.fallback_reason


def test_a_timeout_falls_back_and_says_so(server: tuple[str, Script]) -> None:
    url, script = server
    script.delay_s = 1.0
    verdict = make(url, timeout=0.2).judge(
        "postmortem", "## Action items\n- Add an alert on consumer lag (PLAT-1)."
    )
    assert verdict.judge == "offline" and "timed out" in verdict.fallback_reason
    assert "action.new_alert" in verdict.points()


def test_a_refused_connection_falls_back() -> None:
    import socket

    with socket.socket() as sock:  # a port that was free a moment ago and has no listener now
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    verdict = make(f"http://127.0.0.1:{port}/v1", timeout=2).judge("design_review", TEXT)
    assert verdict.judge == "offline" and "ConnectError" in verdict.fallback_reason


def test_settings_come_from_the_environment_and_are_off_by_default() -> None:
    assert LlmSettings.from_env({}) is None
    assert isinstance(judge_from_env({}), OfflineJudge)
    s = LlmSettings.from_env(
        {
            "PROCTOR_JUDGE_URL": "http://127.0.0.1:9/v1/",
            "PROCTOR_JUDGE_MODEL": "m",
            "PROCTOR_JUDGE_API_KEY": "k",
        }
    )
    assert (
        s is not None
        and s.url == "http://127.0.0.1:9/v1"
        and s.api_key == "k"
        and "k'" not in repr(s)
    )
    assert (
        judge_from_env(
            {"PROCTOR_JUDGE_URL": "http://127.0.0.1:9/v1", "PROCTOR_JUDGE_MODEL": "m"}
        ).name
        == "llm:m"
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PROCTOR_JUDGE_URL": "http://127.0.0.1:9/v1"}, "PROCTOR_JUDGE_MODEL"),
        ({"PROCTOR_JUDGE_URL": "127.0.0.1:9", "PROCTOR_JUDGE_MODEL": "m"}, "not an http(s) URL"),
        (
            {
                "PROCTOR_JUDGE_URL": "http://h/v1",
                "PROCTOR_JUDGE_MODEL": "m",
                "PROCTOR_JUDGE_TIMEOUT_S": "soon",
            },
            "not a number",
        ),
        (
            {
                "PROCTOR_JUDGE_URL": "http://h/v1",
                "PROCTOR_JUDGE_MODEL": "m",
                "PROCTOR_JUDGE_TIMEOUT_S": "0",
            },
            "positive",
        ),
    ],
)
def test_bad_settings_name_what_is_wrong(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        LlmSettings.from_env(env)
