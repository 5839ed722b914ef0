"""What instrumenting a Django application costs per request and per query: the producer
SDK (``opsmesh_client``, sending every query and the request metrics to real Kafka)
against no instrumentation, sentry-sdk with tracing at 100 % (its DSN pointed at a local
sink) and OpenTelemetry's Django and psycopg instrumentation (spans batched to a local
OTLP/HTTP sink), measured in the same run.

Each variant runs in its own process (Sentry and OpenTelemetry patch Django and psycopg
for good), in interleaved rounds, on the same PostgreSQL: a view that runs ten queries
(``/q10/``) and one that runs none (``/q0/``), driven through Django's test client. The
difference between the two views' overheads is the per-query cost.

    uv run --frozen python -m bench.sdk_overhead [requests-per-view] [rounds]
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psycopg
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.urls import path
from psycopg import sql

from opsmesh import topics
from opsmesh.kafka.admin import ensure_topics
from opsmesh_dev.infra.stack import LocalStack
from opsmesh_dev.tools.demo_db import dsn_for

VARIANTS = ("none", "opsmesh", "sentry", "otel")
WARMUP = 200


def q10(request: HttpRequest) -> HttpResponse:
    names = []
    with connection.cursor() as cursor:
        for i in range(1, 11):
            cursor.execute("SELECT name FROM items WHERE id = %s", [i])
            names.append(cursor.fetchone()[0])
    return HttpResponse(",".join(names))


def q0(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


urlpatterns = [path("q10/", q10), path("q0/", q0)]


# -- the child: one variant ----------------------------------------------------------------


def _configure(variant: str, dsn: str, kafka: str, sink: str) -> None:
    import django  # noqa: PLC0415 - each child configures Django for its variant
    from django.conf import settings  # noqa: PLC0415

    # Configured first: OpenTelemetry's instrumentor reads and extends MIDDLEWARE.
    parts = psycopg.conninfo.conninfo_to_dict(dsn)
    settings.configure(
        DEBUG=False,
        ALLOWED_HOSTS=["testserver"],
        ROOT_URLCONF="bench.sdk_overhead",
        MIDDLEWARE=[],
        INSTALLED_APPS=[],
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.postgresql",
                "NAME": parts["dbname"],
                "HOST": parts.get("host", ""),
                "PORT": parts.get("port", ""),
                "USER": parts.get("user", ""),
                "PASSWORD": parts.get("password", ""),
                "CONN_MAX_AGE": None,  # one connection for the run: connects are not measured
            }
        },
    )
    if variant == "opsmesh":
        import opsmesh_client  # noqa: PLC0415

        opsmesh_client.init(service="bench", kafka=kafka, environment="bench")
        settings.MIDDLEWARE = ["opsmesh_client.integrations.django.OpsmeshMiddleware"]
    elif variant == "sentry":
        import sentry_sdk  # noqa: PLC0415

        sentry_sdk.init(dsn=f"http://public@{sink}/1", traces_sample_rate=1.0)
    elif variant == "otel":
        from opentelemetry import trace  # noqa: PLC0415
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
            OTLPSpanExporter,
        )
        from opentelemetry.instrumentation.django import DjangoInstrumentor  # noqa: PLC0415
        from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor  # noqa: PLC0415
        from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
        from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: PLC0415

        provider = TracerProvider()
        exporter = OTLPSpanExporter(endpoint=f"http://{sink}/v1/traces")
        provider.add_span_processor(BatchSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        PsycopgInstrumentor().instrument()
        DjangoInstrumentor().instrument()
    django.setup()


def _settle(variant: str) -> None:
    """Send what the instrumentation still holds (its background threads' work)."""
    if variant == "opsmesh":
        import opsmesh_client  # noqa: PLC0415

        opsmesh_client.get_client().flush(10.0)  # type: ignore[union-attr]
    elif variant == "sentry":
        import sentry_sdk  # noqa: PLC0415

        sentry_sdk.flush(10.0)
    elif variant == "otel":
        from opentelemetry import trace  # noqa: PLC0415

        trace.get_tracer_provider().force_flush(10_000)  # type: ignore[attr-defined]


def _child(variant: str, dsn: str, kafka: str, sink: str, requests: int) -> dict[str, float]:
    _configure(variant, dsn, kafka, sink)
    from django.test import Client  # noqa: PLC0415

    client = Client()
    out: dict[str, float] = {}
    for view in ("/q10/", "/q0/"):
        for _ in range(WARMUP):
            client.get(view)
        # Each view's measure holds its own requests' sending, not its predecessor's: the
        # background threads' backlog of the ten-query view would otherwise be counted
        # against the no-query one (a per-query cost shown as a per-request one).
        _settle(variant)
        started, cpu = time.perf_counter(), time.process_time()
        for _ in range(requests):
            client.get(view)
        out[view] = (time.perf_counter() - started) / requests * 1e6
        # CPU of every thread of the process (the exporters' and librdkafka's included),
        # not PostgreSQL's: steadier than wall time on a shared machine. It includes
        # sending what the view's requests left buffered; the wall time does not (a flush
        # waits on batching timers and acknowledgements, not on work).
        _settle(variant)
        out[f"cpu {view}"] = (time.process_time() - cpu) / requests * 1e6
    if variant == "opsmesh":
        import opsmesh_client  # noqa: PLC0415

        sdk = opsmesh_client.get_client()
        opsmesh_client.shutdown(10.0)
        # After the flush: what librdkafka failed to deliver is counted too.
        stats = sdk.stats()  # type: ignore[union-attr]
        out.update({f"dropped {reason}": float(n) for reason, n in stats["dropped"].items()})
        out["accepted"] = float(stats["accepted"])
    return out


# -- the parent: infrastructure, sink, rounds, table ----------------------------------------


class _Sink(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *_: Any) -> None:
        return None


def _database(admin_dsn: str) -> str:
    name = f"bench_sdk_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    dsn = dsn_for(admin_dsn, name)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL)")
        conn.execute("INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 100) g")
    return dsn


def main() -> None:
    requests = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    sink = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    sink_address = f"127.0.0.1:{sink.server_address[1]}"
    results: dict[str, list[dict[str, float]]] = {v: [] for v in VARIANTS}
    with LocalStack() as endpoints:
        dsn = _database(endpoints.pg_dsn)
        # The topics exist as in the mesh (its services create them): without them librdkafka
        # only queues each record until it times out, and nothing reaches a broker.
        asyncio.run(
            ensure_topics(
                {"bootstrap_servers": endpoints.kafka_bootstrap},
                [topics.SLOW_QUERIES, topics.METRICS, topics.HEALTH, topics.PROFILES],
            )
        )
        for round_ in range(rounds):
            for variant in VARIANTS:
                answer = subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "bench.sdk_overhead",
                        "--child",
                        variant,
                        dsn,
                        endpoints.kafka_bootstrap,
                        sink_address,
                        str(requests),
                    ],
                    check=False,
                    capture_output=True,
                    text=True,
                )
                if answer.returncode != 0:
                    raise SystemExit(f"the {variant} run failed:\n{answer.stderr[-3000:]}")
                results[variant].append(json.loads(answer.stdout.strip().splitlines()[-1]))
                print(f"round {round_ + 1} {variant}: {results[variant][-1]}", flush=True)
    sink.shutdown()
    _report(results, requests, rounds)


def _report(results: dict[str, list[dict[str, float]]], requests: int, rounds: int) -> None:
    def median(variant: str, view: str) -> float:
        return statistics.median(r[view] for r in results[variant])

    print(f"\n{requests} requests per view, median of {rounds} rounds (µs)")
    print(
        "| variant | measure | request, 10 queries | request, no query |"
        " overhead per request | overhead per query |"
    )
    print("|---|---|---|---|---|---|")
    for measure, prefix in (("wall", ""), ("CPU", "cpu ")):
        base10, base0 = median("none", f"{prefix}/q10/"), median("none", f"{prefix}/q0/")
        for variant in VARIANTS:
            v10, v0 = median(variant, f"{prefix}/q10/"), median(variant, f"{prefix}/q0/")
            per_query = ((v10 - base10) - (v0 - base0)) / 10
            print(
                f"| {variant} | {measure} | {v10:,.0f} | {v0:,.0f} | {v0 - base0:,.1f}"
                f" | {per_query:,.1f} |"
            )
    dropped = [{k: v for k, v in r.items() if k.startswith("dropped")} for r in results["opsmesh"]]
    accepted = [r["accepted"] for r in results["opsmesh"]]
    print(f"\nopsmesh records accepted per run: {accepted}; dropped: {dropped}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        variant, dsn, kafka, sink, requests = sys.argv[2:7]
        print(json.dumps(_child(variant, dsn, kafka, sink, int(requests))))
    else:
        main()
