"""Fixtures for the trust unit tests: keys, a keyring, a master secret, the contract."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from services.contract.jsonl import read_jsonl
from services.contract.schemas import Contract, load_contract
from services.contract.wire import WireCodec, registry_client
from services.core.events import Event
from services.trust.keys import Keyring, SigningKey, generate

EXAMPLES = Path(__file__).resolve().parents[3] / "schemas" / "examples.jsonl"
MASTER = b"unit-test-master-secret-0123456789"


@pytest.fixture(scope="session")
def contract() -> Contract:
    return load_contract()


@pytest.fixture(scope="session")
def examples(contract: Contract) -> dict[str, Event]:
    return {e.type: e for e in read_jsonl(EXAMPLES, contract)}


@pytest.fixture
def codec(contract: Contract) -> WireCodec:
    return WireCodec(registry_client(f"mock://{uuid.uuid4().hex}"), contract, auto_register=True)


@pytest.fixture(scope="session")
def proctor_key() -> SigningKey:
    return generate("proctor", "proctor-unit")


@pytest.fixture(scope="session")
def submission_key() -> SigningKey:
    return generate("submission", "submission-unit")


@pytest.fixture(scope="session")
def keyring(proctor_key: SigningKey, submission_key: SigningKey) -> Keyring:
    return Keyring.of(proctor_key, submission_key)
