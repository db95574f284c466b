"""The wallboard's thresholds per channel and queue (services.settings.Settings.wallboard_pairs)."""

from __future__ import annotations

from services.settings import Settings


def test_the_longest_wait_never_warns_before_the_channels_own_target() -> None:
    s = Settings()
    assert s.wallboard_pairs("voice")["longest_wait_seconds"] == {"warning": 60, "critical": 120}
    email = s.wallboard_pairs("email")["longest_wait_seconds"]
    assert email == {"warning": 86400, "critical": 172800}
    assert s.wallboard_pairs("sms")["longest_wait_seconds"] == {"warning": 3600, "critical": 7200}
    assert s.wallboard_pairs("email")["service_level"] == {"warning": 0.8, "critical": 0.7}


def test_queue_settings_win_over_the_channels_and_those_over_the_global() -> None:
    s = Settings(
        queue_sl_thresholds_seconds={"vip": 10, "callbacks": 600},
        wallboard_channel_thresholds={"voice": {"abandon_rate": {"warning": 0.03}}},
        wallboard_queue_thresholds={
            "vip": {"longest_wait_seconds": {"warning": 15, "critical": 30}}
        },
    )
    voice = s.wallboard_pairs("voice")
    assert voice["abandon_rate"] == {"warning": 0.03, "critical": 0.10}
    vip = s.wallboard_pairs("voice", "vip")
    assert vip["longest_wait_seconds"] == {"warning": 15, "critical": 30}  # its own, below 60
    assert vip["abandon_rate"]["warning"] == 0.03  # the channel's still applies
    callbacks = s.wallboard_pairs("voice", "callbacks")["longest_wait_seconds"]
    assert callbacks == {"warning": 600, "critical": 1200}  # the queue's own SL threshold
