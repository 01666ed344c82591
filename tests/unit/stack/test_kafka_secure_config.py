"""The secured broker's configuration, certificates and ACL table, without a broker.

What each principal may do is data (:func:`acl_plan`); these tests pin it down so a
change to who may write ``exam.control`` is a visible, reviewed change. The broker's own
refusals are tested against a real broker in tests/adversarial/test_broker_acls.py.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from services.cli import cli
from services.stack import tls
from services.stack.broker_acls import PRINCIPALS, Grant, acl_bindings, acl_plan
from services.stack.config import StackConfig
from services.stack.kafka_secure import SecureKafkaComponent
from services.stack.manager import StackManager

pytestmark = pytest.mark.unit


def grants_of(principal: str, prefix: str = "") -> set[tuple[str, str, str, bool]]:
    return {
        (g.resource, g.name, g.operation, g.prefixed)
        for g in acl_plan(prefix)
        if g.principal == principal
    }


def may(principal: str, operation: str, topic: str) -> bool:
    """Whether the plan lets ``principal`` do ``operation`` on ``topic`` (broker semantics)."""
    for g in acl_plan():
        if g.principal != principal or g.resource != "topic":
            continue
        matches = topic.startswith(g.name) if g.prefixed else topic == g.name
        if matches and g.operation in (operation, "all"):
            return True
    return False


@pytest.mark.parametrize(
    ("principal", "operation", "topic", "allowed"),
    [
        ("proctor", "write", "exam.control", True),
        ("proctor", "write", "proctor.roster", True),
        ("proctor", "write", "platform.flink", False),
        ("proctor", "write", "grading.criterion-states", False),
        ("submission", "write", "exam.control", True),
        ("submission", "write", "proctor.roster", False),
        ("submission", "read", "exam.control", False),
        ("collector", "write", "platform.flink", True),
        ("collector", "write", "platform.collectors", True),
        ("collector", "write", "exam.control", False),
        ("collector", "write", "proctor.roster", False),
        ("collector", "write", "grading.dlq", False),
        ("grader", "read", "exam.control", True),
        ("grader", "read", "platform.dbt", True),
        ("grader", "read", "proctor.roster", True),
        ("grader", "write", "grading.criterion-states", True),
        ("grader", "write", "grading.dlq", True),
        ("grader", "write", "proctor-grader-platforms-changelog", True),
        ("grader", "write", "exam.control", False),
        ("grader", "write", "platform.flink", False),
        ("grader", "write", "proctor.roster", False),
    ],
)
def test_what_each_principal_may_do(
    principal: str, operation: str, topic: str, allowed: bool
) -> None:
    assert may(principal, operation, topic) is allowed


def test_the_candidate_may_do_nothing() -> None:
    assert grants_of("candidate") == set()
    assert "candidate" in PRINCIPALS


def test_groups_are_the_graders_and_the_pollers_consumers() -> None:
    groups = {
        (g.principal, g.name, g.operation, g.prefixed) for g in acl_plan() if g.resource == "group"
    }
    assert groups == {
        ("grader", "proctor-grader", "all", True),
        ("collector", "proctor-collector-", "read", True),  # polling.py's group ids
    }


def test_the_prefix_moves_every_topic_grant() -> None:
    plain = acl_plan()
    moved = acl_plan("t1.", grader_app_id="t1.grader", collector_group="t1.collector-")
    assert len(plain) == len(moved)
    assert all(g.name.startswith("t1.") for g in moved)
    assert ("topic", "t1.exam.control", "write", False) in grants_of("proctor", "t1.")


def test_bindings_are_allow_rules_for_users_from_any_host() -> None:
    from confluent_kafka.admin import (  # type: ignore[attr-defined]
        AclOperation,
        AclPermissionType,
        ResourcePatternType,
        ResourceType,
    )

    (binding,) = acl_bindings([Grant("collector", "topic", "platform.", "write", True)])
    assert binding.restype == ResourceType.TOPIC and binding.name == "platform."
    assert binding.resource_pattern_type == ResourcePatternType.PREFIXED
    assert binding.principal == "User:collector" and binding.host == "*"
    assert binding.operation == AclOperation.WRITE
    assert binding.permission_type == AclPermissionType.ALLOW


# --- certificates -------------------------------------------------------------------------
def test_certificates_chain_to_the_ca_and_name_the_listener(tmp_path: Path) -> None:
    files = tls.ensure_tls(tmp_path, ("localhost", "127.0.0.1"), "broker-cn")
    ca = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    chain = x509.load_pem_x509_certificates(files.server_pem.read_bytes())
    server = chain[0]
    assert chain[1] == ca
    server.verify_directly_issued_by(ca)
    sans = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["localhost"]
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    purposes = server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(purposes) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert isinstance(server.public_key(), ec.EllipticCurvePublicKey)
    assert b"BEGIN PRIVATE KEY" in files.server_pem.read_bytes()
    assert stat.S_IMODE(files.server_pem.stat().st_mode) == 0o600


def test_certificates_are_kept_while_valid_and_remade_near_expiry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = tls.ensure_tls(tmp_path, ("localhost",), "b").server_pem.read_bytes()
    assert tls.ensure_tls(tmp_path, ("localhost",), "b").server_pem.read_bytes() == first
    monkeypatch.setattr(tls, "RENEW_MARGIN", tls.VALIDITY + dt.timedelta(days=1))
    assert tls.ensure_tls(tmp_path, ("localhost",), "b").server_pem.read_bytes() != first


# --- the component ------------------------------------------------------------------------
@pytest.fixture
def secure(tmp_path: Path) -> SecureKafkaComponent:
    component = SecureKafkaComponent(StackConfig(state_dir=tmp_path / "stack"))
    component.dir.mkdir(parents=True)
    component._ensure_credentials(lambda _m: None)
    return component


def test_ports_are_its_own(secure: SecureKafkaComponent) -> None:
    c = secure.config
    plain = {
        c.kafka_port,
        c.kafka_controller_port,
        c.registry_port,
        c.postgres_port,
        c.trino_port,
        *range(18091, 18096),
        9464,
    }
    assert set(secure.ports()) == {19094, 19095}
    assert not set(secure.ports()) & plain
    assert secure.address == "127.0.0.1:19094"


def test_only_tls_listeners_and_an_authorizer_that_denies_by_default(
    secure: SecureKafkaComponent,
) -> None:
    props = secure.server_properties()
    assert props["listeners"] == "SASL_SSL://127.0.0.1:19094,CONTROLLER://127.0.0.1:19095"
    assert props["listener.security.protocol.map"] == "CONTROLLER:SSL,SASL_SSL:SASL_SSL"
    assert "PLAINTEXT" not in props["listeners"]
    assert props["listener.name.controller.ssl.client.auth"] == "required"
    assert props["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert props["authorizer.class.name"].endswith("StandardAuthorizer")
    assert props["allow.everyone.if.no.acl.found"] == "false"
    assert props["super.users"] == "User:admin;User:CN=proctor-kafka-broker"
    assert Path(props["ssl.keystore.location"]).parent == secure.dir / "tls"


def test_every_principal_gets_a_scram_user_with_its_own_password(
    secure: SecureKafkaComponent,
) -> None:
    creds = secure.credentials()
    assert set(creds) == set(PRINCIPALS)
    assert len(set(creds.values())) == len(PRINCIPALS)
    args = secure.storage_format_args()
    assert args.count("--add-scram") == len(PRINCIPALS)
    assert f"SCRAM-SHA-512=[name=grader,password={creds['grader']}]" in args
    assert stat.S_IMODE(secure.credentials_file.stat().st_mode) == 0o600


def test_credentials_persist_and_a_new_principal_means_a_fresh_cluster(
    secure: SecureKafkaComponent,
) -> None:
    before = secure.credentials()
    secure._ensure_credentials(lambda _m: None)
    assert secure.credentials() == before
    secure.data_dir.mkdir(parents=True)
    (secure.data_dir / "meta.properties").write_text("formatted")
    partial = {k: v for k, v in before.items() if k != "candidate"}
    secure.credentials_file.write_text(json.dumps(partial))
    secure._ensure_credentials(lambda _m: None)
    assert not secure.data_dir.exists()
    after = secure.credentials()
    assert {k: after[k] for k in partial} == partial and after["candidate"]


def test_client_env_uses_the_project_variable_names(secure: SecureKafkaComponent) -> None:
    env = secure.client_env("collector")
    assert env == {
        "PROCTOR_KAFKA_BOOTSTRAP": "127.0.0.1:19094",
        "PROCTOR_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "PROCTOR_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "PROCTOR_KAFKA_SASL_USERNAME": "collector",
        "PROCTOR_KAFKA_SASL_PASSWORD": secure.credentials()["collector"],
        "PROCTOR_KAFKA_SSL_CA_LOCATION": str(secure.ca_file),
    }


def test_the_class_path_is_the_plain_brokers(secure: SecureKafkaComponent) -> None:
    assert secure.mvn_dir == secure.config.component_dir("kafka") / "mvn"


def test_it_is_optional_for_a_plain_up_and_hidden_from_status_while_stopped(
    tmp_path: Path,
) -> None:
    manager = StackManager(StackConfig(state_dir=tmp_path / "stack"))
    assert "kafka-secure" in manager.names
    assert "kafka-secure" not in [c.name for c in manager.plan([])]
    assert [c.name for c in manager.plan(["kafka-secure"])] == ["kafka-secure"]
    assert "kafka-secure" not in {row.name for row in manager.status()}


def test_credentials_command_prints_exports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROCTOR_STACK_DIR", str(tmp_path / "stack"))
    runner = CliRunner()
    missing = runner.invoke(cli, ["stack", "credentials", "grader"])
    assert missing.exit_code == 1 and "proctor stack up kafka-secure" in missing.output
    component = SecureKafkaComponent(StackConfig.from_env())
    component.dir.mkdir(parents=True)
    component._ensure_credentials(lambda _m: None)
    result = runner.invoke(cli, ["stack", "credentials", "grader"])
    assert result.exit_code == 0
    assert "export PROCTOR_KAFKA_SASL_USERNAME=grader" in result.output
    unknown = runner.invoke(cli, ["stack", "credentials", "mallory"])
    assert unknown.exit_code == 1 and "no principal 'mallory'" in unknown.output


@pytest.mark.parametrize(
    ("argv", "names"),
    [
        (["--secure"], ["postgres", "kafka", "registry", "trino", "kafka-secure"]),
        (["kafka", "--secure"], ["kafka", "kafka-secure"]),
        (["kafka-secure"], ["kafka-secure"]),
        ([], []),
    ],
)
def test_up_secure_adds_the_secured_broker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, argv: list[str], names: list[str]
) -> None:
    monkeypatch.setenv("PROCTOR_STACK_DIR", str(tmp_path / "stack"))
    monkeypatch.delenv("PROCTOR_STACK_MODE", raising=False)
    asked: list[list[str]] = []

    def up(self: StackManager, wanted: list[str]) -> list[object]:
        asked.append(list(wanted))
        return []

    monkeypatch.setattr(StackManager, "up", up)
    result = CliRunner().invoke(cli, ["stack", "up", *argv])
    assert result.exit_code == 0, result.output
    assert asked == [names]
