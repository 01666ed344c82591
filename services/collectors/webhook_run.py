"""Running receivers: in a thread (tests, benches), or until SIGTERM (the commands)."""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Protocol

from services.collectors.webhook import (
    PRODUCER_MAX_BYTES,
    Receiver,
    ReceiverSettings,
    WebhookSource,
)
from services.collectors.webhook_auth import SecretBook
from services.collectors.webhook_guard import KnownPlatforms
from services.contract.settings import ClientSettings
from services.publisher.publisher import Publisher
from services.trust.credentials import SignalKeys


class Companion(Protocol):
    """Something that runs beside the HTTP server in the same process (the Kafka bridge)."""

    def start(self) -> None: ...
    def stop(self) -> None: ...


class BackgroundReceiver:
    """A receiver on its own event loop in a thread (tests, benches, embedding).

    >>> with BackgroundReceiver(receiver) as port:     # doctest: +SKIP
    ...     httpx.post(f"http://127.0.0.1:{port}/argocd", ...)
    """

    def __init__(self, receiver: Receiver) -> None:
        self.receiver = receiver
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="receiver", daemon=True)

    def __enter__(self) -> int:
        self._thread.start()
        port: int = asyncio.run_coroutine_threadsafe(self.receiver.start(), self.loop).result(60)
        return port

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.receiver.stop(), self.loop).result(60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


def serve(receiver: Receiver, companions: Iterable[Companion] = ()) -> None:
    """Run until SIGINT or SIGTERM, then stop gracefully (requests in flight finish)."""
    companions = list(companions)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await receiver.start()
        for companion in companions:
            companion.start()
        try:
            await stop.wait()
        finally:
            for companion in companions:
                await loop.run_in_executor(None, companion.stop)
            await receiver.stop()

    asyncio.run(main())


def build_receiver(
    sources: Sequence[WebhookSource],
    client: ClientSettings,
    settings: ReceiverSettings,
    *,
    per_platform_secrets: bool = True,
    known_platforms: KnownPlatforms | None = None,
    auto_register: bool = False,
    env: Mapping[str, str] | None = None,
) -> Receiver:
    """A receiver with secrets from the environment and a low-latency publisher.

    Each platform gets its own derived secret unless ``per_platform_secrets`` is False
    (a single-platform deployment only). ``known_platforms`` is the roster; without one,
    only ``settings.platforms`` are known.
    """
    secrets = SecretBook.from_env([s.name for s in sources], per_platform_secrets, env)
    publisher = Publisher(
        client,
        auto_register=auto_register,
        # As large as the largest topic takes (the DLQ's 4 MiB): a record the receiver
        # lets through never fails in produce() on librdkafka's 1,000,000-byte default.
        producer_config={"linger.ms": 1, "message.max.bytes": PRODUCER_MAX_BYTES},
    )
    receiver = Receiver(sources, publisher, secrets, settings, known_platforms)
    keys = receiver.sender.signal_keys
    if isinstance(keys, SignalKeys) and known_platforms is not None:
        # MAC each platform's signals at its current roster generation, not a fixed one.
        keys.generations = LiveGenerations(known_platforms)  # type: ignore[assignment]
    return receiver


class LiveGenerations(Mapping[str, int]):
    """The generations of the known platforms, looked up when asked (1 when unknown)."""

    def __init__(self, known: KnownPlatforms) -> None:
        self.known = known

    def __getitem__(self, platform_id: str) -> int:
        generation = self.known(platform_id)
        if generation is None:
            raise KeyError(platform_id)
        return generation

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0
