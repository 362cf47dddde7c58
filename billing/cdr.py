"""Call detail records: every ended leg of a period with its charge, as CSV."""

from __future__ import annotations

import csv
from datetime import datetime
from typing import TextIO

from store import charges as store_charges
from store.database import Database

COLUMNS = (
    "call_sid",
    "parent_call_sid",
    "account_sid",
    "direction",
    "from",
    "to",
    "call_status",
    "end_reason",
    "created_at",
    "answered_at",
    "ended_at",
    "duration",
    "billable_seconds",
    "class",
    "charge_status",
    "reason",
    "number",
    "deck",
    "prefix",
    "description",
    "price_per_minute",
    "connect_fee",
    "increments",
    "currency",
    "amount",
    "revision",
)


def _cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def write_cdr(
    db: Database, out: TextIO, *, since: datetime, until: datetime, account_sid: str | None
) -> int:
    """Write the legs that started in [since, until) (one account's, or all); returns
    how many. A leg not rated yet has an empty charge_status."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    count = 0
    with db.transaction() as conn:
        for row in store_charges.detail_records(conn, account_sid, since, until):
            increments = (
                f"{row['first_increment']}/{row['next_increment']}"
                if row["first_increment"] is not None
                else None
            )
            values = {
                **row,
                "from": row["from_number"],
                "to": row["to_number"],
                "class": row["leg_class"],
                "charge_status": row["status"],
                "deck": row["deck_name"],
                "increments": increments,
            }
            writer.writerow([_cell(values[column]) for column in COLUMNS])
            count += 1
    return count
