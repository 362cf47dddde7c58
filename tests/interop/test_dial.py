"""<Dial> through the whole platform (`manage.py worker` + `manage.py media`) with real
phones: a subscriber calls a number whose script dials an employee's extension; an
employee calls another by extension, and an external number through the trunk. Audio is
proven by the tones each phone recorded.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import pytest

from billing import tariffs
from provisioning.extensions import set_extension
from store import bins, conferences, extensions, in_call_options, numbers
from store import calls as store_calls
from tests.conftest import AccountCredentials, Services
from tests.interop.conftest import BaresipFactory, SippFactory
from tests.interop.hosts import Platform, running_platform
from tests.interop.peers.baresip import Account, Baresip
from tests.interop.peers.sipp import Sipp, scenario
from tests.interop.peers.tones import active_seconds, has_tone, read_wav, tone_levels

pytestmark = pytest.mark.interop

SUBSCRIBER_TONE, EMPLOYEE_TONE, COLLEAGUE_TONE = 440, 1000, 1400


@dataclass
class Office:
    platform: Platform
    trunk: Sipp | None
    account: AccountCredentials
    domain: str
    number: str
    passwords: dict[str, str]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.platform.sip_port}"


@contextmanager
def opened_office(
    services: Services,
    db,
    account: AccountCredentials,
    tmp_path: Path,
    trunk_uri: str,
    extension_numbers: tuple[str, ...] = ("101", "102"),
    *,
    reception: bool = True,
) -> Iterator[Office]:
    """The account's extensions and a number whose script dials 101 (with `reception`),
    on a running platform whose trunk is `trunk_uri`."""
    domain = f"office-{uuid.uuid4().hex[:8]}.test"
    number = "+1555" + str(uuid.uuid4().int)[:7]
    passwords = {ext: f"secret-{ext}-{uuid.uuid4().hex[:6]}" for ext in extension_numbers}
    with db.transaction() as conn:
        extensions.set_sip_domain(conn, account.sid, domain)
        for ext, password in passwords.items():
            set_extension(conn, account.sid, ext, password, display_name=f"Employee {ext}")
        url = "http://127.0.0.1:9/unused"
        if reception:
            script = bins.save_bin(
                conn, account.sid, "reception", '<Response><Dial timeout="15">101</Dial></Response>'
            )
            url = f"{services.settings().public_url}/bins/{script.sid}"
        numbers.set_number(conn, account.sid, number, voice_url=url)
    with running_platform(services, tmp_path, trunk_uri=trunk_uri) as platform:
        yield Office(platform, None, account, domain, number, passwords)


@pytest.fixture
def office(
    services: Services,
    db,
    account: AccountCredentials,
    tmp_path: Path,
    sipp: SippFactory,
) -> Iterator[Office]:
    trunk = sipp(scenario("uas_trunk"), auto_answer=True, rtp_echo=True).start()
    with opened_office(services, db, account, tmp_path, f"sip:{trunk.address}") as office:
        office.trunk = trunk
        yield office


def employee(factory: BaresipFactory, office: Office, ext: str, tone: int) -> Baresip:
    phone = factory(
        ext,
        tone_hz=tone,
        account=Account(
            user=ext,
            password=office.passwords[ext],
            registrar=office.domain,
            outbound_proxy=f"sip:{office.address}",
            answermode="auto",
        ),
    )
    assert phone.registered(timeout=10), phone.log[-2000:]
    return phone


def subscriber_phone(factory: BaresipFactory) -> Baresip:
    """A caller from outside (no registration), playing the subscriber's tone."""
    return factory(
        "subscriber",
        tone_hz=SUBSCRIBER_TONE,
        account=Account(user="subscriber", answermode="manual"),
    )


def heard(phone: Baresip) -> tuple:
    [recording] = phone.recordings()
    samples, rate = read_wav(recording.dec)
    return samples[int(0.5 * rate) :], rate


def last(phone: Baresip, seconds: float) -> tuple:
    """The last `seconds` of what `phone` heard, and its sample rate."""
    [recording] = phone.recordings()
    samples, rate = read_wav(recording.dec)
    return samples[-int(seconds * rate) :], rate


def call_in(office: Office, factory: BaresipFactory, staff: Baresip) -> tuple[Baresip, float]:
    """The subscriber calls the office's number, whose script rings `staff` (101), and
    both answer: the subscriber's phone, and when their call was established."""
    subscriber = subscriber_phone(factory)
    subscriber.dial(f"sip:{office.number}@{office.address}")
    staff.wait_for("CALL_ESTABLISHED", timeout=20)
    subscriber.wait_for("CALL_ESTABLISHED", timeout=20)
    return subscriber, time.monotonic()


class Phones(NamedTuple):
    staff: Baresip
    colleague: Baresip
    subscriber: Baresip
    established: dict[str, float]  # by name, when that phone's call was established


def three_phones(office: Office, factory: BaresipFactory, settle: float = 1.0) -> Phones:
    """The subscriber's call answered by 101, who after `settle` seconds presses #102#:
    102 answers the consultation."""
    staff = employee(factory, office, "101", EMPLOYEE_TONE)
    colleague = employee(factory, office, "102", COLLEAGUE_TONE)
    subscriber, answered = call_in(office, factory, staff)
    time.sleep(settle)
    staff.send_digits("#102#")
    colleague.wait_for("CALL_ESTABLISHED", timeout=20)
    established = {"subscriber": answered, "staff": answered, "colleague": time.monotonic()}
    return Phones(staff, colleague, subscriber, established)


def calls_of(db, account_sid: str) -> list:
    with db.transaction() as conn:
        return store_calls.recent_calls(conn, account_sid)


def test_a_subscriber_reaches_the_employee_the_number_dials(
    office: Office, baresip_factory: BaresipFactory, db
) -> None:
    staff = employee(baresip_factory, office, "101", EMPLOYEE_TONE)
    subscriber, _ = call_in(office, baresip_factory, staff)
    time.sleep(2.5)
    subscriber.hangup()
    staff.wait_for("CALL_CLOSED", timeout=15)

    samples, rate = heard(subscriber)
    assert has_tone(samples, rate, EMPLOYEE_TONE) and not has_tone(samples, rate, SUBSCRIBER_TONE)
    samples, rate = heard(staff)
    assert has_tone(samples, rate, SUBSCRIBER_TONE) and not has_tone(samples, rate, EMPLOYEE_TONE)
    deadline = time.monotonic() + 10
    while True:
        rows = {row.direction: row for row in calls_of(db, office.account.sid)}
        if (
            all(row.ended_at for row in rows.values()) and len(rows) == 2
        ) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    parent, child = rows["inbound"], rows["outbound-dial"]
    assert (parent.status, child.status) == ("completed", "completed"), office.platform.tail()
    assert child.parent_call_sid == parent.sid
    assert child.to_number == "101"
    assert child.answered_at is not None


def test_an_employee_calls_a_colleague_by_extension(
    office: Office, baresip_factory: BaresipFactory
) -> None:
    caller = employee(baresip_factory, office, "101", EMPLOYEE_TONE)
    colleague = employee(baresip_factory, office, "102", COLLEAGUE_TONE)

    caller.dial(f"sip:102@{office.domain}")
    colleague.wait_for("CALL_ESTABLISHED", timeout=20)
    caller.wait_for("CALL_ESTABLISHED", timeout=20)
    time.sleep(2.5)
    colleague.hangup()
    caller.wait_for("CALL_CLOSED", timeout=15)

    samples, rate = heard(caller)
    assert has_tone(samples, rate, COLLEAGUE_TONE), office.platform.tail()
    samples, rate = heard(colleague)
    assert has_tone(samples, rate, EMPLOYEE_TONE)
    incoming = colleague.events("CALL_INCOMING") or colleague.events("CALL_ESTABLISHED")
    assert incoming


def test_an_employee_calls_out_through_the_trunk_with_the_accounts_number(
    office: Office, baresip_factory: BaresipFactory
) -> None:
    caller = employee(baresip_factory, office, "101", EMPLOYEE_TONE)

    caller.dial(f"sip:+14155550100@{office.domain}")
    caller.wait_for("CALL_ESTABLISHED", timeout=20)
    time.sleep(2.0)
    caller.hangup()
    caller.wait_for("CALL_CLOSED", timeout=15)

    [invite] = office.trunk.received("INVITE")[:1]
    assert invite.request_uri.startswith("sip:+14155550100@")
    assert f"sip:{office.number}@" in (invite.header("From") or "")
    samples, rate = heard(caller)
    assert has_tone(samples, rate, EMPLOYEE_TONE), "the trunk's echo did not come back"


def test_an_unregistered_extension_is_reported_to_the_script(
    office: Office, baresip_factory: BaresipFactory, db
) -> None:
    subscriber = subscriber_phone(baresip_factory)
    subscriber.dial(f"sip:{office.number}@{office.address}")
    # Nobody registered as 101: the dial fails at once and the script ends the call.
    subscriber.wait_for("CALL_CLOSED", timeout=20)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        rows = {row.direction: row for row in calls_of(db, office.account.sid)}
        if "outbound-dial" in rows and rows["outbound-dial"].ended_at:
            break
        time.sleep(0.2)
    assert rows["outbound-dial"].status in ("failed", "no-answer"), office.platform.tail()


def window(phone: Baresip, established: float, start: float, end: float) -> tuple:
    [recording] = phone.recordings()
    samples, rate = read_wav(recording.dec)
    first, last = start - established + 0.4, end - established - 0.2
    return samples[int(first * rate) : int(last * rate)], rate


def test_hash_consults_a_colleague_then_merges_everyone_into_a_conference(
    office: Office, baresip_factory: BaresipFactory, db
) -> None:
    staff, colleague, subscriber, established = three_phones(office, baresip_factory, 1.5)
    consulting = established["colleague"]
    time.sleep(3.0)
    staff.send_digits("#")
    time.sleep(1.0)
    merged = time.monotonic()
    time.sleep(3.0)
    ended = time.monotonic()
    subscriber.hangup()
    staff.wait_for("CALL_CLOSED", timeout=15)
    colleague.wait_for("CALL_CLOSED", timeout=15)

    # While 101 consults 102: the subscriber hears music and not 101; 102 hears 101 only.
    held, rate = window(subscriber, established["subscriber"], consulting, consulting + 2.5)
    assert not has_tone(held, rate, EMPLOYEE_TONE), office.platform.tail()
    assert not has_tone(held, rate, COLLEAGUE_TONE)
    assert active_seconds(held, rate) >= 1.5, "the subscriber heard no music"
    talk, rate = window(colleague, established["colleague"], consulting, consulting + 2.5)
    assert has_tone(talk, rate, EMPLOYEE_TONE) and not has_tone(talk, rate, SUBSCRIBER_TONE)
    # In the conference each hears the two others.
    for phone, name, own in (
        (subscriber, "subscriber", SUBSCRIBER_TONE),
        (staff, "staff", EMPLOYEE_TONE),
        (colleague, "colleague", COLLEAGUE_TONE),
    ):
        samples, rate = window(phone, established[name], merged, ended)
        others = {SUBSCRIBER_TONE, EMPLOYEE_TONE, COLLEAGUE_TONE} - {own}
        assert all(has_tone(samples, rate, tone) for tone in others), (name, office.platform.tail())
        levels = tone_levels(samples, rate, [SUBSCRIBER_TONE, EMPLOYEE_TONE, COLLEAGUE_TONE])
        # Its own tone comes back at most faintly (baresip leaks a little of what it
        # plays into what it sends, some -45 dBFS): 30 dB under the others.
        assert levels[own] < min(levels[t] for t in others) - 30, (name, levels)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        rows = calls_of(db, office.account.sid)
        if len(rows) == 3 and all(row.ended_at for row in rows):
            break
        time.sleep(0.2)
    assert len(rows) == 3 and all(row.ended_at for row in rows), [
        (r.direction, r.to_number, r.status) for r in rows
    ]
    # The conference is in PostgreSQL: closed with its reason, every participant's role,
    # join and leave time, and an ordered event per step.
    with db.transaction() as conn:
        [room] = conn.execute(
            "SELECT * FROM conferences WHERE account_sid = %s", (office.account.sid,)
        ).fetchall()
        members = conferences.participants(conn, room["sid"])
        steps = [e["kind"] for e in conferences.events(conn, room["sid"])]
    by_call = {row.sid: row for row in rows}
    assert (room["status"], room["end_reason"]) == ("completed", "subscriber-hung-up")
    assert by_call[room["origin_call_sid"]].direction == "inbound"
    assert sorted(m.role for m in members) == ["employee", "employee", "subscriber"]
    assert all(m.left_at is not None and m.left_at >= m.joined_at for m in members)
    assert [m.is_controller for m in members if m.call_sid == room["controller_call_sid"]] == [True]
    assert steps[:4] == ["start", "join", "join", "join"] and steps[-1] == "end"


def test_the_controller_mutes_the_others_then_removes_the_last_added(
    office: Office, baresip_factory: BaresipFactory, db
) -> None:
    with db.transaction() as conn:
        in_call_options.set_option(conn, office.account.sid, "6", "mute")
        in_call_options.set_option(conn, office.account.sid, "9", "remove")
    staff, colleague, subscriber, established = three_phones(office, baresip_factory)
    time.sleep(1.5)
    staff.send_digits("#")  # the conference of three
    time.sleep(1.5)
    staff.send_digits("6")  # mute the others
    muted = time.monotonic()
    time.sleep(3.0)
    staff.send_digits("9")  # remove 102, the last added
    colleague.wait_for("CALL_CLOSED", timeout=15)
    removed = time.monotonic()
    staff.send_digits("6")  # unmute the subscriber
    time.sleep(3.0)
    ended = time.monotonic()
    subscriber.hangup()
    staff.wait_for("CALL_CLOSED", timeout=15)

    # Muted: 101 hears neither of the others; the subscriber still hears 101, not 102.
    samples, rate = window(staff, established["staff"], muted, muted + 2.5)
    assert not has_tone(samples, rate, SUBSCRIBER_TONE), office.platform.tail()
    assert not has_tone(samples, rate, COLLEAGUE_TONE)
    samples, rate = window(subscriber, established["subscriber"], muted, muted + 2.5)
    assert has_tone(samples, rate, EMPLOYEE_TONE) and not has_tone(samples, rate, COLLEAGUE_TONE)
    # 102 removed and the subscriber unmuted: 101 and the subscriber talk on.
    samples, rate = window(staff, established["staff"], removed + 0.5, ended)
    assert has_tone(samples, rate, SUBSCRIBER_TONE), office.platform.tail()
    with db.transaction() as conn:
        [room] = conn.execute(
            "SELECT * FROM conferences WHERE account_sid = %s", (office.account.sid,)
        ).fetchall()
        steps = [(e["kind"], e["data"]) for e in conferences.events(conn, room["sid"])]
    kinds = [kind for kind, _data in steps]
    assert kinds.count("mute") == 2 and "removed" in kinds, kinds
    assert kinds.index("removed") < kinds.index("unmute"), kinds
    [removed_step] = [data for kind, data in steps if kind == "removed"]
    assert removed_step["by"] == room["controller_call_sid"]


def test_star_during_the_consultation_goes_back_to_the_subscriber(
    office: Office, baresip_factory: BaresipFactory
) -> None:
    staff, colleague, subscriber, _ = three_phones(office, baresip_factory)
    time.sleep(1.0)
    staff.send_digits("*")
    colleague.wait_for("CALL_CLOSED", timeout=15)
    time.sleep(3.0)
    subscriber.hangup()
    staff.wait_for("CALL_CLOSED", timeout=15)
    # The last seconds: the subscriber hears 101 again, and no music.
    tail, rate = last(subscriber, 2.0)
    assert has_tone(tail, rate, EMPLOYEE_TONE), office.platform.tail()
    assert not has_tone(tail, rate, COLLEAGUE_TONE)


def test_the_employee_hanging_up_during_the_consultation_transfers_the_subscriber(
    office: Office, baresip_factory: BaresipFactory
) -> None:
    staff, colleague, subscriber, _ = three_phones(office, baresip_factory)
    time.sleep(1.0)
    staff.hangup()
    staff.wait_for("CALL_CLOSED", timeout=15)
    time.sleep(3.0)
    subscriber.hangup()
    colleague.wait_for("CALL_CLOSED", timeout=15)
    for phone, other in ((subscriber, COLLEAGUE_TONE), (colleague, SUBSCRIBER_TONE)):
        tail, rate = last(phone, 2.0)
        assert has_tone(tail, rate, other), office.platform.tail()


def test_control_passes_on_and_the_last_employee_leaving_ends_the_call(
    office: Office, baresip_factory: BaresipFactory, db
) -> None:
    staff, colleague, subscriber, _ = three_phones(office, baresip_factory)
    time.sleep(1.0)
    staff.send_digits("#")  # conference of three
    time.sleep(1.5)
    staff.hangup()  # control passes to 102; the conference goes on
    staff.wait_for("CALL_CLOSED", timeout=15)
    time.sleep(2.0)
    assert subscriber.events("CALL_CLOSED") == [], office.platform.tail()
    tail, rate = last(subscriber, 1.5)
    assert has_tone(tail, rate, COLLEAGUE_TONE)
    colleague.hangup()  # the last employee: the subscriber's call ends
    subscriber.wait_for("CALL_CLOSED", timeout=15)
    with db.transaction() as conn:
        [room] = conn.execute(
            "SELECT * FROM conferences WHERE account_sid = %s", (office.account.sid,)
        ).fetchall()
        steps = [e["kind"] for e in conferences.events(conn, room["sid"])]
    assert room["end_reason"] == "all-employees-left"
    assert "controller" in steps


def test_the_hash_flow_on_an_employees_outgoing_call(
    services: Services,
    db,
    account: AccountCredentials,
    tmp_path: Path,
    baresip_factory: BaresipFactory,
) -> None:
    # The carrier is a phone answering as the number the employee dials (baresip takes
    # only calls to its own user).
    carrier = baresip_factory(
        "carrier",
        tone_hz=SUBSCRIBER_TONE,
        account=Account(user="+14155550100", answermode="auto"),
    )
    tariffs.import_rates(
        db,
        "prefix,description,price_per_minute,connect_fee,increments,currency\n"
        "1,North America,0.014,0,60/60,USD\n",
        file_name="deck.csv",
        deck=f"deck-{uuid.uuid4().hex[:8]}",
        account_sid=account.sid,
    )
    trunk_uri = f"sip:{carrier.sip_address}"
    with opened_office(services, db, account, tmp_path, trunk_uri, reception=False) as office:
        platform, domain = office.platform, office.domain
        staff = employee(baresip_factory, office, "101", EMPLOYEE_TONE)
        colleague = employee(baresip_factory, office, "102", COLLEAGUE_TONE)
        staff.dial(f"sip:+14155550100@{domain}")
        carrier.wait_for("CALL_ESTABLISHED", timeout=20)
        staff.wait_for("CALL_ESTABLISHED", timeout=20)
        answered = time.monotonic()
        time.sleep(1.0)
        staff.send_digits("#102#")
        colleague.wait_for("CALL_ESTABLISHED", timeout=20)
        established = time.monotonic()
        time.sleep(2.0)
        consulted = time.monotonic()
        staff.send_digits("#")
        time.sleep(1.0)
        merged = time.monotonic()
        time.sleep(3.0)
        ended = time.monotonic()
        carrier.hangup()
        staff.wait_for("CALL_CLOSED", timeout=15)
        colleague.wait_for("CALL_CLOSED", timeout=15)
        bill = conference_bill(db, services, account.sid)
    # While 101 consults 102, the party 101 called hears music and neither of them; 102
    # hears 101 only.
    held, rate = window(carrier, answered, established, consulted)
    assert not has_tone(held, rate, EMPLOYEE_TONE), platform.tail()
    assert not has_tone(held, rate, COLLEAGUE_TONE)
    assert active_seconds(held, rate) >= 1.0, "the called party heard no music"
    talk, rate = window(colleague, established, established, consulted)
    assert has_tone(talk, rate, EMPLOYEE_TONE) and not has_tone(talk, rate, SUBSCRIBER_TONE)
    samples, rate = window(colleague, established, merged, ended)
    assert has_tone(samples, rate, SUBSCRIBER_TONE), platform.tail()
    assert has_tone(samples, rate, EMPLOYEE_TONE)
    tail, rate = last(carrier, 2.5)
    assert has_tone(tail, rate, EMPLOYEE_TONE) and has_tone(tail, rate, COLLEAGUE_TONE)
    # The bill of the conference (PRODUCT.md): the call to the number 101 dialled, and
    # one leg per participant it added; rated by the worker as each leg ended.
    lines = [(leg["number"], leg["role"], leg["status"]) for leg in bill["legs"]]
    assert lines == [("+14155550100", "subscriber", "rated"), ("102", "employee", "free")], bill
    assert bill["total"] == "0.0140" and bill["complete"] is True


def test_registrations_survive_a_restart_of_the_media_node(
    office: Office, baresip_factory: BaresipFactory
) -> None:
    staff = employee(baresip_factory, office, "101", EMPLOYEE_TONE)
    time.sleep(0.5)  # the registration is written behind the 200 OK
    office.platform.restart_media()
    assert "1 phone registrations restored" in office.platform.logs["media"].read_text()
    subscriber, _ = call_in(office, baresip_factory, staff)
    subscriber.hangup()
    staff.wait_for("CALL_CLOSED", timeout=15)


def test_callers_meet_in_a_conference_room(
    office: Office, baresip_factory: BaresipFactory, db, services: Services
) -> None:
    room_number = "+1555" + str(uuid.uuid4().int)[:7]
    with db.transaction() as conn:
        script = bins.save_bin(
            conn,
            office.account.sid,
            "room",
            '<Response><Dial><Conference beep="false">Team</Conference></Dial></Response>',
        )
        numbers.set_number(
            conn,
            office.account.sid,
            room_number,
            voice_url=f"{services.settings().public_url}/bins/{script.sid}",
        )
    first = baresip_factory(
        "a", tone_hz=SUBSCRIBER_TONE, account=Account(user="a", answermode="manual")
    )
    second = baresip_factory(
        "b", tone_hz=COLLEAGUE_TONE, account=Account(user="b", answermode="manual")
    )
    first.dial(f"sip:{room_number}@{office.address}")
    first.wait_for("CALL_ESTABLISHED", timeout=20)
    second.dial(f"sip:{room_number}@{office.address}")
    second.wait_for("CALL_ESTABLISHED", timeout=20)
    time.sleep(3.0)
    first.hangup()
    second.hangup()
    for phone, other, own in (
        (first, COLLEAGUE_TONE, SUBSCRIBER_TONE),
        (second, SUBSCRIBER_TONE, COLLEAGUE_TONE),
    ):
        phone.wait_for("CALL_CLOSED", timeout=15)
        tail, rate = last(phone, 2.0)
        assert has_tone(tail, rate, other), office.platform.tail()
        levels = tone_levels(tail, rate, [own, other])
        assert levels[own] < levels[other] - 30


@pytest.mark.parametrize("dialled", ["12*", "109"], ids=["invalid-number", "unknown-extension"])
def test_an_invalid_number_after_hash_plays_the_error_tone_and_goes_back(
    office: Office, baresip_factory: BaresipFactory, dialled: str
) -> None:
    staff = employee(baresip_factory, office, "101", EMPLOYEE_TONE)
    subscriber, _ = call_in(office, baresip_factory, staff)
    time.sleep(1.0)
    staff.send_digits(f"#{dialled}#")
    time.sleep(3.5)
    subscriber.hangup()
    staff.wait_for("CALL_CLOSED", timeout=15)
    [recording] = staff.recordings()
    samples, rate = read_wav(recording.dec)
    # The SIT error tone's three frequencies, then the subscriber again.
    assert all(has_tone(samples, rate, f) for f in (914, 1371, 1777)), office.platform.tail()
    assert has_tone(samples[-int(1.5 * rate) :], rate, SUBSCRIBER_TONE)
    assert office.trunk.received("INVITE") == []


def conference_bill(db, services: Services, account_sid: str) -> dict:
    """`manage.py bill CF... --json` of the account's conference once every leg is rated."""
    deadline = time.monotonic() + 30
    while True:
        with db.transaction() as conn:
            [room] = conn.execute(
                "SELECT sid FROM conferences WHERE account_sid = %s", (account_sid,)
            ).fetchall()
            unrated = conn.execute(
                """SELECT count(*) AS n FROM calls c LEFT JOIN charges ch ON ch.call_sid = c.sid
                   WHERE c.account_sid = %s AND ch.call_sid IS NULL""",
                (account_sid,),
            ).fetchone()["n"]
        if unrated == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    result = subprocess.run(
        [sys.executable, "manage.py", "bill", room["sid"], "--json"],
        cwd=Path(__file__).resolve().parents[2],
        env=services.env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


EXTERNAL_TONE, THIRD_TONE = 1800, 700
EXTERNAL = "+14155550199"


@pytest.fixture
def carrier_office(
    services: Services,
    db,
    account: AccountCredentials,
    tmp_path: Path,
    baresip_factory: BaresipFactory,
) -> Iterator[tuple[Office, Baresip]]:
    """The office with a phone on the telephone network: the trunk is a baresip that
    answers as the external number `EXTERNAL`, playing its own tone."""
    carrier = baresip_factory(
        "carrier", tone_hz=EXTERNAL_TONE, account=Account(user=EXTERNAL, answermode="auto")
    )
    trunk_uri = f"sip:{carrier.sip_address}"
    with opened_office(services, db, account, tmp_path, trunk_uri, ("101", "102", "103")) as office:
        yield office, carrier


def test_a_fourth_party_from_outside_joins_and_all_four_are_mixed(
    carrier_office: tuple[Office, Baresip], baresip_factory: BaresipFactory, db
) -> None:
    office, carrier = carrier_office
    staff, colleague, subscriber, established = three_phones(office, baresip_factory)
    time.sleep(1.5)
    staff.send_digits("#")  # three in the conference
    time.sleep(1.5)
    staff.send_digits("#" + EXTERNAL.lstrip("+") + "#", gap=0.15)  # the number, as dialled
    carrier.wait_for("CALL_ESTABLISHED", timeout=20)
    established["carrier"] = time.monotonic()
    time.sleep(1.5)
    staff.send_digits("#")  # four
    time.sleep(1.0)
    merged = time.monotonic()
    time.sleep(3.0)
    ended = time.monotonic()
    subscriber.hangup()
    for phone in (staff, colleague, carrier):
        phone.wait_for("CALL_CLOSED", timeout=15)

    tones = {
        "subscriber": (subscriber, SUBSCRIBER_TONE),
        "staff": (staff, EMPLOYEE_TONE),
        "colleague": (colleague, COLLEAGUE_TONE),
        "carrier": (carrier, EXTERNAL_TONE),
    }
    for name, (phone, own) in tones.items():
        samples, rate = window(phone, established[name], merged, ended)
        others = {tone for _, tone in tones.values()} - {own}
        missing = [tone for tone in others if not has_tone(samples, rate, tone)]
        assert not missing, (name, missing, office.platform.tail())
    with db.transaction() as conn:
        [room] = conn.execute(
            "SELECT * FROM conferences WHERE account_sid = %s", (office.account.sid,)
        ).fetchall()
        members = conferences.participants(conn, room["sid"])
    assert (room["status"], room["end_reason"]) == ("completed", "subscriber-hung-up")
    assert sorted(m.role for m in members) == ["employee", "employee", "external", "subscriber"]
    assert [m.number for m in members if m.role == "external"] == [EXTERNAL]
    assert all(m.left_at is not None and m.left_at >= m.joined_at for m in members)


def test_the_employee_who_takes_control_adds_a_participant(
    carrier_office: tuple[Office, Baresip], baresip_factory: BaresipFactory
) -> None:
    office, _carrier = carrier_office
    third = employee(baresip_factory, office, "103", THIRD_TONE)
    staff, colleague, subscriber, _ = three_phones(office, baresip_factory)
    time.sleep(1.5)
    staff.send_digits("#")
    time.sleep(1.5)
    staff.hangup()  # 102 takes control
    staff.wait_for("CALL_CLOSED", timeout=15)
    time.sleep(1.0)
    colleague.send_digits("#103#")
    third.wait_for("CALL_ESTABLISHED", timeout=20)
    joined = time.monotonic()
    time.sleep(1.5)
    colleague.send_digits("#")
    time.sleep(1.0)
    merged = time.monotonic()
    time.sleep(3.0)
    ended = time.monotonic()
    subscriber.hangup()
    colleague.wait_for("CALL_CLOSED", timeout=15)
    third.wait_for("CALL_CLOSED", timeout=15)
    samples, rate = window(third, joined, merged, ended)
    assert has_tone(samples, rate, SUBSCRIBER_TONE), office.platform.tail()
    assert has_tone(samples, rate, COLLEAGUE_TONE)
    tail, rate = last(subscriber, 2.5)
    assert has_tone(tail, rate, THIRD_TONE) and has_tone(tail, rate, COLLEAGUE_TONE)


def test_a_busy_colleague_brings_the_employee_back_to_the_subscriber(
    office: Office, baresip_factory: BaresipFactory
) -> None:
    staff = employee(baresip_factory, office, "101", EMPLOYEE_TONE)
    colleague = employee(baresip_factory, office, "102", COLLEAGUE_TONE)
    colleague.set_answermode("manual")
    subscriber, _ = call_in(office, baresip_factory, staff)
    time.sleep(1.0)
    staff.send_digits("#102#")
    colleague.wait_for("CALL_INCOMING", timeout=20)
    colleague.hangup()  # baresip declines a ringing call with 486 Busy Here
    time.sleep(3.5)
    subscriber.hangup()
    staff.wait_for("CALL_CLOSED", timeout=15)
    # Both are back together: each hears the other again, and no music.
    for phone, other in ((subscriber, EMPLOYEE_TONE), (staff, SUBSCRIBER_TONE)):
        tail, rate = last(phone, 2.0)
        assert has_tone(tail, rate, other), office.platform.tail()
        assert not has_tone(tail, rate, COLLEAGUE_TONE)
