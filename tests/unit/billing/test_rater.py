"""The rater: the issue's worked examples, leg classes, and never a silent zero."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from billing.deck import Rate, RateDeck
from billing.rater import (
    Leg,
    address_kind,
    answered_seconds,
    billable_seconds,
    leg_cost,
    rate,
)

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def per_minute(price: str, first: int, next_: int, fee: str = "0", prefix: str = "1") -> Rate:
    return Rate("number", prefix, Decimal(price), first, next_, connect_fee=Decimal(fee))


def leg(
    to: str = "+14155550100",
    seconds: float | None = 80,
    *,
    direction: str = "outbound-dial",
    from_: str = "+15550100",
    from_kind: str = "number",
    to_kind: str = "number",
    country: str = "US",
) -> Leg:
    answered = ended = None
    if seconds is None:
        ended = T0 + timedelta(seconds=30)  # rang for 30 s
    else:
        answered = T0 + timedelta(seconds=5)
        ended = answered + timedelta(seconds=seconds)
    return Leg(
        call_sid="CA" + "1" * 32,
        account_sid="AC" + "2" * 32,
        direction=direction,
        from_number=from_,
        to_number=to,
        from_kind=from_kind,
        to_kind=to_kind,
        started_at=T0,
        answered_at=answered,
        ended_at=ended,
        country=country,
    )


DECK = RateDeck(
    "standard",
    "USD",
    [
        Rate("number", "1", Decimal("0.0140"), 60, 60, description="USA and Canada"),
        Rate("number", "44", Decimal("0.0300"), 60, 60, description="United Kingdom"),
        Rate("number", "447", Decimal("0.1200"), 60, 60, description="UK mobile"),
    ],
)


@pytest.mark.parametrize(
    ("seconds", "price", "first", "next_", "expected"),
    [
        (80, "0.0140", 60, 60, "0.0280"),
        (31, "0.10", 30, 6, "0.0600"),
        (5, "0.10", 30, 6, "0.0500"),
        (85, "0.10", 1, 1, "0.1417"),  # 0.141666... rounded up at 4 places
        (95, "0.014", 60, 60, "0.0280"),
        (200, "0.030", 60, 60, "0.1200"),
    ],
)
def test_the_issues_worked_examples(
    seconds: int, price: str, first: int, next_: int, expected: str
) -> None:
    charge = rate(leg(seconds=seconds), RateDeck("d", "USD", [per_minute(price, first, next_)]))
    assert charge.status == "rated"
    assert charge.amount == Decimal(expected)
    assert str(charge.amount) == expected  # four places, exactly


@pytest.mark.parametrize(
    ("seconds", "first", "next_", "billable"),
    [
        (0, 60, 60, 0),
        (1, 60, 60, 60),
        (60, 60, 60, 60),
        (61, 60, 60, 120),
        (80, 60, 60, 120),
        (31, 30, 6, 36),
        (36, 30, 6, 36),
        (37, 30, 6, 42),
        (5, 30, 6, 30),
        (85, 1, 1, 85),
    ],
)
def test_billable_seconds_round_up_to_the_increments(
    seconds: int, first: int, next_: int, billable: int
) -> None:
    assert billable_seconds(seconds, first, next_) == billable


def test_the_connect_fee_is_charged_once_and_rounded_with_the_rest() -> None:
    # 0.05 + 0.10 * 85 / 60 = 0.191666... -> one rounding: 0.1917
    assert leg_cost(85, per_minute("0.10", 1, 1, fee="0.05")) == Decimal("0.1917")
    fee_only = rate(leg(seconds=0), RateDeck("d", "USD", [per_minute("0.10", 60, 60, "0.05")]))
    assert (fee_only.billable_seconds, fee_only.amount) == (0, Decimal("0.0500"))
    long = rate(leg(seconds=600), RateDeck("d", "USD", [per_minute("0.10", 60, 60, "0.05")]))
    assert long.amount == Decimal("1.0500")  # the fee once, not per increment


def test_rounding_is_exact_for_prices_with_many_places() -> None:
    # 0.00012345 * 7 / 60 = 0.0000144025 -> 0.0001; a float would not notice the rest.
    assert leg_cost(7, per_minute("0.00012345", 1, 1)) == Decimal("0.0001")
    assert leg_cost(60, per_minute("0.0001", 1, 1)) == Decimal("0.0001")
    assert leg_cost(61, per_minute("0.0060", 1, 1)) == Decimal("0.0061")  # exact: kept
    assert leg_cost(61, per_minute("0.0061", 1, 1)) == Decimal("0.0063")  # 0.0062016... up


def test_an_unanswered_leg_costs_nothing_even_with_a_connect_fee() -> None:
    deck = RateDeck("d", "USD", [per_minute("0.10", 60, 60, fee="0.05")])
    charge = rate(leg(seconds=None), deck)
    assert (charge.status, charge.amount, charge.reason) == ("free", Decimal(0), "not answered")
    assert charge.billable_seconds == 0 and charge.rate is None


def test_answered_seconds_count_a_started_second() -> None:
    assert answered_seconds(None, T0) == 0
    assert answered_seconds(T0, T0 + timedelta(seconds=95)) == 95
    assert answered_seconds(T0, T0 + timedelta(seconds=95, microseconds=1)) == 96
    assert answered_seconds(T0, T0 - timedelta(seconds=3)) == 0


def test_the_longest_prefix_wins_and_its_rate_is_copied_onto_the_charge() -> None:
    landline = rate(leg("+442079460000", 200), DECK)
    mobile = rate(leg("+447700900123", 200), DECK)
    assert (landline.rate.prefix, landline.amount) == ("44", Decimal("0.1200"))
    assert (mobile.rate.prefix, mobile.amount) == ("447", Decimal("0.4800"))
    assert mobile.rate.description == "UK mobile" and mobile.deck_name == "standard"
    assert mobile.currency == "USD"


def test_numbers_are_normalised_in_the_accounts_country_before_matching() -> None:
    us = rate(leg("(415) 555-0100", 80), DECK)
    uk = rate(leg("020 7946 0000", 200, country="GB"), DECK)
    from_us_to_uk = rate(leg("011 44 20 7946 0000", 200), DECK)
    assert (us.number, us.amount) == ("+14155550100", Decimal("0.0280"))
    assert (uk.number, uk.amount) == ("+442079460000", Decimal("0.1200"))
    assert from_us_to_uk.number == "+442079460000"


def test_no_matching_prefix_is_unrated_with_the_reason_never_zero() -> None:
    charge = rate(leg("+8613800138000", 60), DECK)
    assert charge.status == "unrated" and charge.amount is None
    assert charge.reason == "no rate for +8613800138000 in rate deck 'standard'"


def test_a_number_that_cannot_be_read_is_unrated() -> None:
    charge = rate(leg("not a number", 60), DECK)
    assert charge.status == "unrated" and charge.amount is None
    assert "'not a number' is not a phone number" in charge.reason


def test_without_a_deck_number_legs_are_unrated_and_extension_legs_free() -> None:
    assert rate(leg(seconds=60), None).reason == "the account has no rate deck"
    internal = rate(leg("102", 60, to_kind="extension"), None)
    assert (internal.status, internal.amount, internal.currency) == ("free", Decimal(0), None)


def test_extension_legs_are_free_by_default_and_rated_by_the_extension_class() -> None:
    free = rate(leg("102", 60, to_kind="extension"), DECK)
    assert (free.leg_class, free.status, free.amount) == ("extension", "free", Decimal(0))
    assert free.reason == (
        "extension legs are free by default (rate deck 'standard' has no 'extension' rate)"
    )
    priced = RateDeck("p", "USD", [Rate("extension", "", Decimal("0.0010"), 60, 60)])
    charge = rate(leg("102", 60, to_kind="extension"), priced)
    assert (charge.status, charge.amount) == ("rated", Decimal("0.0010"))


def test_an_employees_own_phone_leg_is_an_extension_leg() -> None:
    phone = leg("+14155550100", 95, direction="inbound", from_="101", from_kind="extension")
    own = rate(phone, DECK)
    assert (own.leg_class, own.number, own.amount) == ("extension", "101", Decimal(0))


def test_inbound_legs_cost_the_inbound_rate_zero_by_default() -> None:
    inbound = leg("+15550100", 120, direction="inbound", from_="+442079460000")
    default = rate(inbound, DECK)
    assert (default.leg_class, default.status, default.amount) == ("inbound", "free", Decimal(0))
    deck = RateDeck("in", "USD", [Rate("inbound", "", Decimal("0.0050"), 60, 60)])
    assert rate(inbound, deck).amount == Decimal("0.0100")


def test_legs_to_sip_uris_are_unrated() -> None:
    charge = rate(leg("sip:bob@example.com", 60, to_kind="sip"), DECK)
    assert (charge.leg_class, charge.status) == ("sip", "unrated")


def test_a_rate_applies_in_its_effective_period_only() -> None:
    old = Rate("number", "44", Decimal("0.0300"), 60, 60, effective_until=T0)
    new = Rate("number", "44", Decimal("0.0200"), 60, 60, effective_from=T0)
    later = Rate("number", "447", Decimal("0.5"), 60, 60, effective_from=T0 + timedelta(days=1))
    deck = RateDeck("d", "USD", [old, new, later])
    assert deck.number_rate("+442079460000", T0 - timedelta(seconds=1)) is old
    assert deck.number_rate("+442079460000", T0) is new
    # 447 is not in force yet: the shorter prefix applies.
    assert deck.number_rate("+447700900123", T0) is new


def test_address_kind_infers_what_the_calls_table_did_not_say() -> None:
    extensions = {"101", "102"}
    assert address_kind("102", extensions) == "extension"
    assert address_kind("+14155550100", extensions) == "number"
    assert address_kind("sip:bob@example.com", extensions) == "sip"
    assert address_kind("client:alice", extensions) == "client"
