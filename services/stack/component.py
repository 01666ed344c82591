"""One local process of the stack: install, start, health-check, stop by pid, logs.

Each concrete component (Kafka, registry, PostgreSQL, Trino) says how to install itself,
which command runs it and how to tell it is healthy; this base owns the process
life cycle so every component behaves the same: ``up`` is idempotent, a taken port is
one clear line, and ``down`` only ever signals a pid this stack started.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from services.errors import StackError
from services.stack.config import StackConfig

Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Status:
    name: str
    address: str
    running: bool
    healthy: bool
    pid: int | None
    detail: str = ""


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); treat it as gone.
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


class Component(ABC):
    """A stack process. Subclasses fill in the abstract methods; the life cycle is here."""

    #: short name used in status tables, log file names and the state directory
    name: str = ""
    #: seconds ``start`` waits for ``healthy`` before it gives up
    start_timeout: float = 120.0
    stop_timeout: float = 30.0
    #: names of components that must be healthy before this one starts
    requires: tuple[str, ...] = ()
    #: started only when named (``proctor stack up NAME``), not by a plain ``up``
    optional: bool = False

    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.dir = config.component_dir(self.name)

    # What a component must say ---------------------------------------------------------
    @property
    @abstractmethod
    def port(self) -> int:
        """The main port; checked for a squatter before start."""

    @property
    @abstractmethod
    def address(self) -> str:
        """What a client connects to, shown by ``proctor stack status``."""

    @abstractmethod
    def install(self, progress: Progress) -> None:
        """Fetch what the component needs (cached), idempotently."""

    @abstractmethod
    def command(self) -> Sequence[str]:
        """The argv of the long-running process."""

    @abstractmethod
    def healthy(self) -> bool:
        """True when the component answers its clients. Must not raise, must be quick."""

    # What a component may override -------------------------------------------------------
    def ports(self) -> Sequence[int]:
        """Every port the process binds; each is checked for a squatter before start."""
        return (self.port,)

    def prepare(self, progress: Progress) -> None:
        """One-time set-up before the first start (format storage, write configs)."""

    def environment(self) -> Mapping[str, str]:
        return {}

    def after_start(self, progress: Progress) -> None:
        """Work that needs the process healthy (create a database, a schema)."""

    # Life cycle --------------------------------------------------------------------------
    @property
    def pid_file(self) -> Path:
        return self.dir / "pid"

    @property
    def log_file(self) -> Path:
        return self.dir / f"{self.name}.log"

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _pid_alive(pid) else None

    def status(self) -> Status:
        pid = self.pid()
        healthy = pid is not None and self.healthy()
        return Status(self.name, self.address, pid is not None, healthy, pid)

    def start(self, progress: Progress) -> None:
        if self.pid() is not None:
            if self.healthy():
                progress(f"{self.name}: already running at {self.address}")
                return
            self.wait_healthy(progress)
            return
        for port in self.ports():
            if port_in_use(self.config.host, port):
                raise StackError(
                    f"{self.name}: port {port} on {self.config.host} is taken by another "
                    f"process; stop it (`ss -ltnp 'sport = :{port}'` shows which) or set "
                    f"the matching PROCTOR_{self.name.upper()}_*PORT to a free port"
                )
        self.dir.mkdir(parents=True, exist_ok=True)
        self.install(progress)
        self.prepare(progress)
        env = {**os.environ, **self.environment()}
        progress(f"{self.name}: starting (log: {self.log_file})")
        with open(self.log_file, "ab") as log:
            proc = subprocess.Popen(
                list(self.command()),
                cwd=self.dir,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.pid_file.write_text(str(proc.pid))
        self.wait_healthy(progress)
        self.after_start(progress)

    def wait_healthy(self, progress: Progress) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.pid() is None:
                raise StackError(
                    f"{self.name}: the process exited during start; see {self.log_file}:\n"
                    + self.tail(20)
                )
            if self.healthy():
                progress(f"{self.name}: healthy at {self.address}")
                return
            time.sleep(0.25)
        raise StackError(
            f"{self.name}: not healthy after {self.start_timeout:.0f}s; see {self.log_file}:\n"
            + self.tail(20)
        )

    def stop(self, progress: Progress) -> None:
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return
        progress(f"{self.name}: stopping pid {pid}")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        while time.monotonic() < deadline and _pid_alive(pid):
            time.sleep(0.2)
        if _pid_alive(pid):
            progress(f"{self.name}: still running after {self.stop_timeout:.0f}s, killing")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            # SIGKILL is not instant; return only once the process is really gone.
            deadline = time.monotonic() + 5.0
            while time.monotonic() < deadline and _pid_alive(pid):
                time.sleep(0.05)
        self.pid_file.unlink(missing_ok=True)

    def tail(self, lines: int = 50) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return "(no log yet)"
        return "\n".join(text.splitlines()[-lines:])


class StartedOnEnter:
    """A process owner used as a context manager: started on enter (a start that fails
    stops what it had started before raising), stopped on exit."""

    def start(self) -> object:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def run_setup(
    argv: Sequence[str],
    component: str,
    what: str,
    timeout: float,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> str:
    """Run one setup command (a venv, a pip install, a migration) to completion; its
    output, or a StackError naming ``component``, what it could not do and the output's
    last lines: a failed install is read from the error, not from a log hunt."""
    try:
        done = subprocess.run(
            list(argv),
            cwd=cwd,
            env={**os.environ, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise StackError(f"{component}: could not {what}: {exc}") from exc
    if done.returncode != 0:
        tail = "\n".join(done.stdout.splitlines()[-25:])
        raise StackError(f"{component}: could not {what} (exit {done.returncode}):\n{tail}")
    return done.stdout


def stop_process_group(proc: subprocess.Popen[bytes] | None, term_wait_s: float = 30.0) -> None:
    """SIGTERM to the process group ``proc`` leads, SIGKILL after ``term_wait_s``: exactly
    the processes a component started (``start_new_session``), nothing else."""
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(term_wait_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
