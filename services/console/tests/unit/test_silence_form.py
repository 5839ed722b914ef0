"""The silence form: into the alert-engine's own request type, refusals named, the
preview of what it would mute, and the forms prefilled from an alert or a silence."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest

from alert_engine.api.shapes import ApiMatcher, decode_silence
from console.core.shapes import Alert, AlertGroup, AlertStatus, Receiver, Silence, SilenceStatus
from console.core.silences import MAX_PREVIEW, SilenceForm, SilenceFormError, preview

NOW = 1_800_000_000.0


def test_a_form_becomes_the_engines_postable_silence() -> None:
    form = SilenceForm('team="db", job=~"api|web"', "1h30m", " ann ", "deploy", id="")
    posted = form.to_postable(NOW)
    # What the engine decodes from the console's body is what the form said.
    decoded = decode_silence(msgspec.json.encode(posted))
    assert decoded.matchers == [
        ApiMatcher("team", "db", is_regex=False, is_equal=True),
        ApiMatcher("job", "api|web", is_regex=True, is_equal=True),
    ]
    assert decoded.starts_at.timestamp() == NOW
    assert decoded.ends_at.timestamp() == NOW + 5400
    assert (decoded.created_by, decoded.comment, decoded.id) == ("ann", "deploy", None)


def test_an_edit_keeps_the_silence_id() -> None:
    posted = SilenceForm('a="b"', "2h", "ann", "why", id="abc").to_postable(NOW)
    assert posted.id == "abc"


@pytest.mark.parametrize(
    ("form", "says"),
    [
        (SilenceForm("", "2h", "ann", "why"), "at least one matcher"),
        (SilenceForm('team="db', "2h", "ann", "why"), "quote"),
        (SilenceForm('team=~".*"', "2h", "ann", "why"), "every alert"),
        (SilenceForm('team="db"', "soon", "ann", "why"), "duration"),
        (SilenceForm('team="db"', "0s", "ann", "why"), "positive"),
        (SilenceForm('team="db"', "2h", " ", "why"), "author"),
        (SilenceForm('team="db"', "2h", "ann", ""), "comment"),
    ],
)
def test_what_cannot_be_a_silence_is_refused_saying_why(form: SilenceForm, says: str) -> None:
    with pytest.raises(SilenceFormError, match=says):
        form.to_postable(NOW)


def _alert(fp: str, **labels: str) -> Alert:
    return Alert(labels, fp, datetime.fromtimestamp(NOW, UTC), AlertStatus("active"))


def test_the_preview_counts_each_matching_alert_once_and_lists_a_bounded_number() -> None:
    alerts = [_alert(f"f{i:03}", alertname="A", team="db") for i in range(MAX_PREVIEW + 5)]
    groups = [
        AlertGroup({}, Receiver("one"), alerts),
        AlertGroup({}, Receiver("two"), [*alerts[:3], _alert("web", alertname="A", team="web")]),
    ]
    shown = preview(groups, SilenceForm('team="db"', "", "", "").parsed_matchers())
    assert shown.count == MAX_PREVIEW + 5
    assert len(shown.alerts) == MAX_PREVIEW
    assert "web" not in {a.fingerprint for a in shown.alerts}


def test_a_form_from_an_alert_has_every_label_and_one_from_a_silence_its_rest() -> None:
    from_alert = SilenceForm.for_alert({"team": "db", "alertname": "DiskFull"}, "ann")
    assert from_alert.matchers == 'alertname="DiskFull", team="db"'
    silence = Silence(
        id="s1",
        status=SilenceStatus("active"),
        matchers=[ApiMatcher("job", "api|web", True, False)],
        starts_at=datetime.fromtimestamp(NOW - 60, UTC),
        ends_at=datetime.fromtimestamp(NOW + 3600, UTC),
        created_by="bob",
        comment="deploy",
    )
    edit = SilenceForm.for_silence(silence, NOW)
    assert (edit.matchers, edit.duration, edit.id) == ('job!~"api|web"', "1h", "s1")
    assert SilenceForm.for_silence(silence, NOW + 7200).duration == "2h"
