"""Rating stored legs: exactly one charge per ended leg, and re-rating on request.

The charge's primary key is the leg's sid and every write is "insert unless there is
one", in the same transaction that read the leg: a task repeated after a worker died,
or two workers rating the same leg, leave one charge. Re-rating replaces charges in
place and keeps what they were in `charge_revisions`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import psycopg

from billing.deck import Rate, RateDeck
from billing.rater import Charge, Leg, address_kind, rate
from store import charges as store_charges
from store import extensions as store_extensions
from store import rates as store_rates
from store.calls import lock_call
from store.database import Database


class DeckCache:
    """Decks parsed once per process, and again after an import changed them."""

    def __init__(self) -> None:
        self._decks: dict[str, tuple[datetime, RateDeck]] = {}

    def get(self, conn: psycopg.Connection, deck_sid: str | None) -> RateDeck | None:
        if deck_sid is None:
            return None
        row = store_rates.get_deck(conn, deck_sid)
        if row is None:
            return None
        cached = self._decks.get(deck_sid)
        if cached is None or cached[0] != row.updated_at:
            deck = RateDeck(
                row.name,
                row.currency,
                (Rate(**rate) for rate in store_rates.deck_rates(conn, deck_sid)),
                sid=row.sid,
            )
            cached = self._decks[deck_sid] = (row.updated_at, deck)
        return cached[1]


def charge_values(charge: Charge) -> dict[str, Any]:
    """A charge as the columns of `charges`, with its rate copied."""
    found = charge.rate
    return {
        "call_sid": charge.call_sid,
        "account_sid": charge.account_sid,
        "status": charge.status,
        "reason": charge.reason,
        "leg_class": charge.leg_class,
        "number": charge.number,
        "started_at": charge.started_at,
        "duration": charge.duration,
        "billable_seconds": charge.billable_seconds,
        "deck_sid": charge.deck_sid,
        "deck_name": charge.deck_name,
        "prefix": found.prefix if found and found.kind == "number" else None,
        "description": found.description if found else None,
        "price_per_minute": found.price_per_minute if found else None,
        "connect_fee": found.connect_fee if found else None,
        "first_increment": found.first_increment if found else None,
        "next_increment": found.next_increment if found else None,
        "currency": charge.currency,
        "amount": charge.amount,
    }


class _Rater:
    """Rates rows of `store.charges.leg` in one transaction, looking each account's
    extensions and each deck up once."""

    def __init__(self, conn: psycopg.Connection, decks: DeckCache) -> None:
        self.conn = conn
        self.decks = decks
        self._extensions: dict[str, frozenset[str]] = {}
        self._deck: dict[str | None, RateDeck | None] = {}

    def __call__(self, row: dict[str, Any]) -> Charge:
        account = row["account_sid"]
        extensions = self._extensions.get(account)
        if extensions is None:
            extensions = self._extensions[account] = frozenset(
                e.extension for e in store_extensions.list_extensions(self.conn, account)
            )
        leg = Leg(
            call_sid=row["call_sid"],
            account_sid=account,
            direction=row["direction"],
            from_number=row["from_number"],
            to_number=row["to_number"],
            from_kind=row["from_kind"] or address_kind(row["from_number"], extensions),
            to_kind=row["to_kind"] or address_kind(row["to_number"], extensions),
            started_at=row["created_at"],
            answered_at=row["answered_at"],
            ended_at=row["ended_at"],
            country=row["country"],
        )
        deck_sid = row["rate_deck_sid"]
        if deck_sid not in self._deck:
            self._deck[deck_sid] = self.decks.get(self.conn, deck_sid)
        return rate(leg, self._deck[deck_sid])


def rate_leg(db: Database, call_sid: str, decks: DeckCache | None = None) -> Charge | None:
    """Rate the leg if it has ended and has no charge yet; the new charge, else None."""
    with db.transaction() as conn:
        lock_call(conn, call_sid)  # waits for work on the leg in flight (its ending)
        row = store_charges.leg(conn, call_sid)
        if row is None or row["ended_at"] is None:
            return None
        if store_charges.charges(conn, [call_sid]):
            return None
        charge = _Rater(conn, decks or DeckCache())(row)
        store_charges.insert_charges(conn, [charge_values(charge)])
    return charge


def _batches(conn: psycopg.Connection, batch: int, **query: Any) -> Iterator[list[dict[str, Any]]]:
    after = None
    while rows := store_charges.ended_legs(conn, after=after, limit=batch, **query):
        yield rows
        after = (rows[-1]["created_at"], rows[-1]["call_sid"])


def rate_ended_legs(
    db: Database,
    *,
    since: datetime,
    until: datetime,
    account_sid: str | None = None,
    decks: DeckCache | None = None,
    batch: int = 5000,
) -> int:
    """Rate every ended leg of the period that has no charge (legs whose rating task was
    lost); one transaction per batch. Returns how many charges were added."""
    decks = decks or DeckCache()
    added = 0
    after = None
    while True:
        with db.transaction() as conn:
            rows = store_charges.ended_legs(
                conn,
                since=since,
                until=until,
                account_sid=account_sid,
                without_charge=True,
                after=after,
                limit=batch,
            )
            if not rows:
                return added
            rater = _Rater(conn, decks)
            added += store_charges.insert_charges(conn, [charge_values(rater(r)) for r in rows])
        after = (rows[-1]["created_at"], rows[-1]["call_sid"])


# What a re-rating compares: everything a charge says about money and how it was found.
_COMPARED = tuple(
    c for c in store_charges.CHARGE_COLUMNS if c not in ("call_sid", "account_sid", "started_at")
)


@dataclass(frozen=True, slots=True)
class Change:
    call_sid: str
    started_at: datetime
    before: dict[str, Any] | None  # None: the leg had no charge
    after: dict[str, Any]

    @property
    def fields(self) -> list[str]:
        if self.before is None:
            return list(_COMPARED)
        return [c for c in _COMPARED if self.before[c] != self.after[c]]


@dataclass
class RerateReport:
    since: datetime
    until: datetime
    examined: int = 0
    changes: list[Change] = field(default_factory=list)
    before: dict[str | None, Decimal] = field(default_factory=dict)  # totals by currency
    after: dict[str | None, Decimal] = field(default_factory=dict)
    applied: bool = False

    def lines(self) -> list[str]:
        def money(value: Decimal | None, currency: str | None) -> str:
            return "unrated" if value is None else f"{value} {currency or ''}".strip()

        out = [
            f"re-rated {self.examined} leg(s) that started in "
            f"[{self.since.isoformat()}, {self.until.isoformat()}): "
            f"{len(self.changes)} changed" + ("" if self.applied else " (dry run: nothing saved)")
        ]
        for change in self.changes:
            new = change.after
            why = f" ({new['reason']})" if new["reason"] else ""
            if change.before is None:
                out.append(
                    f"{change.call_sid} {new['number']}: new charge "
                    f"{money(new['amount'], new['currency'])}{why}"
                )
                continue
            old = change.before
            out.append(
                f"{change.call_sid} {new['number']}: "
                f"{money(old['amount'], old['currency'])} -> "
                f"{money(new['amount'], new['currency'])} "
                f"(changed: {', '.join(change.fields)}){why}"
            )
        for currency in sorted(set(self.before) | set(self.after), key=lambda c: c or ""):
            before = self.before.get(currency, Decimal(0))
            after = self.after.get(currency, Decimal(0))
            out.append(f"total {currency or '(none)'}: {before} -> {after}")
        return out


def _add(totals: dict[str | None, Decimal], values: dict[str, Any]) -> None:
    if values["amount"] is not None:
        currency = values["currency"]
        totals[currency] = totals.get(currency, Decimal(0)) + values["amount"]


def rerate(
    db: Database,
    *,
    since: datetime,
    until: datetime,
    account_sid: str | None = None,
    apply: bool = True,
    decks: DeckCache | None = None,
) -> RerateReport:
    """Rate again, from the decks as they are now, every ended leg that started in
    [since, until); save what changed (unless `apply` is false) in one transaction and
    report it, old and new."""
    decks = decks or DeckCache()
    report = RerateReport(since, until, applied=apply)
    with db.transaction() as conn:
        for rows in _batches(conn, 5000, since=since, until=until, account_sid=account_sid):
            rater = _Rater(conn, decks)
            existing = store_charges.charges(conn, [row["call_sid"] for row in rows])
            new_charges = []
            for row in rows:
                values = charge_values(rater(row))
                old = existing.get(row["call_sid"])
                report.examined += 1
                _add(report.after, values)
                if old is not None:
                    _add(report.before, old)
                    if all(old[c] == values[c] for c in _COMPARED):
                        continue
                    if apply:
                        store_charges.revise_charge(conn, old, values)
                else:
                    new_charges.append(values)
                report.changes.append(Change(row["call_sid"], row["created_at"], old, values))
            if apply:
                store_charges.insert_charges(conn, new_charges)
    return report
