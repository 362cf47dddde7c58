"""Rate decks as CSV files: read (every problem found, with its line) and written.

    prefix,description,price_per_minute,connect_fee,increments,currency,effective_from,effective_until
    1,USA and Canada,0.0140,0,60/60,USD,,
    44,United Kingdom,0.0300,0,60/60,USD,2026-01-01,
    extension,Extension to extension,0,0,60/60,USD,,
    inbound,Inbound legs,0,0,60/60,USD,,

`prefix` is the dialling code's digits (a leading `+` is allowed) or the word
`extension` or `inbound` for those leg classes; `increments` is FIRST/NEXT in seconds;
dates are ISO 8601 (UTC unless they say otherwise), `effective_until` exclusive, both
optional; `description` and `connect_fee` (default 0) are optional columns. A file is
read whole or not at all: `read` raises `RateFileError` listing every bad line.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import TypeVar

from billing.deck import Rate, periods_overlap

COLUMNS = (
    "prefix",
    "description",
    "price_per_minute",
    "connect_fee",
    "increments",
    "currency",
    "effective_from",
    "effective_until",
)
REQUIRED = ("prefix", "price_per_minute", "increments", "currency")
CLASSES = ("extension", "inbound")

_PREFIX = re.compile(r"^\+?([0-9]{1,15})$")
_INCREMENTS = re.compile(r"^([0-9]+)/([0-9]+)$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Problem:
    line: int
    message: str


class RateFileError(ValueError):
    """A rate file that cannot be imported; `problems` has every bad line."""

    def __init__(self, name: str, problems: list[Problem]) -> None:
        self.name = name
        self.problems = problems
        super().__init__("\n".join(f"{name}:{p.line}: {p.message}" for p in problems))


@dataclass(frozen=True, slots=True)
class RateFile:
    currency: str
    rates: list[Rate]


def _money(field: str, text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite():
        raise ValueError(f"{field} {text!r} is not a number: use a decimal such as 0.0140")
    if value < 0:
        raise ValueError(f"{field} {text} is negative: prices are 0 or more")
    return value


def _increments(text: str) -> tuple[int, int]:
    match = _INCREMENTS.match(text)
    if match is None or int(match[1]) < 1 or int(match[2]) < 1:
        raise ValueError(
            f"increments {text!r} is not FIRST/NEXT in whole seconds of 1 or more, "
            "such as 60/60, 1/1 or 30/6"
        )
    return int(match[1]), int(match[2])


def _moment(field: str, text: str) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{field} {text!r} is not a date: use ISO 8601 such as 2026-01-01 "
            "or 2026-01-01T00:00:00+00:00"
        ) from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class _Row:
    """One line of a rate file, read as far as it could be."""

    line: int
    errors: list[str]
    rate: Rate | None  # when the line has no error
    key: tuple[str, str] | None  # (kind, prefix), when the prefix could be read
    period: tuple[datetime | None, datetime | None] | None  # when the dates could be read
    currency: str | None  # when it is a currency code


def _row(line: int, row: dict[str, str]) -> _Row:
    errors: list[str] = []

    def field(parse: Callable[..., T], *args: object) -> T | None:
        try:
            return parse(*args)
        except ValueError as error:
            errors.append(str(error))
            return None

    prefix = row.get("prefix", "")
    key: tuple[str, str] | None = None
    if prefix in CLASSES:
        key = (prefix, "")
    elif not prefix:
        errors.append("prefix is empty: use the dialling code (e.g. 44), extension or inbound")
    elif (match := _PREFIX.match(prefix)) is None:
        errors.append(
            f"prefix {prefix!r} is not a dialling code (up to 15 digits, e.g. 44), "
            "extension or inbound"
        )
    else:
        key = ("number", match[1])
    price = field(_money, "price_per_minute", row.get("price_per_minute", ""))
    fee = field(_money, "connect_fee", row.get("connect_fee") or "0")
    increments = field(_increments, row.get("increments", ""))
    currency: str | None = row.get("currency", "")
    if not _CURRENCY.match(currency):
        errors.append(f"currency {currency!r} is not an ISO 4217 code such as USD or EUR")
        currency = None
    dates = len(errors)
    since = field(_moment, "effective_from", row.get("effective_from", ""))
    until = field(_moment, "effective_until", row.get("effective_until", ""))
    if since is not None and until is not None and until <= since:
        errors.append(f"effective_until {until.isoformat()} is not after effective_from")
    period = (since, until) if len(errors) == dates else None
    rate = None
    if not errors:
        first, next_ = increments
        rate = Rate(
            kind=key[0],
            prefix=key[1],
            price_per_minute=price,
            first_increment=first,
            next_increment=next_,
            connect_fee=fee,
            description=row.get("description", ""),
            effective_from=since,
            effective_until=until,
        )
    return _Row(line, errors, rate, key, period, currency)


def read(text: str, name: str = "rates.csv") -> RateFile:
    """Parse a whole rate file; raises `RateFileError` with every bad line."""
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None:
        raise RateFileError(name, [Problem(1, "the file is empty: it needs a header line")])
    header = [column.strip().lower() for column in header]
    unknown = [c for c in header if c not in COLUMNS]
    missing = [c for c in REQUIRED if c not in header]
    if unknown or missing or len(set(header)) != len(header):
        message = f"the header must name the columns {', '.join(COLUMNS)}"
        if missing:
            message += f"; missing: {', '.join(missing)}"
        if unknown:
            message += f"; unknown: {', '.join(unknown)}"
        raise RateFileError(name, [Problem(1, message)])

    rows: list[_Row] = []
    line = reader.line_num
    for fields in reader:
        start, line = line + 1, reader.line_num
        if not any(f.strip() for f in fields):
            continue
        if len(fields) != len(header):
            problem = f"{len(fields)} fields where the header has {len(header)}"
            rows.append(_Row(start, [problem], None, None, None, None))
            continue
        rows.append(_row(start, {k: v.strip() for k, v in zip(header, fields, strict=True)}))

    # Duplicates and currencies are checked on every line that says enough, good or not,
    # so that one round of corrections is enough.
    seen: dict[tuple[str, str], list[_Row]] = {}
    for row in rows:
        if row.key is None or row.period is None:
            continue
        for other in seen.get(row.key, []):
            if periods_overlap(row.period, other.period):
                kind, prefix = row.key
                what = f"prefix {prefix}" if kind == "number" else f"the {kind} rate"
                row.errors.append(f"{what} duplicates line {other.line} (their periods overlap)")
                break
        seen.setdefault(row.key, []).append(row)
    with_currency = [row for row in rows if row.currency is not None]
    if with_currency:
        first = with_currency[0]
        for row in with_currency:
            if row.currency != first.currency:
                row.errors.append(
                    f"currency {row.currency} differs from {first.currency} (line "
                    f"{first.line}): a rate deck has one currency"
                )
    problems = [Problem(row.line, "; ".join(row.errors)) for row in rows if row.errors]
    if not rows:
        problems.append(Problem(line, "no rates: the file has a header and nothing else"))
    if problems:
        raise RateFileError(name, problems)
    return RateFile(first.currency, [row.rate for row in rows])


def _instant(value: datetime | None) -> str:
    return value.astimezone(UTC).isoformat() if value is not None else ""


def write(rates: Iterable[Rate], currency: str) -> str:
    """A deck as a rate file that `read` reads back to the same rates."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    order = {kind: index for index, kind in enumerate(("number", *CLASSES))}

    def position(rate: Rate) -> tuple[int, str, str]:
        return order[rate.kind], rate.prefix, _instant(rate.effective_from)

    for rate in sorted(rates, key=position):
        writer.writerow(
            [
                rate.prefix if rate.kind == "number" else rate.kind,
                rate.description,
                rate.price_per_minute,
                rate.connect_fee,
                rate.increments,
                currency,
                _instant(rate.effective_from),
                _instant(rate.effective_until),
            ]
        )
    return out.getvalue()
