"""One parser of ``PROCTOR_KAFKA_*`` security variables for every client library.

confluent-kafka (librdkafka properties), aiokafka (keyword arguments) and Faust (broker
credentials) get their settings from :class:`KafkaSecurity`; a combination that cannot
work is a ConfigError naming the variable, and the password never shows in a repr.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from services.contract.settings import ClientSettings, KafkaSecurity
from services.errors import ConfigError
from services.grader.settings import GraderSettings
from services.settings import load_settings
from services.stack.tls import ensure_tls

pytestmark = pytest.mark.unit

VARS = (
    "PROCTOR_KAFKA_SECURITY_PROTOCOL",
    "PROCTOR_KAFKA_SASL_MECHANISM",
    "PROCTOR_KAFKA_SASL_USERNAME",
    "PROCTOR_KAFKA_SASL_PASSWORD",
    "PROCTOR_KAFKA_SSL_CA_LOCATION",
)


@pytest.fixture
def ca_file(tmp_path: Path) -> str:
    return str(ensure_tls(tmp_path / "tls", ("localhost", "127.0.0.1"), "broker").ca_cert)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def sasl_ssl_env(ca: str) -> dict[str, str]:
    return {
        "PROCTOR_KAFKA_SECURITY_PROTOCOL": "sasl_ssl",
        "PROCTOR_KAFKA_SASL_MECHANISM": "scram-sha-512",
        "PROCTOR_KAFKA_SASL_USERNAME": "grader",
        "PROCTOR_KAFKA_SASL_PASSWORD": "s3cret-pw",
        "PROCTOR_KAFKA_SSL_CA_LOCATION": ca,
    }


def test_nothing_set_is_plaintext_with_no_extra_settings() -> None:
    sec = KafkaSecurity.from_env({})
    assert sec.protocol == "PLAINTEXT"
    assert sec.librdkafka() == {}
    assert sec.aiokafka() == {"security_protocol": "PLAINTEXT"}
    assert sec.ssl_context() is None and sec.faust_credentials() is None


def test_sasl_ssl_becomes_librdkafka_properties(ca_file: str) -> None:
    sec = KafkaSecurity.from_env(sasl_ssl_env(ca_file))
    assert sec.librdkafka() == {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "grader",
        "sasl.password": "s3cret-pw",
        "ssl.ca.location": ca_file,
    }


def test_sasl_ssl_becomes_aiokafka_arguments_with_a_verifying_context(ca_file: str) -> None:
    kwargs = KafkaSecurity.from_env(sasl_ssl_env(ca_file)).aiokafka()
    context = kwargs.pop("ssl_context")
    assert kwargs == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "grader",
        "sasl_plain_password": "s3cret-pw",
    }
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    # the stack's CA is what the context trusts
    assert [c["subject"] for c in context.get_ca_certs()] == [
        (
            (("organizationName", "proctor local stack"),),
            (("commonName", "proctor local stack CA"),),
        )
    ]


def test_faust_credentials_carry_the_same_settings(ca_file: str) -> None:
    creds = KafkaSecurity.from_env(sasl_ssl_env(ca_file)).faust_credentials()
    assert (creds.username, creds.password, str(creds.mechanism.value)) == (
        "grader",
        "s3cret-pw",
        "SCRAM-SHA-512",
    )
    assert isinstance(creds.ssl_context, ssl.SSLContext)
    tls_only = KafkaSecurity("SSL", ca_location=ca_file).faust_credentials()
    assert isinstance(tls_only.context, ssl.SSLContext)


def test_sasl_plaintext_has_no_tls_and_mechanism_defaults_to_scram_512() -> None:
    sec = KafkaSecurity.from_env(
        {
            "PROCTOR_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
            "PROCTOR_KAFKA_SASL_USERNAME": "u",
            "PROCTOR_KAFKA_SASL_PASSWORD": "p",
            "PROCTOR_KAFKA_SSL_CA_LOCATION": "/nowhere/ca.crt",  # unused without TLS
        }
    )
    assert sec.librdkafka() == {
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "u",
        "sasl.password": "p",
    }
    assert "ssl_context" not in sec.aiokafka()


def test_credentials_are_ignored_without_sasl() -> None:
    # a pod gets the Secret even where the ConfigMap says PLAINTEXT
    sec = KafkaSecurity.from_env(
        {"PROCTOR_KAFKA_SASL_USERNAME": "u", "PROCTOR_KAFKA_SASL_PASSWORD": "p"}
    )
    assert sec.librdkafka() == {}


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PROCTOR_KAFKA_SECURITY_PROTOCOL": "TLS"}, "PROCTOR_KAFKA_SECURITY_PROTOCOL='TLS'"),
        (
            {"PROCTOR_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "PROCTOR_KAFKA_SASL_USERNAME": "u"},
            "needs PROCTOR_KAFKA_SASL_PASSWORD",
        ),
        (
            {"PROCTOR_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"},
            "needs PROCTOR_KAFKA_SASL_USERNAME and PROCTOR_KAFKA_SASL_PASSWORD",
        ),
        (
            {
                "PROCTOR_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                "PROCTOR_KAFKA_SASL_MECHANISM": "GSSAPI",
                "PROCTOR_KAFKA_SASL_USERNAME": "u",
                "PROCTOR_KAFKA_SASL_PASSWORD": "p",
            },
            "PROCTOR_KAFKA_SASL_MECHANISM='GSSAPI' is not supported",
        ),
    ],
)
def test_settings_that_cannot_work_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        KafkaSecurity.from_env(env)
    assert message in str(err.value)


def test_a_missing_ca_file_is_an_error_when_a_client_uses_it(tmp_path: Path) -> None:
    sec = KafkaSecurity("SSL", ca_location=str(tmp_path / "absent.crt"))
    with pytest.raises(ConfigError, match=r"PROCTOR_KAFKA_SSL_CA_LOCATION=.*no such file"):
        sec.librdkafka()
    with pytest.raises(ConfigError, match="no such file"):
        sec.aiokafka()


def test_the_password_stays_out_of_reprs(ca_file: str, clean_env: pytest.MonkeyPatch) -> None:
    for name, value in sasl_ssl_env(ca_file).items():
        clean_env.setenv(name, value)
    assert "s3cret-pw" not in repr(load_settings().kafka.security)
    assert "s3cret-pw" not in repr(ClientSettings.from_env(registry_url="http://r"))
    assert "s3cret-pw" not in repr(GraderSettings())


def test_every_client_reads_the_same_environment(
    ca_file: str, clean_env: pytest.MonkeyPatch
) -> None:
    for name, value in sasl_ssl_env(ca_file).items():
        clean_env.setenv(name, value)
    client = ClientSettings.from_env(bootstrap="b:1", registry_url="http://r")
    grader = GraderSettings()
    assert client.security == grader.kafka_security == load_settings().kafka.security
    assert client.kafka_config(**{"group.id": "g"}) == {
        "bootstrap.servers": "b:1",
        **load_settings().kafka.security.librdkafka(),
        "group.id": "g",
    }
    assert grader.aiokafka_auth()["broker_credentials"].username == "grader"


def test_a_bad_environment_fails_the_grader_cli_with_the_variable(
    clean_env: pytest.MonkeyPatch,
) -> None:
    from click.testing import CliRunner

    from services.grader.cli import worker

    clean_env.setenv("PROCTOR_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    result = CliRunner().invoke(worker, [])
    assert result.exit_code == 2
    assert "PROCTOR_KAFKA_SASL_USERNAME" in result.output


@pytest.mark.parametrize("protocol", ["SASL_SSL", "SASL_PLAINTEXT", "SSL"])
def test_faust_hands_aiokafka_what_aiokafka_gets_directly(ca_file: str, protocol: str) -> None:
    # the integration tests drive aiokafka with KafkaSecurity.aiokafka(); the worker goes
    # through Faust's credentials, which must come out as the same arguments
    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

    sec = KafkaSecurity(protocol, "SCRAM-SHA-512", "grader", "pw", ca_location=ca_file)
    through_faust = dict(credentials_to_aiokafka_auth(sec.faust_credentials()))
    direct = sec.aiokafka()
    assert through_faust.keys() == direct.keys() | ({"ssl_context"} if not sec.tls else set())
    for key, value in direct.items():
        if key == "ssl_context":
            assert through_faust[key].get_ca_certs() == value.get_ca_certs()
        else:
            assert through_faust[key] == value, key
