"""Settings read from the environment: defaults and clear errors for bad values."""

from __future__ import annotations

import pytest

from settings import Settings


def test_digest_algorithms_default_to_md5_alone() -> None:
    assert Settings.from_env({}).sip_digest_algorithms == ("MD5",)


def test_digest_algorithms_keep_the_given_order() -> None:
    settings = Settings.from_env({"SIP_DIGEST_ALGORITHMS": " sha-256, MD5 "})
    assert settings.sip_digest_algorithms == ("SHA-256", "MD5")


@pytest.mark.parametrize("value", ["SHA-1", "MD5,SHA-512", " , "])
def test_an_unknown_digest_algorithm_is_a_clear_error(value: str) -> None:
    with pytest.raises(ValueError, match=r"SIP_DIGEST_ALGORITHMS.*MD5 and/or SHA-256"):
        Settings.from_env({"SIP_DIGEST_ALGORITHMS": value})


def test_a_bad_webhook_network_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"WEBHOOK_ALLOW_NETWORKS: .nonsense. is not a network"):
        Settings.from_env({"WEBHOOK_ALLOW_NETWORKS": "127.0.0.0/8,nonsense"})


def test_media_realtime_priority_defaults_to_10_and_0_turns_it_off() -> None:
    assert Settings.from_env({}).media_realtime_priority == 10
    assert Settings.from_env({"MEDIA_REALTIME_PRIORITY": "0"}).media_realtime_priority == 0


@pytest.mark.parametrize("value", ["high", "100", "-1", ""])
def test_a_bad_media_realtime_priority_is_a_clear_error(value: str) -> None:
    with pytest.raises(ValueError, match=r"MEDIA_REALTIME_PRIORITY.*1-99, or 0"):
        Settings.from_env({"MEDIA_REALTIME_PRIORITY": value})
