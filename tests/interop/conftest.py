"""Fixtures for interop tests: SIP peers that are always stopped when the test ends.

`sipp(scenario, **options)` makes a `Sipp` (not yet started) working in the test's tmp
dir; `baresip_factory(user, tone_hz=..., **options)` makes and starts a `Baresip`.
Whatever a test leaves running is stopped at teardown, even after a failure. A missing
peer binary skips the test (CI sets VOICE_FORBID_SKIPS, which turns skips into failures).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.interop.peers.baresip import BARESIP, Account, Baresip
from tests.interop.peers.sipp import SIPP, Sipp


def require(binary: str, package: str) -> None:
    if shutil.which(binary) is None:
        pytest.skip(f"{binary} is not installed (apt-get install {package})")


class SippFactory:
    """Makes SIPp peers in numbered working directories and stops them all at the end."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.made: list[Sipp] = []

    def __call__(self, scenario: str | Path, **options: Any) -> Sipp:
        name = scenario.stem if isinstance(scenario, Path) else scenario
        workdir = self.root / f"{len(self.made) + 1:02d}-{name}"
        peer = Sipp(scenario, workdir, **options)
        self.made.append(peer)
        return peer

    def stop_all(self) -> None:
        for peer in self.made:
            peer.stop(grace=0.0)


class BaresipFactory:
    """Starts baresip peers, each in a home directory of its own, and stops them all."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.made: list[Baresip] = []

    def __call__(
        self,
        user: str = "101",
        *,
        tone_hz: int = 440,
        account: Account | None = None,
        **options: Any,
    ) -> Baresip:
        home = self.root / f"{len(self.made) + 1:02d}-{user}"
        peer = Baresip(home, account=account or Account(user=user), tone_hz=tone_hz, **options)
        self.made.append(peer)
        return peer.start()

    def stop_all(self) -> None:
        for peer in self.made:
            peer.stop()


@pytest.fixture
def sipp(tmp_path: Path) -> Iterator[SippFactory]:
    require(SIPP, "sip-tester")
    factory = SippFactory(tmp_path / "sipp")
    try:
        yield factory
    finally:
        factory.stop_all()


@pytest.fixture
def baresip_factory(tmp_path: Path) -> Iterator[BaresipFactory]:
    require(BARESIP, "baresip-core")
    factory = BaresipFactory(tmp_path / "baresip")
    try:
        yield factory
    finally:
        factory.stop_all()
