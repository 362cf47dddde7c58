"""The registrar's RFC 3261 10.3 steps 6-8, the location lookup, expiry, and the
authentication-failure throttle, all on an injected clock."""

from __future__ import annotations

import pytest

from media.sip.registrar import (
    Binding,
    MemoryBindingStore,
    RegisterResult,
    Registrar,
    RequestedContact,
    Throttle,
)

AOR = "sip:101@pbx.example.com"
DESK = "sip:101@192.168.1.20:5060"
MOBILE = "sip:101@10.8.0.7:5062;transport=tcp"
SOFTPHONE = "sip:101@172.16.4.4:5080"
NAT = ("203.0.113.9", 40123)


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store() -> MemoryBindingStore:
    return MemoryBindingStore()


@pytest.fixture
def registrar(store: MemoryBindingStore, clock: Clock) -> Registrar:
    return Registrar(store, clock=clock)


def register(
    registrar: Registrar,
    contacts: list[RequestedContact | tuple[str, int | None, float | None]],
    *,
    call_id: str = "call-1@desk",
    cseq: int = 1,
    header_expires: int | None = None,
    wildcard: bool = False,
    source: tuple[str, int] | None = NAT,
    aor: str = AOR,
) -> RegisterResult:
    return registrar.register(
        aor, contacts, header_expires=header_expires, call_id=call_id, cseq=cseq,
        wildcard=wildcard, source=source, transport="udp", user_agent="Desk/1.0",
    )


def contacts_of(result: RegisterResult) -> list[tuple[str, int]]:
    return [(b.contact, b.remaining(result.at)) for b in result.bindings]


# --- Step 7: adding, refreshing and removing bindings ---------------------------------

def test_first_registration_binds_the_contact(registrar: Registrar, clock: Clock,
                                              store: MemoryBindingStore) -> None:
    result = register(registrar, [(DESK, None, None)], header_expires=1800)
    assert (result.status, result.reason) == (200, "OK")
    assert result.at == clock.now
    assert contacts_of(result) == [(DESK, 1800)]
    (binding,) = store.load(AOR)
    assert binding == Binding(AOR, DESK, clock.now + 1800, "call-1@desk", 1, NAT, "udp",
                              None, None, "Desk/1.0")


def test_expires_comes_from_contact_then_header_then_default(registrar: Registrar) -> None:
    result = register(registrar, [(DESK, 120, None), (MOBILE, None, None)], header_expires=600)
    assert contacts_of(result) == [(DESK, 120), (MOBILE, 600)]
    result = register(registrar, [(SOFTPHONE, None, None)], call_id="other")
    assert dict(contacts_of(result))[SOFTPHONE] == 3600


def test_long_interval_is_shortened_to_the_maximum(store: MemoryBindingStore,
                                                   clock: Clock) -> None:
    registrar = Registrar(store, clock=clock, max_expires=900, default_expires=600)
    assert contacts_of(register(registrar, [(DESK, 86400, None)])) == [(DESK, 900)]


@pytest.mark.parametrize(("contact_expires", "header_expires"), [(59, None), (None, 1), (1, 3600)])
def test_too_brief_interval_is_423_with_min_expires(
    registrar: Registrar, store: MemoryBindingStore, contact_expires: int | None,
    header_expires: int | None,
) -> None:
    register(registrar, [(SOFTPHONE, None, None)], call_id="earlier")
    result = register(registrar, [(DESK, 3600, None), (MOBILE, contact_expires, None)],
                      header_expires=header_expires)
    assert (result.status, result.reason, result.min_expires) == (423, "Interval Too Brief", 60)
    assert [b.contact for b in result.bindings] == [SOFTPHONE]
    assert [b.contact for b in store.load(AOR)] == [SOFTPHONE]


def test_minimum_interval_itself_is_accepted(registrar: Registrar) -> None:
    assert register(registrar, [(DESK, 60, None)]).status == 200


def test_refresh_updates_the_binding_in_place(registrar: Registrar, clock: Clock,
                                              store: MemoryBindingStore) -> None:
    register(registrar, [(DESK, 600, None), (MOBILE, 600, None)])
    clock.now += 500
    result = register(registrar, [(DESK, 600, None)], cseq=2, source=("198.51.100.1", 5060))
    assert contacts_of(result) == [(DESK, 600), (MOBILE, 100)]
    desk = store.load(AOR)[0]
    assert (desk.cseq, desk.received, desk.expires_at) == (2, ("198.51.100.1", 5060),
                                                           clock.now + 600)


def test_contacts_are_matched_by_uri_equivalence(registrar: Registrar,
                                                 store: MemoryBindingStore) -> None:
    register(registrar, [("sip:101@Desk.Example.COM:5060;transport=UDP", 600, None)])
    result = register(registrar, [("sip:101@desk.example.com:5060;transport=udp", 600, None)],
                      cseq=2)
    assert len(result.bindings) == 1
    assert store.load(AOR)[0].contact == "sip:101@desk.example.com:5060;transport=udp"
    # A port or a transport more makes a different contact (RFC 3261 19.1.4).
    result = register(registrar, [("sip:101@desk.example.com;transport=udp", 600, None)],
                      cseq=3)
    assert len(result.bindings) == 2


def test_expires_zero_removes_only_that_contact(registrar: Registrar,
                                                store: MemoryBindingStore) -> None:
    register(registrar, [(DESK, None, None), (MOBILE, None, None)])
    result = register(registrar, [(DESK, 0, None)], cseq=2)
    assert result.status == 200
    assert [b.contact for b in result.bindings] == [MOBILE]
    assert [b.contact for b in store.load(AOR)] == [MOBILE]


def test_header_expires_zero_removes_the_listed_contacts(registrar: Registrar) -> None:
    register(registrar, [(DESK, None, None), (MOBILE, None, None)])
    result = register(registrar, [(DESK, None, None), (MOBILE, None, None)], cseq=2,
                      header_expires=0)
    assert (result.status, result.bindings) == (200, ())


def test_removing_an_unknown_contact_is_harmless(registrar: Registrar) -> None:
    register(registrar, [(DESK, None, None)])
    result = register(registrar, [(SOFTPHONE, 0, None)], call_id="elsewhere")
    assert [b.contact for b in result.bindings] == [DESK]


def test_several_devices_share_one_aor(registrar: Registrar) -> None:
    register(registrar, [(DESK, None, None)], call_id="desk")
    register(registrar, [(MOBILE, None, None)], call_id="mobile")
    result = register(registrar, [(SOFTPHONE, None, None)], call_id="soft")
    assert [b.contact for b in result.bindings] == [DESK, MOBILE, SOFTPHONE]
    assert {b.call_id for b in registrar.lookup(AOR)} == {"desk", "mobile", "soft"}
    assert registrar.lookup("sip:102@pbx.example.com") == []


def test_instance_transport_and_user_agent_are_kept(registrar: Registrar) -> None:
    instance = '"<urn:uuid:00000000-0000-1000-8000-000A95A0E128>"'
    registrar.register(AOR, [RequestedContact(MOBILE, 300, 0.5, instance)], call_id="m",
                       cseq=7, source=("198.51.100.7", 5062), transport="tcp",
                       user_agent="Mobile/2.1")
    (binding,) = registrar.lookup(AOR)
    assert (binding.instance, binding.q, binding.transport, binding.user_agent) == (
        instance, 0.5, "tcp", "Mobile/2.1")


def test_nat_source_is_kept_as_received(registrar: Registrar) -> None:
    register(registrar, [(DESK, None, None)])
    assert registrar.lookup(AOR)[0].received == NAT
    register(registrar, [(MOBILE, None, None)], call_id="direct", source=None)
    assert registrar.lookup(AOR)[1].received is None


def test_malformed_contact_uri_is_400(registrar: Registrar, store: MemoryBindingStore) -> None:
    result = register(registrar, [(DESK, None, None), ("sip:101@[::1", None, None)])
    assert result.status == 400
    assert "Contact" in result.reason
    assert store.load(AOR) == []


# --- The CSeq rule ------------------------------------------------------------------------

@pytest.mark.parametrize("cseq", [4, 5])
def test_same_call_id_with_old_cseq_is_500_and_changes_nothing(
    registrar: Registrar, store: MemoryBindingStore, cseq: int
) -> None:
    register(registrar, [(DESK, 600, None)], cseq=5)
    before = store.load(AOR)
    # The new contact would be fine, but the request is applied entirely or not at all.
    result = register(registrar, [(SOFTPHONE, None, None), (DESK, 0, None)], cseq=cseq)
    assert result.status == 500
    assert result.bindings == tuple(before)
    assert store.load(AOR) == before


def test_other_call_id_may_update_whatever_its_cseq(registrar: Registrar,
                                                    store: MemoryBindingStore) -> None:
    register(registrar, [(DESK, 600, None)], call_id="before-reboot", cseq=90)
    result = register(registrar, [(DESK, 1200, None)], call_id="after-reboot", cseq=1)
    assert result.status == 200
    (binding,) = store.load(AOR)
    assert (binding.call_id, binding.cseq) == ("after-reboot", 1)


def test_contact_listed_twice_is_not_its_own_reordering(registrar: Registrar) -> None:
    result = register(registrar, [(DESK, 600, None), (DESK, 900, None)])
    assert contacts_of(result) == [(DESK, 900)]


def test_expired_binding_does_not_hold_back_a_lower_cseq(registrar: Registrar,
                                                         clock: Clock) -> None:
    register(registrar, [(DESK, 60, None)], cseq=9)
    clock.now += 61
    assert register(registrar, [(DESK, 60, None)], cseq=3).status == 200


# --- Step 6: the wildcard -----------------------------------------------------------------

def test_wildcard_with_expires_zero_removes_everything(registrar: Registrar,
                                                       store: MemoryBindingStore) -> None:
    register(registrar, [(DESK, None, None)], call_id="desk")
    register(registrar, [(MOBILE, None, None)], call_id="mobile")
    result = register(registrar, [], wildcard=True, header_expires=0, call_id="desk", cseq=2)
    assert (result.status, result.bindings) == (200, ())
    assert store.load(AOR) == []
    assert store.all() == []


@pytest.mark.parametrize(
    ("contacts", "header_expires", "reason"),
    [
        ([], None, "Expires: 0"),
        ([], 3600, "Expires: 0"),
        ([(DESK, 0, None)], 0, "only Contact"),
    ],
)
def test_wildcard_otherwise_is_400(
    registrar: Registrar, store: MemoryBindingStore, contacts: list[tuple[str, int, None]],
    header_expires: int | None, reason: str,
) -> None:
    register(registrar, [(MOBILE, None, None)], call_id="mobile")
    result = register(registrar, contacts, wildcard=True, header_expires=header_expires)
    assert result.status == 400
    assert reason in result.reason
    assert [b.contact for b in store.load(AOR)] == [MOBILE]


def test_wildcard_obeys_the_cseq_rule(registrar: Registrar, store: MemoryBindingStore) -> None:
    register(registrar, [(DESK, None, None)], call_id="desk", cseq=4)
    result = register(registrar, [], wildcard=True, header_expires=0, call_id="desk", cseq=4)
    assert result.status == 500
    assert len(store.load(AOR)) == 1


# --- Step 8 without changes: a query ------------------------------------------------------

def test_no_contact_is_a_query(registrar: Registrar, clock: Clock,
                               store: MemoryBindingStore) -> None:
    register(registrar, [(DESK, 600, None)])
    clock.now += 100
    before = store.load(AOR)
    result = register(registrar, [], cseq=2, header_expires=0)
    assert (result.status, contacts_of(result)) == (200, [(DESK, 500)])
    assert store.load(AOR) == before


# --- Limits -------------------------------------------------------------------------------

def test_too_many_bindings_is_403_and_refreshes_still_work(store: MemoryBindingStore,
                                                           clock: Clock) -> None:
    registrar = Registrar(store, clock=clock, max_bindings_per_aor=2)
    register(registrar, [(DESK, None, None), (MOBILE, None, None)])
    result = register(registrar, [(SOFTPHONE, None, None)], call_id="third")
    assert result.status == 403
    assert "at most 2" in result.reason
    assert [b.contact for b in store.load(AOR)] == [DESK, MOBILE]
    assert register(registrar, [(MOBILE, None, None)], cseq=2).status == 200
    # Replacing one device by another in one request keeps the count.
    swap = register(registrar, [(DESK, 0, None), (SOFTPHONE, None, None)], cseq=3)
    assert [b.contact for b in swap.bindings] == [MOBILE, SOFTPHONE]


def test_contacts_past_the_limit_in_one_request_are_403(store: MemoryBindingStore,
                                                        clock: Clock) -> None:
    registrar = Registrar(store, clock=clock, max_bindings_per_aor=2)
    result = register(registrar, [(DESK, None, None), (MOBILE, None, None),
                                  (SOFTPHONE, None, None)])
    assert result.status == 403
    assert store.load(AOR) == []


@pytest.mark.parametrize(
    "settings",
    [
        {"min_expires": 0},
        {"min_expires": 600, "default_expires": 300},
        {"default_expires": 7200},
        {"min_expires": 7200, "default_expires": 7200, "max_expires": 7200},
        {"max_bindings_per_aor": 0},
    ],
)
def test_inconsistent_settings_are_refused(store: MemoryBindingStore, clock: Clock,
                                           settings: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        Registrar(store, clock=clock, **settings)


# --- Lookup and expiry --------------------------------------------------------------------

def test_lookup_orders_by_q_with_missing_q_as_one(registrar: Registrar) -> None:
    register(registrar, [(DESK, None, 0.2)], call_id="desk")
    register(registrar, [(MOBILE, None, None)], call_id="mobile")
    register(registrar, [(SOFTPHONE, None, 0.9)], call_id="soft")
    register(registrar, [("sip:101@192.0.2.50", None, 1.0)], call_id="tablet")
    assert [b.contact for b in registrar.lookup(AOR)] == [
        MOBILE, "sip:101@192.0.2.50", SOFTPHONE, DESK]


def test_lookup_leaves_out_expired_bindings(registrar: Registrar, clock: Clock) -> None:
    register(registrar, [(DESK, 60, None), (MOBILE, 600, None)])
    clock.now += 59.5
    assert [b.contact for b in registrar.lookup(AOR)] == [DESK, MOBILE]
    assert registrar.lookup(AOR)[0].remaining(clock.now) == 1
    clock.now += 0.5
    assert [b.contact for b in registrar.lookup(AOR)] == [MOBILE]


def test_expire_removes_only_expired_bindings(registrar: Registrar, clock: Clock,
                                              store: MemoryBindingStore) -> None:
    other = "sip:102@pbx.example.com"
    register(registrar, [(DESK, 60, None), (MOBILE, 600, None)])
    register(registrar, [("sip:102@192.168.1.21", 120, None)], aor=other)
    clock.now += 100
    removed = registrar.expire()
    assert [b.contact for b in removed] == [DESK]
    assert [b.contact for b in store.all()] == [MOBILE, "sip:102@192.168.1.21"]
    clock.now += 1000
    assert len(registrar.expire()) == 2
    assert store.all() == []
    assert registrar.expire() == []


def test_memory_store_forgets_an_aor_saved_empty() -> None:
    store = MemoryBindingStore()
    binding = Binding(AOR, DESK, 10.0, "c", 1, None, "udp")
    store.save(AOR, [binding])
    loaded = store.load(AOR)
    loaded.clear()  # a caller's list is its own
    assert store.load(AOR) == [binding]
    store.save(AOR, [])
    assert store.load(AOR) == [] and store.all() == []


# --- Throttle -----------------------------------------------------------------------------

def test_throttle_blocks_after_max_failures_within_the_window(clock: Clock) -> None:
    throttle = Throttle(clock, max_failures=3, window=60.0, block=120.0)
    for _ in range(2):
        throttle.failed("198.51.100.66")
        clock.now += 10
    assert not throttle.blocked("198.51.100.66")
    throttle.failed("198.51.100.66")
    assert throttle.blocked("198.51.100.66")
    assert not throttle.blocked("198.51.100.67")


def test_throttle_forgets_failures_older_than_the_window(clock: Clock) -> None:
    throttle = Throttle(clock, max_failures=3, window=60.0)
    for _ in range(5):
        throttle.failed("198.51.100.66")
        clock.now += 31  # never three within a minute
    assert not throttle.blocked("198.51.100.66")


def test_throttle_unblocks_after_the_block_period_with_a_clean_slate(clock: Clock) -> None:
    throttle = Throttle(clock, max_failures=2, window=60.0, block=300.0)
    throttle.failed("192.0.2.1")
    throttle.failed("192.0.2.1")
    clock.now += 200
    throttle.failed("192.0.2.1")  # failures while blocked do not lengthen the block
    clock.now += 99.9
    assert throttle.blocked("192.0.2.1")
    clock.now += 0.1
    assert not throttle.blocked("192.0.2.1")
    throttle.failed("192.0.2.1")
    assert not throttle.blocked("192.0.2.1")
    throttle.failed("192.0.2.1")
    assert throttle.blocked("192.0.2.1")


def test_throttle_success_resets_the_count(clock: Clock) -> None:
    throttle = Throttle(clock, max_failures=3)
    throttle.failed("192.0.2.1")
    throttle.failed("192.0.2.1")
    throttle.succeeded("192.0.2.1")
    throttle.failed("192.0.2.1")
    throttle.failed("192.0.2.1")
    assert not throttle.blocked("192.0.2.1")
    assert len(throttle) == 1


def test_throttle_memory_is_bounded(clock: Clock) -> None:
    throttle = Throttle(clock, max_failures=2, max_sources=3)
    for host in range(10):
        throttle.failed(f"192.0.2.{host}")
        throttle.failed(f"192.0.2.{host}")
        clock.now += 1
    assert len(throttle) == 3
    assert not throttle.blocked("192.0.2.0")  # the oldest were forgotten
    assert all(throttle.blocked(f"192.0.2.{host}") for host in (7, 8, 9))
    # Unblocking drops the entry too.
    clock.now += 3600
    assert not any(throttle.blocked(f"192.0.2.{host}") for host in (7, 8, 9))
    assert len(throttle) == 0


def test_throttle_settings_are_checked(clock: Clock) -> None:
    with pytest.raises(ValueError):
        Throttle(clock, max_failures=0)
