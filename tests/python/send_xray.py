"""Talks to tracemap's X-Ray daemon port with the real AWS X-Ray SDK for Python.

Used by tests/xray.rs. Modes:
  segments  record segments with nested, SQL and remote subsegments, annotations,
            metadata, a fault and a throttle (one segment with everything
            embedded, one streamed as independent subsegments), then read the
            traces back from tracemap and compare them field by field with the
            documents the SDK sent.
  mixed     an OpenTelemetry service (X-Ray id generator and propagator, OTLP
            export) calls an X-Ray SDK service under the same trace header;
            tracemap must show one trace, the segment under the OTel client span.
  map       the inventory service, traced by the X-Ray SDK, called from the
            OpenTelemetry spans given in --calls (trace id:parent span id,
            comma-separated): one segment per call, each reading DynamoDB
            (an `aws` subsegment); every fifth call's DynamoDB read faults.
  findings  the search service, traced by the X-Ray SDK, runs one slow SQL query
            (an `sql` subsegment of 250 ms from --start, explicit times) for
            tracemap's detectors; prints the trace, segment and query ids.
  sampling  the SDK's centralized-sampling connector fetches rules and targets
            from tracemap; then the recorder's own sampler, with its rule and
            target poller threads, gets the rules and a reservoir quota from
            tracemap while segments are recorded; no error may be logged.
Exits non-zero with a message on any mismatch.
"""

import argparse
import json
import logging
import sys
import time
import traceback
import urllib.request

from aws_xray_sdk.core import xray_recorder
from aws_xray_sdk.core.emitters.udp_emitter import UDPEmitter
from aws_xray_sdk.core.models.trace_header import TraceHeader

FAILURES = []


def check(condition, message):
    if not condition:
        FAILURES.append(message)


class RecordingEmitter(UDPEmitter):
    """The SDK's own UDP emitter, also keeping every document it sends."""

    def __init__(self, address):
        super().__init__(address)
        self.sent = []

    def send_entity(self, entity):
        self.sent.append(json.loads(entity.serialize()))
        super().send_entity(entity)


def fetch_trace(api, trace_id, want_span_ids, timeout=15.0):
    """Polls the native API until every wanted span id is stored."""
    deadline = time.time() + timeout
    body = None
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"{api}/api/v1/traces/{trace_id}") as response:
                body = json.load(response)
            got = {s["span_id"] for s in body["spans"]}
            if want_span_ids <= got and all(
                not s["attributes"].get("aws.xray.in_progress") for s in body["spans"]
            ):
                return body
        except urllib.error.HTTPError as error:
            if error.code != 404:
                raise
        time.sleep(0.1)
    raise SystemExit(f"trace {trace_id}: spans {sorted(want_span_ids)} not all stored: {body}")


def entities(document, parent, service, top=True):
    """Yields (entity, expected parent id, service, is_segment) for a document
    and its embedded subsegments."""
    yield document, parent, service, top and document.get("type") != "subsegment"
    for child in document.get("subsegments", []):
        yield from entities(child, document["id"], service, top=False)


def compare(entity, parent, service, is_segment, got, label):
    where = f"{label} {entity['name']} ({entity['id']})"
    check(got["name"] == entity["name"], f"{where}: name {got['name']}")
    check(got["parent_span_id"] == parent, f"{where}: parent {got['parent_span_id']} != {parent}")
    check(got["service"] == service, f"{where}: service {got['service']} != {service}")
    start_us = round(entity["start_time"] * 1e6)
    end_us = round(entity["end_time"] * 1e6)
    check(got["start_us"] == start_us, f"{where}: start {got['start_us']} != {start_us}")
    check(abs(got["duration_us"] - (end_us - start_us)) <= 1, f"{where}: duration {got['duration_us']}")
    remote = entity.get("namespace") in ("remote", "aws") or "sql" in entity
    attrs = got["attributes"]
    if is_segment:
        check(got["kind"] == "server", f"{where}: kind {got['kind']}")
    elif remote:
        check(got["kind"] == "client", f"{where}: kind {got['kind']}")
        check(attrs.get("peer.service") == entity["name"], f"{where}: peer.service {attrs.get('peer.service')}")
    http = entity.get("http", {})
    request, response = http.get("request", {}), http.get("response", {})
    if "method" in request:
        check(attrs.get("http.request.method") == request["method"], f"{where}: method")
    if "url" in request:
        check(attrs.get("url.full") == request["url"], f"{where}: url")
    if "status" in response:
        check(attrs.get("http.response.status_code") == response["status"], f"{where}: status code")
    for key, value in entity.get("annotations", {}).items():
        check(attrs.get(key) == value, f"{where}: annotation {key}: {attrs.get(key)} != {value}")
    for namespace, value in entity.get("metadata", {}).items():
        got_value = attrs.get(f"aws.xray.metadata.{namespace}")
        check(got_value == value, f"{where}: metadata {namespace}: {got_value} != {value}")
    for flag in ("fault", "error", "throttle"):
        if entity.get(flag):
            check(attrs.get(f"aws.xray.{flag}") is True, f"{where}: {flag} flag")
            check(got["status"] == "error", f"{where}: status {got['status']} with {flag}")
    sql = entity.get("sql")
    if sql:
        check(attrs.get("db.query.text") == sql["sanitized_query"], f"{where}: db.query.text")
        check(attrs.get("db.system.name") == sql["database_type"].lower(), f"{where}: db.system.name")
        check(attrs.get("db.namespace") == "bookstore", f"{where}: db.namespace {attrs.get('db.namespace')}")
    for key, value in entity.get("aws", {}).items():
        if isinstance(value, dict):
            continue  # sections (xray, ec2, …) describe the resource
        name = AWS_ATTRIBUTES.get(key, f"aws.{key}")
        check(attrs.get(name) == value, f"{where}: aws {key}: {name} = {attrs.get(name)} != {value}")
        if key == "operation":
            check(attrs.get("rpc.method") == value, f"{where}: rpc.method {attrs.get('rpc.method')}")
    if entity.get("precursor_ids"):
        got_ids = attrs.get("aws.xray.precursor_ids")
        check(got_ids == entity["precursor_ids"], f"{where}: precursor ids {got_ids} != {entity['precursor_ids']}")
    exceptions = entity.get("cause", {}).get("exceptions", []) if isinstance(entity.get("cause"), dict) else []
    got_exceptions = [e for e in got["events"] if e["name"] == "exception"]
    check(len(got_exceptions) == len(exceptions), f"{where}: {len(got_exceptions)} exception events, {len(exceptions)} sent")
    for sent, event in zip(exceptions, got_exceptions):
        got_attrs = event["attributes"]
        check(got_attrs.get("exception.message") == sent.get("message"), f"{where}: exception message")
        check(got_attrs.get("exception.type") == sent.get("type"), f"{where}: exception type {got_attrs.get('exception.type')}")
        check(got_attrs.get("aws.xray.exception.id") == sent.get("id"), f"{where}: exception id")
        if "remote" in sent:
            check(got_attrs.get("aws.xray.exception.remote") == sent["remote"], f"{where}: exception remote")
        stack = got_attrs.get("exception.stacktrace", "")
        check(len(sent.get("stack", [])) > 0, f"{where}: the SDK sent no stack frames")
        for frame in sent.get("stack", []):
            line = f"at {frame.get('label', '?')} ({frame.get('path', '?')}:{frame.get('line', 0)})"
            check(line in stack, f"{where}: stack frame {line!r} missing from {stack!r}")
        check(event["time_us"] >= got["start_us"], f"{where}: exception event time {event['time_us']}")
    if exceptions or entity.get("fault") or entity.get("error"):
        check(got["status"] == "error", f"{where}: status {got['status']} with a cause")


# How the segment's `aws` fields are named on the stored span.
AWS_ATTRIBUTES = {
    "operation": "aws.operation",
    "region": "cloud.region",
    "account_id": "cloud.account.id",
    "request_id": "aws.request_id",
    "retries": "aws.xray.retries",
    "table_name": "aws.table_name",
    "queue_url": "aws.queue_url",
}


def record_bookstore_search(correlation_id):
    segment = xray_recorder.begin_segment("search-service")
    segment.put_http_meta("method", "GET")
    segment.put_http_meta("url", "https://books.example/search?q=dune")
    segment.put_annotation("correlation_id", correlation_id)
    segment.put_annotation("results", 12)
    segment.put_metadata("query", {"terms": ["dune"], "page": 1}, "search")
    es = xray_recorder.begin_subsegment("Elasticsearch", "remote")
    es.put_http_meta("method", "POST")
    es.put_http_meta("url", "http://es.internal:9200/books/_search")
    es.put_http_meta("status", 429)
    with xray_recorder.in_subsegment("parse-hits"):
        time.sleep(0.002)
    xray_recorder.end_subsegment()
    sql = xray_recorder.begin_subsegment("bookstore@db.internal", "remote")
    sql.set_sql({
        "url": "postgresql://db.internal:5432/bookstore",
        "sanitized_query": "SELECT id, title FROM books WHERE id = ANY(?)",
        "database_type": "PostgreSQL",
        "user": "app",
    })
    try:
        raise ConnectionResetError("connection reset by peer")
    except ConnectionResetError as error:
        sql.add_exception(error, traceback.extract_stack())
    xray_recorder.end_subsegment()
    segment.put_http_meta("status", 200)
    xray_recorder.end_segment()
    return segment


def mode_segments(args):
    emitter = RecordingEmitter(f"127.0.0.1:{args.port}")
    xray_recorder.configure(
        daemon_address=f"127.0.0.1:{args.port}",
        emitter=emitter,
        sampling=False,
        context_missing="LOG_ERROR",
        service="search-service",
    )
    embedded = record_bookstore_search("req_xray_embedded")

    # Stream completed subsegments on their own, as the SDKs do for big segments.
    xray_recorder.configure(streaming_threshold=1)
    streamed = xray_recorder.begin_segment("catalog-batch")
    attempts = []
    for n in range(4):
        sub = xray_recorder.begin_subsegment("DynamoDB", "aws")
        sub.set_aws({
            "operation": "GetItem", "table_name": "books", "region": "eu-west-1",
            "retries": n, "request_id": f"REQ{n}", "account_id": "123456789012",
        })
        if attempts:
            # The segment document's field for the calls that came before.
            sub.precursor_ids = list(attempts)
        attempts.append(sub.id)
        xray_recorder.end_subsegment()
    xray_recorder.end_segment()

    check(any(d.get("type") == "subsegment" for d in emitter.sent), "the SDK streamed no independent subsegment")
    # Segment name of each trace, to find the service of streamed subsegments.
    services = {d["trace_id"]: d["name"] for d in emitter.sent if d.get("type") != "subsegment"}
    compared = 0
    for document in emitter.sent:
        trace_id = document["trace_id"]
        independent = document.get("type") == "subsegment"
        parent = document.get("parent_id")
        service = services[trace_id]
        expected = list(entities(document, parent, service))
        body = fetch_trace(args.api, trace_id, {e["id"] for e, _, _, _ in expected})
        by_id = {s["span_id"]: s for s in body["spans"]}
        for entity, parent_id, svc, is_segment in expected:
            label = "independent" if independent else "embedded"
            compare(entity, parent_id, svc, is_segment, by_id[entity["id"]], label)
            compared += 1
        if not independent:
            check(body["summary"]["root_service"] == document["name"], f"root service {body['summary']['root_service']}")
    body = fetch_trace(args.api, embedded.trace_id, {embedded.id})
    check("req_xray_embedded" in body["summary"]["correlation_ids"], f"correlation ids {body['summary']['correlation_ids']}")
    check(compared >= 9, f"only {compared} entities compared")
    print(json.dumps({"documents": len(emitter.sent), "entities": compared}))


def mode_mixed(args):
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.propagators.aws import AwsXRayPropagator
    from opentelemetry.sdk.extension.aws.trace import AwsXRayIdGenerator
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.trace import SpanKind

    provider = TracerProvider(
        resource=Resource.create({"service.name": "api-gateway"}),
        id_generator=AwsXRayIdGenerator(),
    )
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=args.grpc, insecure=True)))
    tracer = provider.get_tracer("gateway")
    xray_recorder.configure(
        daemon_address=f"127.0.0.1:{args.port}", sampling=False, context_missing="LOG_ERROR"
    )
    with tracer.start_as_current_span("GET /search", kind=SpanKind.SERVER) as root:
        with tracer.start_as_current_span("GET search-service", kind=SpanKind.CLIENT) as client:
            carrier = {}
            AwsXRayPropagator().inject(carrier)
            header = TraceHeader.from_header_str(carrier["X-Amzn-Trace-Id"])
            # The callee, traced by the X-Ray SDK under the incoming header.
            segment = xray_recorder.begin_segment(
                "search-service", traceid=header.root, parent_id=header.parent, sampling=1
            )
            xray_recorder.begin_subsegment("Elasticsearch", "remote")
            xray_recorder.end_subsegment()
            xray_recorder.end_segment()
    provider.shutdown()

    otel_trace_id = format(root.get_span_context().trace_id, "032x")
    client_id = format(client.get_span_context().span_id, "016x")
    check(segment.trace_id.replace("-", "")[1:] == otel_trace_id, f"ids differ: {segment.trace_id} vs {otel_trace_id}")
    root_id = format(root.get_span_context().span_id, "016x")
    body = fetch_trace(args.api, otel_trace_id, {root_id, client_id, segment.id})
    by_id = {s["span_id"]: s for s in body["spans"]}
    check(by_id[segment.id]["parent_span_id"] == client_id, f"segment parent {by_id[segment.id]['parent_span_id']} != client {client_id}")
    check(by_id[segment.id]["service"] == "search-service", "segment service")
    check(by_id[client_id]["service"] == "api-gateway", "client service")
    check(body["summary"]["root_service"] == "api-gateway", f"root {body['summary']['root_service']}")
    check(set(body["summary"]["services"]) == {"api-gateway", "search-service"}, f"services {body['summary']['services']}")
    # The same trace is reachable by its X-Ray id.
    xray_body = fetch_trace(args.api, segment.trace_id, {segment.id})
    check(len(xray_body["spans"]) == len(body["spans"]), "X-Ray id reads another trace")
    print(json.dumps({"trace_id": otel_trace_id, "spans": len(body["spans"])}))


def mode_map(args):
    emitter = RecordingEmitter(f"127.0.0.1:{args.port}")
    xray_recorder.configure(
        daemon_address=f"127.0.0.1:{args.port}", sampling=False, context_missing="LOG_ERROR"
    )
    xray_recorder.emitter = emitter
    for n, call in enumerate(args.calls.split(",")):
        trace_id, parent_id = call.split(":")
        xray_id = f"1-{trace_id[:8]}-{trace_id[8:]}"
        segment = xray_recorder.begin_segment(
            "inventory", traceid=xray_id, parent_id=parent_id, sampling=1
        )
        segment.put_http_meta("method", "GET")
        segment.put_http_meta("url", "https://inventory.internal/stock")
        dynamo = xray_recorder.begin_subsegment("DynamoDB", "aws")
        dynamo.set_aws({"operation": "GetItem", "table_name": "stock"})
        if n % 5 == 0:
            dynamo.add_fault_flag()
        time.sleep(0.001)
        xray_recorder.end_subsegment()
        segment.put_http_meta("status", 200)
        xray_recorder.end_segment()
    print(json.dumps({"segments": len(emitter.sent)}))


def mode_findings(args):
    emitter = RecordingEmitter(f"127.0.0.1:{args.port}")
    xray_recorder.configure(
        daemon_address=f"127.0.0.1:{args.port}", sampling=False, context_missing="LOG_ERROR"
    )
    xray_recorder.emitter = emitter
    if args.start is None:
        raise SystemExit("the findings mode needs --start")
    start = args.start
    segment = xray_recorder.begin_segment("search-service", sampling=1)
    segment.start_time = start
    segment.put_http_meta("method", "GET")
    segment.put_http_meta("url", "https://books.example/search?author=herbert")
    sql = xray_recorder.begin_subsegment("bookstore@db.internal", "remote")
    sql.start_time = start + 0.005
    sql.set_sql({
        "url": "postgresql://db.internal:5432/bookstore",
        "sanitized_query": "SELECT id, title FROM books WHERE author_id = ?",
        "database_type": "PostgreSQL",
        "user": "app",
    })
    xray_recorder.end_subsegment(end_time=start + 0.255)
    segment.put_http_meta("status", 200)
    xray_recorder.end_segment(end_time=start + 0.260)
    check(len(emitter.sent) == 1, f"{len(emitter.sent)} documents sent, one expected")
    print(json.dumps({"trace_id": segment.trace_id, "segment_id": segment.id, "sql_id": sql.id}))


def mode_sampling(args):
    from aws_xray_sdk.core.sampling.connector import ServiceConnector

    errors = []

    class Collect(logging.Handler):
        def emit(self, record):
            if record.levelno >= logging.WARNING:
                errors.append(self.format(record))

    logging.getLogger("aws_xray_sdk").addHandler(Collect())
    connector = ServiceConnector()
    connector.setup_xray_client("127.0.0.1", args.port, None)
    rules = connector.fetch_sampling_rules()
    check(len(rules) == 1, f"{len(rules)} rules")
    check(rules and rules[0].name == "Default" and rules[0].rate == 1.0, "default rule records every request")
    targets, last_modified = connector.fetch_sampling_target(rules)
    check(targets.get("Default", {}).get("rate") == 1.0, f"targets {targets}")
    check(targets.get("Default", {}).get("interval") == 10, f"targets {targets}")
    check(last_modified > 0, "last rule modification")

    # The recorder's own sampler: poller threads started by the first decision.
    xray_recorder.configure(
        daemon_address=f"127.0.0.1:{args.port}", sampling=True, context_missing="LOG_ERROR",
        service="search-service",
    )
    sampler = xray_recorder.sampler
    deadline = time.time() + 25
    sampled = 0
    quota = None
    while time.time() < deadline:
        segment = xray_recorder.begin_segment("search-service")
        sampled += 1 if segment.sampled else 0
        xray_recorder.end_segment()
        cached = {r.name: r for r in sampler._cache.rules}
        if "Default" in cached:
            quota = cached["Default"].reservoir._quota
            if quota is not None:
                break
        time.sleep(0.2)
    check(sampler._cache.last_updated, "the rule poller never loaded rules from tracemap")
    check(quota == 1, f"the target poller got no reservoir quota from tracemap: {quota}")
    check(sampled > 0, "no segment was sampled")
    check(not errors, f"the SDK logged errors: {errors}")
    print(json.dumps({"rules": [r.name for r in rules], "targets": sorted(targets), "quota": quota}))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["segments", "mixed", "map", "findings", "sampling"])
    parser.add_argument("--port", type=int, required=True, help="X-Ray daemon port (UDP and TCP)")
    parser.add_argument("--api", required=True, help="tracemap query API base URL")
    parser.add_argument("--grpc", help="OTLP/gRPC endpoint for the mixed mode")
    parser.add_argument("--calls", help="trace_id:parent_span_id,… for the map mode")
    parser.add_argument("--start", type=float, help="the segment's start (unix seconds) for the findings mode")
    args = parser.parse_args()
    modes = {"segments": mode_segments, "mixed": mode_mixed, "map": mode_map, "findings": mode_findings,
             "sampling": mode_sampling}
    modes[args.mode](args)
    if FAILURES:
        print("\n".join(FAILURES), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
