"""The stack as a whole: which components exist, in which order they start and stop.

Components start in the order of :data:`COMPONENTS` (each one's ``requires`` are pulled
in first) and stop in reverse. ``down`` then checks that no process of ours is left:
one in the session of a process the stack started (each starts in a session of its own),
or one whose working directory lies in the stack's state directory.
"""

from __future__ import annotations

import importlib
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from services.errors import StackError
from services.stack.component import Component, Progress, Status
from services.stack.config import StackConfig

#: start order: (name, module, class). Modules are imported only when the stack is used.
COMPONENTS: tuple[tuple[str, str, str], ...] = (
    ("postgres", "services.stack.postgres", "PostgresComponent"),
    ("kafka", "services.stack.kafka", "KafkaComponent"),
    ("kafka-secure", "services.stack.kafka_secure", "SecureKafkaComponent"),
    ("registry", "services.stack.registry", "RegistryComponent"),
    ("trino", "services.stack.trino", "TrinoComponent"),
)

#: processes that run on top of the stack, started by their own commands (`proctor
#: scoreboard up`), and stopped by `proctor stack down` before the stack they need.
COMPANIONS: tuple[tuple[str, str, str], ...] = (
    ("scoreboard-health", "services.stack.sampler", "HealthSamplerComponent"),
    ("superset", "services.stack.superset", "SupersetComponent"),
)


def _quiet(_message: str) -> None:
    pass


def load_components(
    config: StackConfig, table: Sequence[tuple[str, str, str]] | None = None
) -> tuple[list[Component], dict[str, str]]:
    """Instances of every component whose module is present, and why the others are not."""
    table = COMPONENTS if table is None else table
    found: list[Component] = []
    missing: dict[str, str] = {}
    for name, module_name, class_name in table:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            missing[name] = f"{module_name} is not part of this checkout"
            continue
        found.append(getattr(module, class_name)(config))
    return found, missing


class StackManager:
    """Start, stop and inspect an ordered set of components."""

    def __init__(
        self,
        config: StackConfig,
        components: Sequence[Component] | None = None,
        progress: Progress = _quiet,
    ) -> None:
        self.config = config
        self.progress = progress
        if components is None:
            loaded, self.missing = load_components(config)
            self.components: list[Component] = loaded
        else:
            self.components = list(components)
            self.missing = {}

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.components]

    def get(self, name: str) -> Component:
        for component in self.components:
            if component.name == name:
                return component
        if name in self.missing:
            raise StackError(f"component {name!r} is not available: {self.missing[name]}")
        raise StackError(f"unknown component {name!r}; choose from {', '.join(self.names)}")

    def plan(self, names: Sequence[str] | None = None) -> list[Component]:
        """The components to start for ``names`` (all but the optional ones when empty),
        requirements first."""
        if not names:
            return [c for c in self.components if not c.optional]
        wanted: set[str] = set()

        def want(name: str, chain: tuple[str, ...]) -> None:
            if name in chain:
                raise StackError(f"components require each other: {' -> '.join((*chain, name))}")
            component = self.get(name)
            wanted.add(name)
            for required in component.requires:
                want(required, (*chain, name))

        for name in names:
            want(name, ())
        return [c for c in self.components if c.name in wanted]

    # Life cycle --------------------------------------------------------------------------
    def up(self, names: Sequence[str] | None = None) -> list[Status]:
        """Start what is not running and wait until healthy; running ones are kept."""
        plan = self.plan(names)
        for name in names or ():
            if name in self.missing:
                raise StackError(f"component {name!r} is not available: {self.missing[name]}")
        for component in plan:
            component.start(self.progress)
        return [c.status() for c in plan]

    def down(self, settle_seconds: float = 5.0) -> None:
        """Stop every component (reverse order), then make sure none of ours is left."""
        errors: list[str] = []
        companions = [c for c in load_components(self.config, COMPANIONS)[0] if c.pid() is not None]
        running = [*self.components, *companions]
        sessions = {pid for pid in (c.pid() for c in running) if pid is not None}
        for component in [*companions, *reversed(self.components)]:
            try:
                component.stop(self.progress)
            except StackError as exc:
                errors.append(str(exc))
        deadline = time.monotonic() + settle_seconds
        left = stack_processes(self.config.state_dir, sessions)
        while left and time.monotonic() < deadline:
            time.sleep(0.2)
            left = stack_processes(self.config.state_dir, sessions)
        if left:
            listing = "; ".join(f"pid {pid}: {cmd[:120]}" for pid, cmd in left)
            errors.append(f"{len(left)} process(es) of the stack still run after stop: {listing}")
        if errors:
            raise StackError("\n".join(errors))

    def status(self) -> list[Status]:
        # an optional component shows when it runs; stopped, it is not a fault of the stack
        rows = [c.status() for c in self.components if not c.optional or c.pid() is not None]
        rows += [
            Status(name, "-", False, False, None, detail=why) for name, why in self.missing.items()
        ]
        order = [name for name, _, _ in COMPONENTS]
        return sorted(rows, key=lambda s: order.index(s.name) if s.name in order else len(order))

    def logs(self, name: str, lines: int = 50, follow: bool = False) -> Iterator[str]:
        """The last ``lines`` lines of a component's log; with ``follow``, then new ones."""
        component = self.get(name)
        path = component.log_file
        if not path.is_file():
            raise StackError(
                f"{name} has no log yet ({path}); start it with `proctor stack up {name}`"
            )
        yield from component.tail(lines).splitlines()
        if not follow:
            return
        with open(path, errors="replace") as fh:
            fh.seek(0, os.SEEK_END)
            while True:
                line = fh.readline()
                if line:
                    yield line.rstrip("\n")
                else:
                    time.sleep(0.3)


def stack_processes(state_dir: Path, sessions: Iterable[int] = ()) -> list[tuple[int, str]]:
    """Live processes in one of ``sessions`` or whose working directory is in ``state_dir``."""
    root = str(state_dir.resolve())
    session_ids = set(sessions)
    me = os.getpid()
    found: list[tuple[int, str]] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[-1].split()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if fields[0] == "Z":
            continue
        try:
            cwd = os.readlink(entry / "cwd")
        except OSError:
            cwd = ""
        if int(fields[3]) in session_ids or cwd == root or cwd.startswith(root + "/"):
            found.append((int(entry.name), cmdline.strip() or f"[{entry.name}]"))
    return found
