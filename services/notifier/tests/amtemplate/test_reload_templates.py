"""A reload re-reads the ``templates:`` files with the receivers, as Alertmanager's does,
through the real renderer: a template file that does not parse refuses the reload (the
templates and receivers in use stay), unchanged template files keep the loaded set (and
so the destinations), a changed one is loaded as a new set."""

from __future__ import annotations

import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from notifier.amtemplate import AlertmanagerTemplates, GoRenderer
from notifier.pipeline.lanes import Destination
from notifier.receivers.config import ReceiverConfig, TemplateLanguage
from notifier.receivers.loading import load_receivers
from notifier.receivers.reload import Loaded, ReceiversReload
from notifier.receivers.table import ReceiverTable
from opsmesh.reload import ConfigReloader, ReloadFailed, ReloadTrigger
from opsmesh_dev.testing.clock import FakeClock

CONFIG = textwrap.dedent(
    """\
    route: {receiver: team}
    templates: ['*.tmpl']
    receivers:
      - name: team
        webhook_configs: [{url: "https://team.example.org/hook"}]
    """
)


def _build(
    config: ReceiverConfig, templates: AlertmanagerTemplates | None, generation: int
) -> list[Destination]:
    return [
        Destination(
            receiver=config.name,
            integration=integration,
            channel=templates,  # type: ignore[arg-type] - what the test looks at
            send_resolved=True,
            concurrency=1,
            generation=generation,
        )
        for integration, _, _ in config.integrations()
    ]


@pytest.fixture
async def renderer(renderer_binary: Path) -> AsyncIterator[GoRenderer]:
    made = GoRenderer(renderer_binary, workers=1)
    try:
        yield made
    finally:
        await made.close()


async def test_template_files_reload_with_the_receivers(
    tmp_path: Path, renderer: GoRenderer
) -> None:
    path = tmp_path / "alertmanager.yml"
    path.write_text(CONFIG)
    (tmp_path / "team.tmpl").write_text('{{ define "team.title" }}first{{ end }}')
    receivers = load_receivers(str(path), None)
    assert receivers.language is TemplateLanguage.GO
    templates = AlertmanagerTemplates(renderer, receivers.templates)
    await templates.check()
    table = ReceiverTable(receivers, templates, _build, FakeClock(0.0))
    reloader: ConfigReloader[Loaded] = ReceiversReload(
        table, default_webhook_url=None, language=None, renderer=lambda: renderer
    ).reloader(path, clock=FakeClock(0.0), registry=CollectorRegistry())
    first = table.destinations("team")

    # Nothing changed: the loaded set, and the receiver's destinations, stay.
    result = await reloader.reload(ReloadTrigger.API)
    assert result.summary["templates"] == "kept"
    assert table.templates is templates
    assert table.destinations("team") is first

    # A template file that does not parse: refused, everything in use stays.
    (tmp_path / "team.tmpl").write_text('{{ define "team.title" }}{{ .Oops ')
    with pytest.raises(ReloadFailed, match="templates: "):
        await reloader.reload(ReloadTrigger.API)
    assert table.templates is templates
    assert table.destinations("team") is first

    # A changed template file: a new set, and new destinations rendering with it.
    (tmp_path / "team.tmpl").write_text('{{ define "team.title" }}second{{ end }}')
    result = await reloader.reload(ReloadTrigger.API)
    assert result.summary["templates"] == "reloaded"
    assert table.templates is not templates
    assert table.templates is not None
    assert table.templates.set.key != templates.set.key
    after = table.destinations("team")
    assert after is not None
    assert first is not None
    assert after[0].channel is table.templates
    assert after[0].generation > first[0].generation
