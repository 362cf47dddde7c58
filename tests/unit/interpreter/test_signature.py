"""Our X-Twilio-Signature must be what Twilio's own validator expects, and nothing else."""

from __future__ import annotations

import pytest
from flask import Flask, request
from twilio.request_validator import RequestValidator
from werkzeug.datastructures import MultiDict

from interpreter.signature import SIGNATURE_HEADER, sign, verify

TOKEN = "12345"
CALL = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+12349013030",
    "Digits": "1234",
    "From": "+12349013030",
    "To": "+18005551212",
}


def test_matches_the_documented_example() -> None:
    # The worked example of Twilio's security documentation.
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert sign(TOKEN, url, CALL) == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/voice",
        "https://example.com/voice?b=2&a=1",
        "https://example.com:443/voice",
        "http://example.com:80/voice?x=y",
        "http://example.com:8080/voice",
        "https://example.com:8443/voice?x=%C3%A9",
        "http://[2001:db8::1]:8080/voice",
        "https://example.com/%C3%BCber?q=%C3%BC",
    ],
)
def test_twilio_validator_accepts_ours_for_get(url: str) -> None:
    signature = sign(TOKEN, url, None)
    assert RequestValidator(TOKEN).validate(url, {}, signature)
    assert verify(TOKEN, url, None, signature)


@pytest.mark.parametrize(
    "url",
    ["https://example.com/voice", "https://example.com:443/voice?x=1", "http://h:8000/v"],
)
def test_twilio_validator_accepts_ours_for_post(url: str) -> None:
    params = {**CALL, "SpeechResult": "привет, мир — 你好", "Empty": ""}
    signature = sign(TOKEN, url, params)
    assert RequestValidator(TOKEN).validate(url, params, signature)
    assert verify(TOKEN, url, params, signature)


def test_repeated_names_are_signed_as_the_official_validator_rebuilds_them() -> None:
    url = "https://example.com/status"
    form = MultiDict([("Event", "start"), ("Event", "end"), ("Event", "end"), ("A", "1")])
    signature = sign(TOKEN, url, {"Event": ["start", "end", "end"], "A": "1"})
    assert RequestValidator(TOKEN).validate(url, form, signature)
    assert verify(TOKEN, url, form, signature)
    # Order of the values does not matter, only the set of them.
    assert sign(TOKEN, url, {"Event": ["end", "start"], "A": "1"}) == signature


@pytest.mark.parametrize(
    ("signed", "checked"),
    [
        ("https://example.com/voice", "https://example.com:443/voice"),
        ("https://example.com:443/voice", "https://example.com/voice"),
        ("http://example.com/voice?x=1", "http://example.com:80/voice?x=1"),
        ("http://u:p@example.com:80/voice", "http://u:p@example.com/voice"),
    ],
)
def test_default_port_may_be_present_on_one_side_only(signed: str, checked: str) -> None:
    signature = sign(TOKEN, signed, CALL)
    assert verify(TOKEN, checked, CALL, signature)
    assert RequestValidator(TOKEN).validate(checked, CALL, signature)


def test_a_non_default_port_is_never_dropped() -> None:
    signature = sign(TOKEN, "https://example.com/voice", CALL)
    assert not verify(TOKEN, "https://example.com:8443/voice", CALL, signature)
    assert not verify(TOKEN, "http://example.com/voice", CALL, signature)


@pytest.mark.parametrize(
    ("url", "params", "token"),
    [
        ("https://example.com/voice", {**CALL, "Digits": "1235"}, TOKEN),
        ("https://example.com/voice", {**CALL, "Extra": ""}, TOKEN),
        ("https://example.com/voice", {k: v for k, v in CALL.items() if k != "To"}, TOKEN),
        ("https://example.com/voicE", CALL, TOKEN),
        ("https://example.com/voice?x=1", CALL, TOKEN),
        ("https://evil.example.com/voice", CALL, TOKEN),
        ("https://example.com/voice", CALL, "12346"),
    ],
)
def test_tampering_fails(url: str, params: dict[str, str], token: str) -> None:
    signature = sign(TOKEN, "https://example.com/voice", CALL)
    assert not verify(token, url, params, signature)
    assert not RequestValidator(token).validate(url, params, signature)


@pytest.mark.parametrize("signature", [None, "", "   ", "not base64!", "çà", "A" * 28])
def test_missing_or_malformed_signatures_are_invalid(signature: str | None) -> None:
    assert not verify(TOKEN, "https://example.com/voice", CALL, signature)


def test_a_flask_view_verifies_with_its_request_objects() -> None:
    app = Flask(__name__)

    @app.post("/voice/<path:rest>")
    def voice(rest: str) -> tuple[str, int]:
        valid = verify(TOKEN, request.url, request.form, request.headers.get(SIGNATURE_HEADER))
        return ("yes" if valid else "no"), 200

    url = "http://localhost/voice/caf%C3%A9?lang=fr&n=1"
    form = {"CallSid": "CA1", "Digits": "#", "Event": ["b", "a"], "Say": "ça va"}
    client = app.test_client()
    good = client.post(url, data=form, headers={SIGNATURE_HEADER: sign(TOKEN, url, form)})
    assert good.text == "yes"
    forged = client.post(
        url, data={**form, "Digits": "9"}, headers={SIGNATURE_HEADER: sign(TOKEN, url, form)}
    )
    assert forged.text == "no"
