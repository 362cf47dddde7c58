"""Lexical rules: tokens, quoted strings, escapes, comma splitting, parameters."""

from __future__ import annotations

import re

import pytest

from media.sip.syntax import (
    Params,
    Scanner,
    SipParseError,
    is_token,
    parse_delta_seconds,
    percent_decode,
    percent_encode,
    quote_string,
    split_commas,
    unquote_string,
)


def test_token_accepts_the_whole_token_character_set() -> None:
    assert is_token("aZ09-.!%*_+`'~")
    for separator in '()<>@,;:\\"/[]?={} \t':
        assert not is_token(f"a{separator}b"), separator
    assert not is_token("")


def test_quoted_strings_escape_and_unescape() -> None:
    assert unquote_string(r'"J Rosenberg \\\""') == 'J Rosenberg \\"'
    assert unquote_string('"plain"') == "plain"
    assert quote_string('say "hi" \\ bye') == r'"say \"hi\" \\ bye"'
    assert quote_string("bell\x07") == '"bell\\\x07"'
    assert unquote_string(quote_string("nul\x00 del\x7f")) == "nul\x00 del\x7f"
    with pytest.raises(ValueError, match="CR or LF"):
        quote_string("two\r\nlines")


def test_split_commas_respects_quotes_and_angle_brackets() -> None:
    value = '"Doe, \\"J\\"" <sip:a@b;x=1,2>, <sip:c@d> , sip:e@f'
    assert split_commas(value, "Contact") == [
        '"Doe, \\"J\\"" <sip:a@b;x=1,2>',
        "<sip:c@d>",
        "sip:e@f",
    ]
    assert split_commas("a,,b", "X") == ["a", "", "b"]
    with pytest.raises(SipParseError, match="never closed"):
        split_commas('"open, never closed', "To")
    with pytest.raises(SipParseError, match="'<'"):
        split_commas("<sip:a@b, c", "Route")


def test_percent_decoding_is_done_once_and_checked() -> None:
    assert percent_decode("v%61lue%25%34%31", "p") == "value%41"
    assert percent_decode("caf%C3%A9", "p") == "café"
    assert percent_decode("no escapes", "p") == "no escapes"
    with pytest.raises(SipParseError, match="two hex digits, found '%ZK'"):
        percent_decode("a%ZK", "Call user")
    with pytest.raises(SipParseError, match="two hex digits"):
        percent_decode("a%4", "user")


def test_percent_encoding_gives_back_any_octets() -> None:
    raw = percent_decode("%FF%00x", "user")
    assert percent_encode(raw, "") == "%FF%00x"
    assert percent_encode("a b;c", ";") == "a%20b;c"


def test_params_are_ordered_immutable_and_case_insensitive() -> None:
    params = Params([("Tag", "abc"), ("lr", None), ("tag", "second")])
    assert params["TAG"] == "abc" and "LR" in params and params["lr"] is None
    assert list(params) == ["Tag", "lr", "tag"]
    assert len(params) == 3
    changed = params.replace("tag", "new").remove("lr")
    assert changed.items_in_order() == (("Tag", "new"),)
    assert params["tag"] == "abc"  # unchanged
    assert params.replace("x", "1").items_in_order()[-1] == ("x", "1")
    assert Params([("A", "1")]) == Params([("a", "1")])
    assert hash(Params([("A", "1")])) == hash(Params([("a", "1")]))
    assert Params([("realm", '"a \\"b\\""')]).unquoted("realm") == 'a "b"'


def test_scanner_errors_name_the_header_the_expectation_and_the_offset() -> None:
    scanner = Scanner("SIP/2.0/UDP ;x", "Via")
    scanner.take(re.compile("[SIP]+"), "a name")
    with pytest.raises(
        SipParseError, match=r"Via: expected a digit at offset 3, found '/2.0/UDP ;x'"
    ):
        scanner.expect("1", "a digit")


def test_scanner_reads_generic_params_with_lws_and_quoted_values() -> None:
    scanner = Scanner(' ; a = 1 ;flag; q="x, y";h=[2001:db8::1]', "Contact")
    params = scanner.params()
    scanner.expect_end()
    assert params.items_in_order() == (
        ("a", "1"),
        ("flag", None),
        ("q", '"x, y"'),
        ("h", "[2001:db8::1]"),
    )
    with pytest.raises(SipParseError, match="a parameter name after ';'"):
        Scanner(";;", "Via").params()
    with pytest.raises(SipParseError, match="a value for parameter 'a'"):
        Scanner(";a=", "Via").params()


def test_delta_seconds_is_bounded() -> None:
    assert parse_delta_seconds("0", "Expires") == 0
    assert parse_delta_seconds(str(2**32 - 1), "Expires") == 2**32 - 1
    assert parse_delta_seconds("0068", "Expires") == 68
    with pytest.raises(SipParseError, match="more than the largest number of seconds, 4294967295"):
        parse_delta_seconds(str(2**32), "Expires")
    with pytest.raises(SipParseError, match="expected number of seconds, found '-1'"):
        parse_delta_seconds("-1", "Expires")
    with pytest.raises(SipParseError, match="more than the largest"):
        parse_delta_seconds("9" * 5000, "Expires")  # not handed to int() whole
    with pytest.raises(SipParseError, match="expected number of seconds"):
        parse_delta_seconds("²", "Expires")
