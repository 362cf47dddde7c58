"""Extensions for the engine, read from PostgreSQL with a short cache, and registrations
written behind so the event loop never waits for the database."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from media.engine import DirectoryEntry
from media.sip.registrar import Binding
from store import extensions
from store.database import Database
from store.extensions import Extension, Registration

log = logging.getLogger(__name__)


def _entry(found: Extension) -> DirectoryEntry:
    return DirectoryEntry(
        owner=found.account_sid,
        extension=found.extension,
        realm=found.realm,
        ha1={"MD5": found.ha1_md5, "SHA-256": found.ha1_sha256},
    )


class StoreDirectory:
    """`media.engine.Directory` on PostgreSQL. Lookups are cached for `ttl` seconds
    (misses too, so a flood of INVITEs from strangers costs one query per caller)."""

    def __init__(
        self,
        db: Database,
        node: str,
        *,
        ttl: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self.node = node
        self.ttl = ttl
        self.clock = clock
        self._cache: dict[tuple[str, ...], tuple[float, DirectoryEntry | None]] = {}
        self._lock = threading.Lock()
        # One writer keeps an extension's registrations in the order they happened.
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="registrations")

    def _cached(
        self, key: tuple[str, ...], load: Callable[[], Extension | None]
    ) -> DirectoryEntry | None:
        now = self.clock()
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None and hit[0] > now:
                return hit[1]
        found = load()
        entry = _entry(found) if found else None
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[key] = (now + self.ttl, entry)
        return entry

    def extension(self, domain: str, user: str) -> DirectoryEntry | None:
        def load() -> Extension | None:
            with self.db.transaction() as conn:
                return extensions.find_extension(conn, domain, user)

        return self._cached(("domain", domain.lower(), user), load)

    def owner_extension(self, owner: str, extension: str) -> DirectoryEntry | None:
        def load() -> Extension | None:
            with self.db.transaction() as conn:
                return extensions.get_extension(conn, owner, extension)

        return self._cached(("owner", owner, extension), load)

    def save_bindings(self, owner: str, extension: str, bindings: list[Binding]) -> None:
        rows = [
            Registration(
                contact=b.contact,
                expires_at=datetime.fromtimestamp(b.expires_at, tz=UTC),
                call_id=b.call_id,
                cseq=b.cseq,
                received=f"{b.received[0]}:{b.received[1]}" if b.received else None,
                transport=b.transport,
                q=b.q,
                instance=b.instance,
                user_agent=b.user_agent,
                node=self.node,
            )
            for b in bindings
        ]
        self._writer.submit(self._write, owner, extension, rows)

    def _write(self, owner: str, extension: str, rows: list[Registration]) -> None:
        try:
            with self.db.transaction() as conn:
                extensions.replace_registrations(conn, owner, extension, rows)
        except Exception:
            log.exception("registrations of %s/%s not saved", owner, extension)

    def node_bindings(self) -> list[tuple[str, str, Binding]]:
        """The live registrations this node saved: (account, extension, binding)."""
        with self.db.transaction() as conn:
            rows = extensions.node_registrations(conn, self.node)
        result = []
        for owner, extension, reg in rows:
            received = None
            if reg.received:
                host, _, port = reg.received.rpartition(":")
                received = (host.strip("[]"), int(port))
            binding = Binding(
                aor=f"{owner}/{extension}",
                contact=reg.contact,
                expires_at=reg.expires_at.timestamp(),
                call_id=reg.call_id,
                cseq=reg.cseq,
                received=received,
                transport=reg.transport,
                q=reg.q,
                instance=reg.instance,
                user_agent=reg.user_agent,
            )
            result.append((owner, extension, binding))
        return result

    def close(self) -> None:
        self._writer.shutdown(wait=True)
