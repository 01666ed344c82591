"""Rule kinds a rubric can name. Importing this package registers all of them."""

from services.core.rules import (
    dbt,
    generic,
    governance,
    incident,
    lineage,
    overall,
    pipeline,
    text,
    volume,
)
from services.core.rules.registry import REGISTRY

__all__ = [
    "REGISTRY",
    "dbt",
    "generic",
    "governance",
    "incident",
    "lineage",
    "overall",
    "pipeline",
    "text",
    "volume",
]
