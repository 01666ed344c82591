"""schema.registered: every version of every subject of the platform's schema registry.

Confluent-compatible REST: ``/subjects``, ``/subjects/{s}/versions`` and, for versions
not seen before, ``/subjects/{s}/versions/{v}`` (for the global id and schema type).
The position maps subject -> {version: id}; subjects and versions that disappear are
dropped from it, so a subject deleted and registered again is seen again. The registry
keeps no registration time, so event time is when the version was first seen.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import click
from pydantic import Field

from services.collectors.http import JsonClient, SourceError, expect
from services.collectors.polling import Collector, PollResult, Position, now_ms
from services.collectors.runner import common_options, run_one, split_common
from services.collectors.settings import SourceSettings, env_secret, parse_model

SCHEMA_TYPES = ("AVRO", "PROTOBUF", "JSON")

#: subjects asked for per page of ``GET /subjects``
SUBJECTS_PAGE = 1000


class Settings(SourceSettings):
    url: str = Field(description="registry base URL (Confluent-compatible API)")
    subject_pattern: str = Field(default=".*", description="regex of subjects to watch")
    username_env: str | None = Field(default=None, description="env var with the user name")
    password_env: str | None = Field(default=None, description="env var with the password")
    max_versions_per_poll: int = Field(default=500, gt=0)


class RegistryCollector(Collector):
    name = "schemas"

    def __init__(self, settings: Settings, platform_id: str) -> None:
        super().__init__(platform_id)
        self.settings = settings
        self.pattern = re.compile(settings.subject_pattern)
        user = env_secret(settings.username_env, "schemas collector user")
        password = env_secret(settings.password_env, "schemas collector password")
        auth = (user, password) if user and password else None
        self.http = JsonClient(settings.url, auth=auth)

    @property
    def source(self) -> str:
        return f"schema registry {self.settings.url}"

    def describe(self, position: Position) -> str:
        versions = sum(len(v) for v in position.values())
        return f"{len(position)} subjects, {versions} versions"

    def _subjects(self) -> list[Any]:
        """Every subject, page by page: registries cap one answer (Apicurio at 1,000), so a
        registry with more subjects would hide the newest. A registry that ignores
        ``offset`` answers the same page again, which ends the walk."""
        subjects: list[Any] = []
        seen: set[Any] = set()
        offset = 0
        while True:
            page = expect(
                self.http.get("/subjects", params={"offset": offset, "limit": SUBJECTS_PAGE}),
                list,
                "GET /subjects",
            )
            fresh = [s for s in page if s not in seen]
            subjects += fresh
            seen.update(fresh)
            if len(page) < SUBJECTS_PAGE or not fresh:
                return subjects
            offset += len(page)

    def poll(self, position: Position) -> PollResult:
        subjects = self._subjects()
        watched = sorted(s for s in subjects if isinstance(s, str) and self.pattern.fullmatch(s))
        new: dict[str, Any] = {}
        events = []
        budget = self.settings.max_versions_per_poll
        lag = 0
        ts = now_ms()
        for subject in watched:
            path = f"/subjects/{quote(subject, safe='')}/versions"
            status, versions = self.http.request("GET", path, allow=(404,))
            if status == 404:  # deleted between the two calls
                continue
            expect(versions, list, f"GET {path}")
            known: dict[str, int] = dict(position.get(subject, {}))
            seen = {str(v): known[str(v)] for v in versions if str(v) in known}
            for version in sorted(int(v) for v in versions if str(v) not in known):
                if budget == 0:
                    lag += 1
                    continue
                budget -= 1
                detail = expect(self.http.get(f"{path}/{version}"), dict, f"GET {path}/{version}")
                schema_id = detail.get("id")
                if not isinstance(schema_id, int):
                    raise SourceError(f"GET {path}/{version}: no integer 'id' in the answer")
                schema_type = str(detail.get("schemaType") or "AVRO").upper()
                if schema_type not in SCHEMA_TYPES:
                    raise SourceError(f"{subject} v{version}: unknown schemaType {schema_type!r}")
                seen[str(version)] = schema_id
                events.append(
                    self.signal(
                        "schema.registered",
                        [subject, version, schema_id],
                        ts,
                        {
                            "subject": subject,
                            "version": version,
                            "schema_id": schema_id,
                            "schema_type": schema_type,
                        },
                    )
                )
            if seen:
                new[subject] = seen
        return PollResult(tuple(events), new, lag)

    def close(self) -> None:
        self.http.close()


def build(settings: Settings, platform_id: str) -> RegistryCollector:
    return RegistryCollector(settings, platform_id)


@click.command("schemas")
@click.option("--url", required=True, help="watched registry URL (Confluent-compatible API)")
@click.option("--subject-pattern", default=".*", show_default=True, help="regex of subjects")
@click.option("--username-env", default=None, help="env var holding the registry user")
@click.option("--password-env", default=None, help="env var holding the registry password")
@common_options
def command(**kwargs: Any) -> None:
    """Publish schema.registered: subjects and versions of a schema registry."""
    common, own = split_common(kwargs)
    settings = parse_model(Settings, {"interval_s": common["interval_s"], **own}, "flags")
    run_one(lambda platform: build(settings, platform), common)
