"""Rate files: read whole or refused whole, every bad line named; written back the same."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from billing import ratefile
from billing.ratefile import RateFileError

HEADER = (
    "prefix,description,price_per_minute,connect_fee,increments,currency,"
    "effective_from,effective_until\n"
)
GOOD = (
    HEADER
    + "1,USA and Canada,0.0140,0,60/60,USD,,\n"
    + "+44,United Kingdom,0.0300,0.01,60/60,USD,,2027-01-01\n"
    + "44,United Kingdom from 2027,0.0250,0,1/1,USD,2027-01-01,\n"
    + "extension,Extension to extension,0,0,60/60,USD,,\n"
    + "inbound,Inbound legs,0.001,0,30/6,USD,,\n"
)


def test_a_good_file_is_read_into_rates() -> None:
    parsed = ratefile.read(GOOD)
    assert parsed.currency == "USD"
    usa, uk, uk_2027, extension, inbound = parsed.rates
    assert (usa.kind, usa.prefix, usa.price_per_minute, usa.increments) == (
        "number", "1", Decimal("0.0140"), "60/60",
    )  # fmt: skip
    assert (uk.prefix, uk.connect_fee) == ("44", Decimal("0.01"))  # "+44" is read as 44
    assert uk.effective_until == datetime(2027, 1, 1, tzinfo=UTC)
    assert uk_2027.effective_from == datetime(2027, 1, 1, tzinfo=UTC)
    assert (extension.kind, extension.prefix) == ("extension", "")
    assert (inbound.kind, inbound.first_increment, inbound.next_increment) == ("inbound", 30, 6)


def test_only_the_required_columns_are_needed() -> None:
    parsed = ratefile.read("prefix,price_per_minute,increments,currency\n7,0.02,60/60,EUR\n")
    (rate,) = parsed.rates
    assert (rate.prefix, rate.connect_fee, rate.description, parsed.currency) == (
        "7", Decimal(0), "", "EUR",
    )  # fmt: skip


def test_a_file_with_bad_rows_is_refused_whole_with_every_bad_line() -> None:
    text = (
        HEADER
        + "1,USA,0.0140,0,60/60,USD,,\n"  # line 2: good
        + ",Nowhere,0.01,0,60/60,USD,,\n"  # line 3: missing prefix
        + "33,France,-0.02,0,60/60,USD,,\n"  # line 4: negative price
        + "34,Spain,0.02,0,60/0,USD,,\n"  # line 5: bad increment
        + "1,USA again,0.0150,0,60/60,USD,,\n"  # line 6: duplicate prefix
        + "49,Germany,0.02,0,60/60,USD,,\n"  # line 7: good
        + "39,Italy,abc,0,sixty,usd,,\n"  # line 8: three problems on one line
    )
    with pytest.raises(RateFileError) as raised:
        ratefile.read(text, "deck.csv")
    problems = {p.line: p.message for p in raised.value.problems}
    assert sorted(problems) == [3, 4, 5, 6, 8]
    assert "prefix is empty" in problems[3]
    assert "price_per_minute -0.02 is negative" in problems[4]
    assert "increments '60/0'" in problems[5]
    assert "prefix 1 duplicates line 2" in problems[6]
    assert all(word in problems[8] for word in ("price_per_minute", "increments", "currency"))
    message = str(raised.value)
    assert message.splitlines()[0].startswith("deck.csv:3: prefix is empty")
    assert len(message.splitlines()) == 5


def test_one_round_of_corrections_is_enough() -> None:
    """A line that duplicates a bad line, or is bad and a duplicate, is named at once."""
    text = (
        HEADER
        + "33,France,-0.02,0,60/60,USD,,\n"  # line 2: negative price
        + "33,France again,0.03,0,60/60,USD,,\n"  # line 3: duplicates line 2
        + "33,France thrice,0.03,0,0/0,EUR,,\n"  # line 4: increments, duplicate, currency
    )
    with pytest.raises(RateFileError) as raised:
        ratefile.read(text)
    problems = {p.line: p.message for p in raised.value.problems}
    assert "is negative" in problems[2]
    assert problems[3] == "prefix 33 duplicates line 2 (their periods overlap)"
    assert "increments '0/0'" in problems[4] and "duplicates line 2" in problems[4]
    assert "currency EUR differs from USD (line 2)" in problems[4]


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ("44a,X,0.01,0,60/60,USD,,", "prefix '44a' is not a dialling code"),
        ("44,X,NaN,0,60/60,USD,,", "price_per_minute 'NaN' is not a number"),
        ("44,X,0.01,-1,60/60,USD,,", "connect_fee -1 is negative"),
        ("44,X,0.01,0,60,USD,,", "increments '60' is not FIRST/NEXT"),
        ("44,X,0.01,0,0/60,USD,,", "increments '0/60'"),
        ("44,X,0.01,0,1.5/1,USD,,", "increments '1.5/1'"),
        ("44,X,0.01,0,60/60,US,,", "currency 'US' is not an ISO 4217 code"),
        ("44,X,0.01,0,60/60,USD,yesterday,", "effective_from 'yesterday' is not a date"),
        ("44,X,0.01,0,60/60,USD,2027-01-01,2026-01-01", "effective_until 2026-01-01"),
        ("44,X,0.01,0,60/60,USD", "6 fields where the header has 8"),
    ],
)
def test_each_kind_of_bad_field_is_named(row: str, expected: str) -> None:
    with pytest.raises(RateFileError) as raised:
        ratefile.read(HEADER + row + "\n")
    (problem,) = raised.value.problems
    assert problem.line == 2 and expected in problem.message


def test_overlapping_periods_of_one_prefix_are_duplicates_and_adjacent_ones_are_not() -> None:
    adjacent = HEADER + "44,A,0.03,0,60/60,USD,,2027-01-01\n44,B,0.02,0,60/60,USD,2027-01-01,\n"
    assert len(ratefile.read(adjacent).rates) == 2
    overlapping = HEADER + "44,A,0.03,0,60/60,USD,,2027-02-01\n44,B,0.02,0,60/60,USD,2027-01-01,\n"
    with pytest.raises(RateFileError, match=r"rates\.csv:3: prefix 44 duplicates line 2"):
        ratefile.read(overlapping)
    twice_inbound = HEADER + "inbound,A,0,0,60/60,USD,,\ninbound,B,0.01,0,60/60,USD,,\n"
    with pytest.raises(RateFileError, match="the inbound rate duplicates line 2"):
        ratefile.read(twice_inbound)


def test_a_deck_has_one_currency() -> None:
    text = HEADER + "1,A,0.01,0,60/60,USD,,\n44,B,0.02,0,60/60,EUR,,\n"
    with pytest.raises(RateFileError, match=r":3: currency EUR differs from USD \(line 2"):
        ratefile.read(text)


def test_bad_headers_and_empty_files_are_refused() -> None:
    with pytest.raises(RateFileError, match=r"rates\.csv:1: the file is empty"):
        ratefile.read("")
    with pytest.raises(RateFileError, match="missing: increments; unknown: increment"):
        ratefile.read("prefix,price_per_minute,increment,currency\n1,0.01,60/60,USD\n")
    with pytest.raises(RateFileError, match="no rates"):
        ratefile.read(HEADER)


def test_written_files_read_back_to_the_same_rates() -> None:
    parsed = ratefile.read(GOOD)
    again = ratefile.read(ratefile.write(parsed.rates, parsed.currency))
    assert sorted(again.rates, key=repr) == sorted(parsed.rates, key=repr)
    assert again.currency == "USD"
