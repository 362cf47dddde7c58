"""Extensions and registrations in PostgreSQL: passwords only as HA1, domains per account."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from media.sip.digest import DigestClient, DigestServer, Verdict
from provisioning.extensions import set_extension
from store import extensions
from store.extensions import Registration

pytestmark = pytest.mark.integration


@pytest.fixture
def domain(db, account) -> str:
    name = f"{uuid.uuid4().hex[:8]}.voice.test"
    with db.transaction() as conn:
        extensions.set_sip_domain(conn, account.sid, name)
    return name


def test_the_password_is_kept_only_as_digests_that_verify(db, account, domain) -> None:
    with db.transaction() as conn:
        saved = set_extension(conn, account.sid, "101", "correct horse", display_name="Ann")
        row = conn.execute(
            "SELECT * FROM extensions WHERE account_sid = %s", (account.sid,)
        ).fetchone()
    assert "correct horse" not in str(row)
    assert saved.realm == domain
    server = DigestServer(domain, b"a nonce secret of 32 bytes......", clock=lambda: 1000.0)
    for algorithm in ("MD5", "SHA-256"):
        challenge = [c for c in server.challenge() if algorithm in c]
        value = DigestClient("101", "correct horse").authorize(
            "REGISTER", f"sip:{domain}", challenge
        )

        def lookup(user: str, alg: str) -> str | None:
            with db.transaction() as conn:
                found = extensions.find_extension(conn, domain, user)
            return None if found is None else (found.ha1_md5 if alg == "MD5" else found.ha1_sha256)

        assert server.verify("REGISTER", value, lookup) is Verdict.OK


def test_extensions_are_found_by_their_accounts_domain_only(db, account, domain) -> None:
    with db.transaction() as conn:
        set_extension(conn, account.sid, "102", "password 102")
        assert extensions.find_extension(conn, domain, "102").account_sid == account.sid
        assert extensions.find_extension(conn, domain.upper(), "102") is not None
        assert extensions.find_extension(conn, "elsewhere.test", "102") is None
        assert extensions.find_extension(conn, domain, "103") is None


@pytest.mark.parametrize(
    ("number", "password", "complaint"),
    [
        ("1", "long enough", "2 to 8 digits"),
        ("10a", "long enough", "2 to 8 digits"),
        ("104", "short", "at least 8"),
    ],
)
def test_bad_extensions_are_refused(db, account, domain, number, password, complaint) -> None:
    with pytest.raises(ValueError, match=complaint), db.transaction() as conn:
        set_extension(conn, account.sid, number, password)


def test_an_account_without_a_domain_cannot_have_extensions(db, account) -> None:
    with pytest.raises(ValueError, match="no SIP domain"), db.transaction() as conn:
        set_extension(conn, account.sid, "101", "long enough")


def test_registrations_replace_and_expire(db, account, domain) -> None:
    now = datetime.now(UTC)
    live = Registration(
        "sip:101@192.0.2.1:5062",
        now + timedelta(seconds=60),
        "c1",
        2,
        "192.0.2.1:5062",
        "udp",
        None,
        None,
        "phone",
        "node-1",
    )
    stale = Registration(
        "sip:101@192.0.2.9:5062",
        now - timedelta(seconds=1),
        "c2",
        1,
        None,
        "udp",
        None,
        None,
        None,
        "node-1",
    )
    with db.transaction() as conn:
        set_extension(conn, account.sid, "101", "long enough")
        extensions.replace_registrations(conn, account.sid, "101", [live, stale])
        assert [r.contact for r in extensions.registrations(conn, account.sid, "101")] == [
            live.contact
        ]
        extensions.replace_registrations(conn, account.sid, "101", [])
        assert extensions.registrations(conn, account.sid, "101") == []
