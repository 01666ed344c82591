"""A real Argo CD (repo server, application controller, notifications controller, Redis)
against a real kube-apiserver, with a Git repository served by ``git daemon``.

Register with ``pytest_plugins = ["tests.platform_fixtures.argocd"]`` in a test module.
The Argo CD binary is never built here (35 min): without scripts/build-argocd.sh's cache
the tests that use it are skipped, saying so.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from services.errors import StackError
from services.platform.argocd import ArgoBinary, ArgoCD, GitDaemon, NotificationSink, ensure_binary
from services.stack.kubernetes import AuditSink, Identity, KubeCluster, ensure_binaries, free_port

#: the identity Argo CD's controllers act as: its service account's token user
ARGO_IDENTITY = Identity(
    "system:serviceaccount:argocd:argocd-application-controller",
    "argo-" + uuid.uuid4().hex,
    ("system:serviceaccounts", "system:serviceaccounts:argocd"),
)


@dataclass
class ArgoPlatform:
    kube: KubeCluster
    git: GitDaemon
    argo: ArgoCD


@pytest.fixture(scope="module")
def argocd_binary() -> ArgoBinary:
    try:
        return ensure_binary()
    except StackError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def argocd_platform(
    argocd_binary: ArgoBinary, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[NotificationSink], ArgoPlatform]]:
    """``argocd_platform(sink)``: an API server, a git daemon and an Argo CD whose
    notifications go to ``sink``; everything started is stopped after the module."""
    stack = contextlib.ExitStack()
    made: list[ArgoPlatform] = []

    def make(sink: NotificationSink) -> ArgoPlatform:
        workdir = tmp_path_factory.mktemp("argocd")
        # the API server's audit goes nowhere in these tests (no receiver on that port)
        audit = AuditSink(f"http://127.0.0.1:{free_port()}/audit", uuid.uuid4().hex)
        kube = stack.enter_context(
            KubeCluster(workdir / "kube", ensure_binaries(), audit, [ARGO_IDENTITY])
        )
        git = stack.enter_context(GitDaemon(workdir / "git"))
        argo = stack.enter_context(
            ArgoCD(workdir / "argo", argocd_binary, kube, ARGO_IDENTITY.name, sink)
        )
        made.append(ArgoPlatform(kube, git, argo))
        return made[-1]

    with stack:
        yield make
