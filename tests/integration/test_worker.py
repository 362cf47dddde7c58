"""Calls through real Celery workers and a real broker, driven by the simulated node.

The node talks to the platform only through the broker (`media.link`), exactly like a
real media node: commands on its queue, events to whichever worker takes them.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from media.link import BrokerLink
from media.simulated import SimulatedNode
from store import bins, numbers
from store import calls as store_calls
from tests.integration.processes import Worker
from worker.app import transport_options

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PUBLIC = "http://127.0.0.1:8000"


class Node:
    """A simulated media node connected through the broker, in a thread of the test."""

    def __init__(self, services, tmp_path: Path) -> None:
        settings = services.settings()
        self.name = f"node-{uuid.uuid4().hex[:6]}"
        self.link = BrokerLink(
            services.broker_url,
            self.name,
            prefix=services.queue_prefix,
            transport_options=transport_options(settings),
        )
        self.sim = SimulatedNode(self.name, self.link.publish_event, recordings=tmp_path)
        self.thread = threading.Thread(target=self.link.run, args=(self.sim.execute,), daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.link.stop()
        self.thread.join(10)


@pytest.fixture
def node(services, tmp_path) -> Iterator[Node]:
    node = Node(services, tmp_path)
    yield node
    node.stop()


class Workers:
    """The workers a test starts, all stopped when it ends."""

    def __init__(self, services, log: Path) -> None:
        self.services = services
        self.log = log
        self.started: list[Worker] = []

    def start(self) -> Worker:
        worker = Worker(self.services, self.log)
        self.started.append(worker)
        return worker


@pytest.fixture
def workers(services, tmp_path) -> Iterator[Workers]:
    workers = Workers(services, tmp_path / "worker.log")
    yield workers
    for worker in workers.started:
        worker.stop()


def new_number(db, account_sid: str, voice_url: str) -> str:
    value = "+1555" + str(uuid.uuid4().int)[:7]
    with db.transaction() as conn:
        numbers.set_number(conn, account_sid, value, voice_url=voice_url)
    return value


def wait_for_status(db, sid: str, status: str, timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with db.transaction() as conn:
            row = store_calls.get_call(conn, sid)
        if row is not None and row.status == status:
            return
        if time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-4000:] if log.exists() else ""
            pytest.fail(f"call {sid} is {row and row.status}, not {status}\n{tail}")
        time.sleep(0.1)


def test_a_call_runs_through_the_broker(db, account, node, workers, tmp_path) -> None:
    with db.transaction() as conn:
        script = bins.save_bin(
            conn,
            account.sid,
            "menu",
            "<Response><Say>hello</Say><Gather numDigits='2' action='/bins/x'/>"
            "<Say>bye</Say></Response>",
        )
    workers.start()
    number = new_number(db, account.sid, f"{PUBLIC}/bins/{script.sid}")
    sid = node.sim.incoming("+15550111", number, keys="w")
    wait_for_status(db, sid, "completed", 60, tmp_path / "worker.log")
    kinds = [c["type"] for c in node.sim.calls[sid].commands]
    assert kinds == ["answer", "say", "collect", "say", "hangup"]


def test_a_malformed_event_is_dropped_and_the_worker_carries_on(
    db, account, node, workers, tmp_path
) -> None:
    workers.start()
    node.link.publish_event({"v": 1, "type": "teleport", "call": "x"})
    node.link.publish_event("not even an object")
    with db.transaction() as conn:
        script = bins.save_bin(conn, account.sid, "bye", "<Response><Hangup/></Response>")
    sid = node.sim.incoming("+15550111", new_number(db, account.sid, f"{PUBLIC}/bins/{script.sid}"))
    wait_for_status(db, sid, "completed", 60, tmp_path / "worker.log")
    assert "dropped a malformed media event" in (tmp_path / "worker.log").read_text()


class SlowCustomer(BaseHTTPRequestHandler):
    """Answers `/next` only once the test lets it: the worker is stuck mid-request."""

    hits: ClassVar[list[str]] = []
    reached = threading.Event()
    release = threading.Event()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        self.hits.append(self.rfile.read(length).decode())
        self.reached.set()
        self.release.wait(60)
        body = b"<Response><Say>two</Say><Say>three</Say></Response>"
        try:
            self.send_response(200)
            self.send_header("Content-Type", "text/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass  # the worker that asked is dead

    def log_message(self, *args: object) -> None:
        pass


def test_killing_the_worker_mid_script_loses_nothing_and_repeats_nothing(
    db, account, node, workers, tmp_path
) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), SlowCustomer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    customer = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with db.transaction() as conn:
            script = bins.save_bin(
                conn,
                account.sid,
                "slow",
                f"<Response><Say>one</Say><Gather numDigits='1' action='{customer}/next'/>"
                "</Response>",
            )
        first = workers.start()
        sid = node.sim.incoming(
            "+15550111", new_number(db, account.sid, f"{PUBLIC}/bins/{script.sid}"), keys="5"
        )
        assert SlowCustomer.reached.wait(60), (tmp_path / "worker.log").read_text()[-3000:]
        first.kill()  # in the middle of the Gather's action request
        SlowCustomer.release.set()
        workers.start()
        wait_for_status(db, sid, "completed", 90, tmp_path / "worker.log")
    finally:
        server.shutdown()

    assert [c["type"] for c in node.sim.calls[sid].commands] == [
        "answer", "say", "collect", "say", "say", "hangup",
    ]  # fmt: skip
    texts = [c.get("text") for c in node.sim.calls[sid].commands if c["type"] == "say"]
    assert texts == ["one", "two", "three"]
    assert all("Digits=5" in hit for hit in SlowCustomer.hits)
    assert len(SlowCustomer.hits) == 2  # asked again by the new worker, never more
    with db.transaction() as conn:
        log = store_calls.call_events(conn, sid)
        commands = store_calls.media_commands(conn, sid)
    applied = [entry["data"]["event_seq"] for entry in log if entry["kind"] == "event"]
    assert applied == sorted(set(applied)), "an event was applied twice"
    assert [c["seq"] for c in commands] == list(range(1, len(commands) + 1))
    assert all(c["sent_at"] is not None for c in commands)
