"""The roster on the real broker: `proctor roster add|list|revoke`, verified loads, and a
forged record that a reader ignores and counts."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
from click.testing import CliRunner
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from services.contract.settings import ClientSettings
from services.trust.cli import roster
from services.trust.credentials import SignalKey, verify_submission_token
from services.trust.keys import Keyring
from services.trust.roster import RosterEntry, RosterView, roster_topic
from tests.conftest import TrustEnv

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(kafka_bootstrap: str, registry_url: str) -> Iterator[ClientSettings]:
    s = ClientSettings(kafka_bootstrap, registry_url, f"t{uuid.uuid4().hex[:8]}.")
    yield s
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    names = [n for n in admin.list_topics(timeout=10).topics if n.startswith(s.topic_prefix)]
    if names:
        for fut in admin.delete_topics(names, operation_timeout=30).values():
            fut.result(30)


def _cli(settings: ClientSettings, *args: str) -> str:
    result = CliRunner().invoke(
        roster,
        [*args, "--bootstrap", settings.bootstrap, "--prefix", settings.topic_prefix],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    return result.stdout


def test_add_list_revoke_and_a_forged_record(settings: ClientSettings, trust_env: TrustEnv) -> None:
    out = _cli(
        settings,
        "add",
        "basecamp-alice",
        "--exam",
        "y3",
        "--candidate",
        "alice",
        "--extra-minutes",
        "2=15",
        "--json",
    )
    creds = json.loads(out.strip().splitlines()[-1])
    assert creds["generation"] == 1
    assert SignalKey.parse(creds["signal_key"]) == SignalKey.derive(
        trust_env.master, "basecamp-alice", 1
    )
    grant = verify_submission_token(trust_env.master, creds["submission_token"])
    assert grant is not None and (grant.platform_id, grant.exam_id) == ("basecamp-alice", "y3")
    assert len(creds["webhook_secrets"]) >= 5

    # someone with write access to the topic forges a record that would move alice's exam
    forged = RosterEntry("basecamp-alice", "other-exam", "mallory", 9, False)
    producer = Producer({"bootstrap.servers": settings.bootstrap})
    producer.produce(
        roster_topic(settings.topic_prefix), key=b"basecamp-alice", value=forged.to_bytes()
    )
    assert producer.flush(30) == 0

    keyring = Keyring.from_file(trust_env.keyring_path)
    view = RosterView(settings, keyring)
    try:
        assert view.refresh() == 2
        entry = view.get("basecamp-alice")
        assert entry is not None and (entry.exam_id, entry.generation) == ("y3", 1)
        assert entry.extra_minutes == {2: 15}
        assert view.ignored == 1 and "unsigned" in view.ignored_reasons[0]

        listed = _cli(settings, "list")
        assert "basecamp-alice\ty3\talice\tgen 1\tactive\textra 2=15" in listed

        assert "generation 1 -> 2" in _cli(settings, "revoke", "basecamp-alice")
        assert view.refresh() == 1  # only what is new is read
        revoked = view.get("basecamp-alice")
        assert revoked is not None and (revoked.generation, revoked.revoked) == (2, True)

        out = _cli(
            settings, "add", "basecamp-alice", "--exam", "y3", "--candidate", "alice", "--json"
        )
        again = json.loads(out.strip().splitlines()[-1])
        assert again["generation"] == 2 and again["signal_key"] != creds["signal_key"]
        view.refresh()
        back = view.get("basecamp-alice")
        assert back is not None and (back.generation, back.revoked) == (2, False)
    finally:
        view.close()


def test_revoking_an_unknown_platform_says_so(
    settings: ClientSettings, trust_env: TrustEnv
) -> None:
    result = CliRunner().invoke(
        roster,
        ["revoke", "nobody", "--bootstrap", settings.bootstrap, "--prefix", settings.topic_prefix],
    )
    assert result.exit_code != 0 and "not in the roster" in result.output
