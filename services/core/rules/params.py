"""Parameter pieces several rule kinds share: event matchers and asset references."""

from __future__ import annotations

from typing import Any

from pydantic import field_validator, model_validator

from services.core.contract_fields import SIGNAL_FIELDS
from services.core.facts.keyed import EarliestSpec, KeyRule
from services.core.matching import ASSET_NAMES
from services.core.rules.base import Params
from services.core.where import Cond, parse_cond


def parse_where(value: Any) -> tuple[Cond, ...]:
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        raise ValueError("where must be a list of conditions")
    return tuple(v if isinstance(v, Cond) else parse_cond(v) for v in value)


def check_asset(name: str) -> str:
    if name not in ASSET_NAMES:
        raise ValueError(
            f"{name!r} is not an asset of pipeline.declared; use one of {sorted(ASSET_NAMES)}"
        )
    return name


def check_fields(event: str, conds: tuple[Cond, ...], extra: tuple[str, ...] = ()) -> None:
    fields = SIGNAL_FIELDS.get(event)
    if fields is None:
        raise ValueError(
            f"{event!r} is not a platform signal type; use one of {sorted(SIGNAL_FIELDS)}"
        )
    for name in [c.field for c in conds] + [e for e in extra if e]:
        if name not in fields:
            raise ValueError(f"{event} has no field {name!r}; its fields are {sorted(fields)}")


class AssetRef(Params):
    """Which field of the event names which declared asset, e.g. subject = "{}-value" of cdc_topic."""

    field: str
    name: str
    format: str = "{}"

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_asset(v)

    @field_validator("format")
    @classmethod
    def _format(cls, v: str) -> str:
        if v.count("{}") != 1:
            raise ValueError("format must contain '{}' once, where the asset name goes")
        return v


class Matcher(Params):
    """The earliest event of a type, passing conditions, naming an asset (optional)."""

    says: str
    event: str
    where: tuple[Cond, ...] = ()
    asset: AssetRef | None = None
    #: count only events at or after the part's start (held back until it is known)
    after_part_start: bool = False

    @field_validator("where", mode="before")
    @classmethod
    def _where(cls, v: Any) -> tuple[Cond, ...]:
        return parse_where(v)

    @model_validator(mode="after")
    def _fields(self) -> Matcher:
        check_fields(self.event, self.where, (self.asset.field,) if self.asset else ())
        return self

    def fact_spec(self, part: str) -> EarliestSpec:
        key = KeyRule((self.asset.field,)) if self.asset else KeyRule()
        return EarliestSpec(
            event=self.event,
            where=self.where,
            key=key,
            after=f"part:{part}" if self.after_part_start else None,
        )

    def declared(self, assets: dict[str, str] | Any) -> str | None:
        """The key to look for: the formatted asset name; None when no asset is named."""
        if self.asset is None:
            return None
        name = assets.get(self.asset.name, "")
        return self.asset.format.format(name) if name else ""
