"""The health sampler as a stack-managed process (``proctor scoreboard sample``)."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path

from services.stack.component import Component, Progress
from services.stack.config import StackConfig

#: a sampler that has not written a sample for this long is not healthy
STALE_S = 60.0


class HealthSamplerComponent(Component):
    """Writes the grader's lag and the dead-letter count to ``grading.pipeline_health``."""

    name = "scoreboard-health"
    start_timeout = 90.0
    stop_timeout = 15.0
    requires = ("kafka", "trino")

    def __init__(
        self, config: StackConfig, interval_s: float = 10.0, group: str = "proctor-grader"
    ) -> None:
        super().__init__(config)
        self.interval_s = interval_s
        self.group = group

    @property
    def port(self) -> int:
        return 0

    def ports(self) -> Sequence[int]:
        return ()

    @property
    def address(self) -> str:
        return "iceberg.grading.pipeline_health"

    @property
    def beat_file(self) -> Path:
        return self.dir / "last-sample"

    def install(self, progress: Progress) -> None:
        """Nothing to install: it runs with proctor's own interpreter."""

    def prepare(self, progress: Progress) -> None:
        self.beat_file.unlink(missing_ok=True)

    def command(self) -> Sequence[str]:
        return [
            sys.executable,
            "-m",
            "services.cli",
            "scoreboard",
            "sample",
            "--interval",
            str(self.interval_s),
            "--group",
            self.group,
            "--beat-file",
            str(self.beat_file),
        ]

    def healthy(self) -> bool:
        try:
            age = time.time() - self.beat_file.stat().st_mtime
        except OSError:
            return False
        return age < max(STALE_S, 3 * self.interval_s)
