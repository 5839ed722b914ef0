"""The KRaft cluster id handed to ``kafka-storage format``."""

from __future__ import annotations

import base64
import uuid
from unittest import mock

from opsmesh_dev.infra.kafka import new_cluster_id


def test_a_cluster_id_never_starts_with_a_dash() -> None:
    dash_first = uuid.UUID(bytes=base64.urlsafe_b64decode("-" + "A" * 21 + "=="))
    plain = uuid.UUID(int=1)
    with mock.patch("opsmesh_dev.infra.kafka.uuid.uuid4", side_effect=[dash_first, plain]):
        cluster_id = new_cluster_id()
    assert not cluster_id.startswith("-")
    assert uuid.UUID(bytes=base64.urlsafe_b64decode(cluster_id + "==")) == plain
