"""Rate decks: the rates an account's legs are priced at, found by longest prefix.

A deck has one currency and holds rates of three kinds: `number` rates keyed by a
prefix of the E.164 number (without `+`), and one rate each for the `extension` and
`inbound` leg classes. A rate applies to legs that started in its effective period.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

KINDS = ("number", "extension", "inbound")


@dataclass(frozen=True, slots=True)
class Rate:
    kind: str
    prefix: str  # digits for a `number` rate, "" for the leg classes
    price_per_minute: Decimal
    first_increment: int
    next_increment: int
    connect_fee: Decimal = Decimal(0)
    description: str = ""
    effective_from: datetime | None = None  # inclusive; None: always
    effective_until: datetime | None = None  # exclusive; None: for ever

    def applies_at(self, at: datetime) -> bool:
        return (self.effective_from is None or self.effective_from <= at) and (
            self.effective_until is None or at < self.effective_until
        )

    @property
    def increments(self) -> str:
        return f"{self.first_increment}/{self.next_increment}"

    @property
    def label(self) -> str:
        """How a bill names the rate: its prefix or class, and its description."""
        key = self.prefix if self.kind == "number" else self.kind
        return f"{key} {self.description}".strip()


Period = tuple[datetime | None, datetime | None]


def periods_overlap(a: Period, b: Period) -> bool:
    """Whether some moment falls in both [from, until) periods (None: unbounded)."""
    a_from, a_until = a
    b_from, b_until = b
    return (a_from is None or b_until is None or a_from < b_until) and (
        b_from is None or a_until is None or b_from < a_until
    )


def _newest_first(rate: Rate) -> tuple[bool, datetime | None]:
    return (rate.effective_from is not None, rate.effective_from)


class RateDeck:
    """A deck's rates, indexed for longest-prefix lookup."""

    def __init__(
        self, name: str, currency: str, rates: Iterable[Rate], *, sid: str | None = None
    ) -> None:
        self.sid = sid
        self.name = name
        self.currency = currency
        self.rates = tuple(rates)
        self._by_key: dict[tuple[str, str], list[Rate]] = {}
        for rate in self.rates:
            self._by_key.setdefault((rate.kind, rate.prefix), []).append(rate)
        for candidates in self._by_key.values():
            candidates.sort(key=_newest_first, reverse=True)
        self._longest = max((len(r.prefix) for r in self.rates if r.kind == "number"), default=0)

    def number_rate(self, e164: str, at: datetime) -> Rate | None:
        """The rate of the longest prefix of `e164` that has a rate in force at `at`."""
        digits = e164.removeprefix("+")
        for length in range(min(len(digits), self._longest), 0, -1):
            for rate in self._by_key.get(("number", digits[:length]), ()):
                if rate.applies_at(at):
                    return rate
        return None

    def class_rate(self, kind: str, at: datetime) -> Rate | None:
        """The deck's rate for a leg class (`extension`, `inbound`) in force at `at`."""
        for rate in self._by_key.get((kind, ""), ()):
            if rate.applies_at(at):
                return rate
        return None
