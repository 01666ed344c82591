"""A small JSON-over-HTTP client shared by the REST collectors, with errors that say where."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from services.errors import ProctorError

NOT_FOUND = 404


class SourceError(ProctorError):
    """The watched source failed or answered something unexpected (the poller backs off).

    ``kind`` is whose failure it is, as the heartbeat reports it (see
    :mod:`services.collectors.blindness`): ``proctor_side`` unless the candidate's
    service answered with a server error (``platform``) or with something that is not
    what it should be (``payload``).
    """

    def __init__(self, message: str, kind: str = "proctor_side") -> None:
        super().__init__(message)
        self.kind = kind


class JsonClient:
    """GET/POST JSON against one base URL; a non-2xx answer raises SourceError."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = 15.0,
        auth: tuple[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.client = httpx.Client(
            base_url=self.base_url, timeout=timeout_s, auth=auth, headers=dict(headers or {})
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        allow: tuple[int, ...] = (),
    ) -> tuple[int, Any]:
        """(status, decoded JSON or None); statuses in ``allow`` are returned, not raised."""
        try:
            resp = self.client.request(method, path, params=params, json=json)
        except httpx.HTTPError as exc:
            raise SourceError(
                f"{method} {self.base_url}{path}: {type(exc).__name__}: {exc}"
            ) from exc
        if resp.status_code in allow:
            return resp.status_code, None
        if not resp.is_success:
            body = resp.text[:300].replace("\n", " ")
            raise SourceError(
                f"{method} {self.base_url}{path} answered {resp.status_code}: {body}",
                "platform" if resp.status_code >= 500 else "proctor_side",
            )
        try:
            return resp.status_code, resp.json()
        except ValueError as exc:
            raise SourceError(
                f"{method} {self.base_url}{path}: answer is not JSON: {exc}", "payload"
            ) from exc

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)[1]

    def close(self) -> None:
        self.client.close()


def expect(value: Any, kind: type, where: str) -> Any:
    """``value`` if it is a ``kind``; a SourceError naming the answer otherwise."""
    if not isinstance(value, kind):
        raise SourceError(
            f"{where}: expected a JSON {kind.__name__}, got {type(value).__name__}", "payload"
        )
    return value
