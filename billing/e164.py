"""Numbers as dialled, in the account's country, to E.164 (`+` and at most 15 digits).

Rate decks match prefixes of E.164 numbers, so "020 7946 0000" dialled by a British
account and "+44 20 7946 0000" find the same rate. National and international dialling
rules (trunk prefixes, "00", "011", "8~10") are those of Google's libphonenumber.
"""

from __future__ import annotations

import re

import phonenumbers

_FORMATTING = re.compile(r"[\s\-().]")
_E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")


class NotE164(ValueError):
    """A number that cannot be read as a phone number of the given country."""


def normalise(number: str, country: str) -> str:
    """`number` as E.164, reading national formats as dialled in `country` (ISO 3166)."""
    compact = _FORMATTING.sub("", number)
    if _E164.match(compact):
        return compact  # already international: the rate deck decides what it costs
    try:
        parsed = phonenumbers.parse(number, country)
    except phonenumbers.NumberParseException as error:
        raise NotE164(f"{number!r} is not a phone number as dialled in {country}") from error
    if not phonenumbers.is_possible_number(parsed):
        raise NotE164(f"{number!r} is not a possible phone number in {country}")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
