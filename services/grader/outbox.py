"""The worker's output topics as the pipeline's :class:`~services.grader.pipeline.Outbox`:
dead letters wait for the broker's ack, criterion states do not (the topic is derived)."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, Protocol


class Topic(Protocol):
    """A topic that sends (a Faust topic is one): ``send`` returns the pending ack."""

    def send(self, *, key: Any, value: Any) -> Awaitable[Any]: ...


class TopicOutbox:
    """Sends to the dead-letter and criterion-state topics."""

    def __init__(self, dlq: Topic, states: Topic) -> None:
        self._dlq = dlq
        self._states = states

    async def dead_letter(self, key: bytes | None, value: bytes) -> None:
        await (await self._dlq.send(key=key, value=value))

    async def state(self, key: bytes, value: bytes) -> None:
        await self._states.send(key=key, value=value)
