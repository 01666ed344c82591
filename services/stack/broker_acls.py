"""Who may do what on the broker: the ACLs of proctor's principals, as data.

The broker denies everything no ACL allows (StandardAuthorizer, no allow-if-no-ACL), so
this table is the whole of what each principal may do; ``admin`` is a super user and
needs none. Topic names take the deployment's topic prefix, so a test on a shared broker
gets the same rules on its own topics.

| principal  | may |
| ---------- | --- |
| proctor    | write (and read back) ``exam.control`` and ``proctor.roster`` |
| submission | write ``exam.control`` (each record signed by the endpoint's key) |
| collector  | write (and read back, to finish an interrupted batch) ``platform.*``;
               its consumers' groups ``proctor-collector-*`` |
| grader     | read ``exam.control``, ``platform.*``, ``proctor.roster``; read and write
               ``grading.*``, its own internal topics and its consumer group |
| candidate  | nothing |
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from services.contract.schemas import CONTROL_TOPIC, DLQ_TOPIC, STATES_TOPIC
from services.errors import StackError

ROSTER_TOPIC = "proctor.roster"
PLATFORM_TOPICS = "platform."
GRADING_TOPICS = "grading."
DEFAULT_GRADER_APP_ID = "proctor-grader"
#: a poller's consumer (metadata, end offsets, reading back its own batch) takes a group
#: id ``proctor-collector-<random>``: librdkafka looks its coordinator up even unsubscribed
DEFAULT_COLLECTOR_GROUP = "proctor-collector-"

#: the principals of the local secured broker; ``admin`` is its super user
PRINCIPALS: tuple[str, ...] = ("admin", "proctor", "submission", "collector", "grader", "candidate")
SUPER_USER = "admin"


@dataclass(frozen=True, slots=True)
class Grant:
    """One ALLOW rule: ``principal`` may ``operation`` on a topic or group ``name``
    (``prefixed``: every name that starts with it)."""

    principal: str
    resource: str  # "topic" | "group"
    name: str
    operation: str  # "read" | "write" | "describe" | "all"
    prefixed: bool = False


def _on(
    principal: str, resource: str, name: str, ops: Sequence[str], prefixed: bool = False
) -> list[Grant]:
    return [Grant(principal, resource, name, op, prefixed) for op in ops]


def acl_plan(
    prefix: str = "",
    *,
    grader_app_id: str = DEFAULT_GRADER_APP_ID,
    collectors: Sequence[str] = ("collector",),
    collector_group: str = DEFAULT_COLLECTOR_GROUP,
) -> list[Grant]:
    """Every grant of proctor's principals for topics under ``prefix``.

    ``grader_app_id`` is the grader's Faust app id: its consumer group and the prefix of
    its changelog and leader topics. ``collectors`` are the collector principals and
    ``collector_group`` the prefix of their consumers' group ids.
    """
    control = f"{prefix}{CONTROL_TOPIC}"
    roster = f"{prefix}{ROSTER_TOPIC}"
    platform = f"{prefix}{PLATFORM_TOPICS}"
    grading = f"{prefix}{GRADING_TOPICS}"
    for name in (STATES_TOPIC, DLQ_TOPIC):  # the grader's outputs are all under grading.
        if not name.startswith(GRADING_TOPICS):
            raise StackError(f"topic {name} is outside {GRADING_TOPICS}*; extend the ACLs")
    produce = ("write", "describe")
    consume = ("read", "describe")
    grants: list[Grant] = []
    grants += _on("proctor", "topic", control, (*produce, "read"))
    grants += _on("proctor", "topic", roster, (*produce, "read"))
    grants += _on("submission", "topic", control, produce)
    for collector in collectors:
        grants += _on(collector, "topic", platform, (*produce, "read"), prefixed=True)
        grants += _on(collector, "group", collector_group, ("read",), prefixed=True)
    grants += _on("grader", "topic", control, consume)
    grants += _on("grader", "topic", roster, consume)
    grants += _on("grader", "topic", platform, consume, prefixed=True)
    grants += _on("grader", "topic", grading, ("all",), prefixed=True)
    grants += _on("grader", "topic", grader_app_id, ("all",), prefixed=True)
    grants += _on("grader", "group", grader_app_id, ("all",), prefixed=True)
    return grants


def acl_bindings(grants: Iterable[Grant]) -> list[Any]:
    """confluent-kafka ``AclBinding`` objects (ALLOW from any host) of ``grants``."""
    from confluent_kafka.admin import (  # type: ignore[attr-defined]
        AclBinding,
        AclOperation,
        AclPermissionType,
        ResourcePatternType,
        ResourceType,
    )

    resources = {"topic": ResourceType.TOPIC, "group": ResourceType.GROUP}
    operations = {
        "read": AclOperation.READ,
        "write": AclOperation.WRITE,
        "describe": AclOperation.DESCRIBE,
        "all": AclOperation.ALL,
    }
    return [
        AclBinding(
            resources[g.resource],
            g.name,
            ResourcePatternType.PREFIXED if g.prefixed else ResourcePatternType.LITERAL,
            f"User:{g.principal}",
            "*",
            operations[g.operation],
            AclPermissionType.ALLOW,
        )
        for g in grants
    ]


def apply_acls(admin: Any, grants: Sequence[Grant], timeout_s: float = 30.0) -> int:
    """Create the ACLs of ``grants`` with a super user's AdminClient (creating one that
    exists changes nothing); return how many were asked for."""
    from confluent_kafka import KafkaException

    bindings = acl_bindings(grants)
    if not bindings:
        return 0
    futures = admin.create_acls(bindings, request_timeout=timeout_s)
    errors = []
    for binding, future in futures.items():
        try:
            future.result(timeout=timeout_s)
        except KafkaException as exc:
            errors.append(f"{binding}: {exc}")
    if errors:
        raise StackError(
            "the broker refused ACLs (is the client the super user?): " + "; ".join(errors)
        )
    _wait_visible(admin, bindings, timeout_s)
    return len(bindings)


def _wait_visible(admin: Any, bindings: Sequence[Any], timeout_s: float) -> None:
    """Wait until the broker's authorizer holds every binding: the controller confirms an
    ACL before the broker has applied it, and a client right after would be refused."""
    from confluent_kafka.admin import (  # type: ignore[attr-defined]
        AclBindingFilter,
        AclOperation,
        AclPermissionType,
        ResourcePatternType,
        ResourceType,
    )

    anything: Any = None  # a None name, principal or host matches any (stubs say str)
    everything = AclBindingFilter(
        ResourceType.ANY,
        anything,
        ResourcePatternType.ANY,
        anything,
        anything,
        AclOperation.ANY,
        AclPermissionType.ANY,
    )
    wanted = {str(b) for b in bindings}
    deadline = time.monotonic() + timeout_s
    while True:
        seen = {str(b) for b in admin.describe_acls(everything).result(timeout=timeout_s)}
        if wanted <= seen:
            return
        if time.monotonic() > deadline:
            raise StackError(
                f"{len(wanted - seen)} ACLs not applied by the broker after {timeout_s:.0f}s"
            )
        time.sleep(0.1)
