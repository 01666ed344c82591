"""Shared helpers of the deployment tests: the repository's scripts and manifests."""

from __future__ import annotations

import copy
import functools
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
K8S = REPO / "k8s"


def load_script(name: str) -> ModuleType:
    """A script of scripts/ as a module (scripts/ is not a package)."""
    path = REPO / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"proctor_scripts_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def yaml_docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def kustomize_binary() -> str | None:
    """kustomize as scripts/check-manifests.sh installs it (GOBIN), else one on PATH."""
    gobin = os.environ.get("PROCTOR_GOBIN")
    if not gobin and shutil.which("go"):
        gopath = subprocess.run(
            ["go", "env", "GOPATH"], capture_output=True, text=True, check=False
        ).stdout.strip()
        gobin = str(Path(gopath) / "bin") if gopath else None
    if gobin and (Path(gobin) / "kustomize").is_file():
        return str(Path(gobin) / "kustomize")
    return shutil.which("kustomize")


def kustomize_build(directory: Path) -> list[dict[str, Any]]:
    binary = kustomize_binary()
    if binary is None:
        pytest.skip("kustomize is not installed; scripts/check-manifests.sh installs it")
    return copy.deepcopy(_build(binary, str(directory)))


@functools.cache
def _build(binary: str, directory: str) -> list[dict[str, Any]]:
    proc = subprocess.run([binary, "build", directory], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


@pytest.fixture(scope="session")
def policy() -> ModuleType:
    return load_script("policy_check")


@pytest.fixture(scope="session")
def build() -> Any:
    """``kustomize build`` of a directory, as a list of objects (skips without kustomize)."""
    return kustomize_build


@pytest.fixture(scope="session")
def known_settings() -> set[str]:
    """Every environment variable a proctor process reads (settings, contract, stack)."""
    from services.collectors.settings import PLATFORM_ENV, STATE_DIR_ENV
    from services.collectors.webhook_auth import SHARED_SECRET_ENV
    from services.collectors.webhook_cli import PLATFORMS_FILE_ENV, ROSTER_ENV
    from services.contract import settings as contract
    from services.grader.settings import GraderSettings
    from services.settings import settings_rows

    grader = {f"PROCTOR_{name.upper()}" for name in GraderSettings.model_fields}
    grader |= {row[0] for row in settings_rows()}
    client = {
        contract.BOOTSTRAP_ENV,
        contract.REGISTRY_ENV,
        contract.REGISTRY_AUTH_ENV,
        contract.PREFIX_ENV,
        *contract.KAFKA_SECURITY_ENV,
    }
    collectors = {STATE_DIR_ENV, PLATFORM_ENV, SHARED_SECRET_ENV, PLATFORMS_FILE_ENV, ROSTER_ENV}
    return grader | client | collectors | {"PROCTOR_STACK_DIR"}


@pytest.fixture(scope="session")
def crd_tool() -> ModuleType:
    return load_script("crd_schema")


@pytest.fixture(scope="session")
def k8s_tool() -> ModuleType:
    return load_script("k8s_schemas")
