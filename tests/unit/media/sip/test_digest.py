"""Digest authentication: the RFC worked examples, our client against our server, and
every way an answer can fail."""

from __future__ import annotations

import hashlib

import pytest

from media.sip import digest
from media.sip.digest import ALGORITHMS, DigestClient, DigestServer, Verdict, digest_response, ha1
from media.sip.headers import Challenge, Credentials
from media.sip.syntax import Params

REALM = "pbx.example.com"
SECRET = b"0123456789abcdef0123456789abcdef"
REGISTER_URI = "sip:pbx.example.com"


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Directory:
    """HA1 values by (username, algorithm), counting lookups."""

    def __init__(self, users: dict[str, str], realm: str = REALM) -> None:
        self.ha1 = {(user, algorithm): ha1(user, realm, password, algorithm)
                    for user, password in users.items() for algorithm in ALGORITHMS}
        self.lookups: list[tuple[str, str]] = []

    def __call__(self, username: str, algorithm: str) -> str | None:
        self.lookups.append((username, algorithm))
        return self.ha1.get((username, algorithm))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def server(clock: Clock) -> DigestServer:
    return DigestServer(REALM, SECRET, clock=clock)


@pytest.fixture
def users() -> Directory:
    return Directory({"101": "secret101", "102": "secret102"})


def params_of(value: str) -> Params:
    return Credentials.parse(value).params


def with_params(value: str, **changes: str | None) -> str:
    """``value`` (a Digest credentials or challenge value) with parameters replaced,
    added, or removed (None)."""
    parsed = Credentials.parse(value)
    params = parsed.params
    for name, new in changes.items():
        params = params.remove(name) if new is None else params.replace(name, new)
    return Credentials(parsed.scheme, params, parsed.quoted).serialize()


def only(challenges: list[str], algorithm: str) -> list[str]:
    return [c for c in challenges if Challenge.parse(c).params["algorithm"] == algorithm]


# --- The worked examples of the RFCs ------------------------------------------------------

def test_rfc2617_section_3_5_example() -> None:
    secret = ha1("Mufasa", "testrealm@host.com", "Circle Of Life", "MD5")
    response = digest_response(
        "MD5", secret, "dcd98b7102dd2f0e8b11d0f600bfb0c093", "GET", "/dir/index.html",
        qop="auth", nc="00000001", cnonce="0a4f113b",
    )
    assert response == "6629fae49393a05397450978507c4ef1"


@pytest.mark.parametrize(
    ("algorithm", "expected"),
    [
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
    ],
)
def test_rfc7616_section_3_9_1_example(algorithm: str, expected: str) -> None:
    secret = ha1("Mufasa", "http-auth@example.org", "Circle of Life", algorithm)
    response = digest_response(
        algorithm, secret, "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", "GET",
        "/dir/index.html", qop="auth", nc="00000001",
        cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
    )
    assert response == expected


def test_rfc2069_form_and_auth_int_hash_what_the_rfcs_say() -> None:
    def md5(text: str | bytes) -> str:
        return hashlib.md5(text.encode() if isinstance(text, str) else text).hexdigest()

    secret = ha1("alice", "r", "pw", "md5")  # algorithm names are case-insensitive
    assert secret == md5("alice:r:pw")
    assert digest_response("MD5", secret, "n", "INVITE", "sip:b@h") == md5(
        f"{secret}:n:{md5('INVITE:sip:b@h')}"
    )
    body = b"v=0\r\n"
    assert digest_response(
        "MD5", secret, "n", "INVITE", "sip:b@h", qop="auth-int", nc="00000002", cnonce="c",
        body=body,
    ) == md5(f"{secret}:n:00000002:c:auth-int:{md5('INVITE:sip:b@h:' + md5(body))}")


def test_unknown_algorithm_and_incomplete_qop_are_programming_errors() -> None:
    with pytest.raises(ValueError, match="SHA-512-256"):
        ha1("a", "r", "p", "SHA-512-256")
    with pytest.raises(ValueError, match="nc and cnonce"):
        digest_response("MD5", "0" * 32, "n", "GET", "/", qop="auth")
    with pytest.raises(ValueError, match="auth-conf"):
        digest_response("MD5", "0" * 32, "n", "GET", "/", qop="auth-conf", nc="1", cnonce="c")


# --- Challenges ---------------------------------------------------------------------------

def test_challenge_lists_sha256_first_with_one_shared_nonce(server: DigestServer) -> None:
    values = server.challenge()
    challenges = [Challenge.parse(value) for value in values]
    assert [c.params["algorithm"] for c in challenges] == ["SHA-256", "MD5"]
    first, second = challenges
    assert first.scheme == "Digest"
    assert first.params["realm"] == REALM
    assert first.params["qop"] == "auth"
    assert first.params["nonce"] == second.params["nonce"]
    assert first.params["opaque"] == second.params["opaque"]
    assert "stale" not in first.params
    assert 'realm="pbx.example.com"' in values[0] and 'qop="auth"' in values[0]
    assert "algorithm=SHA-256" in values[0]


def test_stale_challenge_says_so_and_nonces_are_fresh(server: DigestServer) -> None:
    stale = server.challenge(stale=True)
    assert all(Challenge.parse(value).params["stale"] == "true" for value in stale)
    nonces = {Challenge.parse(server.challenge()[0]).params["nonce"] for _ in range(20)}
    assert len(nonces) == 20


def test_algorithms_are_configurable(clock: Clock) -> None:
    md5_only = DigestServer(REALM, SECRET, clock=clock, algorithms=("md5",))
    assert [Challenge.parse(v).params["algorithm"] for v in md5_only.challenge()] == ["MD5"]
    with pytest.raises(ValueError, match="SHA-1"):
        DigestServer(REALM, SECRET, clock=clock, algorithms=("SHA-1",))
    with pytest.raises(ValueError, match="at least one"):
        DigestServer(REALM, SECRET, clock=clock, algorithms=())
    with pytest.raises(ValueError, match="16 bytes"):
        DigestServer(REALM, b"short", clock=clock)


# --- Our client against our server -------------------------------------------------------

@pytest.mark.parametrize("algorithm", ["SHA-256", "MD5"])
def test_client_answer_verifies(server: DigestServer, users: Directory, algorithm: str) -> None:
    answer = DigestClient("101", "secret101").authorize(
        "REGISTER", REGISTER_URI, only(server.challenge(), algorithm)
    )
    params = params_of(answer)
    assert params["algorithm"] == algorithm
    assert params["qop"] == "auth"
    assert params["nc"] == "00000001"
    assert server.verify("REGISTER", answer, users) is Verdict.OK
    assert users.lookups == [("101", algorithm)]


def test_client_prefers_sha256_whatever_the_order(server: DigestServer) -> None:
    answer = DigestClient("101", "secret101").authorize(
        "INVITE", "sip:200@pbx.example.com", list(reversed(server.challenge()))
    )
    assert params_of(answer)["algorithm"] == "SHA-256"


def test_rfc2069_answer_without_qop_verifies(server: DigestServer, users: Directory) -> None:
    challenge = with_params(only(server.challenge(), "MD5")[0], qop=None, algorithm=None)
    answer = DigestClient("102", "secret102").authorize("REGISTER", REGISTER_URI, [challenge])
    params = params_of(answer)
    assert "qop" not in params and "nc" not in params and "cnonce" not in params
    assert "algorithm" not in params  # the challenge named none, so neither do we
    assert server.verify("REGISTER", answer, users) is Verdict.OK
    assert users.lookups == [("102", "MD5")]


def test_answer_accepts_parsed_credentials(server: DigestServer, users: Directory) -> None:
    answer = DigestClient("101", "secret101").authorize("BYE", "sip:x@y", server.challenge())
    assert server.verify("BYE", Credentials.parse(answer), users) is Verdict.OK


def test_any_process_with_the_secret_accepts_the_nonce(clock: Clock, users: Directory) -> None:
    issuer = DigestServer(REALM, SECRET, clock=clock)
    other = DigestServer(REALM, SECRET, clock=clock)
    answer = DigestClient("101", "secret101").authorize("REGISTER", REGISTER_URI,
                                                        issuer.challenge())
    assert other.verify("REGISTER", answer, users) is Verdict.OK


def test_answer_without_opaque_is_accepted(server: DigestServer, users: Directory) -> None:
    answer = DigestClient("101", "secret101").authorize("REGISTER", REGISTER_URI,
                                                        server.challenge())
    assert server.verify("REGISTER", with_params(answer, opaque=None), users) is Verdict.OK


# --- Failures -----------------------------------------------------------------------------

def test_wrong_password_and_unknown_user_fail_alike(
    server: DigestServer, users: Directory
) -> None:
    challenge = server.challenge()
    wrong = DigestClient("101", "guess").authorize("REGISTER", REGISTER_URI, challenge)
    unknown = DigestClient("999", "secret101").authorize("REGISTER", REGISTER_URI, challenge)
    assert server.verify("REGISTER", wrong, users) is Verdict.FAILED
    assert server.verify("REGISTER", unknown, users) is Verdict.FAILED


def test_unknown_user_costs_the_same_lookup_and_hashing(
    server: DigestServer, users: Directory, monkeypatch: pytest.MonkeyPatch
) -> None:
    computed: list[str] = []
    real = digest.digest_response

    def counting(algorithm: str, ha1_hex: str, *args: object, **kwargs: object) -> str:
        computed.append(ha1_hex)
        return real(algorithm, ha1_hex, *args, **kwargs)  # type: ignore[arg-type]

    challenge = server.challenge()
    answers = [DigestClient(username, "guess").authorize("REGISTER", REGISTER_URI, challenge)
               for username in ("101", "999")]
    monkeypatch.setattr(digest, "digest_response", counting)
    for answer in answers:
        assert server.verify("REGISTER", answer, users) is Verdict.FAILED
    assert users.lookups == [("101", "SHA-256"), ("999", "SHA-256")]
    assert len(computed) == 2
    known, dummy = computed
    assert known == users.ha1[("101", "SHA-256")]
    assert len(dummy) == len(known) and dummy not in users.ha1.values()


class _AlwaysEqualHmac:
    """Stands in for the hmac module with a compare_digest that always says equal."""

    def __getattr__(self, name: str) -> object:
        import hmac

        return getattr(hmac, name)

    @staticmethod
    def compare_digest(a: object, b: object) -> bool:
        return True


def test_unknown_user_fails_even_if_the_lookup_matched_the_dummy(
    server: DigestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Whatever the answer, no user means no success.
    monkeypatch.setattr(digest, "hmac", _AlwaysEqualHmac())
    answer = DigestClient("999", "x").authorize("REGISTER", REGISTER_URI, server.challenge())
    assert server.verify("REGISTER", answer, lambda user, algorithm: None) is Verdict.FAILED


def test_wrong_realm_fails(clock: Clock, server: DigestServer, users: Directory) -> None:
    elsewhere = DigestServer("other.example.com", SECRET, clock=clock)
    answer = DigestClient("101", "secret101").authorize("REGISTER", REGISTER_URI,
                                                        elsewhere.challenge())
    assert server.verify("REGISTER", answer, users) is Verdict.FAILED
    # Nor may the realm be edited to ours: the nonce is bound to the realm that issued it.
    assert server.verify("REGISTER", with_params(answer, realm=REALM), users) is Verdict.FAILED
    assert users.lookups == []


def test_tampered_or_foreign_nonce_fails(clock: Clock, server: DigestServer,
                                         users: Directory) -> None:
    client = DigestClient("101", "secret101")
    nonce = Challenge.parse(server.challenge()[0]).params["nonce"]
    assert nonce is not None
    flipped = nonce[:-1] + ("A" if nonce[-1] != "A" else "B")
    later = nonce[:9] + ("A" if nonce[9] != "A" else "B") + nonce[10:]  # issue time edited
    foreign = DigestServer(REALM, b"another secret, 32 bytes long...", clock=clock).challenge()
    for challenge in (
        with_params(server.challenge()[0], nonce=flipped),
        with_params(server.challenge()[0], nonce=later),
        with_params(server.challenge()[0], nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093"),
        foreign[0],
    ):
        answer = client.authorize("REGISTER", REGISTER_URI, [challenge])
        assert server.verify("REGISTER", answer, users) is Verdict.FAILED
    assert users.lookups == []


def test_expired_nonce_is_stale_only_with_the_right_password(
    clock: Clock, server: DigestServer, users: Directory
) -> None:
    challenge = server.challenge()
    right = DigestClient("101", "secret101").authorize("REGISTER", REGISTER_URI, challenge)
    wrong = DigestClient("101", "guess").authorize("REGISTER", REGISTER_URI, challenge)
    clock.now += 300.5
    assert server.verify("REGISTER", right, users) is Verdict.STALE
    assert server.verify("REGISTER", wrong, users) is Verdict.FAILED


def test_nonce_within_its_lifetime_is_fine(clock: Clock, server: DigestServer,
                                           users: Directory) -> None:
    answer = DigestClient("101", "secret101").authorize("REGISTER", REGISTER_URI,
                                                        server.challenge())
    clock.now += 299.0
    assert server.verify("REGISTER", answer, users) is Verdict.OK


def test_nonce_from_a_clock_far_ahead_is_stale(clock: Clock, users: Directory) -> None:
    ahead = DigestServer(REALM, SECRET, clock=lambda: clock.now + 3600)
    answer = DigestClient("101", "secret101").authorize("REGISTER", REGISTER_URI,
                                                        ahead.challenge())
    assert DigestServer(REALM, SECRET, clock=clock).verify("REGISTER", answer,
                                                           users) is Verdict.STALE


def test_replayed_nonce_count_fails_and_the_next_count_passes(
    server: DigestServer, users: Directory
) -> None:
    client = DigestClient("101", "secret101")
    challenge = server.challenge()
    first = client.authorize("REGISTER", REGISTER_URI, challenge)
    assert server.verify("REGISTER", first, users) is Verdict.OK
    assert server.verify("REGISTER", first, users) is Verdict.FAILED
    second = client.authorize("REGISTER", REGISTER_URI, challenge)
    assert params_of(second)["nc"] == "00000002"
    assert server.verify("REGISTER", second, users) is Verdict.OK


def test_replay_record_is_bounded(clock: Clock, users: Directory) -> None:
    server = DigestServer(REALM, SECRET, clock=clock, replay_cache_size=2)
    client = DigestClient("101", "secret101")
    challenge = server.challenge()
    answers = [client.authorize("REGISTER", REGISTER_URI, challenge) for _ in range(3)]
    assert [server.verify("REGISTER", a, users) for a in answers] == [Verdict.OK] * 3
    assert server.verify("REGISTER", answers[2], users) is Verdict.FAILED
    # The oldest pair was forgotten to stay within the bound.
    assert server.verify("REGISTER", answers[0], users) is Verdict.OK


def test_reused_nonce_without_qop_is_stale(server: DigestServer, users: Directory) -> None:
    challenge = with_params(only(server.challenge(), "MD5")[0], qop=None)
    answer = DigestClient("101", "secret101").authorize("REGISTER", REGISTER_URI, [challenge])
    assert server.verify("REGISTER", answer, users) is Verdict.OK
    assert server.verify("REGISTER", answer, users) is Verdict.STALE


def test_algorithm_not_offered_fails(clock: Clock, users: Directory) -> None:
    sha_only = DigestServer(REALM, SECRET, clock=clock, algorithms=("SHA-256",))
    md5_issuer = DigestServer(REALM, SECRET, clock=clock, algorithms=("MD5",))
    answer = DigestClient("101", "secret101").authorize("REGISTER", REGISTER_URI,
                                                        md5_issuer.challenge())
    assert params_of(answer)["algorithm"] == "MD5"
    assert sha_only.verify("REGISTER", answer, users) is Verdict.FAILED
    # An answer without algorithm means MD5, so it fails too.
    assert sha_only.verify("REGISTER", with_params(answer, algorithm=None),
                           users) is Verdict.FAILED
    assert users.lookups == []


def test_response_is_bound_to_method_and_uri(server: DigestServer, users: Directory) -> None:
    client = DigestClient("101", "secret101")
    answer = client.authorize("REGISTER", REGISTER_URI, server.challenge())
    assert server.verify("INVITE", answer, users) is Verdict.FAILED
    moved = with_params(client.authorize("REGISTER", REGISTER_URI, server.challenge()),
                        uri="sip:evil.example.com")
    assert server.verify("REGISTER", moved, users) is Verdict.FAILED


def test_qop_token_is_case_insensitive_and_hashed_as_sent(server: DigestServer,
                                                          users: Directory) -> None:
    answer = DigestClient("101", "secret101").authorize("REGISTER", REGISTER_URI,
                                                        server.challenge())
    assert server.verify("REGISTER", with_params(answer, qop="AUTH"), users) is Verdict.FAILED
    params = params_of(answer)
    resigned = digest_response("SHA-256", users.ha1[("101", "SHA-256")], params["nonce"] or "",
                               "REGISTER", REGISTER_URI, qop="AUTH", nc="00000002",
                               cnonce="c")
    upper = with_params(answer, qop="AUTH", nc="00000002", cnonce="c", response=resigned)
    assert server.verify("REGISTER", upper, users) is Verdict.OK


def test_wrong_opaque_fails(server: DigestServer, users: Directory) -> None:
    answer = DigestClient("101", "secret101").authorize("REGISTER", REGISTER_URI,
                                                        server.challenge())
    assert server.verify("REGISTER", with_params(answer, opaque="x"), users) is Verdict.FAILED


@pytest.mark.parametrize(
    "change",
    [
        {"uri": None},
        {"uri": ""},
        {"response": None},
        {"username": None},
        {"realm": None},
        {"nonce": None},
        {"nc": None},
        {"cnonce": None},
        {"nc": "1"},
        {"nc": "0000000g"},
        {"qop": "auth-int"},
        {"qop": None},  # nc and cnonce without qop
        {"algorithm": "MD5-sess"},
        {"algorithm": "SHA-512-256"},
    ],
)
def test_malformed_answers_fail(server: DigestServer, users: Directory,
                                change: dict[str, str | None]) -> None:
    answer = DigestClient("101", "secret101").authorize("REGISTER", REGISTER_URI,
                                                        server.challenge())
    assert server.verify("REGISTER", with_params(answer, **change), users) is Verdict.FAILED
    assert users.lookups == []


@pytest.mark.parametrize(
    "value",
    ["", "Basic MTAxOnNlY3JldA==", "Digest", 'Digest username="101", realm=',
     'Digest username="101" realm="x"', "Digest nonce=\"unterminated"],
)
def test_unparsable_answers_fail(server: DigestServer, users: Directory, value: str) -> None:
    assert server.verify("REGISTER", value, users) is Verdict.FAILED


# --- The client on its own ----------------------------------------------------------------

RFC2617_CHALLENGE = ('Digest realm="testrealm@host.com", qop="auth,auth-int", '
                     'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", '
                     'opaque="5ccc069c403ebaf9f0171e9517f40e41"')


def test_client_answer_matches_the_rfc_computation() -> None:
    answer = DigestClient("Mufasa", "Circle Of Life").authorize(
        "GET", "/dir/index.html", [RFC2617_CHALLENGE]
    )
    params = params_of(answer)
    assert params["username"] == "Mufasa"
    assert params["realm"] == "testrealm@host.com"
    assert params["uri"] == "/dir/index.html"
    assert params["qop"] == "auth"
    assert params["opaque"] == "5ccc069c403ebaf9f0171e9517f40e41"
    assert "algorithm" not in params
    assert params["response"] == digest_response(
        "MD5", ha1("Mufasa", "testrealm@host.com", "Circle Of Life", "MD5"),
        "dcd98b7102dd2f0e8b11d0f600bfb0c093", "GET", "/dir/index.html", qop="auth",
        nc="00000001", cnonce=params["cnonce"],
    )
    assert 'opaque="5ccc069c403ebaf9f0171e9517f40e41"' in answer and "qop=auth," in answer


def test_client_uses_auth_int_when_it_is_all_that_is_offered() -> None:
    challenge = with_params(RFC2617_CHALLENGE, qop="auth-int")
    body = b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\n"
    params = params_of(DigestClient("a", "p").authorize("INVITE", "sip:b@h", [challenge], body))
    assert params["qop"] == "auth-int"
    assert params["response"] == digest_response(
        "MD5", ha1("a", "testrealm@host.com", "p", "MD5"), "dcd98b7102dd2f0e8b11d0f600bfb0c093",
        "INVITE", "sip:b@h", qop="auth-int", nc="00000001", cnonce=params["cnonce"], body=body,
    )


def test_client_counts_per_nonce_and_restarts_for_a_stale_challenge(
    server: DigestServer, users: Directory
) -> None:
    client = DigestClient("101", "secret101")
    first = server.challenge()
    counts = [params_of(client.authorize("REGISTER", REGISTER_URI, first))["nc"]
              for _ in range(3)]
    assert counts == ["00000001", "00000002", "00000003"]
    cnonces = {params_of(client.authorize("REGISTER", REGISTER_URI, first))["cnonce"]
               for _ in range(5)}
    assert len(cnonces) == 5
    renewed = client.authorize("REGISTER", REGISTER_URI, server.challenge(stale=True))
    assert params_of(renewed)["nc"] == "00000001"
    assert server.verify("REGISTER", renewed, users) is Verdict.OK


def test_client_quotes_awkward_usernames(server: DigestServer) -> None:
    awkward = 'o"brien\\x'
    answer = DigestClient(awkward, "pw").authorize("REGISTER", REGISTER_URI, server.challenge())
    assert params_of(answer)["username"] == awkward
    directory = {(awkward, "SHA-256"): ha1(awkward, REALM, "pw", "SHA-256")}
    assert server.verify("REGISTER", answer,
                         lambda user, alg: directory.get((user, alg))) is Verdict.OK


def test_client_skips_what_it_cannot_answer(server: DigestServer) -> None:
    values = ["Basic realm=\"x\"", "Digest realm=", *server.challenge()]
    assert params_of(DigestClient("a", "p").authorize("REGISTER", REGISTER_URI, values))
    assert params_of(
        DigestClient("a", "p").authorize("REGISTER", REGISTER_URI,
                                         [Challenge.parse(v) for v in server.challenge()])
    )["algorithm"] == "SHA-256"


@pytest.mark.parametrize(
    "values",
    [
        [],
        ['Basic realm="x"'],
        [with_params(RFC2617_CHALLENGE, algorithm="SHA-512-256")],
        [with_params(RFC2617_CHALLENGE, qop="auth-conf")],
        [with_params(RFC2617_CHALLENGE, nonce=None)],
        [with_params(RFC2617_CHALLENGE, realm=None)],
        ["Digest realm="],
    ],
)
def test_client_refuses_when_nothing_is_answerable(values: list[str]) -> None:
    with pytest.raises(ValueError, match="no Digest challenge"):
        DigestClient("a", "p").authorize("REGISTER", REGISTER_URI, values)
