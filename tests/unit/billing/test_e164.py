"""Numbers as dialled in an account's country, to E.164."""

from __future__ import annotations

import pytest

from billing.e164 import NotE164, normalise


@pytest.mark.parametrize(
    ("dialled", "country", "e164"),
    [
        ("+14155550100", "US", "+14155550100"),
        ("+1 (415) 555-0100", "GB", "+14155550100"),
        ("4155550100", "US", "+14155550100"),
        ("1 415 555 0100", "US", "+14155550100"),
        ("011 44 20 7946 0000", "US", "+442079460000"),
        ("020 7946 0000", "GB", "+442079460000"),
        ("00 44 20 7946 0000", "DE", "+442079460000"),
        ("8 495 123-45-67", "RU", "+74951234567"),
        ("8 10 44 20 7946 0000", "RU", "+442079460000"),
    ],
)
def test_national_and_international_formats(dialled: str, country: str, e164: str) -> None:
    assert normalise(dialled, country) == e164


@pytest.mark.parametrize("dialled", ["abc", "102", "+0123", "+1234567890123456"])
def test_what_is_not_a_phone_number_is_refused(dialled: str) -> None:
    with pytest.raises(NotE164, match="is not a"):
        normalise(dialled, "US")
