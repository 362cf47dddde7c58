"""The conference mixer: every conference of a media node mixed in one numpy pass per tick.

Participants are slots, rows of two ``(capacity, 160)`` int16 arrays. Before each 20 ms
tick the engine writes each participant's decoded frame into ``input[slot]``; `tick()`
mixes and leaves what each participant hears in ``output[slot]``, then zeroes ``input``,
so a participant whose packet did not arrive contributes silence. ``join()`` may grow
the arrays (doubling): the engine must re-read ``mixer.input`` and ``mixer.output``
after a join instead of keeping the arrays themselves.

The rules: frames are summed in int32 per conference; each participant hears that sum
minus its own contribution, clipped once to int16, so loud conferences saturate instead
of wrapping round. A conference of one hears silence.

- *muted*: contributes nothing.
- *deaf*: hears silence.
- *hold*: contributes nothing and hears silence; the engine plays music to it instead
  (`Participant.hold` says so).
- *coach_of*: a coach is heard only by the participant it coaches, in the same
  conference, and hears everybody else (except other coaches).
- *talking*: a participant talks from the third consecutive frame above -40 dBFS (RMS
  against a full-scale square wave) and stops after 20 consecutive frames below; `tick()`
  returns the changes. Muted and held participants contribute nothing and so never talk.

How one pass mixes conferences of different sizes: slots are grouped by conference and
conferences by size class (sizes in ``(2**(k-1), 2**k]`` share class ``k``). Each class
gathers its members' rows into a ``(conferences, width, 160)`` block, padded with a
zero row, and sums the middle axis; the per-participant part (take the conference sum,
subtract the own frame, clip) runs on all slots at once. Python loops only over the
size classes (at most eleven for 1,000 participants) and over the rare coaches, never
over participants or conferences. The grouping is worked out again only after a join
or leave, and the flag lists after a `set()`, lazily at the next tick.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from types import EllipsisType

import numpy as np
from numpy.typing import NDArray

FRAME = 160
"""Samples in a 20 ms frame at 8 kHz."""

TALKING_LEVEL_DBFS = -40.0
TALKING_START_FRAMES = 3
TALKING_STOP_FRAMES = 20

_INT16_MIN = -32768
_INT16_MAX = 32767
_FULL_SCALE = 32768.0


@dataclass(frozen=True, slots=True)
class Participant:
    """A slot's state, as `Mixer.participant()` reports it."""

    conference: str
    muted: bool
    deaf: bool
    hold: bool
    coach_of: int | None
    talking: bool


@dataclass(frozen=True, slots=True)
class _Groups:
    """Groups of up to `width` slots whose frames are summed: the conferences of one
    size class, or the coaches of each coached participant."""

    rows: NDArray[np.intp]
    """``len(sums) * width`` slots, each group's padded with the always-zero row."""
    block: NDArray[np.int16]
    """Where the frames of `rows` are gathered."""
    sums: NDArray[np.int32]
    """One row per group; may be a view into a larger table."""
    width: int

    @classmethod
    def padded(cls, rows: NDArray[np.intp], sums: NDArray[np.int32]) -> _Groups:
        block = np.empty((rows.size, FRAME), np.int16)
        return cls(rows.ravel(), block, sums, rows.shape[1])

    def add_up(self, frames: NDArray[np.int16]) -> None:
        # mode="clip" because out= with the default mode copies through a buffer.
        frames.take(self.rows, axis=0, out=self.block, mode="clip")
        block = self.block.reshape(len(self.sums), self.width, FRAME)
        np.einsum("gwk->gk", block, out=self.sums, dtype=np.int32)


class Mixer:
    """All conferences of a media node; see the module docstring for the engine's part."""

    def __init__(
        self,
        capacity: int = 64,
        *,
        talking_level_dbfs: float = TALKING_LEVEL_DBFS,
        talking_start_frames: int = TALKING_START_FRAMES,
        talking_stop_frames: int = TALKING_STOP_FRAMES,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, not {capacity}")
        if talking_start_frames < 1 or talking_stop_frames < 1:
            raise ValueError(
                "talking_start_frames and talking_stop_frames must be at least 1, not "
                f"{talking_start_frames} and {talking_stop_frames}"
            )
        # The threshold is compared with a frame's sum of squares.
        self._talking_energy = FRAME * (_FULL_SCALE * 10 ** (talking_level_dbfs / 20)) ** 2
        self._start_frames = talking_start_frames
        self._stop_frames = talking_stop_frames

        self._members: dict[str, dict[int, None]] = {}
        self._conference_of: dict[int, str] = {}
        self._conference_ids: dict[str, int] = {}
        self._free_ids: list[int] = []
        self._muted: set[int] = set()
        self._deaf: set[int] = set()
        self._held: set[int] = set()
        self._coach_of: dict[int, int] = {}
        self._free_slots: list[int] = []
        self._next_slot = 0
        self._allocate(capacity, keep=0)

        self._layout_stale = True
        self._flags_stale = True
        self._high = 0
        self._classes: list[_Groups] = []
        self._sums = np.zeros((1, FRAME), np.int32)
        self._sum_row = np.zeros(0, np.intp)
        self._mixed = np.zeros((0, FRAME), np.int32)
        self._samples = np.zeros((0, FRAME), np.float32)
        self._energy = np.zeros(0, np.float32)
        self._silenced = np.zeros(0, np.intp)
        self._quiet = np.zeros(0, np.intp)
        self._unheard = np.zeros(0, np.intp)
        self._whispers: _Groups | None = None
        self._coached = np.zeros(0, np.intp)

    @property
    def capacity(self) -> int:
        return len(self.input)

    def join(self, conference: str) -> int:
        """Add a participant to `conference` (created on first join); returns its slot.

        Freed slots are reused, lowest first. May grow the arrays: re-read ``input``.
        """
        if self._free_slots:
            slot = heapq.heappop(self._free_slots)
        else:
            slot = self._next_slot
            self._next_slot += 1
            if slot == self.capacity:
                self._allocate(2 * self.capacity, keep=slot)
        if conference not in self._conference_ids:
            new_id = heapq.heappop(self._free_ids) if self._free_ids else len(self._members)
            self._conference_ids[conference] = new_id
            self._members[conference] = {}
        self._members[conference][slot] = None
        self._conference_of[slot] = conference
        self._conference_id[slot] = self._conference_ids[conference]
        # A frame written this tick for the slot's previous participant is not this one's.
        self.input[slot] = 0
        self._reset_talking(slot)
        self._layout_stale = self._flags_stale = True
        return slot

    def leave(self, slot: int) -> None:
        """Free `slot`. Whoever was coaching it stops coaching and is muted, so a whisper
        never becomes audible to the whole conference."""
        conference = self._conference(slot)
        for coach in [c for c, target in self._coach_of.items() if target == slot]:
            del self._coach_of[coach]
            self._muted.add(coach)
        del self._members[conference][slot]
        if not self._members[conference]:
            del self._members[conference]
            heapq.heappush(self._free_ids, self._conference_ids.pop(conference))
        del self._conference_of[slot]
        self._conference_id[slot] = -1
        self._muted.discard(slot)
        self._deaf.discard(slot)
        self._held.discard(slot)
        self._coach_of.pop(slot, None)
        self._reset_talking(slot)
        heapq.heappush(self._free_slots, slot)
        self._layout_stale = self._flags_stale = True

    def set(
        self,
        slot: int,
        *,
        muted: bool | None = None,
        deaf: bool | None = None,
        hold: bool | None = None,
        coach_of: int | EllipsisType | None = ...,
    ) -> None:
        """Change a participant's flags; those left out keep their value.

        ``coach_of=target`` makes `slot` heard by `target` only (a participant of the
        same conference); ``coach_of=None`` makes it heard by everybody again.
        """
        conference = self._conference(slot)
        if coach_of is not ... and coach_of is not None:
            if coach_of == slot:
                raise ValueError(f"slot {slot} cannot coach itself")
            if self._conference_of.get(coach_of) != conference:
                raise ValueError(
                    f"slot {slot} can only coach a participant of conference "
                    f"{conference!r}; slot {coach_of} is not one"
                )
        for flag, members in ((muted, self._muted), (deaf, self._deaf), (hold, self._held)):
            if flag is True:
                members.add(slot)
            elif flag is False:
                members.discard(slot)
        if coach_of is None:
            self._coach_of.pop(slot, None)
        elif coach_of is not ...:
            self._coach_of[slot] = coach_of
        self._flags_stale = True

    def members(self, conference: str) -> list[int]:
        """Slots of `conference` in the order they joined; empty for an unknown one."""
        return list(self._members.get(conference, ()))

    def participant(self, slot: int) -> Participant:
        """The state of `slot`; ``hold`` tells the engine to play it music."""
        return Participant(
            conference=self._conference(slot),
            muted=slot in self._muted,
            deaf=slot in self._deaf,
            hold=slot in self._held,
            coach_of=self._coach_of.get(slot),
            talking=bool(self._talking[slot]),
        )

    def tick(self) -> list[tuple[int, bool]]:
        """Mix ``input`` into ``output``, zero ``input``; returns ``(slot, talking)``
        for each participant that started or stopped talking."""
        if self._layout_stale:
            self._plan_layout()
        if self._flags_stale:
            self._plan_flags()
        # Every array of a tick is allocated in advance: numpy would otherwise get
        # blocks this large from mmap each tick, and page faults cost more than mixing.
        frames = self._frames
        n = self._high
        np.copyto(self._samples, frames[:n])
        if self._whispers is not None:
            self._whispers.add_up(frames)
        frames[self._silenced] = 0

        for size_class in self._classes:
            size_class.add_up(frames)
        mixed = self._mixed
        self._sums.take(self._sum_row, axis=0, out=mixed, mode="clip")
        mixed -= frames[:n]
        if self._whispers is not None:
            mixed[self._coached] += self._whispers.sums
        np.clip(mixed, _INT16_MIN, _INT16_MAX, out=self.output[:n], casting="unsafe")
        self.output[self._quiet] = 0

        frames.fill(0)
        return self._detect_talking()

    def _conference(self, slot: int) -> str:
        try:
            return self._conference_of[slot]
        except KeyError:
            raise ValueError(f"slot {slot} is not in use") from None

    def _allocate(self, capacity: int, *, keep: int) -> None:
        """(Re)allocate the per-slot arrays for `capacity` slots, keeping the first `keep`."""
        # One extra, always zero, row pads the size-class blocks.
        frames = np.zeros((capacity + 1, FRAME), np.int16)
        output = np.zeros((capacity, FRAME), np.int16)
        conference_id = np.full(capacity, -1, np.int32)
        talking = np.zeros(capacity, bool)
        above = np.zeros(capacity, np.int32)
        below = np.zeros(capacity, np.int32)
        if keep:
            frames[:keep] = self._frames[:keep]
            output[:keep] = self.output[:keep]
            conference_id[:keep] = self._conference_id[:keep]
            talking[:keep] = self._talking[:keep]
            above[:keep] = self._above[:keep]
            below[:keep] = self._below[:keep]
        self._frames = frames
        self.input: NDArray[np.int16] = frames[:capacity]
        self.output: NDArray[np.int16] = output
        self._conference_id = conference_id
        self._talking = talking
        self._above = above
        self._below = below
        self._layout_stale = True

    def _plan_layout(self) -> None:
        conference_id = self._conference_id[: self._next_slot]
        active = np.flatnonzero(conference_id >= 0)
        high = int(active[-1]) + 1 if len(active) else 0
        if high < self._high:
            self.output[high : self._high] = 0
        self._high = high

        slots = active[np.argsort(conference_id[active], kind="stable")]
        _, starts, counts = np.unique(conference_id[slots], return_index=True, return_counts=True)
        conferences = len(counts)
        size_class = np.frexp(counts - 1)[1]  # ceil(log2(count))
        by_class = np.argsort(size_class, kind="stable")
        row_of = np.empty(conferences, np.intp)
        row_of[by_class] = np.arange(conferences)
        conference_of_member = np.repeat(np.arange(conferences), counts)
        member_row = row_of[conference_of_member]
        rank = np.arange(len(slots)) - starts[conference_of_member]

        self._sum_row = np.full(high, conferences, np.intp)
        self._sum_row[slots] = member_row
        self._sums = np.zeros((conferences + 1, FRAME), np.int32)
        self._mixed = np.empty((high, FRAME), np.int32)
        self._samples = np.empty((high, FRAME), np.float32)
        self._energy = np.empty(high, np.float32)
        self._classes = []
        pad = self.capacity
        sorted_classes = size_class[by_class]
        for k in np.unique(size_class):
            first, end = np.searchsorted(sorted_classes, [k, k + 1])
            width = int(counts[by_class[first:end]].max())
            rows = np.full((end - first, width), pad, np.intp)
            inside = (member_row >= first) & (member_row < end)
            rows[member_row[inside] - first, rank[inside]] = slots[inside]
            self._classes.append(_Groups.padded(rows, self._sums[first:end]))
        self._layout_stale = False
        self._flags_stale = True

    def _plan_flags(self) -> None:
        free = np.flatnonzero(self._conference_id[: self._high] < 0)
        unheard = [*self._muted, *self._held]
        self._unheard = np.union1d(free, unheard).astype(np.intp)
        self._silenced = np.union1d(self._unheard, list(self._coach_of)).astype(np.intp)
        self._quiet = np.union1d(free, [*self._deaf, *self._held]).astype(np.intp)

        coaches_of: dict[int, list[int]] = {}
        for coach, target in sorted(self._coach_of.items()):
            if coach not in self._muted and coach not in self._held:
                coaches_of.setdefault(target, []).append(coach)
        self._coached = np.array(sorted(coaches_of), np.intp)
        self._whispers = None
        if coaches_of:
            width = max(map(len, coaches_of.values()))
            rows = np.full((len(coaches_of), width), self.capacity, np.intp)
            for row, target in enumerate(self._coached):
                coaches = coaches_of[target]
                rows[row, : len(coaches)] = coaches
            sums = np.empty((len(coaches_of), FRAME), np.int32)
            self._whispers = _Groups.padded(rows, sums)
        self._flags_stale = False

    def _detect_talking(self) -> list[tuple[int, bool]]:
        """Update the talking state from the frames copied into ``_samples``."""
        energy = self._energy
        np.vecdot(self._samples, self._samples, out=energy)
        energy[self._unheard] = 0
        loud = energy >= self._talking_energy
        n = len(energy)
        above, below, talking = self._above[:n], self._below[:n], self._talking[:n]
        above += 1
        above *= loud
        np.minimum(above, self._start_frames, out=above)
        below += 1
        below *= ~loud
        np.minimum(below, self._stop_frames, out=below)
        flips = np.flatnonzero(
            np.where(talking, below >= self._stop_frames, above >= self._start_frames)
        )
        if not len(flips):
            return []
        talking[flips] = ~talking[flips]
        return list(zip(flips.tolist(), talking[flips].tolist(), strict=True))

    def _reset_talking(self, slot: int) -> None:
        self._talking[slot] = False
        self._above[slot] = 0
        self._below[slot] = 0
