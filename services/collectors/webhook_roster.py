"""The roster as the receivers' and the submission endpoint's list of known platforms.

A :class:`LiveRoster` wraps a :class:`~services.trust.roster.RosterView` (the signed
``proctor.roster`` topic) and refreshes it in a background thread: every ``interval_s``,
and soon after a lookup missed (at most once per ``min_gap_s``, so a flood of made-up
platform ids costs one refresh a second, not one per request). A platform enrolled a
moment ago is therefore known within about a second; a revoked one is refused as soon as
the refresh has read the revoke.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping

from services.contract.settings import ClientSettings
from services.trust.keys import Keyring
from services.trust.roster import RosterView

log = logging.getLogger("proctor.collectors.roster")


class LiveRoster:
    """Known platforms (their generation) and their exam, from a refreshed RosterView."""

    def __init__(self, view: RosterView, interval_s: float = 15.0, min_gap_s: float = 1.0) -> None:
        self.view = view
        self.interval_s = interval_s
        self.min_gap_s = min_gap_s
        self.error: str | None = None
        self._missed = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def from_env(cls, client: ClientSettings, env: Mapping[str, str] | None = None) -> LiveRoster:
        """The roster of ``client``'s prefix, verified with PROCTOR_TRUSTED_KEYS (of ``env``:
        the entry point's settings, ``TrustSettings.as_env``), read once now."""
        view = RosterView(client, Keyring.from_env(env))
        view.refresh()
        log.info("roster: %d platforms (%d records ignored)", len(view), view.ignored)
        return cls(view)

    def __call__(self, platform_id: str) -> int | None:
        entry = self.view.get(platform_id)
        if entry is None:
            self._missed.set()
            return None
        return None if entry.revoked else entry.generation

    def exam_of(self, platform_id: str) -> str | None:
        entry = self.view.get(platform_id)
        return None if entry is None or entry.revoked else entry.exam_id

    def health_error(self) -> str | None:
        return self.error

    def _run(self) -> None:
        while not self._stop.is_set():
            self._missed.wait(self.interval_s)
            self._missed.clear()
            if self._stop.is_set():
                return
            try:
                self.view.refresh()
                self.error = None
            except Exception as exc:  # keep serving the entries held; say so in health
                self.error = f"the roster could not be refreshed: {exc}"
                log.warning("%s", self.error)
            self._stop.wait(self.min_gap_s)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="roster", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._missed.set()
        if self._thread is not None:
            self._thread.join(15)
        self.view.close()
