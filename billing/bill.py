"""Bills: a call's or a conference's legs, leg by leg, and their total; totals by day.

A call's bill is its own leg and every leg placed for it. A conference's bill follows
the customer's rule: an outgoing call to the number the first employee originally
called (the subscriber's leg) plus one to each participant's number; so its lines are
the participants' legs except the first employee's own, each leg once, and only on the
bill of the first conference it joined. A leg not rated yet is `pending`; an `unrated`
leg is listed with its reason; neither adds to the total, and either makes the bill
incomplete.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from store import charges as store_charges
from store import conferences
from store.database import Database
from store.sids import is_sid


@dataclass(frozen=True, slots=True)
class BillLine:
    call_sid: str
    number: str
    role: str  # a participant's role, or the leg's class on a call's bill
    direction: str
    status: str  # 'rated', 'free', 'unrated' or 'pending'
    reason: str | None
    duration: int | None
    billable_seconds: int | None
    rate: dict[str, Any] | None  # the rate copied onto the charge
    currency: str | None
    amount: Decimal | None

    def to_json(self) -> dict[str, Any]:
        return {
            "call_sid": self.call_sid,
            "number": self.number,
            "role": self.role,
            "direction": self.direction,
            "status": self.status,
            "reason": self.reason,
            "duration": self.duration,
            "billable_seconds": self.billable_seconds,
            "rate": self.rate,
            "currency": self.currency,
            "cost": None if self.amount is None else str(self.amount),
        }


@dataclass(frozen=True, slots=True)
class Bill:
    sid: str
    kind: str  # 'call' or 'conference'
    account_sid: str
    basis: str  # what the bill covers, in words
    lines: list[BillLine]

    @property
    def totals(self) -> dict[str, Decimal]:
        totals: dict[str, Decimal] = {}
        for line in self.lines:
            if line.amount is not None and line.currency is not None:
                totals[line.currency] = totals.get(line.currency, Decimal("0.0000")) + line.amount
        return totals

    def count(self, status: str) -> int:
        return sum(1 for line in self.lines if line.status == status)

    @property
    def complete(self) -> bool:
        return self.count("unrated") == 0 and self.count("pending") == 0

    def to_json(self) -> dict[str, Any]:
        totals = self.totals
        single = next(iter(totals.items())) if len(totals) == 1 else None
        return {
            "sid": self.sid,
            "kind": self.kind,
            "account_sid": self.account_sid,
            "basis": self.basis,
            "legs": [line.to_json() for line in self.lines],
            "total": str(single[1]) if single else ("0.0000" if not totals else None),
            "currency": single[0] if single else None,
            "totals": {currency: str(amount) for currency, amount in sorted(totals.items())},
            "complete": self.complete,
            "unrated": self.count("unrated"),
            "pending": self.count("pending"),
        }

    def text(self) -> str:
        out = [f"{self.kind} {self.sid} (account {self.account_sid})", f"billed: {self.basis}"]
        header = ("#", "number", "role", "duration", "billable", "rate", "cost")
        rows = [header]
        for index, line in enumerate(self.lines, 1):
            if line.rate is not None:
                rate = (
                    f"{line.rate['label']} {line.rate['price_per_minute']}/min "
                    f"{line.rate['increments']}"
                )
                if line.rate["connect_fee"]:
                    rate += f" +{line.rate['connect_fee']}"
            else:
                rate = line.reason or ""
            cost = line.status if line.amount is None else f"{line.amount} {line.currency or ''}"
            rows.append(
                (
                    str(index),
                    line.number,
                    line.role,
                    "" if line.duration is None else f"{line.duration} s",
                    "" if line.billable_seconds is None else f"{line.billable_seconds} s",
                    rate,
                    cost.strip(),
                )
            )
        widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
        for row in rows:
            cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
            out.append("  ".join(cells).rstrip())
        totals = self.totals or {"": Decimal("0.0000")}
        for currency, amount in sorted(totals.items()):
            out.append(f"total: {amount} {currency}".rstrip())
        if not self.complete:
            out.append(
                f"incomplete: {self.count('unrated')} leg(s) unrated, "
                f"{self.count('pending')} leg(s) not rated yet"
            )
        return "\n".join(out)


def _line(row: dict[str, Any], role: str, number: str) -> BillLine:
    if row["status"] is None:
        return BillLine(
            row["call_sid"],
            number,
            role,
            row["direction"],
            "pending",
            "still in progress" if row["ended_at"] is None else "not rated yet",
            None,
            None,
            None,
            None,
            None,
        )
    rate = None
    if row["price_per_minute"] is not None:
        rate = {
            "deck": row["deck_name"],
            "prefix": row["prefix"],
            "label": f"{row['prefix'] or row['leg_class']} {row['description'] or ''}".strip(),
            "description": row["description"],
            "price_per_minute": str(row["price_per_minute"]),
            "connect_fee": str(row["connect_fee"]) if row["connect_fee"] else None,
            "increments": f"{row['first_increment']}/{row['next_increment']}",
        }
    return BillLine(
        row["call_sid"],
        row["number"],
        role,
        row["direction"],
        row["status"],
        row["reason"],
        row["duration"],
        row["billable_seconds"],
        rate,
        row["currency"],
        row["amount"],
    )


def conference_bill(conference: dict[str, Any], rows: list[dict[str, Any]]) -> Bill:
    first_employee = conference["first_employee_call_sid"]
    origin = conference["origin_number"]
    basis = (
        f"the first employee's call with {origin}, plus a call to each participant's number"
        if origin
        else "a call to each participant's number"
    )
    return Bill(
        conference["sid"],
        "conference",
        conference["account_sid"],
        basis,
        [
            _line(row, row["role"], row["number"] or row["participant_number"])
            for row in rows
            if row["call_sid"] != first_employee
        ],
    )


def call_bill(call_sid: str, rows: list[dict[str, Any]]) -> Bill:
    return Bill(
        call_sid,
        "call",
        rows[0]["account_sid"],
        "the call's leg and every leg placed for it",
        [
            _line(
                row,
                row["leg_class"] or "leg",
                row["number"] or row["to_number"],
            )
            for row in rows
        ],
    )


def bill(db: Database, sid: str) -> Bill:
    """The bill of a call (CA...) or a conference (CF...); LookupError if there is none."""
    with db.transaction() as conn:
        if is_sid(sid, "conference"):
            conference = conferences.get(conn, sid)
            if conference is None:
                raise LookupError(f"no conference {sid}")
            return conference_bill(conference, store_charges.conference_legs(conn, sid))
        if is_sid(sid, "call"):
            rows = store_charges.call_tree_legs(conn, sid)
            if not rows:
                raise LookupError(f"no call {sid}")
            return call_bill(sid, rows)
    raise LookupError(f"{sid!r} is neither a call sid (CA...) nor a conference sid (CF...)")


@dataclass(frozen=True, slots=True)
class Total:
    day: date
    currency: str | None
    legs: int
    amount: Decimal
    unrated: int
    pending: int
    call_sid: str | None = None  # set in per-call totals

    def to_json(self) -> dict[str, Any]:
        out = {
            "day": self.day.isoformat(),
            "currency": self.currency,
            "legs": self.legs,
            "amount": str(self.amount),
            "unrated": self.unrated,
            "pending": self.pending,
        }
        return {"call_sid": self.call_sid, **out} if self.call_sid else out


def totals(
    db: Database, account_sid: str, since: datetime, until: datetime, *, per_call: bool = False
) -> list[Total]:
    """The account's totals per UTC day (or per call) and currency, for legs that started
    in [since, until)."""
    with db.transaction() as conn:
        if per_call:
            rows = store_charges.call_totals(conn, account_sid, since, until)
        else:
            rows = store_charges.daily_totals(conn, account_sid, since, until)
    return [Total(**row) for row in rows]
