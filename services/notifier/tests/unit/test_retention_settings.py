"""The delivery log's retention may not be shorter than the redelivery window."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from notifier.settings import NotifierSettings
from opsmesh.db.retention import NOTIFICATION_REDELIVERY_DAYS
from opsmesh.topics import DLQ


def test_the_default_outlives_every_redelivery() -> None:
    settings = NotifierSettings()
    assert NOTIFICATION_REDELIVERY_DAYS == DLQ.retention_ms / 86_400_000 == 30
    assert settings.delivery_retention_days == 35 > NOTIFICATION_REDELIVERY_DAYS


def test_a_retention_shorter_than_the_redelivery_window_is_refused() -> None:
    with pytest.raises(
        ValidationError, match="NOTIFIER_DELIVERY_RETENTION_DAYS must be at least 30"
    ):
        NotifierSettings(NOTIFIER_DELIVERY_RETENTION_DAYS=7)
