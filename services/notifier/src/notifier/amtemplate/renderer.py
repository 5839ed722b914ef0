"""The notifier's side of ``opsmesh-amtemplate``: a few renderer processes, each rendering
one request at a time, spoken to over pipes (one JSON line each way).

Budgets (issue 10's, for Alertmanager templates):

- **time**: each request has a deadline (``max_seconds``); past it the process is killed
  and replaced, and the render fails with ``template budget exceeded``. Only that render
  is lost: a process serves one request at a time.
- **memory**: the process limits its own address space (``max_memory_mb`` over what the
  Go runtime reserved at start) and stack; a render past them ends the process, which
  fails that render the same way.
- **output**: a field longer than ``max_output`` bytes, or fields longer than four times
  that together, fail the render.
- **steps** are not counted: Go's text/template has no hook for it, and counting existed
  in the Jinja sandbox only because a thread cannot be stopped; a process can, so the
  wall-clock deadline bounds every kind of work exactly.

Rendering never blocks the event loop: the work happens in the other process, and the
loop only awaits a pipe.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from opsmesh.templating import BUDGET_MESSAGE

# The renderer answers at most ALL_FIELDS_FACTOR x max_output bytes of fields per request,
# each byte at most six in JSON (\u0000), plus the keys.
ALL_FIELDS_FACTOR = 4
_STDERR_KEEP = 2000
_encoder = msgspec.json.Encoder()


class TemplateError(ValueError):
    """A template set did not load, or a template failed to render (deterministic)."""


@dataclass(frozen=True, slots=True)
class Field:
    """One value to render: ``text`` (text/template), ``html`` (html/template) or ``deep``
    (a YAML value whose strings are templates, as PagerDuty ``details``)."""

    name: str
    template: Any
    kind: str = "text"

    def wire(self) -> dict[str, Any]:
        if self.kind == "deep":
            return {"name": self.name, "kind": "deep", "value": self.template}
        return {"name": self.name, "kind": self.kind, "text": self.template}


@dataclass(frozen=True, slots=True)
class TemplateSet:
    """Alertmanager's default templates plus a configuration's ``templates:`` globs
    (absolute). Loaded into each renderer process when first used there."""

    key: str
    patterns: tuple[str, ...] = ()


class _Response(msgspec.Struct):
    ok: bool = False
    error: str = ""
    field: str = ""
    fields: dict[str, Any] = {}


_decoder = msgspec.json.Decoder(_Response)


@dataclass(eq=False)
class _Worker:
    process: asyncio.subprocess.Process
    loaded: set[str] = field(default_factory=set)

    async def call(self, request: Mapping[str, Any]) -> _Response:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(_encoder.encode(request) + b"\n")
        await self.process.stdin.drain()
        line = await self.process.stdout.readline()
        if not line.endswith(b"\n"):
            raise ConnectionError("the renderer stopped")
        return _decoder.decode(line)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.kill()
        with contextlib.suppress(Exception):
            await self.process.wait()

    async def why_stopped(self) -> str:
        """The first line the process wrote on stderr (Go's ``fatal error: …``)."""
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.process.wait(), 1.0)
        text = b""
        if self.process.stderr is not None:
            with contextlib.suppress(Exception):
                text = await asyncio.wait_for(self.process.stderr.read(_STDERR_KEEP), 1.0)
        first = text.decode(errors="replace").strip().splitlines()
        return first[0] if first else f"exit status {self.process.returncode}"


class GoRenderer:
    """A pool of ``opsmesh-amtemplate`` processes, started on first use."""

    def __init__(
        self,
        binary: Path,
        *,
        workers: int = 2,
        max_seconds: float = 2.0,
        max_output: int = 4 * 1024 * 1024,
        max_memory_mb: int = 256,
    ) -> None:
        self._binary = binary
        self._size = max(1, workers)
        self._max_seconds = max_seconds
        self._max_output = max_output
        self._max_memory_mb = max_memory_mb
        self._idle: asyncio.Queue[_Worker | None] | None = None
        self._all: set[_Worker] = set()
        self._closed = False
        self.restarts = 0

    def _pool(self) -> asyncio.Queue[_Worker | None]:
        if self._idle is None:
            self._idle = asyncio.Queue()
            for _ in range(self._size):
                self._idle.put_nowait(None)  # a slot whose process starts when taken
        return self._idle

    async def _spawn(self) -> _Worker:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "TZ": os.environ.get("TZ", "UTC"),
            "GOMAXPROCS": "1",
            "GOTRACEBACK": "none",
        }
        if "ZONEINFO" in os.environ:
            env["ZONEINFO"] = os.environ["ZONEINFO"]
        process = await asyncio.create_subprocess_exec(
            str(self._binary),
            f"-max-memory-mb={self._max_memory_mb}",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            limit=ALL_FIELDS_FACTOR * self._max_output * 6 + (1 << 20),
            start_new_session=True,  # a Ctrl-C to the notifier is the notifier's to handle
        )
        worker = _Worker(process)
        self._all.add(worker)
        return worker

    async def _retire(self, worker: _Worker) -> None:
        self._all.discard(worker)
        await worker.stop()
        self.restarts += 1

    async def _call(self, worker: _Worker, request: Mapping[str, Any]) -> _Response:
        try:
            return await asyncio.wait_for(worker.call(request), self._max_seconds)
        except TimeoutError:
            worker.kill()
            await self._retire(worker)
            raise TemplateError(
                f"{BUDGET_MESSAGE}: rendering took longer than {self._max_seconds} s"
            ) from None
        except (ConnectionError, BrokenPipeError, ValueError, msgspec.DecodeError):
            reason = await worker.why_stopped()
            await self._retire(worker)
            if "out of memory" in reason or "stack exceeds" in reason:
                raise TemplateError(
                    f"{BUDGET_MESSAGE}: the render needed more than {self._max_memory_mb} MiB"
                ) from None
            raise TemplateError(f"the template renderer stopped: {reason}") from None

    async def _run(self, template_set: TemplateSet, request: Mapping[str, Any]) -> _Response:
        if self._closed:
            raise RuntimeError("renderer closed")
        pool = self._pool()
        worker = await pool.get()
        try:
            if worker is None or worker.process.returncode is not None:
                if worker is not None:
                    await self._retire(worker)
                worker = await self._spawn()
            if template_set.key not in worker.loaded:
                loaded = await self._call(
                    worker,
                    {"op": "load", "set": template_set.key, "patterns": template_set.patterns},
                )
                if not loaded.ok:
                    raise TemplateError(f"templates do not load: {loaded.error}")
                worker.loaded.add(template_set.key)
            return await self._call(worker, request)
        except TemplateError:
            raise
        except BaseException:
            # Cancelled mid-request: the process may still answer later, out of turn.
            if worker is not None:
                worker.kill()
                await self._retire(worker)
                worker = None
            raise
        finally:
            if worker is not None and worker not in self._all:
                worker = None
            pool.put_nowait(worker)

    async def check(self, template_set: TemplateSet) -> None:
        """Load a template set, as Alertmanager does at (re)load: a template file that
        does not parse is a configuration error."""
        response = await self._run(template_set, {"op": "ping"})
        if not response.ok:
            raise TemplateError(response.error)

    async def render(
        self, template_set: TemplateSet, data: Mapping[str, Any], fields: Sequence[Field]
    ) -> dict[str, Any]:
        response = await self._run(
            template_set,
            {
                "op": "render",
                "set": template_set.key,
                "data": data,
                "fields": [f.wire() for f in fields],
                "max_output": self._max_output,
            },
        )
        if not response.ok:
            where = f" ({response.field})" if response.field else ""
            raise TemplateError(f"template failed{where}: {response.error}")
        return response.fields

    async def close(self) -> None:
        self._closed = True
        workers = list(self._all)
        self._all.clear()
        for worker in workers:
            if worker.process.stdin is not None:
                with contextlib.suppress(Exception):
                    worker.process.stdin.close()
            with contextlib.suppress(ProcessLookupError):
                worker.process.send_signal(signal.SIGTERM)
            await worker.stop()
