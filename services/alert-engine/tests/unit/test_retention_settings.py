"""The notification log outlives the notifier's memory of delivered keys."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from alert_engine.settings import AlertEngineSettings
from opsmesh.db.retention import NOTIFICATION_REDELIVERY_DAYS


def test_defaults() -> None:
    settings = AlertEngineSettings()
    assert settings.retention_days == 30
    assert settings.notification_log_retention_days == 45
    # The notifier's default delivery retention is 35 days (its own settings test).
    assert settings.notification_log_retention_days > 35 > NOTIFICATION_REDELIVERY_DAYS


def test_a_log_retention_within_the_redelivery_window_is_refused() -> None:
    with pytest.raises(
        ValidationError, match="ALERT_ENGINE_NOTIFICATION_LOG_RETENTION_DAYS must be more than 30"
    ):
        AlertEngineSettings(ALERT_ENGINE_NOTIFICATION_LOG_RETENTION_DAYS=30)
