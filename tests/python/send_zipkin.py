"""Sends spans to tracemap's Zipkin port with the OpenTelemetry Python SDK's
Zipkin JSON exporter, then reads them back and compares. Used by tests/zipkin.rs.
Exits non-zero with a message on any mismatch."""

import argparse
import json
import sys
import time
import urllib.request

from opentelemetry.exporter.zipkin.json import ZipkinExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

KINDS = {SpanKind.SERVER: "server", SpanKind.CLIENT: "client", SpanKind.PRODUCER: "producer",
         SpanKind.CONSUMER: "consumer", SpanKind.INTERNAL: "unspecified"}


def as_tag(value):
    """The string a Zipkin tag carries for an OpenTelemetry attribute value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--zipkin", required=True)
    parser.add_argument("--api", required=True)
    args = parser.parse_args()

    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "order-service"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("bookstore.orders")
    with tracer.start_as_current_span("POST /orders", kind=SpanKind.SERVER,
                                      attributes={"http.request.method": "POST", "order.items": 3}):
        with tracer.start_as_current_span("charge card", kind=SpanKind.CLIENT,
                                          attributes={"peer.service": "stripe", "retry": False}) as charge:
            charge.set_status(Status(StatusCode.ERROR, "card declined"))
        with tracer.start_as_current_span("render receipt"):
            pass
    provider.shutdown()
    spans = memory.get_finished_spans()

    exporter = ZipkinExporter(endpoint=args.zipkin)
    result = exporter.export(spans)
    if result != SpanExportResult.SUCCESS:
        print(f"Zipkin export failed: {result}", file=sys.stderr)
        return 1

    trace_id = format(spans[0].get_span_context().trace_id, "032x")
    deadline = time.time() + 10
    body = None
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"{args.api}/api/v1/traces/{trace_id}") as response:
                body = json.load(response)
            if len(body["spans"]) == len(spans):
                break
        except urllib.error.HTTPError:
            pass
        time.sleep(0.1)
    failures = []
    by_id = {s["span_id"]: s for s in (body or {"spans": []})["spans"]}
    for span in spans:
        span_id = format(span.get_span_context().span_id, "016x")
        got = by_id.get(span_id)
        if got is None:
            failures.append(f"span {span.name} missing")
            continue
        parent = format(span.parent.span_id, "016x") if span.parent else None
        for field, want in [("name", span.name), ("service", "order-service"),
                            ("kind", KINDS[span.kind]), ("parent_span_id", parent),
                            # The exporter rounds nanoseconds to the nearest microsecond.
                            ("start_us", (span.start_time + 500) // 1000)]:
            if got[field] != want:
                failures.append(f"{span.name}: {field} {got[field]!r} != {want!r}")
        for key, value in span.attributes.items():
            if got["attributes"].get(key) != as_tag(value):
                failures.append(f"{span.name}: attribute {key} {got['attributes'].get(key)!r}")
        want_status = "error" if span.status.status_code == StatusCode.ERROR else got["status"]
        if got["status"] != want_status:
            failures.append(f"{span.name}: status {got['status']}")
        if span.status.status_code == StatusCode.ERROR and got["status_message"] != span.status.description:
            failures.append(f"{span.name}: status message {got['status_message']!r}")
    if failures:
        print("\n".join(failures), file=sys.stderr)
        return 1
    print(json.dumps({"trace_id": trace_id, "spans": len(spans)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
