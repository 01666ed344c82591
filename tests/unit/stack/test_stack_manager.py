"""Life cycle of stack components, with real (tiny) processes instead of JVMs.

Each fake component runs a Python one-liner: an HTTP server on a free loopback port, a
sleeper, or a process that dies at once. Nothing is mocked: pids, signals, ports and
log files are the real ones the stack uses.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from services.errors import StackError
from services.stack import manager as manager_module
from services.stack.component import Component, Progress, port_in_use
from services.stack.config import StackConfig
from services.stack.manager import StackManager, stack_processes

pytestmark = pytest.mark.unit


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class WebComponent(Component):
    """``python -m http.server`` on a loopback port; healthy once the port answers."""

    start_timeout = 15.0
    stop_timeout = 5.0

    def __init__(
        self,
        config: StackConfig,
        name: str,
        port: int | None = None,
        requires: Sequence[str] = (),
        argv: Sequence[str] | None = None,
    ) -> None:
        self.name = name
        self.requires = tuple(requires)
        self._port = port or free_port()
        self._argv = argv
        super().__init__(config)

    @property
    def port(self) -> int:
        return self._port

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    def install(self, progress: Progress) -> None:
        progress(f"{self.name}: install")

    def command(self) -> Sequence[str]:
        if self._argv is not None:
            return list(self._argv)
        return [sys.executable, "-m", "http.server", str(self._port), "--bind", "127.0.0.1"]

    def healthy(self) -> bool:
        return port_in_use("127.0.0.1", self._port)


@pytest.fixture
def config(tmp_path: Path) -> StackConfig:
    return StackConfig(state_dir=tmp_path / "stack")


@pytest.fixture
def messages() -> list[str]:
    return []


@pytest.fixture
def cleanup() -> Iterator[list[Component]]:
    """Components a test started; stopped afterwards even when the test fails."""
    started: list[Component] = []
    yield started
    for component in started:
        component.stop(lambda _m: None)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().rsplit(")", 1)[-1].split()[0] != "Z"


def test_up_starts_requirements_first_and_only_what_is_needed(
    config: StackConfig, messages: list[str], cleanup: list[Component]
) -> None:
    db = WebComponent(config, "db")
    broker = WebComponent(config, "broker")
    api = WebComponent(config, "api", requires=("db",))
    cleanup += [db, broker, api]
    stack = StackManager(config, [db, broker, api], progress=messages.append)

    rows = stack.up(["api"])

    assert [r.name for r in rows] == ["db", "api"]
    assert all(r.healthy and r.pid for r in rows)
    assert broker.pid() is None
    starts = [m.split(":")[0] for m in messages if "starting" in m]
    assert starts == ["db", "api"]


def test_up_is_idempotent_and_keeps_running_processes(
    config: StackConfig, messages: list[str], cleanup: list[Component]
) -> None:
    web = WebComponent(config, "web")
    cleanup.append(web)
    stack = StackManager(config, [web], progress=messages.append)

    first = stack.up()[0].pid
    second = stack.up()[0].pid

    assert first is not None and first == second
    assert any("already running" in m for m in messages)
    assert sum("starting" in m for m in messages) == 1


def test_status_reports_address_pid_and_health(
    config: StackConfig, cleanup: list[Component]
) -> None:
    web = WebComponent(config, "web")
    idle = WebComponent(config, "idle")
    cleanup += [web, idle]
    stack = StackManager(config, [web, idle])
    stack.up(["web"])

    rows = {r.name: r for r in stack.status()}

    assert rows["web"].healthy and rows["web"].running
    assert rows["web"].pid == int((config.state_dir / "web" / "pid").read_text())
    assert rows["web"].address == web.address
    assert not rows["idle"].running and not rows["idle"].healthy and rows["idle"].pid is None


def test_status_sees_a_process_that_died(config: StackConfig, cleanup: list[Component]) -> None:
    web = WebComponent(config, "web")
    cleanup.append(web)
    stack = StackManager(config, [web])
    pid = stack.up()[0].pid
    assert pid is not None

    os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while web.pid() is not None and time.monotonic() < deadline:
        time.sleep(0.05)

    (row,) = stack.status()
    assert not row.running and not row.healthy and row.pid is None


def test_taken_port_is_one_clear_error_and_starts_nothing(config: StackConfig) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        web = WebComponent(config, "web", port=port)

        with pytest.raises(StackError) as err:
            StackManager(config, [web]).up()

    message = str(err.value)
    assert f"port {port}" in message and "taken" in message and "\n" not in message
    assert web.pid() is None
    assert not web.pid_file.exists()


def test_process_that_exits_during_start_reports_its_log(config: StackConfig) -> None:
    crash = WebComponent(
        config,
        "crash",
        argv=[sys.executable, "-c", "import sys; print('bad setting: frobnicate'); sys.exit(3)"],
    )

    with pytest.raises(StackError) as err:
        StackManager(config, [crash]).up()

    assert "exited during start" in str(err.value)
    assert "bad setting: frobnicate" in str(err.value)
    assert crash.pid() is None


def test_unhealthy_process_times_out_with_log(
    config: StackConfig, cleanup: list[Component]
) -> None:
    # Runs, but never opens its port.
    mute = WebComponent(
        config,
        "mute",
        argv=[sys.executable, "-c", "print('warming up', flush=True); import time; time.sleep(60)"],
    )
    mute.start_timeout = 1.5
    cleanup.append(mute)

    with pytest.raises(StackError) as err:
        StackManager(config, [mute]).up()

    assert "not healthy after" in str(err.value) and "warming up" in str(err.value)


def test_stop_signals_only_the_recorded_pid(config: StackConfig) -> None:
    sleeper = WebComponent(config, "sleeper", argv=["sleep", "300"])
    sleeper.healthy = lambda: sleeper.pid() is not None  # type: ignore[method-assign]
    bystander = subprocess.Popen(["sleep", "300"])  # same command, not the stack's
    try:
        StackManager(config, [sleeper]).up()
        pid = sleeper.pid()
        assert pid is not None and pid != bystander.pid

        sleeper.stop(lambda _m: None)

        assert not alive(pid)
        assert bystander.poll() is None, "a process the stack did not start was signalled"
        assert not sleeper.pid_file.exists()
    finally:
        bystander.kill()
        bystander.wait()


def test_stop_kills_a_process_that_ignores_sigterm(config: StackConfig) -> None:
    stubborn = WebComponent(
        config,
        "stubborn",
        argv=[
            sys.executable,
            "-c",
            "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "print('ready', flush=True); time.sleep(300)",
        ],
    )
    stubborn.healthy = lambda: "ready" in stubborn.tail(5)  # type: ignore[method-assign]
    stubborn.stop_timeout = 1.0
    messages: list[str] = []
    StackManager(config, [stubborn]).up()
    pid = stubborn.pid()
    assert pid is not None

    stubborn.stop(messages.append)

    assert not alive(pid)
    assert any("killing" in m for m in messages)


def test_down_stops_in_reverse_order_and_leaves_nothing(
    config: StackConfig, messages: list[str], cleanup: list[Component]
) -> None:
    parts = [WebComponent(config, n) for n in ("first", "second", "third")]
    cleanup += parts
    stack = StackManager(config, parts, progress=messages.append)
    pids = [row.pid for row in stack.up()]

    messages.clear()
    stack.down()

    assert [m.split(":")[0] for m in messages if "stopping" in m] == ["third", "second", "first"]
    assert not any(alive(p) for p in pids if p)
    assert stack_processes(config.state_dir) == []
    assert all(not row.running for row in stack.status())


def test_down_reports_a_process_that_escaped(config: StackConfig) -> None:
    # The component's process starts a child in a new session, which survives the stop;
    # down must name it instead of claiming a clean stop.
    script = (
        "import subprocess, time; "
        "subprocess.Popen(['sleep', '300'], start_new_session=True); "
        "print('ready', flush=True); time.sleep(300)"
    )
    leaky = WebComponent(config, "leaky", argv=[sys.executable, "-c", script])
    leaky.healthy = lambda: "ready" in leaky.tail(5)  # type: ignore[method-assign]
    stack = StackManager(config, [leaky])
    stack.up()
    try:
        with pytest.raises(StackError) as err:
            stack.down(settle_seconds=0.5)
        assert "still run after stop" in str(err.value) and "sleep 300" in str(err.value)
    finally:
        for pid, _cmd in stack_processes(config.state_dir):
            os.kill(pid, signal.SIGKILL)


def test_logs_tail_and_unknown_component(config: StackConfig, cleanup: list[Component]) -> None:
    talker = WebComponent(
        config,
        "talker",
        argv=[
            sys.executable,
            "-c",
            "import time\nfor i in range(30): print(f'line {i}', flush=True)\ntime.sleep(300)",
        ],
    )
    talker.healthy = lambda: "line 29" in talker.tail(1)  # type: ignore[method-assign]
    cleanup.append(talker)
    stack = StackManager(config, [talker])

    with pytest.raises(StackError, match="no log yet"):
        list(stack.logs("talker", 5))
    stack.up()

    assert list(stack.logs("talker", 3)) == ["line 27", "line 28", "line 29"]
    with pytest.raises(StackError, match="unknown component 'nope'"):
        list(stack.logs("nope"))


def test_requirement_cycle_is_an_error(config: StackConfig) -> None:
    a = WebComponent(config, "a", requires=("b",))
    b = WebComponent(config, "b", requires=("a",))

    with pytest.raises(StackError, match="require each other"):
        StackManager(config, [a, b]).plan(["a"])


def test_missing_component_module_is_reported_not_fatal(
    config: StackConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        manager_module,
        "COMPONENTS",
        (
            ("kafka", "services.stack.kafka", "KafkaComponent"),
            ("ghost", "services.stack.ghost", "X"),
        ),
    )
    stack = StackManager(config)

    assert stack.names == ["kafka"]
    rows = {r.name: r for r in stack.status()}
    assert "not part of this checkout" in rows["ghost"].detail
    with pytest.raises(StackError, match="'ghost' is not available"):
        stack.up(["ghost"])


def test_default_components_are_in_dependency_order(config: StackConfig) -> None:
    stack = StackManager(config)

    assert stack.names == ["postgres", "kafka", "kafka-secure", "registry", "trino"]
    # the secured broker is optional: started when named, not by a plain `up`
    assert [c.name for c in stack.plan([])] == ["postgres", "kafka", "registry", "trino"]
    assert [c.name for c in stack.plan(["registry"])] == ["postgres", "registry"]
