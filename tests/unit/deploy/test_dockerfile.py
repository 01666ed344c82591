"""The Dockerfile, read as text (no Docker engine runs here): the rules it must keep.

Pinned base, two stages (wheels built in one, installed offline in the other), a fixed
non-root uid that the Kubernetes manifests also use, a health check on /healthz at the
port the worker serves, ``proctor`` as entrypoint, nothing secret, and a .dockerignore
that sends exactly what the build copies.
"""

from __future__ import annotations

import fnmatch
import re
import tomllib
from pathlib import Path

import pytest
import yaml

from services.grader.settings import GraderSettings

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[3]


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in (REPO / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    assert not pending, "the Dockerfile ends inside a continued line"
    return out


def args(name: str) -> list[str]:
    return [rest for word, rest in instructions() if word == name]


def env() -> dict[str, str]:
    values: dict[str, str] = {}
    for rest in args("ENV"):
        for key, value in re.findall(r"(\w+)=(\S+)", rest):
            values[key] = value
    return values


def test_base_image_is_pinned_to_a_patch_release() -> None:
    default = next(a for a in args("ARG") if a.startswith("PYTHON_IMAGE="))
    image = default.split("=", 1)[1]
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", image), image
    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    assert requires == ">=3.11"
    froms = args("FROM")
    assert froms == ["${PYTHON_IMAGE} AS builder", "${PYTHON_IMAGE} AS runtime"]


def test_wheels_are_built_in_one_stage_and_installed_offline_in_the_other() -> None:
    runs = args("RUN")
    assert any("pip wheel --wheel-dir /wheels ." in r for r in runs)
    install = next(r for r in runs if "--find-links /wheels" in r)
    assert "--mount=type=bind,from=builder,source=/wheels" in install
    assert "--no-index" in install and "install" in install
    assert "proctor --version" in install  # the entrypoint works before the image is done


def test_runs_as_the_fixed_uid_the_manifests_use() -> None:
    uid_arg = next(a for a in args("ARG") if a.startswith("PROCTOR_UID="))
    uid = int(uid_arg.split("=", 1)[1])
    assert uid >= 10000
    assert args("USER") == ["${PROCTOR_UID}:${PROCTOR_UID}"]
    for path in [
        REPO / "k8s/base/proctor/worker.yaml",
        REPO / "k8s/base/proctor/collectors/defaults.yaml",
        REPO / "k8s/pollers/base/deployment.yaml",
        REPO / "k8s/base/proctor/schemas-job.yaml",
    ]:
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc["kind"] in ("Deployment", "Job"):
                assert doc["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == uid, (
                    path.name
                )


def test_health_check_and_port_are_the_workers() -> None:
    port = GraderSettings().http_port
    values = env()
    assert values["PROCTOR_HTTP_PORT"] == str(port)
    assert values["PROCTOR_HTTP_HOST"] == "0.0.0.0"  # the container's own network namespace
    assert args("EXPOSE") == [str(port)]
    (healthcheck,) = args("HEALTHCHECK")
    assert "/healthz" in healthcheck and "PROCTOR_HTTP_PORT" in healthcheck
    # State goes under /var/lib/proctor, which the image creates for its user.
    assert values["PROCTOR_DATA_DIR"].startswith("/var/lib/proctor/")
    assert any(
        "install -d -o proctor -g proctor" in r and "/var/lib/proctor" in r for r in args("RUN")
    )


def test_entrypoint_is_the_proctor_command() -> None:
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert args("ENTRYPOINT") == ['["proctor"]']
    assert "proctor" in scripts


def test_nothing_secret_is_built_in() -> None:
    for word in ("ENV", "ARG", "LABEL"):
        for rest in args(word):
            assert not re.search(r"PASSWORD|SECRET|TOKEN|USER_INFO|API_KEY", rest, re.I), rest


def dockerignore_sends(path: str, patterns: list[str]) -> bool:
    """Whether the build context keeps ``path`` (last matching pattern wins, ! re-includes)."""
    keep = True
    for pattern in patterns:
        negate = pattern.startswith("!")
        body = pattern[1:] if negate else pattern
        body = body.rstrip("/")
        if (
            fnmatch.fnmatch(path, body)
            or path.startswith(body + "/")
            or fnmatch.fnmatch(path, body.replace("**/", "*/"))
        ):
            keep = negate
    return keep


def test_dockerignore_sends_what_the_build_copies_and_nothing_else() -> None:
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*", "start from nothing and re-include what the build needs"
    copied = []
    for rest in args("COPY"):
        if rest.startswith("--from"):
            continue
        copied += rest.split()[:-1]
    assert copied == ["pyproject.toml", "README.md", "schemas/", "services/"]
    for source in copied:
        assert dockerignore_sends(source.rstrip("/"), patterns), source
        assert (REPO / source).exists(), source
    for never in [".venv", ".stack", ".git", "tests", "k8s", ".env", "services/x/.env", "key.pem"]:
        assert not dockerignore_sends(never, patterns), never
    # services/contract/avsc links to ../../schemas: both must be in the context.
    assert (REPO / "services/contract/avsc").resolve() == (REPO / "schemas").resolve()
