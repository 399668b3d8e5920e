"""Sends spans to tracemap's Zipkin port with the OpenTelemetry Python SDK's
Zipkin JSON exporter (opentelemetry-exporter-zipkin-json).

Used by tests/zipkin.rs. Spans are recorded by the SDK, then exported with
ZipkinExporter to the URL given (the server's /api/v2/spans); the export must
be acknowledged with SUCCESS. What the SDK recorded is printed as JSON on stdout,
in the shape of tracemap's /api/v1 span and with Zipkin's losses applied (tags
are strings, INTERNAL spans have no kind, times are whole microseconds, no
links), so the Rust test can compare it with what tracemap returns.
"""

import argparse
import json
import sys

from opentelemetry.exporter.zipkin.json import ZipkinExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.trace import SpanKind, Status, StatusCode

SERVICE = "order-service"
# Zipkin has no INTERNAL kind: the exporter leaves `kind` out, which reads as unspecified.
KINDS = {
    SpanKind.INTERNAL: "unspecified",
    SpanKind.SERVER: "server",
    SpanKind.CLIENT: "client",
    SpanKind.PRODUCER: "producer",
    SpanKind.CONSUMER: "consumer",
}
STATUS = {StatusCode.UNSET: "unset", StatusCode.OK: "ok", StatusCode.ERROR: "error"}


def as_tag(value):
    """The string a Zipkin tag carries for an attribute value (the OpenTelemetry
    specification's rule: lowercase booleans, JSON lists for sequences)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return json.dumps([as_tag(v) if isinstance(v, bool) else v for v in value],
                          separators=(",", ":"))
    return str(value)


def micros(nanos):
    """The exporter rounds nanoseconds to the nearest microsecond."""
    return (nanos + 500) // 1000


def record():
    """Records one small order trace and returns its spans."""
    memory = InMemorySpanExporter()
    resource = Resource.create(
        {"service.name": SERVICE, "service.version": "1.4.0", "deployment.environment": "test"}
    )
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("bookstore.orders", "0.9.1")
    with tracer.start_as_current_span(
        "POST /orders",
        kind=SpanKind.SERVER,
        attributes={
            "http.request.method": "POST",
            "order.items": 3,
            "order.total": 42.5,
            "gift": False,
            "order.tags": ("express", "fragile"),
        },
    ) as root:
        root.add_event("order.validated", {"rule": "stock", "attempt": 1, "strict": True})
        with tracer.start_as_current_span(
            "charge card", kind=SpanKind.CLIENT, attributes={"peer.service": "stripe"}
        ) as charge:
            charge.set_status(Status(StatusCode.ERROR, "card declined"))
        with tracer.start_as_current_span(
            "publish order", kind=SpanKind.PRODUCER, attributes={"messaging.system": "kafka"}
        ):
            pass
        with tracer.start_as_current_span("render receipt"):
            pass
        root.set_status(Status(StatusCode.OK))
    provider.shutdown()
    return memory.get_finished_spans(), resource


def describe(span, resource):
    ctx = span.get_span_context()
    status = span.status.status_code
    return {
        "trace_id": format(ctx.trace_id, "032x"),
        "span_id": format(ctx.span_id, "016x"),
        "parent_span_id": format(span.parent.span_id, "016x") if span.parent else None,
        "service": SERVICE,
        "name": span.name,
        "kind": KINDS[span.kind],
        "status": STATUS[status],
        "status_message": (span.status.description or "") if status == StatusCode.ERROR else "",
        "start_us": micros(span.start_time),
        "duration_us": micros(span.end_time - span.start_time),
        "attributes": {k: as_tag(v) for k, v in span.attributes.items()},
        "events": [
            {
                "name": e.name,
                "time_us": micros(e.timestamp),
                "attributes": {k: list(v) if isinstance(v, tuple) else v
                               for k, v in e.attributes.items()},
            }
            for e in span.events
        ],
        "links": [],
        "resource": {k: as_tag(v) for k, v in resource.attributes.items() if k != "service.name"},
        "scope": {"name": span.instrumentation_scope.name,
                  "version": span.instrumentation_scope.version},
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("endpoint", help="Zipkin spans URL, http://host:port/api/v2/spans")
    args = parser.parse_args()

    spans, resource = record()
    exporter = ZipkinExporter(endpoint=args.endpoint)
    result = exporter.export(spans)
    exporter.shutdown()
    if result != SpanExportResult.SUCCESS:
        print(f"Zipkin export failed: {result}", file=sys.stderr)
        return 1
    json.dump([describe(span, resource) for span in spans], sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
