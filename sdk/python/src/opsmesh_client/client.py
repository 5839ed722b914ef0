"""The client: one per process, made by ``opsmesh_client.init``.

The application's threads only ever append to the bounded outbox or update in-memory
metrics; one daemon thread drains the outbox every ``flush_interval_s``, collects the
metrics every ``metrics_interval_s``, sends a heartbeat every ``heartbeat_interval_s`` and
hands everything to the transport. ``close`` (also run at interpreter exit) flushes.
"""

from __future__ import annotations

import atexit
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from opsmesh_client import trace
from opsmesh_client.health import HealthChecks, Result
from opsmesh_client.metrics import Registry
from opsmesh_client.outbox import DropReason, Outbox
from opsmesh_client.profiling import MemoryTracer, OpenProfile, RequestProfiler
from opsmesh_client.requests import RequestMetrics
from opsmesh_client.settings import Settings
from opsmesh_client.transport import Disabled, HttpTransport, KafkaTransport, Transport
from opsmesh_client.wire import PROFILE_MAX_FUNCTIONS, Record, health_report, profile, slow_query

log = logging.getLogger("opsmesh_client")
MAX_BATCH = 5000
TransportFactory = Callable[[Settings, Callable[[DropReason, int], None]], Transport]


def default_transport(settings: Settings, failed: Callable[[DropReason, int], None]) -> Transport:
    if not settings.enabled:
        return Disabled()
    if settings.kafka:
        return KafkaTransport(
            settings.kafka,
            source=f"/{settings.service}/{settings.instance}",
            topics=settings.topics,
            failed=failed,
            queue_size=settings.buffer_size,
            send_timeout_s=settings.send_timeout_s,
            extra=settings.kafka_config,
        )
    assert settings.http  # Settings checked both
    assert settings.http_token
    return HttpTransport(
        settings.http, token=settings.http_token, failed=failed, timeout_s=settings.send_timeout_s
    )


class _Query(NamedTuple):
    """A statement as the application's thread saw it; the sending thread makes its record
    (the span id, the body, its JSON), so a query costs the request only this."""

    sql: str
    duration_ms: float
    database: str
    started_at: float
    rows: int | None
    context: trace.TraceContext | None

    def record(self, application: str) -> Record:
        context = self.context
        return slow_query(
            sql=self.sql,
            duration_ms=self.duration_ms,
            database=self.database,
            application=application,
            started_at=self.started_at,
            rows=self.rows,
            trace_id=context.trace_id if context else None,
            span_id=trace.new_span_id() if context else None,
            parent_span_id=context.span_id if context else None,
            traceparent=context.traceparent if context else None,
        )


class Client:
    def __init__(
        self,
        settings: Settings,
        *,
        transport: TransportFactory = default_transport,
        clock: Callable[[], float] = time.time,
        start: bool = True,
        draw: Callable[[], float] = random.random,
    ) -> None:
        self.settings = settings
        self.clock = clock
        # Disabled (OPSMESH_ENABLED=0): the calls return at once and nothing is buffered.
        self._enabled = settings.enabled
        self.outbox: Outbox[Record | _Query] = Outbox(settings.buffer_size)
        self.metrics = Registry()
        self.requests = RequestMetrics(
            self.metrics,
            service=settings.service,
            instance=settings.instance,
            environment=settings.environment,
        )
        self._constant = {"service": settings.service, "instance": settings.instance}
        self._transport = transport(settings, self.outbox.drop)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._flushed = threading.Condition()
        self._flush_rounds = 0
        self._thread = threading.Thread(target=self._run, name="opsmesh-client", daemon=True)
        self.health = HealthChecks(self._report_result)
        self._checker = threading.Thread(target=self._check, name="opsmesh-health", daemon=True)
        self._draw = draw
        # None when profiling is off, or pyinstrument (the profiling extra) is missing.
        self.profiler = (
            RequestProfiler.load(settings.profile_interval_ms / 1000.0)
            if settings.profiling
            else None
        )
        self.memory = (
            MemoryTracer() if self.profiler is not None and settings.profile_memory else None
        )
        if start:
            self._thread.start()
            self._checker.start()
            if self.memory is not None:
                self.memory.start()

    # -- what the application and the integrations call (never blocks) -------------------

    def send(self, record: Record) -> bool:
        return self._enabled and self.outbox.offer(record)

    def query(
        self,
        sql: str,
        duration_s: float,
        *,
        started_at: float,
        database: str | None = None,
        rows: int | None = None,
    ) -> None:
        """One executed statement; sent when at least ``query_min_ms`` slow, under the
        current request's span so query-analyzer can read the request's repeats."""
        duration_ms = duration_s * 1000.0
        if not self._enabled or duration_ms < self.settings.query_min_ms or not sql:
            return
        self.outbox.offer(
            _Query(
                sql,
                duration_ms,
                database or self.settings.database,
                started_at,
                rows,
                trace.current(),
            )
        )

    def begin_profile(self, *, asynchronous: bool = False) -> OpenProfile | None:
        """Start profiling the calling thread's request, or its task's (``asynchronous``,
        for a request on an asyncio loop); None when it will not be profiled. With
        ``profile_slow_ms`` set every request is profiled from its start (only its end
        tells whether it was slow); without, only the ones drawn into the sample."""
        if self.profiler is None:
            return None
        rate = self.settings.profile_sample_rate
        sampled = rate > 0 and self._draw() < rate
        if not sampled and self.settings.profile_slow_ms <= 0:
            return None
        started = self.profiler.start(asynchronous=asynchronous)
        if started is None:
            return None
        opened = OpenProfile(started, sampled)
        if self.memory is not None:
            opened.memory_start = self.memory.begin()
        return opened

    def end_profile(
        self,
        opened: OpenProfile,
        *,
        route: str,
        method: str,
        status: int,
        duration_s: float,
        started_at: float,
    ) -> None:
        """Stop the request's profiler; its profile is sent when the request was slow or
        drawn into the sample, and it holds at least one sampling interval."""
        assert self.profiler is not None  # an open profile comes only from begin_profile
        profiler, opened.profiler = opened.profiler, None
        session = self.profiler.stop(profiler) if profiler is not None else None
        duration_ms = duration_s * 1000.0
        slow_ms = self.settings.profile_slow_ms
        reason = (
            "slow"
            if slow_ms > 0 and duration_ms >= slow_ms
            else "sampled"
            if opened.sampled
            else None
        )
        folded = None
        if reason is not None and session is not None:
            try:
                folded = self.profiler.fold(session, PROFILE_MAX_FUNCTIONS)
            except Exception:  # a profile the SDK cannot read must not fail the request
                log.exception("opsmesh client: a request's profile could not be read")
        # pyinstrument's records (held by the session and its profiler) are freed here,
        # before the request's memory is read: they are the profiler's, not the request's.
        del session, profiler
        memory = None
        if self.memory is not None and opened.memory_start is not None:
            memory = self.memory.end(opened.memory_start)  # sent or not: it was open
        if reason is None or folded is None or not folded.samples:
            return
        context = trace.current()
        self.outbox.offer(
            profile(
                service=self.settings.service,
                instance=self.settings.instance,
                route=route,
                method=method,
                status=status,
                reason=reason,
                duration_ms=duration_ms,
                interval_ms=self.settings.profile_interval_ms,
                samples=folded.samples,
                functions=[
                    {
                        "function": f.function,
                        "file": f.file,
                        "line": f.line,
                        "self_samples": f.self_samples,
                        "total_samples": f.total_samples,
                    }
                    for f in folded.functions
                ],
                started_at=started_at,
                trace_id=context.trace_id if context else None,
                span_id=context.span_id if context else None,
                traceparent=context.traceparent if context else None,
                memory_peak_bytes=memory.peak_bytes if memory else None,
                memory_net_bytes=memory.net_bytes if memory else None,
            )
        )

    def report_check(
        self,
        check: str,
        status: str,
        *,
        output: str | None = None,
        observed_value: float | str | None = None,
        critical: bool = True,
        ttl_s: float | None = None,
    ) -> None:
        """One health check's result (``pass``, ``warn`` or ``fail``) to health-aggregator."""
        if status not in ("pass", "warn", "fail"):
            raise ValueError(f"status must be pass, warn or fail, not {status!r}")
        if not self._enabled:
            return
        self.outbox.offer(
            health_report(
                service=self.settings.service,
                instance=self.settings.instance,
                check=check,
                kind="check",
                status=status,
                at=self.clock(),
                ttl_s=ttl_s or 3 * self.settings.heartbeat_interval_s,
                output=output,
                observed_value=observed_value,
                critical=critical,
            )
        )

    def _report_result(self, check: str, result: Result, critical: bool) -> None:
        self.report_check(
            check,
            result.status,
            output=result.output,
            observed_value=result.observed_value,
            critical=critical,
        )

    def _check(self) -> None:
        """The health checks' own thread: a check hanging on a dead dependency holds up
        only the next round."""
        while True:
            try:
                self.health.run()
            except Exception:
                log.exception("opsmesh client: a health check round failed")
            if self._stop.wait(self.settings.heartbeat_interval_s):
                return

    def stats(self) -> dict[str, Any]:
        """What was accepted and dropped (by reason) so far, and what waits."""
        return {
            "accepted": self.outbox.accepted,
            "dropped": self.outbox.dropped(),
            "buffered": len(self.outbox),
        }

    # -- lifecycle ---------------------------------------------------------------------

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Send what is buffered (and the metrics now) and wait for the transport; True when
        nothing remains. Blocks the caller: for shutdown and tests, not request paths."""
        deadline = time.monotonic() + timeout_s
        if self._thread.is_alive():
            with self._flushed:
                target = self._flush_rounds + 1
                self._wake.set()
                self._flushed.wait_for(
                    lambda: self._flush_rounds >= target, timeout=max(0.0, timeout_s)
                )
        else:
            self._round(collect=True)
        left = max(0.0, deadline - time.monotonic())
        return self._transport.flush(left) == 0 and len(self.outbox) == 0

    def close(self, timeout_s: float = 5.0) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        self._wake.set()
        if self.memory is not None:
            self.memory.stop()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        else:
            self._round(collect=True)
        self.outbox.close()
        self._transport.close(timeout_s)

    # -- the sending thread ------------------------------------------------------------

    def _run(self) -> None:
        interval = self.settings.flush_interval_s
        next_metrics = time.monotonic() + self.settings.metrics_interval_s
        next_heartbeat = time.monotonic()
        while True:
            woken = self._wake.wait(interval)
            self._wake.clear()
            now = time.monotonic()
            collect = woken or now >= next_metrics
            if collect:
                next_metrics = now + self.settings.metrics_interval_s
            if now >= next_heartbeat:
                next_heartbeat = now + self.settings.heartbeat_interval_s
                self._heartbeat()
            try:
                self._round(collect=collect)
            except Exception:  # the thread must outlive any one bad round
                log.exception("opsmesh client: a send round failed")
            with self._flushed:
                self._flush_rounds += 1
                self._flushed.notify_all()
            if self._stop.is_set():
                return

    def _heartbeat(self) -> None:
        interval = self.settings.heartbeat_interval_s
        self.outbox.offer(
            health_report(
                service=self.settings.service,
                instance=self.settings.instance,
                check="heartbeat",
                kind="heartbeat",
                status="pass",
                at=self.clock(),
                ttl_s=min(86_400.0, 3 * interval),
            )
        )

    def _round(self, *, collect: bool) -> None:
        if collect and self._enabled:
            for record in self.metrics.collect(self.clock(), self._constant):
                self.outbox.offer(record)
        while batch := self.outbox.drain(MAX_BATCH):
            self._transport.send(self._records(batch))

    def _records(self, batch: list[Record | _Query]) -> list[Record]:
        """The batch's queries made into their records; one that cannot be (a statement
        that is not text) is counted as rejected, and the rest still go."""
        application = self.settings.service
        records: list[Record] = []
        for item in batch:
            if isinstance(item, _Query):
                try:
                    records.append(item.record(application))
                except Exception:
                    log.exception("opsmesh client: a query's event could not be made")
                    self.outbox.drop(DropReason.REJECTED)
            else:
                records.append(item)
        return records


_client: Client | None = None
_lock = threading.Lock()


def init(
    service: str | None = None,
    *,
    kafka: str | None = None,
    http: str | None = None,
    environ: Mapping[str, str] | None = None,
    transport: TransportFactory = default_transport,
    **settings: Any,
) -> Client:
    """Start the process's client (settings: these arguments, then ``OPSMESH_*``).
    ``transport`` makes the transport, for one of the application's own."""
    from opsmesh_client.settings import load  # noqa: PLC0415 - keeps the import graph flat

    global _client  # noqa: PLW0603 - one client per process, as an SDK's init makes
    loaded = load(environ, service=service, kafka=kafka, http=http, **settings)
    with _lock:
        if _client is not None:
            _client.close()
        _client = Client(loaded, transport=transport, start=loaded.enabled)
        atexit.register(_client.close)
        return _client


def get_client() -> Client | None:
    return _client


def shutdown(timeout_s: float = 5.0) -> None:
    global _client  # noqa: PLW0603
    with _lock:
        if _client is not None:
            _client.close(timeout_s)
            _client = None
