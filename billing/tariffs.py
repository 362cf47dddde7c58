"""Rate decks in the database: imported from rate files whole, exported, assigned."""

from __future__ import annotations

from dataclasses import asdict

from billing import ratefile
from billing.deck import Rate
from store import accounts
from store import rates as store_rates
from store.database import Database
from store.rates import DeckRow


def import_rates(
    db: Database, text: str, *, file_name: str, deck: str, account_sid: str | None = None
) -> tuple[DeckRow, int]:
    """Replace the deck `deck` (creating it) by the rates of a rate file, in one
    transaction, and assign it to `account_sid` if given. A file with any bad line
    raises `ratefile.RateFileError` before anything is written."""
    parsed = ratefile.read(text, file_name)
    with db.transaction() as conn:
        if account_sid is not None and accounts.get_account(conn, account_sid) is None:
            raise LookupError(f"no account {account_sid}")
        row = store_rates.replace_deck(
            conn, deck, parsed.currency, (asdict(rate) for rate in parsed.rates)
        )
        if account_sid is not None:
            store_rates.assign_deck(conn, account_sid, row.sid)
    return row, len(parsed.rates)


def export_rates(db: Database, deck: str) -> str:
    """The deck `deck` as a rate file."""
    with db.transaction() as conn:
        row = store_rates.find_deck(conn, deck)
        if row is None:
            raise LookupError(f"no rate deck {deck!r}")
        rates = [Rate(**rate) for rate in store_rates.deck_rates(conn, row.sid)]
    return ratefile.write(rates, row.currency)


def assign(db: Database, account_sid: str, deck: str) -> DeckRow:
    with db.transaction() as conn:
        row = store_rates.find_deck(conn, deck)
        if row is None:
            raise LookupError(f"no rate deck {deck!r}")
        store_rates.assign_deck(conn, account_sid, row.sid)
    return row


def account_deck_name(db: Database, account_sid: str) -> str | None:
    with db.transaction() as conn:
        row = store_rates.account_deck(conn, account_sid)
    return row.name if row else None
