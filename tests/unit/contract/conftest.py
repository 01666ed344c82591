"""Fixtures for the contract's unit tests: the schemas, their examples, an in-memory registry.

The registry is confluent-kafka's own in-memory client (``mock://``), so encode/decode run
the real SchemaRegistryClient API without a server; the broker tests use the real one.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from services.contract.jsonl import read_jsonl
from services.contract.schemas import Contract, load_contract
from services.contract.wire import WireCodec, registry_client
from services.core.events import Event

EXAMPLES = Path(__file__).resolve().parents[3] / "schemas" / "examples.jsonl"


@pytest.fixture(scope="session")
def contract() -> Contract:
    return load_contract()


@pytest.fixture(scope="session")
def examples(contract: Contract) -> dict[str, Event]:
    """One valid example per event type, from schemas/examples.jsonl."""
    return {e.type: e for e in read_jsonl(EXAMPLES, contract)}


@pytest.fixture
def codec(contract: Contract) -> WireCodec:
    """A codec on a fresh in-memory registry that registers schemas on first use."""
    return WireCodec(registry_client(f"mock://{uuid.uuid4().hex}"), contract, auto_register=True)
