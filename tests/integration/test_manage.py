"""The operator's commands, run as a user runs them: `python manage.py ...`."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar
from urllib.parse import parse_qs

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]

GATHER = """<?xml version="1.0"?>
<Response>
  <Gather numDigits="6" action="{action}">
    <Say>Enter your account number, then press pound.</Say>
  </Gather>
  <Say>We did not get your number.</Say>
</Response>
"""


def manage(services, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        cwd=ROOT,
        env=services.env(**env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def trace(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines()]


class Customer(BaseHTTPRequestHandler):
    requests: ClassVar[list[dict]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        self.requests.append({k: v[0] for k, v in parse_qs(body).items()})
        reply = b"<Response><Say>Thank you.</Say></Response>"
        self.send_response(200)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def customer():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Customer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Customer.requests = []
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_simulate_gather_with_digits_requests_the_action(services, tmp_path, customer) -> None:
    script = tmp_path / "gather.xml"
    script.write_text(GATHER.format(action=f"{customer}/account"))
    result = manage(services, "simulate", "--script", str(script), "--digits", "1234#")
    assert result.returncode == 0, result.stderr
    lines = trace(result.stdout)
    (action,) = [x for x in lines if x["kind"] == "webhook_request" and x["purpose"] == "action"]
    assert action["url"] == f"{customer}/account"
    assert action["params"]["Digits"] == "1234"
    assert Customer.requests[0]["Digits"] == "1234"
    verbs = [x["verb"] for x in lines if x["kind"] == "verb"]
    assert verbs == ["Gather", "Say"]
    assert [x["text"] for x in lines if x["kind"] == "command" and x["command"] == "say"] == [
        "Thank you."
    ]


def test_simulate_without_digits_runs_the_next_verb(services, tmp_path) -> None:
    script = tmp_path / "gather.xml"
    script.write_text(GATHER.format(action="/unused"))
    result = manage(services, "simulate", "--script", str(script))
    assert result.returncode == 0, result.stderr
    lines = trace(result.stdout)
    assert not [x for x in lines if x["kind"] == "webhook_request" and x["purpose"] == "action"]
    assert [x["verb"] for x in lines if x["kind"] == "verb"] == ["Gather", "Say"]
    says = [x["text"] for x in lines if x["kind"] == "command" and x["command"] == "say"]
    assert says == ["We did not get your number."]
    assert lines[-1]["kind"] == "status"


def test_simulate_a_url_script(services, customer) -> None:
    result = manage(services, "simulate", "--script", f"{customer}/voice", "--from", "+15551234")
    assert result.returncode == 0, result.stderr
    assert Customer.requests[0]["From"] == "+15551234"


def test_simulate_a_missing_file_is_a_clear_error(services, tmp_path) -> None:
    result = manage(services, "simulate", "--script", str(tmp_path / "nope.xml"))
    assert result.returncode != 0
    assert "nope.xml" in result.stderr and "No such file" in result.stderr


def test_check_accepts_a_good_script(services, tmp_path) -> None:
    script = tmp_path / "ok.xml"
    script.write_text(GATHER.format(action="/next"))
    result = manage(services, "check", str(script))
    assert result.returncode == 0
    assert result.stdout.strip() == f"{script}: ok"


def test_check_reports_each_problem_with_line_and_column(services, tmp_path) -> None:
    script = tmp_path / "bad.xml"
    script.write_text(
        "<Response>\n"
        "  <Gather numDigits='abc' finishOnKey='##'>\n"
        "    <Sya>hi</Sya>\n"
        "  </Gather>\n"
        "</Response>\n"
    )
    result = manage(services, "check", str(script))
    assert result.returncode == 1
    problems = result.stderr.strip().splitlines()
    assert problems[0].startswith(f"{script}:2:3:") and "numDigits" in problems[0]
    assert any(p.startswith(f"{script}:2:3:") and "finishOnKey" in p for p in problems)
    assert any(p.startswith(f"{script}:3:5:") and "Sya" in p for p in problems)


def test_check_reports_malformed_xml(services, tmp_path) -> None:
    script = tmp_path / "broken.xml"
    script.write_text("<Response>\n  <Say>hi</Sai>\n</Response>\n")
    result = manage(services, "check", str(script))
    assert result.returncode == 1
    assert result.stderr.startswith(f"{script}:2:")


def test_number_set_points_a_number_at_a_script(services, db) -> None:
    result = manage(
        services,
        "number", "set", "+15557770001",
        "--voice-url", "https://customer.example/voice",
        "--method", "get",
        "--status-callback", "https://customer.example/status",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    from store import numbers

    with db.transaction() as conn:
        saved = numbers.find_number(conn, "+15557770001")
    assert (saved.voice_url, saved.voice_method, saved.status_callback) == (
        "https://customer.example/voice",
        "GET",
        "https://customer.example/status",
    )


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["+15557770002", "--voice-url", "ftp://x/"], "is not an http(s) URL"),
        (["not-a-number", "--voice-url", "https://x/"], "not a phone number"),
        (["+15557770003", "--voice-url", "https://x/", "--account", "AC" + "0" * 32], "no account"),
    ],
)
def test_number_set_refuses_bad_input(services, args, complaint) -> None:
    result = manage(services, "number", "set", *args)
    assert result.returncode != 0
    assert complaint in result.stderr
