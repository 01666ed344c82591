"""``proctor worker`` with its partitions' watermark not aligned (not a test module).

The control of ``test_backlog.py``: each partition's watermark is the highest event time
read on any topic, as before aligned watermarks, so a topic read ahead (a backlog read
one topic first) moves the clock past records the other topics have not delivered yet.
Everything else is the real worker, configured from the environment.
"""

from __future__ import annotations

from services.grader.cli import run
from services.grader.grading import PartitionGrader
from services.grader.settings import GraderSettings


def _highest(self: PartitionGrader) -> int:
    return max(self.highs.values(), default=0)


if __name__ == "__main__":
    PartitionGrader._aligned = _highest  # type: ignore[method-assign]
    run(GraderSettings())
