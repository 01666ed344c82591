"""Registering the contract's schemas and checking local changes against the registry.

Each subject gets BACKWARD compatibility (a consumer on the new schema can read every
record written with the previous one), set before its first version so no incompatible
version can slip in between. ``check`` asks the registry's compatibility endpoint for the
verdict and compares locally (:mod:`services.contract.compat`) to name the field: a
registry answers "incompatible", which is not enough to fix a schema.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from services.contract.compat import read_problems
from services.contract.schemas import Contract, EventSchema, parse_schema_text
from services.errors import ContractError, RegistryError

COMPATIBILITY = "BACKWARD"


@dataclass(frozen=True, slots=True)
class Registration:
    """Where a type's schema is registered."""

    type: str
    subject: str
    schema_id: int
    version: int | None


@dataclass(frozen=True, slots=True)
class CheckResult:
    """Verdict for one type: ``new``, ``unchanged``, ``compatible`` or ``incompatible``."""

    type: str
    subject: str
    status: str
    registered_version: int | None
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status != "incompatible"


def _registry_call(what: str, exc: Exception) -> ContractError | RegistryError:
    if isinstance(exc, SchemaRegistryError):
        return ContractError(f"registry refused to {what}: {exc}")
    return RegistryError(f"schema registry unreachable while trying to {what}: {exc}")


class Registry:
    """The contract's view of a Confluent-compatible schema registry."""

    def __init__(
        self, client: SchemaRegistryClient, url: str, contract: Contract, prefix: str = ""
    ) -> None:
        self.client = client
        self.url = url.rstrip("/")
        self.contract = contract
        self.prefix = prefix

    def _schemas(self, types: list[str] | None) -> list[EventSchema]:
        return [self.contract.schema(t) for t in (types or list(self.contract.types))]

    def register_all(self, types: list[str] | None = None) -> list[Registration]:
        """Register every schema (or ``types``) under its subject, BACKWARD; idempotent."""
        out = []
        for schema in self._schemas(types):
            subject = schema.subject(self.prefix)
            try:
                self.client.set_compatibility(subject, COMPATIBILITY)
            except Exception as exc:
                raise _registry_call(f"set {COMPATIBILITY} on {subject}", exc) from exc
            try:
                registered = self.client.register_schema_full_response(
                    subject, Schema(schema.text, "AVRO")
                )
            except SchemaRegistryError as exc:
                if exc.http_status_code == 409:
                    problems = self._local_problems(schema, subject)
                    detail = "; ".join(problems) or str(exc)
                    raise ContractError(
                        f"{schema.type}: the registry rejects schemas/{schema.type}.avsc as "
                        f"incompatible with {subject} ({COMPATIBILITY}): {detail}"
                    ) from exc
                raise _registry_call(f"register {subject}", exc) from exc
            except Exception as exc:
                raise _registry_call(f"register {subject}", exc) from exc
            version = registered.version
            if version is None:  # the client answered from its cache; ask for the version
                version = self.client.lookup_schema(subject, Schema(schema.text, "AVRO")).version
            out.append(Registration(schema.type, subject, int(registered.schema_id or 0), version))
        return out

    def _latest(self, subject: str) -> tuple[int, str] | None:
        try:
            latest = self.client.get_latest_version(subject)
        except SchemaRegistryError as exc:
            if exc.http_status_code == 404:
                return None
            raise _registry_call(f"read {subject}", exc) from exc
        except Exception as exc:
            raise _registry_call(f"read {subject}", exc) from exc
        return int(latest.version or 0), latest.schema.schema_str or ""

    def _local_problems(self, schema: EventSchema, subject: str) -> list[str]:
        latest = self._latest(subject)
        if latest is None:
            return []
        writer = parse_schema_text(latest[1], f"{subject} v{latest[0]}")
        return [str(p) for p in read_problems(schema.parsed, writer)]

    def _registry_verdict(self, subject: str, schema: EventSchema) -> tuple[bool, list[str]]:
        """The registry's own compatibility answer, with its messages when it gives any."""
        url = f"{self.url}/compatibility/subjects/{quote(subject, safe='')}/versions/latest"
        try:
            response = httpx.post(
                url,
                params={"verbose": "true"},
                json={"schema": schema.text, "schemaType": "AVRO"},
                headers={"Content-Type": "application/vnd.schemaregistry.v1+json"},
                timeout=10.0,
            )
        except httpx.HTTPError as exc:
            raise RegistryError(f"schema registry unreachable at {self.url}: {exc}") from exc
        if response.status_code != 200:
            raise ContractError(
                f"registry compatibility check of {subject} failed: HTTP {response.status_code} "
                f"{response.text[:300]}"
            )
        body: dict[str, Any] = response.json()
        messages = body.get("messages") or []
        return bool(body.get("is_compatible")), [str(m) for m in messages]

    def check_all(self, types: list[str] | None = None) -> list[CheckResult]:
        """Compare local schemas with the registered ones (BACKWARD), naming bad fields."""
        out = []
        for schema in self._schemas(types):
            subject = schema.subject(self.prefix)
            latest = self._latest(subject)
            if latest is None:
                out.append(CheckResult(schema.type, subject, "new", None))
                continue
            version, text = latest
            if _same(text, schema.text):
                out.append(CheckResult(schema.type, subject, "unchanged", version))
                continue
            writer = parse_schema_text(text, f"{subject} v{version}")
            local = [str(p) for p in read_problems(schema.parsed, writer)]
            compatible, messages = self._registry_verdict(subject, schema)
            if compatible and not local:
                out.append(CheckResult(schema.type, subject, "compatible", version))
                continue
            problems = (
                local or messages or ["the registry reports it incompatible (no detail given)"]
            )
            out.append(CheckResult(schema.type, subject, "incompatible", version, tuple(problems)))
        return out

    def list_subjects(self) -> list[tuple[str, int | None, int | None]]:
        """(subject, latest version, schema id) of every contract subject; None if absent."""
        rows: list[tuple[str, int | None, int | None]] = []
        for schema in self._schemas(None):
            subject = schema.subject(self.prefix)
            try:
                latest = self.client.get_latest_version(subject)
            except SchemaRegistryError as exc:
                if exc.http_status_code == 404:
                    rows.append((subject, None, None))
                    continue
                raise _registry_call(f"read {subject}", exc) from exc
            except Exception as exc:
                raise _registry_call(f"read {subject}", exc) from exc
            rows.append((subject, latest.version, latest.schema_id))
        return rows


def _same(a: str, b: str) -> bool:
    try:
        return bool(json.loads(a) == json.loads(b))
    except ValueError:
        return a == b
