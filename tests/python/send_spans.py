"""Sends spans to tracemap with the real OpenTelemetry Python SDK exporters.

Used by tests/python_sdk.rs. Spans are recorded by the SDK, then exported with
OTLP/gRPC (gzip), OTLP/HTTP protobuf (gzip) and OTLP/HTTP protobuf (plain).
Each export must be acknowledged with SUCCESS. What the SDK recorded is printed
as JSON on stdout so the Rust test can compare it with what tracemap returns.
"""

import argparse
import json
import sys

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcExporter,
)
from opentelemetry.exporter.otlp.proto.http import Compression as HttpCompression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as HttpExporter,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from grpc import Compression as GrpcCompression

KINDS = {
    SpanKind.INTERNAL: "internal",
    SpanKind.SERVER: "server",
    SpanKind.CLIENT: "client",
    SpanKind.PRODUCER: "producer",
    SpanKind.CONSUMER: "consumer",
}
STATUS = {StatusCode.UNSET: "unset", StatusCode.OK: "ok", StatusCode.ERROR: "error"}


def record(service):
    """Records one small bookstore trace for `service` and returns its spans."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("bookstore.checkout", "1.2.3")
    with tracer.start_as_current_span("warmup") as other:
        linked = other.get_span_context()
    with tracer.start_as_current_span(
        "GET /books/{id}",
        kind=SpanKind.SERVER,
        attributes={
            "http.request.method": "GET",
            "http.response.status_code": 200,
            "correlation_id": "req_" + service,
            "sampling.ratio": 0.25,
            "cache.hit": False,
            "book.tags": ["fiction", "classic"],
        },
        links=[Link(linked, {"link.reason": "warmup"})],
    ) as root:
        root.add_event("cache.miss", {"cache.key": "book:42", "attempt": 1})
        with tracer.start_as_current_span(
            "SELECT books",
            kind=SpanKind.CLIENT,
            attributes={
                "db.system.name": "postgresql",
                "db.query.text": "SELECT * FROM books WHERE id = $1",
                "db.response.returned_rows": 1,
            },
        ) as query:
            query.set_status(Status(StatusCode.ERROR, "statement timeout"))
    provider.shutdown()
    return memory.get_finished_spans()


def describe(span, service):
    ctx = span.get_span_context()
    return {
        "service": service,
        "trace_id": format(ctx.trace_id, "032x"),
        "span_id": format(ctx.span_id, "016x"),
        "parent_span_id": format(span.parent.span_id, "016x") if span.parent else None,
        "name": span.name,
        "kind": KINDS[span.kind],
        "status": STATUS[span.status.status_code],
        "status_message": span.status.description or "",
        "start_us": span.start_time // 1000,
        "duration_us": span.end_time // 1000 - span.start_time // 1000,
        "attributes": {k: list(v) if isinstance(v, tuple) else v for k, v in span.attributes.items()},
        "events": [
            {"name": e.name, "time_us": e.timestamp // 1000, "attributes": dict(e.attributes)}
            for e in span.events
        ],
        "links": [
            {
                "trace_id": format(link.context.trace_id, "032x"),
                "span_id": format(link.context.span_id, "016x"),
            }
            for link in span.links
        ],
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--grpc", required=True, help="OTLP/gRPC endpoint, http://host:port")
    parser.add_argument("--http", required=True, help="OTLP/HTTP traces URL")
    args = parser.parse_args()

    exporters = {
        "py-grpc-gzip": GrpcExporter(
            endpoint=args.grpc, insecure=True, compression=GrpcCompression.Gzip
        ),
        "py-http-gzip": HttpExporter(endpoint=args.http, compression=HttpCompression.Gzip),
        "py-http-plain": HttpExporter(
            endpoint=args.http, compression=HttpCompression.NoCompression
        ),
    }
    expected = []
    for service, exporter in exporters.items():
        spans = record(service)
        result = exporter.export(spans)
        exporter.shutdown()
        if result != SpanExportResult.SUCCESS:
            print(f"{service}: export failed: {result}", file=sys.stderr)
            return 1
        expected.extend(describe(span, service) for span in spans)
    json.dump(expected, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
