"""``proctor collect webhooks``: every push source on one port (one process, one producer).

The same routes as the single-source commands (``/platforms/<id>/argocd``, ``.../k8s-audit``,
``.../gitops``, ``.../api/v1/lineage``, ``.../trino``), for small installations and the
local stack; each source still needs its own secret (or the shared one).
"""

from __future__ import annotations

from services.collectors import argocd, gitops, k8s_audit, openlineage, trino_events
from services.collectors.webhook import WebhookSource
from services.collectors.webhook_cli import receiver_command

ALL_SOURCES: tuple[WebhookSource, ...] = (
    argocd.SOURCE,
    k8s_audit.SOURCE,
    gitops.SOURCE,
    openlineage.SOURCE,
    trino_events.SOURCE,
)
DEFAULT_PORT = 18090

command = receiver_command(
    "webhooks",
    ALL_SOURCES,
    "Receive every push source (Argo CD, Kubernetes audit, Git host, OpenLineage, Trino) on one port.",
    default_port=DEFAULT_PORT,
)
