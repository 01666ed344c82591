"""The receiver commands: secrets only from the environment, derived secrets printed on demand."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from services.collectors.argocd import command as argocd
from services.collectors.receivers import command as webhooks
from services.collectors.webhook_auth import SHARED_SECRET_ENV, derive_secret, secret_env

pytestmark = pytest.mark.unit

MASTER = "master-secret-0123456789abcdef"


def test_print_secret_derives_one_per_source_and_platform() -> None:
    env = {SHARED_SECRET_ENV: MASTER}
    result = CliRunner().invoke(webhooks, ["--print-secret", "basecamp-alice"], env=env)
    assert result.exit_code == 0, result.output
    rows = dict(line.split("\t") for line in result.stdout.splitlines())
    assert set(rows) == {"argocd", "k8s-audit", "gitops", "openlineage", "trino"}
    assert rows["gitops"] == derive_secret(MASTER, "gitops", "basecamp-alice", 1)
    assert len(set(rows.values())) == 5 and MASTER not in result.stdout


def test_a_revoked_generation_gets_another_secret() -> None:
    env = {SHARED_SECRET_ENV: MASTER}
    args = ["--print-secret", "basecamp-alice", "--generation", "2"]
    result = CliRunner().invoke(webhooks, args, env=env)
    assert result.exit_code == 0, result.output
    rows = dict(line.split("\t") for line in result.stdout.splitlines())
    assert rows["gitops"] == derive_secret(MASTER, "gitops", "basecamp-alice", 2)
    assert rows["gitops"] != derive_secret(MASTER, "gitops", "basecamp-alice", 1)


def test_a_receiver_without_a_secret_does_not_start() -> None:
    env = {secret_env("argocd"): "", SHARED_SECRET_ENV: ""}
    result = CliRunner().invoke(argocd, ["--port", "0"], env=env)
    assert result.exit_code != 0
    assert "no secret for the argocd receiver: set PROCTOR_WEBHOOK_SECRET_ARGOCD" in result.output


def test_a_short_secret_does_not_start() -> None:
    result = CliRunner().invoke(argocd, ["--port", "0"], env={secret_env("argocd"): "hunter2"})
    assert result.exit_code != 0
    assert "use at least 16" in result.output
    assert "hunter2" not in result.output


def test_help_names_the_secret_variable() -> None:
    result = CliRunner().invoke(argocd, ["--help"])
    assert result.exit_code == 0
    assert "PROCTOR_WEBHOOK_SECRET_ARGOCD" in result.output
