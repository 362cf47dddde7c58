"""The rater: one ended leg and the account's rate deck in, one charge out. Pure.

- Billable time runs from answer to hangup, a started second counting whole; it is
  rounded up to the rate's increments: `first` if 0 < s <= first, else
  first + ceil((s - first) / next) * next.
- cost = connect fee + price per minute * billable seconds / 60, computed exactly and
  rounded once, up, to 4 decimal places. The connect fee is charged once per answered
  leg; an unanswered leg costs nothing.
- Legs placed to a number are rated by the longest prefix of its E.164 form (read in the
  account's country); legs to or from an extension by the deck's `extension` rate (free
  when it has none); inbound legs from outside by its `inbound` rate (zero when it has
  none). A number leg without a rate, or a leg to a SIP URI, is `unrated`, with the
  reason: never silently zero.
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Context, Decimal, Inexact, InvalidOperation

from billing.deck import Rate, RateDeck
from billing.e164 import NotE164, normalise

PLACES = 4
# Every step of a cost is exact, or raises: money is never rounded by accident.
_EXACT = Context(prec=60, traps=[Inexact, InvalidOperation])
_SCALE = Decimal(10) ** PLACES
_SECOND = timedelta(seconds=1)


@dataclass(frozen=True, slots=True)
class Leg:
    """What the rater needs to know about an ended leg (a row of `calls`)."""

    call_sid: str
    account_sid: str
    direction: str  # 'inbound', 'outbound-api', 'outbound-dial'
    from_number: str
    to_number: str
    from_kind: str  # 'extension', 'number', 'sip', 'client'
    to_kind: str
    started_at: datetime  # the leg's creation: the day it counts on, the rate in force
    answered_at: datetime | None
    ended_at: datetime
    country: str  # the account's, for numbers dialled in national format


@dataclass(frozen=True, slots=True)
class Charge:
    call_sid: str
    account_sid: str
    status: str  # 'rated', 'free' or 'unrated'
    reason: str | None  # why it is free or unrated
    leg_class: str  # 'number', 'extension', 'inbound', 'sip'
    number: str  # what was rated: E.164 number, extension, URI, inbound caller
    started_at: datetime
    duration: int
    billable_seconds: int
    rate: Rate | None
    deck_sid: str | None
    deck_name: str | None
    currency: str | None
    amount: Decimal | None  # None only when unrated


def address_kind(address: str, extensions: Container[str]) -> str:
    """What an address the `calls` table did not classify is."""
    if address.startswith("sip:"):
        return "sip"
    if address.startswith("client:"):
        return "client"
    if address in extensions:
        return "extension"
    return "number"


def answered_seconds(answered_at: datetime | None, ended_at: datetime) -> int:
    """Whole seconds from answer to hangup; a started second counts."""
    if answered_at is None or ended_at <= answered_at:
        return 0
    whole, rest = divmod(ended_at - answered_at, _SECOND)
    return whole + (1 if rest else 0)


def billable_seconds(seconds: int, first: int, next_: int) -> int:
    if seconds <= 0:
        return 0
    if seconds <= first:
        return first
    return first + -(-(seconds - first) // next_) * next_


def leg_cost(billable: int, rate: Rate) -> Decimal:
    """connect fee + price per minute * billable / 60, rounded up to 4 places (once)."""
    per_minute = _EXACT.add(
        _EXACT.multiply(rate.connect_fee, 60), _EXACT.multiply(rate.price_per_minute, billable)
    )
    whole, rest = _EXACT.divmod(_EXACT.multiply(per_minute, _SCALE), 60)
    units = whole + 1 if rest else whole
    return _EXACT.divide(units, _SCALE).quantize(Decimal(1).scaleb(-PLACES))


def classify(leg: Leg) -> tuple[str, str]:
    """The leg's class and the address it is rated by."""
    if leg.direction == "inbound":
        if leg.from_kind in ("extension", "client"):
            return "extension", leg.from_number  # an employee's phone placing a call
        return "inbound", leg.from_number
    if leg.to_kind in ("extension", "client"):
        return "extension", leg.to_number
    if leg.to_kind == "sip":
        return "sip", leg.to_number
    return "number", leg.to_number


def rate(leg: Leg, deck: RateDeck | None) -> Charge:
    """The charge of an ended leg under `deck` (None: the account has no deck)."""
    leg_class, number = classify(leg)
    unreadable: str | None = None
    if leg_class == "number":
        try:
            number = normalise(number, leg.country)
        except NotE164 as error:
            unreadable = str(error)
    duration = answered_seconds(leg.answered_at, leg.ended_at)

    def charge(status: str, reason: str | None, found: Rate | None = None) -> Charge:
        billable = 0
        amount = None if status == "unrated" else Decimal("0.0000")
        if found is not None:
            billable = billable_seconds(duration, found.first_increment, found.next_increment)
            amount = leg_cost(billable, found)
        return Charge(
            call_sid=leg.call_sid,
            account_sid=leg.account_sid,
            status=status,
            reason=reason,
            leg_class=leg_class,
            number=number,
            started_at=leg.started_at,
            duration=duration,
            billable_seconds=billable,
            rate=found,
            deck_sid=deck.sid if deck else None,
            deck_name=deck.name if deck else None,
            currency=deck.currency if deck else None,
            amount=amount,
        )

    if leg.answered_at is None:
        return charge("free", "not answered")
    if leg_class == "sip":
        return charge("unrated", f"{number} is a SIP URI: rate decks price phone numbers")
    if unreadable is not None:
        return charge("unrated", unreadable)
    at = leg.started_at
    if leg_class == "number":
        if deck is None:
            return charge("unrated", "the account has no rate deck")
        found = deck.number_rate(number, at)
        if found is None:
            return charge("unrated", f"no rate for {number} in rate deck {deck.name!r}")
        return charge("rated", None, found)
    found = deck.class_rate(leg_class, at) if deck is not None else None
    if found is None:
        default = "extension legs are free" if leg_class == "extension" else "inbound legs cost 0"
        where = f"rate deck {deck.name!r} has no {leg_class!r} rate" if deck else "no rate deck"
        return charge("free", f"{default} by default ({where})")
    return charge("rated", None, found)
