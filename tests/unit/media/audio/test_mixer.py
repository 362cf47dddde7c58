"""Tests for media.audio.mixer.

Participants send steady tones whose frequencies are multiples of 50 Hz, so every 20 ms
frame holds whole periods and each tone falls on one bin of the frame's FFT: what a
participant hears is read off as the level at each tone's bin.
"""

import numpy as np
import pytest

from media.audio.mixer import FRAME, Mixer

RATE = 8000
TONES = (400.0, 700.0, 1100.0, 1700.0)


def tone(frequency: float, amplitude: float = 4000.0) -> np.ndarray:
    t = np.arange(FRAME) / RATE
    return np.round(amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.int16)


def level_db(frame: np.ndarray, frequency: float) -> float:
    """Level of `frequency` in `frame`, dB relative to a full-scale sine."""
    spectrum = np.abs(np.fft.rfft(frame.astype(np.float64)))
    amplitude = 2 * spectrum[round(frequency * FRAME / RATE)] / FRAME
    return 20 * np.log10(max(amplitude, 1e-9) / 32767)


def loud(frame: np.ndarray, frequency: float) -> bool:
    return level_db(frame, frequency) > -40


def send(mixer: Mixer, frames: dict[int, np.ndarray]) -> list[tuple[int, bool]]:
    for slot, frame in frames.items():
        mixer.input[slot] = frame
    return mixer.tick()


def test_each_participant_hears_the_others_at_equal_level_and_not_itself() -> None:
    mixer = Mixer()
    slots = [mixer.join("room") for _ in TONES]
    send(mixer, {slot: tone(f) for slot, f in zip(slots, TONES, strict=True)})
    for slot, own in zip(slots, TONES, strict=True):
        others = [level_db(mixer.output[slot], f) for f in TONES if f != own]
        assert max(others) - min(others) < 0.5
        assert min(others) == pytest.approx(level_db(tone(TONES[0]), TONES[0]), abs=0.1)
        assert level_db(mixer.output[slot], own) < min(others) - 40


def test_conferences_do_not_leak_into_each_other() -> None:
    mixer = Mixer()
    a1, b1, a2, b2 = (mixer.join(name) for name in ("a", "b", "a", "b"))
    send(mixer, {a1: tone(400), a2: tone(700), b1: tone(1100), b2: tone(1700)})
    assert loud(mixer.output[a1], 700) and loud(mixer.output[b1], 1700)
    for slot in (a1, a2):
        assert not loud(mixer.output[slot], 1100) and not loud(mixer.output[slot], 1700)
    for slot in (b1, b2):
        assert not loud(mixer.output[slot], 400) and not loud(mixer.output[slot], 700)
    assert mixer.members("a") == [a1, a2] and mixer.members("b") == [b1, b2]


def test_muted_participant_is_not_heard_but_hears() -> None:
    mixer = Mixer()
    slots = [mixer.join("room") for _ in range(3)]
    mixer.set(slots[0], muted=True)
    frames = {slot: tone(f) for slot, f in zip(slots, TONES, strict=False)}
    send(mixer, frames)
    assert not loud(mixer.output[slots[1]], TONES[0])
    assert not loud(mixer.output[slots[2]], TONES[0])
    assert loud(mixer.output[slots[1]], TONES[2])
    assert loud(mixer.output[slots[0]], TONES[1]) and loud(mixer.output[slots[0]], TONES[2])
    mixer.set(slots[0], muted=False)
    send(mixer, frames)
    assert loud(mixer.output[slots[1]], TONES[0])


def test_deaf_participant_hears_silence_but_is_heard() -> None:
    mixer = Mixer()
    deaf, other = mixer.join("room"), mixer.join("room")
    mixer.set(deaf, deaf=True)
    send(mixer, {deaf: tone(400), other: tone(700)})
    assert not mixer.output[deaf].any()
    assert loud(mixer.output[other], 400)
    assert mixer.participant(deaf).deaf


def test_held_participant_hears_silence_and_is_not_heard() -> None:
    mixer = Mixer()
    held, a, b = (mixer.join("room") for _ in range(3))
    mixer.set(held, hold=True)
    send(mixer, {held: tone(400), a: tone(700), b: tone(1100)})
    assert not mixer.output[held].any()
    assert not loud(mixer.output[a], 400) and loud(mixer.output[a], 1100)
    assert mixer.participant(held).hold
    mixer.set(held, hold=False)
    send(mixer, {held: tone(400), a: tone(700)})
    assert loud(mixer.output[held], 700) and loud(mixer.output[a], 400)
    assert not mixer.participant(held).hold


def test_sum_is_clipped_once_without_wraparound() -> None:
    mixer = Mixer()
    up1, up2, down, listener = (mixer.join("room") for _ in range(4))
    full = np.full(FRAME, 30000, np.int16)
    send(mixer, {up1: full, up2: full, down: -full})
    # 30000 + 30000 - 30000: clipping the partial sum first would give 2767.
    assert (mixer.output[listener] == 30000).all()
    assert (mixer.output[down] == 32767).all()
    assert (mixer.output[up1] == 0).all()
    send(mixer, {up1: -full, up2: -full, down: -full})
    assert (mixer.output[listener] == -32768).all()


def test_input_is_zeroed_after_each_tick() -> None:
    mixer = Mixer()
    a, b = mixer.join("room"), mixer.join("room")
    send(mixer, {a: tone(400)})
    assert loud(mixer.output[b], 400)
    assert not mixer.input.any()
    mixer.tick()
    assert not mixer.output[b].any()


def test_slots_are_reused_with_fresh_state() -> None:
    mixer = Mixer()
    a, b, c = (mixer.join("room") for _ in range(3))
    mixer.set(b, muted=True, deaf=True)
    mixer.leave(b)
    assert mixer.members("room") == [a, c]
    assert mixer.join("other") == b
    state = mixer.participant(b)
    assert state.conference == "other" and not state.muted and not state.deaf
    assert mixer.members("room") == [a, c] and mixer.members("other") == [b]


def test_growing_capacity_keeps_members_and_written_frames() -> None:
    mixer = Mixer(capacity=2)
    a, b = mixer.join("room"), mixer.join("room")
    mixer.set(a, muted=True)
    mixer.input[b] = tone(700)
    c = mixer.join("room")
    assert mixer.capacity == 4 and mixer.input.shape == (4, FRAME)
    assert mixer.members("room") == [a, b, c]
    assert mixer.participant(a).muted
    mixer.input[a] = tone(400)
    mixer.tick()
    assert loud(mixer.output[c], 700) and not loud(mixer.output[c], 400)
    slots = [mixer.join(f"room-{n}") for n in range(10)]
    assert mixer.capacity == 16 and len(set(slots)) == 10


def test_coach_is_heard_only_by_its_target_and_hears_everybody() -> None:
    mixer = Mixer()
    agent, customer, supervisor = (mixer.join("call") for _ in range(3))
    mixer.set(supervisor, coach_of=agent)
    frames = {agent: tone(400), customer: tone(700), supervisor: tone(1100)}
    send(mixer, frames)
    assert loud(mixer.output[agent], 700) and loud(mixer.output[agent], 1100)
    assert level_db(mixer.output[agent], 1100) == pytest.approx(level_db(tone(700), 700), abs=0.1)
    assert loud(mixer.output[customer], 400) and not loud(mixer.output[customer], 1100)
    assert loud(mixer.output[supervisor], 400) and loud(mixer.output[supervisor], 700)
    assert not loud(mixer.output[supervisor], 1100)
    assert mixer.participant(supervisor).coach_of == agent

    mixer.set(supervisor, coach_of=None)
    send(mixer, frames)
    assert loud(mixer.output[customer], 1100)


def test_two_coaches_of_one_target_add_up() -> None:
    mixer = Mixer()
    agent, customer, coach1, coach2 = (mixer.join("call") for _ in range(4))
    mixer.set(coach1, coach_of=agent)
    mixer.set(coach2, coach_of=agent)
    send(mixer, {customer: tone(400), coach1: tone(700), coach2: tone(1100)})
    assert all(loud(mixer.output[agent], f) for f in (400, 700, 1100))
    assert not loud(mixer.output[customer], 700) and not loud(mixer.output[customer], 1100)
    assert not loud(mixer.output[coach1], 1100) and not loud(mixer.output[coach2], 700)


def test_muted_coach_is_heard_by_nobody() -> None:
    mixer = Mixer()
    agent, coach = mixer.join("call"), mixer.join("call")
    mixer.set(coach, coach_of=agent, muted=True)
    send(mixer, {coach: tone(700)})
    assert not mixer.output[agent].any()


def test_coaches_of_a_leaving_participant_are_muted() -> None:
    mixer = Mixer()
    agent, customer, supervisor = (mixer.join("call") for _ in range(3))
    mixer.set(supervisor, coach_of=agent)
    mixer.leave(agent)
    assert mixer.participant(supervisor).coach_of is None
    assert mixer.participant(supervisor).muted
    send(mixer, {supervisor: tone(1100)})
    assert not mixer.output[customer].any()


def test_coach_must_be_in_the_same_conference() -> None:
    mixer = Mixer()
    a, b = mixer.join("one"), mixer.join("two")
    with pytest.raises(ValueError, match="conference 'one'"):
        mixer.set(a, coach_of=b)
    with pytest.raises(ValueError, match="itself"):
        mixer.set(a, coach_of=a)


def test_unknown_slot_is_rejected() -> None:
    mixer = Mixer()
    slot = mixer.join("room")
    mixer.leave(slot)
    for call in (mixer.leave, mixer.participant, lambda s: mixer.set(s, muted=True)):
        with pytest.raises(ValueError, match=f"slot {slot} is not in use"):
            call(slot)


def test_talking_starts_after_three_loud_frames_and_stops_after_twenty_quiet() -> None:
    mixer = Mixer()
    speaker, listener = mixer.join("room"), mixer.join("room")
    speech, murmur = tone(400, 1000), tone(400, 100)  # -33 and -53 dBFS RMS
    assert [send(mixer, {speaker: speech}) for _ in range(2)] == [[], []]
    assert send(mixer, {speaker: murmur}) == []
    assert [send(mixer, {speaker: speech}) for _ in range(3)] == [[], [], [(speaker, True)]]
    assert mixer.participant(speaker).talking
    assert [send(mixer, {speaker: speech}) for _ in range(5)] == [[]] * 5
    assert [send(mixer, {speaker: murmur}) for _ in range(10)] == [[]] * 10
    assert send(mixer, {speaker: speech}) == []
    assert [mixer.tick() for _ in range(19)] == [[]] * 19
    assert mixer.tick() == [(speaker, False)]
    assert not mixer.participant(speaker).talking
    assert not mixer.participant(listener).talking


def test_muted_participant_never_talks_and_coach_does() -> None:
    mixer = Mixer()
    muted, agent, coach = (mixer.join("room") for _ in range(3))
    mixer.set(muted, muted=True)
    mixer.set(coach, coach_of=agent)
    changes = [send(mixer, {muted: tone(400), coach: tone(700)}) for _ in range(3)]
    assert changes == [[], [], [(coach, True)]]


def test_leaving_resets_talking_silently() -> None:
    mixer = Mixer()
    speaker = mixer.join("room")
    for _ in range(3):
        send(mixer, {speaker: tone(400)})
    mixer.leave(speaker)
    assert [mixer.tick() for _ in range(25)] == [[]] * 25
    assert not mixer.participant(mixer.join("room")).talking


def test_single_participant_hears_silence() -> None:
    mixer = Mixer()
    alone = mixer.join("room")
    send(mixer, {alone: tone(400)})
    assert not mixer.output[alone].any()


def test_tick_without_participants() -> None:
    mixer = Mixer()
    assert mixer.tick() == []
    slots = [mixer.join("room") for _ in range(3)]
    send(mixer, {slot: tone(400) for slot in slots})
    for slot in slots:
        mixer.leave(slot)
    assert mixer.tick() == []
    assert mixer.members("room") == []
    assert not mixer.output.any()


def reference_mix(
    frames: np.ndarray,
    conference: dict[int, str],
    muted: set[int],
    deaf: set[int],
    held: set[int],
    coach_of: dict[int, int],
) -> dict[int, np.ndarray]:
    """Each listener's mix computed participant by participant."""
    heard = {}
    for listener, room in conference.items():
        total = np.zeros(FRAME, np.int64)
        if listener not in deaf | held:
            for talker, other_room in conference.items():
                silent = talker == listener or talker in muted | held or other_room != room
                if not silent and coach_of.get(talker, listener) == listener:
                    total += frames[talker]
        heard[listener] = np.clip(total, -32768, 32767)
    return heard


def test_random_conferences_match_a_participant_by_participant_mix() -> None:
    rng = np.random.default_rng(7)
    mixer = Mixer(capacity=4)
    sizes = [1, 1, 2, 2, 3, 5, 8, 9, 16, 17, 40, 3]
    conference = {}
    for n, size in enumerate(sizes):
        for _ in range(size):
            conference[mixer.join(f"room-{n}")] = f"room-{n}"
    for slot in rng.choice(sorted(conference), 20, replace=False).tolist():
        mixer.leave(slot)
        del conference[slot]
    for _ in range(5):
        conference[mixer.join("room-late")] = "room-late"
    slots = sorted(conference)
    muted = set(rng.choice(slots, 8, replace=False).tolist())
    deaf = set(rng.choice(slots, 8, replace=False).tolist())
    held = set(rng.choice(slots, 4, replace=False).tolist())
    coach_of: dict[int, int] = {}
    for coach in rng.choice(slots, 10, replace=False).tolist():
        mates = [s for s in slots if conference[s] == conference[coach] and s != coach]
        if mates:
            coach_of[coach] = int(rng.choice(mates))
    for slot in slots:
        mixer.set(
            slot,
            muted=slot in muted,
            deaf=slot in deaf,
            hold=slot in held,
            coach_of=coach_of.get(slot),
        )

    for _ in range(3):
        frames = rng.integers(-12000, 12000, (mixer.capacity, FRAME)).astype(np.int16)
        for slot in slots:
            mixer.input[slot] = frames[slot]
        mixer.tick()
        expected = reference_mix(frames, conference, muted, deaf, held, coach_of)
        for slot in slots:
            np.testing.assert_array_equal(mixer.output[slot], expected[slot], f"slot {slot}")
