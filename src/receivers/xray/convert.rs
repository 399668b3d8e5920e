//! X-Ray segment documents → `model::Span`, as the OpenTelemetry Collector's
//! X-Ray receiver maps them, with current semantic-convention names.
//!
//! - A segment is a SERVER span of the service it names; its embedded
//!   subsegments (any depth, up to `max_depth`) are its descendants.
//! - A subsegment with namespace `remote` or `aws`, or with an `sql` block, is a
//!   CLIENT span whose peer (`peer.service`) is the subsegment name — the node
//!   X-Ray draws on its map. Other subsegments are INTERNAL.
//! - An independent subsegment (`"type": "subsegment"`, sent on its own) carries
//!   no service name: it is stored with an empty one and takes its parent's
//!   service when the trace is read (`Trace::inherit_services`).
//! - A segment sent `in_progress` is kept with `aws.xray.in_progress = true`;
//!   the complete copy with the same id replaces it, whatever the order.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::segment::{Cause, DropReason, Http, Segment, Sql};
use crate::model::{
    semconv, AttrValue, Event, KeyValue, Resource, Scope, Span, SpanId, SpanKind, Status,
    StatusCode, TraceId,
};

/// Converts one datagram's document; the whole datagram is dropped when any of
/// its entities has an invalid id or it nests deeper than `max_depth`.
pub fn convert_segment(segment: Segment, max_depth: usize) -> Result<Vec<Span>, DropReason> {
    let trace_id = segment
        .trace_id
        .as_deref()
        .and_then(|t| t.parse::<TraceId>().ok())
        .ok_or(DropReason::InvalidId)?;
    let parent = match segment.parent_id.as_deref() {
        // An all-zero parent means "no parent", as in OTLP.
        Some(text) => match SpanId::from_hex(text) {
            Ok(id) => Some(id),
            Err(crate::model::IdError::AllZeros) => None,
            Err(_) => return Err(DropReason::InvalidId),
        },
        None => None,
    };
    let independent = segment.is_independent_subsegment();
    if independent && parent.is_none() {
        return Err(DropReason::InvalidId);
    }
    let resource = Arc::new(if independent {
        // The service is the parent segment's, resolved when the trace is read.
        Resource::default()
    } else {
        segment_resource(&segment)
    });
    let scope = Arc::new(sdk_scope(segment.aws.as_ref()));
    let mut out = Vec::with_capacity(1 + segment.subsegments.len());
    let context = Context {
        trace_id,
        resource: &resource,
        scope: &scope,
        max_depth,
    };
    context.entity(segment, parent, !independent, 0, &mut out)?;
    Ok(out)
}

struct Context<'a> {
    trace_id: TraceId,
    resource: &'a Arc<Resource>,
    scope: &'a Arc<Scope>,
    max_depth: usize,
}

impl Context<'_> {
    fn entity(
        &self,
        mut entity: Segment,
        parent: Option<SpanId>,
        is_segment: bool,
        depth: usize,
        out: &mut Vec<Span>,
    ) -> Result<(), DropReason> {
        if depth > self.max_depth {
            return Err(DropReason::TooDeep);
        }
        let span_id = entity
            .id
            .as_deref()
            .and_then(|id| SpanId::from_hex(id).ok())
            .ok_or(DropReason::InvalidId)?;
        let name = entity
            .name
            .take()
            .filter(|n| !n.is_empty())
            .ok_or(DropReason::BadDocument)?;
        let start_ns = entity
            .start_time
            .and_then(seconds_to_ns)
            .ok_or(DropReason::BadDocument)?;
        let end_ns = entity
            .end_time
            .and_then(seconds_to_ns)
            .unwrap_or(start_ns)
            .max(start_ns);
        let is_client = !is_segment
            && (matches!(entity.namespace.as_deref(), Some("remote") | Some("aws"))
                || entity.sql.is_some());
        let kind = if is_segment {
            SpanKind::Server
        } else if is_client {
            SpanKind::Client
        } else {
            SpanKind::Internal
        };

        let mut attributes = Vec::new();
        let mut attr = |key: &str, value: AttrValue| attributes.push(KeyValue::new(key, value));
        if is_client {
            attr(semconv::PEER_SERVICE, AttrValue::String(name.clone()));
        }
        if let Some(namespace) = entity.namespace.take() {
            if namespace == "aws" {
                attr("rpc.system", AttrValue::String("aws-api".into()));
                attr("rpc.service", AttrValue::String(name.clone()));
            }
            attr("aws.xray.namespace", AttrValue::String(namespace));
        }
        if let Some(http) = entity.http.take() {
            http_attributes(http, is_client, &mut attributes);
        }
        if let Some(sql) = entity.sql.take() {
            sql_attributes(sql, &mut attributes);
        }
        if let Some(aws) = entity.aws.take() {
            aws_attributes(&aws, &mut attributes);
        }
        let mut attr = |key: &str, value: AttrValue| attributes.push(KeyValue::new(key, value));
        if let Some(annotations) = entity.annotations.take() {
            for (key, value) in annotations {
                attr(&key, json_to_attr(value));
            }
        }
        if let Some(metadata) = entity.metadata.take() {
            for (namespace, value) in metadata {
                attr(
                    &format!("aws.xray.metadata.{namespace}"),
                    json_to_attr(value),
                );
            }
        }
        for (flag, set) in [
            (semconv::XRAY_FAULT, entity.fault),
            (semconv::XRAY_ERROR, entity.error),
            (semconv::XRAY_THROTTLE, entity.throttle),
            (semconv::XRAY_IN_PROGRESS, entity.in_progress),
        ] {
            if set {
                attr(flag, AttrValue::Bool(true));
            }
        }
        if !entity.precursor_ids.is_empty() {
            let ids = std::mem::take(&mut entity.precursor_ids);
            attr(
                "aws.xray.precursor_ids",
                AttrValue::Array(ids.into_iter().map(AttrValue::String).collect()),
            );
        }
        if let Some(user) = entity.user.take() {
            attr("enduser.id", AttrValue::String(user));
        }
        if let Some(arn) = entity.resource_arn.take() {
            attr("cloud.resource_id", AttrValue::String(arn));
        }

        let mut events = Vec::new();
        let mut cause_message = None;
        match entity
            .cause
            .take()
            .and_then(|c| serde_json::from_value::<Cause>(c).ok())
        {
            Some(Cause::Reference(id)) => attr("aws.xray.cause_id", AttrValue::String(id)),
            Some(Cause::Detail(detail)) => {
                for exception in detail.exceptions {
                    if cause_message.is_none() {
                        cause_message = exception.message.clone();
                    }
                    events.push(exception_event(exception, end_ns));
                }
            }
            None => {}
        }
        // As OpenTelemetry's HTTP conventions: a server fails on 5xx (a fault)
        // only; a client or local call on any error, throttle or exception.
        let failed = if is_segment {
            entity.fault
        } else {
            entity.fault || entity.error || entity.throttle || !events.is_empty()
        };
        let status = if failed {
            let fallback = if entity.throttle {
                "throttled"
            } else if entity.fault {
                "fault"
            } else {
                "error"
            };
            Status {
                code: StatusCode::Error,
                message: cause_message.unwrap_or_else(|| fallback.to_string()),
            }
        } else {
            Status::default()
        };

        let subsegments = std::mem::take(&mut entity.subsegments);
        out.push(Span {
            trace_id: self.trace_id,
            span_id,
            parent_span_id: parent,
            name,
            kind,
            start_ns,
            end_ns,
            status,
            attributes,
            events,
            resource: self.resource.clone(),
            scope: self.scope.clone(),
            ..Span::default()
        });
        for child in subsegments {
            self.entity(child, Some(span_id), false, depth + 1, out)?;
        }
        Ok(())
    }
}

/// X-Ray times are float seconds; microsecond precision is what they carry.
fn seconds_to_ns(seconds: f64) -> Option<u64> {
    // Beyond about 1.8e10 s (year 2554) nanoseconds overflow u64.
    if !(0.0..=1.8e10).contains(&seconds) {
        return None;
    }
    // Ties to even, as IEEE 754 and most SDK languages round.
    Some((seconds * 1e6).round_ties_even() as u64 * 1_000)
}

fn segment_resource(segment: &Segment) -> Resource {
    let mut attributes = Vec::new();
    if let Some(version) = segment.service.as_ref().and_then(|s| s.version.clone()) {
        attributes.push(KeyValue::new("service.version", AttrValue::String(version)));
    }
    if let Some(origin) = &segment.origin {
        attributes.push(KeyValue::new(
            "cloud.provider",
            AttrValue::String("aws".into()),
        ));
        let platform = match origin.as_str() {
            "AWS::EC2::Instance" => Some("aws_ec2"),
            "AWS::ECS::Container" => Some("aws_ecs"),
            "AWS::EKS::Container" => Some("aws_eks"),
            "AWS::ElasticBeanstalk::Environment" => Some("aws_elastic_beanstalk"),
            "AWS::Lambda::Function" => Some("aws_lambda"),
            _ => None,
        };
        if let Some(platform) = platform {
            attributes.push(KeyValue::new(
                "cloud.platform",
                AttrValue::String(platform.into()),
            ));
        }
        attributes.push(KeyValue::new(
            "aws.xray.origin",
            AttrValue::String(origin.clone()),
        ));
    }
    if let Some(aws) = &segment.aws {
        let nested = |section: &str, key: &str| {
            aws.get(section)
                .and_then(|s| s.get(key))
                .and_then(Value::as_str)
                .map(|v| AttrValue::String(v.to_string()))
        };
        for (section, key, attribute) in [
            ("ec2", "instance_id", "host.id"),
            ("ec2", "availability_zone", "cloud.availability_zone"),
            ("ecs", "container", "container.name"),
            ("eks", "pod", "k8s.pod.name"),
            ("eks", "cluster_name", "k8s.cluster.name"),
            ("xray", "sdk", "telemetry.sdk.name"),
            ("xray", "sdk_version", "telemetry.sdk.version"),
        ] {
            if let Some(value) = nested(section, key) {
                attributes.push(KeyValue::new(attribute, value));
            }
        }
    }
    Resource {
        service: segment.name.clone().unwrap_or_default(),
        attributes,
    }
}

fn sdk_scope(aws: Option<&Map<String, Value>>) -> Scope {
    let xray = aws.and_then(|a| a.get("xray"));
    let field = |key: &str| {
        xray.and_then(|x| x.get(key))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let name = field("sdk");
    Scope {
        name: if name.is_empty() {
            "aws.xray".into()
        } else {
            name
        },
        version: field("sdk_version"),
        attributes: Vec::new(),
    }
}

fn http_attributes(http: Http, is_client: bool, out: &mut Vec<KeyValue>) {
    let mut push = |key: &str, value: AttrValue| out.push(KeyValue::new(key, value));
    if let Some(request) = http.request {
        if let Some(method) = request.method {
            push(semconv::HTTP_REQUEST_METHOD, AttrValue::String(method));
        }
        if let Some(url) = request.url {
            if is_client {
                if let Some(host) = url_host(&url) {
                    push(semconv::SERVER_ADDRESS, AttrValue::String(host.to_string()));
                }
            }
            push("url.full", AttrValue::String(url));
        }
        if let Some(agent) = request.user_agent {
            push("user_agent.original", AttrValue::String(agent));
        }
        if let Some(ip) = request.client_ip {
            push("client.address", AttrValue::String(ip));
        }
        if let Some(forwarded) = request.x_forwarded_for {
            push("aws.xray.x_forwarded_for", AttrValue::Bool(forwarded));
        }
    }
    if let Some(response) = http.response {
        if let Some(status) = response.status {
            push(semconv::HTTP_RESPONSE_STATUS_CODE, AttrValue::Int(status));
        }
        let length = match response.content_length {
            Some(Value::Number(n)) => n.as_i64(),
            Some(Value::String(s)) => s.parse().ok(),
            _ => None,
        };
        if let Some(length) = length {
            push("http.response.body.size", AttrValue::Int(length));
        }
    }
}

fn sql_attributes(sql: Sql, out: &mut Vec<KeyValue>) {
    let mut push =
        |key: &str, value: String| out.push(KeyValue::new(key, AttrValue::String(value)));
    if let Some(query) = sql.sanitized_query {
        push(semconv::DB_QUERY_TEXT, query);
    }
    if let Some(system) = sql.database_type {
        push(semconv::DB_SYSTEM_NAME, db_system(&system));
    }
    if let Some(url) = sql.url {
        if let Some(host) = url_host(&url) {
            push(semconv::SERVER_ADDRESS, host.to_string());
        }
        if let Some(database) = url_database(&url) {
            push(semconv::DB_NAMESPACE, database.to_string());
        }
        push("aws.xray.sql.url", url);
    }
    for (key, value) in [
        ("db.user", sql.user),
        ("aws.xray.sql.database_version", sql.database_version),
        ("aws.xray.sql.driver_version", sql.driver_version),
        ("aws.xray.sql.preparation", sql.preparation),
        ("aws.xray.sql.connection_string", sql.connection_string),
    ] {
        if let Some(value) = value {
            push(key, value);
        }
    }
}

/// X-Ray's `database_type` ("PostgreSQL", "MySQL") as a `db.system.name` value.
fn db_system(database_type: &str) -> String {
    let lower = database_type.trim().to_ascii_lowercase();
    match lower.as_str() {
        "microsoft sql server" | "sql server" | "sqlserver" => "microsoft.sql_server".into(),
        "oracle" => "oracle.db".into(),
        _ => lower.replace(' ', "_"),
    }
}

fn aws_attributes(aws: &Map<String, Value>, out: &mut Vec<KeyValue>) {
    for (key, value) in aws {
        let renamed = match key.as_str() {
            "operation" => {
                if let Some(op) = value.as_str() {
                    out.push(KeyValue::new("rpc.method", AttrValue::String(op.into())));
                }
                "aws.operation"
            }
            "region" => "cloud.region",
            "account_id" => "cloud.account.id",
            "request_id" => "aws.request_id",
            "retries" => semconv::XRAY_RETRIES,
            "table_name" => "aws.table_name",
            "queue_url" => "aws.queue_url",
            // Nested sections (ec2, ecs, xray…) describe the resource.
            _ if value.is_object() => continue,
            other => {
                out.push(KeyValue::new(
                    format!("aws.{other}"),
                    json_to_attr(value.clone()),
                ));
                continue;
            }
        };
        out.push(KeyValue::new(renamed, json_to_attr(value.clone())));
    }
}

fn exception_event(exception: super::segment::Exception, time_ns: u64) -> Event {
    let mut attributes = Vec::new();
    if let Some(kind) = exception.kind {
        attributes.push(KeyValue::new("exception.type", AttrValue::String(kind)));
    }
    if let Some(message) = exception.message {
        attributes.push(KeyValue::new(
            "exception.message",
            AttrValue::String(message),
        ));
    }
    if !exception.stack.is_empty() {
        let trace = exception
            .stack
            .iter()
            .map(|frame| {
                format!(
                    "at {} ({}:{})",
                    frame.label.as_deref().unwrap_or("?"),
                    frame.path.as_deref().unwrap_or("?"),
                    frame.line.unwrap_or(0)
                )
            })
            .collect::<Vec<_>>()
            .join("\n");
        attributes.push(KeyValue::new(
            "exception.stacktrace",
            AttrValue::String(trace),
        ));
    }
    if let Some(id) = exception.id {
        attributes.push(KeyValue::new(
            "aws.xray.exception.id",
            AttrValue::String(id),
        ));
    }
    if let Some(remote) = exception.remote {
        attributes.push(KeyValue::new(
            "aws.xray.exception.remote",
            AttrValue::Bool(remote),
        ));
    }
    Event {
        time_ns,
        name: "exception".into(),
        attributes,
        dropped_attributes: 0,
    }
}

/// Host of `scheme://[user@]host[:port]/…` (JDBC-style `jdbc:` prefixes included).
fn url_host(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(bracketed) = host_port.strip_prefix('[') {
        bracketed.split(']').next()?
    } else {
        host_port.split(':').next()?
    };
    (!host.is_empty()).then_some(host)
}

/// The database of `scheme://host/database?…`.
fn url_database(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let path = rest.split_once('/')?.1;
    let database = path.split(['?', '#', '/']).next()?;
    (!database.is_empty()).then_some(database)
}

/// Deepest JSON nesting kept as typed attribute values; deeper parts are kept
/// as their JSON text, so a document can never nest past what storage reads back.
const MAX_VALUE_DEPTH: usize = 8;

/// Any JSON value as a typed attribute value.
pub fn json_to_attr(value: Value) -> AttrValue {
    json_to_attr_at(value, 0)
}

fn json_to_attr_at(value: Value, depth: usize) -> AttrValue {
    if depth >= MAX_VALUE_DEPTH && (value.is_array() || value.is_object()) {
        return AttrValue::String(value.to_string());
    }
    match value {
        Value::Null => AttrValue::Empty,
        Value::Bool(b) => AttrValue::Bool(b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => AttrValue::Int(i),
            None => AttrValue::Double(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => AttrValue::String(s),
        Value::Array(items) => AttrValue::Array(
            items
                .into_iter()
                .map(|v| json_to_attr_at(v, depth + 1))
                .collect(),
        ),
        Value::Object(map) => AttrValue::Map(
            map.into_iter()
                .map(|(k, v)| KeyValue::new(k, json_to_attr_at(v, depth + 1)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::receivers::xray::segment::parse_datagram;

    fn convert(body: &str) -> Result<Vec<Span>, DropReason> {
        let datagram = format!("{{\"format\": \"json\", \"version\": 1}}\n{body}");
        convert_segment(parse_datagram(datagram.as_bytes())?, 32)
    }

    const SEGMENT: &str = r#"{
        "name": "search-service", "id": "70de5b6f19ff9a0a",
        "trace_id": "1-581cf771-a006649127e371903a2de979",
        "parent_id": "53995c3f42cd8ad8",
        "start_time": 1478293361.271, "end_time": 1478293361.449,
        "origin": "AWS::EC2::Instance",
        "service": {"version": "1.2.3"},
        "aws": {"xray": {"sdk": "X-Ray for Python", "sdk_version": "2.15.0"}, "ec2": {"instance_id": "i-0b5a4678fc325bg98"}},
        "http": {"request": {"method": "GET", "url": "https://books.example/search?q=dune", "client_ip": "10.0.0.7"},
                 "response": {"status": 200, "content_length": 512}},
        "annotations": {"correlation_id": "req_abc123", "results": 12, "cached": false},
        "metadata": {"search": {"query": {"terms": ["dune"], "page": 1}}},
        "subsegments": [
          {"name": "Elasticsearch", "id": "70de5b6f19ff9a0b", "namespace": "remote",
           "start_time": 1478293361.3, "end_time": 1478293361.4, "throttle": true, "error": true,
           "http": {"request": {"method": "POST", "url": "http://es.internal:9200/books/_search"}, "response": {"status": 429}},
           "subsegments": [{"name": "serialize", "id": "70de5b6f19ff9a0c", "start_time": 1478293361.31, "end_time": 1478293361.32}]},
          {"name": "bookstore@db.internal", "id": "70de5b6f19ff9a0d",
           "start_time": 1478293361.41, "end_time": 1478293361.44, "fault": true,
           "sql": {"url": "postgresql://db.internal:5432/bookstore", "sanitized_query": "SELECT * FROM books WHERE id = ?",
                   "database_type": "PostgreSQL", "user": "app"},
           "cause": {"working_directory": "/app", "exceptions": [{"id": "e1", "type": "OperationalError", "message": "connection reset",
                     "stack": [{"path": "db.py", "line": 12, "label": "query"}]}]}},
          {"name": "DynamoDB", "id": "70de5b6f19ff9a0e", "namespace": "aws",
           "start_time": 1478293361.445, "end_time": 1478293361.448,
           "aws": {"operation": "GetItem", "region": "eu-west-1", "table_name": "carts", "retries": 2, "request_id": "R1"}}
        ]
    }"#;

    fn attr<'a>(span: &'a Span, key: &str) -> Option<&'a AttrValue> {
        span.attr(key)
    }

    #[test]
    fn a_segment_and_its_subsegments() {
        let spans = convert(SEGMENT).unwrap();
        assert_eq!(spans.len(), 5);
        let root = &spans[0];
        assert_eq!(
            root.trace_id.to_string(),
            "581cf771a006649127e371903a2de979"
        );
        assert_eq!(root.span_id.to_string(), "70de5b6f19ff9a0a");
        assert_eq!(root.parent_span_id.unwrap().to_string(), "53995c3f42cd8ad8");
        assert_eq!(root.kind, SpanKind::Server);
        assert_eq!(root.service(), "search-service");
        assert_eq!(root.start_ns, 1_478_293_361_271_000_000);
        assert_eq!(root.duration_ns(), 178_000_000);
        assert_eq!(
            attr(root, "http.request.method"),
            Some(&AttrValue::String("GET".into()))
        );
        assert_eq!(
            attr(root, "http.response.status_code"),
            Some(&AttrValue::Int(200))
        );
        assert_eq!(
            attr(root, "http.response.body.size"),
            Some(&AttrValue::Int(512))
        );
        assert_eq!(
            attr(root, "correlation_id"),
            Some(&AttrValue::String("req_abc123".into()))
        );
        assert_eq!(attr(root, "results"), Some(&AttrValue::Int(12)));
        assert_eq!(
            attr(root, "aws.xray.metadata.search").unwrap().to_json(),
            serde_json::json!({"query": {"terms": ["dune"], "page": 1}})
        );
        assert_eq!(root.status.code, StatusCode::Unset);
        assert_eq!(root.scope.name, "X-Ray for Python");
        assert!(root
            .resource
            .attributes
            .iter()
            .any(|kv| kv.key == "host.id"));

        let es = &spans[1];
        assert_eq!(es.kind, SpanKind::Client);
        assert_eq!(es.parent_span_id, Some(root.span_id));
        assert_eq!(
            attr(es, "peer.service"),
            Some(&AttrValue::String("Elasticsearch".into()))
        );
        assert_eq!(
            attr(es, "server.address"),
            Some(&AttrValue::String("es.internal".into()))
        );
        assert_eq!(attr(es, "aws.xray.throttle"), Some(&AttrValue::Bool(true)));
        assert_eq!(es.status.code, StatusCode::Error);
        assert_eq!(es.service(), "search-service");

        let nested = &spans[2];
        assert_eq!(nested.kind, SpanKind::Internal);
        assert_eq!(nested.parent_span_id, Some(es.span_id));

        let sql = &spans[3];
        assert_eq!(sql.kind, SpanKind::Client);
        assert_eq!(
            attr(sql, "db.system.name"),
            Some(&AttrValue::String("postgresql".into()))
        );
        assert_eq!(
            attr(sql, "db.namespace"),
            Some(&AttrValue::String("bookstore".into()))
        );
        assert_eq!(
            attr(sql, "db.query.text"),
            Some(&AttrValue::String(
                "SELECT * FROM books WHERE id = ?".into()
            ))
        );
        assert_eq!(sql.status.message, "connection reset");
        assert_eq!(sql.events[0].name, "exception");
        assert_eq!(
            sql.events[0].attributes[0],
            KeyValue::new(
                "exception.type",
                AttrValue::String("OperationalError".into())
            )
        );

        let dynamo = &spans[4];
        assert_eq!(
            attr(dynamo, "rpc.system"),
            Some(&AttrValue::String("aws-api".into()))
        );
        assert_eq!(
            attr(dynamo, "rpc.method"),
            Some(&AttrValue::String("GetItem".into()))
        );
        assert_eq!(attr(dynamo, "aws.xray.retries"), Some(&AttrValue::Int(2)));
        assert_eq!(
            attr(dynamo, "cloud.region"),
            Some(&AttrValue::String("eu-west-1".into()))
        );
    }

    #[test]
    fn independent_subsegment_has_a_parent_and_no_service_yet() {
        let spans = convert(
            r#"{"type": "subsegment", "name": "S3", "id": "70de5b6f19ff9a0f", "namespace": "aws",
                "trace_id": "1-581cf771-a006649127e371903a2de979", "parent_id": "70de5b6f19ff9a0a",
                "start_time": 1478293361.3, "end_time": 1478293361.35}"#,
        )
        .unwrap();
        assert_eq!(spans[0].service(), "");
        assert_eq!(spans[0].kind, SpanKind::Client);
        assert_eq!(
            spans[0].parent_span_id.unwrap().to_string(),
            "70de5b6f19ff9a0a"
        );
        assert_eq!(
            convert(r#"{"type": "subsegment", "name": "S3", "id": "70de5b6f19ff9a0f", "trace_id": "1-581cf771-a006649127e371903a2de979", "start_time": 1.0}"#).err(),
            Some(DropReason::InvalidId)
        );
    }

    #[test]
    fn in_progress_segment_is_marked() {
        let spans = convert(
            r#"{"name": "order", "id": "70de5b6f19ff9a0a", "trace_id": "1-581cf771-a006649127e371903a2de979",
                "start_time": 1478293361.271, "in_progress": true}"#,
        )
        .unwrap();
        assert!(spans[0].is_in_progress());
        assert_eq!(spans[0].duration_ns(), 0);
    }

    #[test]
    fn invalid_and_missing_fields_have_reasons() {
        let base = r#""name": "a", "start_time": 1.0"#;
        for (body, reason) in [
            (format!(r#"{{{base}, "id": "70de5b6f19ff9a0a", "trace_id": "2-581cf771-a006649127e371903a2de979"}}"#), DropReason::InvalidId),
            (format!(r#"{{{base}, "id": "70de5b6f19ff9a0", "trace_id": "1-581cf771-a006649127e371903a2de979"}}"#), DropReason::InvalidId),
            (format!(r#"{{{base}, "id": "0000000000000000", "trace_id": "1-581cf771-a006649127e371903a2de979"}}"#), DropReason::InvalidId),
            (r#"{"name": "a", "id": "70de5b6f19ff9a0a", "trace_id": "1-581cf771-a006649127e371903a2de979"}"#.to_string(), DropReason::BadDocument),
            (r#"{"start_time": 1.0, "id": "70de5b6f19ff9a0a", "trace_id": "1-581cf771-a006649127e371903a2de979"}"#.to_string(), DropReason::BadDocument),
        ] {
            assert_eq!(convert(&body).err(), Some(reason), "{body}");
        }
    }

    #[test]
    fn nesting_past_the_limit_is_too_deep() {
        let mut body =
            String::from(r#"{"name": "leaf", "id": "70de5b6f19ff9a0b", "start_time": 1.0}"#);
        for _ in 0..40 {
            body = format!(
                r#"{{"name": "n", "id": "70de5b6f19ff9a0b", "start_time": 1.0, "subsegments": [{body}]}}"#
            );
        }
        let top = format!(
            r#"{{"name": "top", "id": "70de5b6f19ff9a0a", "trace_id": "1-581cf771-a006649127e371903a2de979", "start_time": 1.0, "subsegments": [{body}]}}"#
        );
        assert_eq!(convert(&top).err(), Some(DropReason::TooDeep));
    }

    #[test]
    fn hostile_values_are_bounded_not_fatal() {
        let deep = format!("{}1{}", "[".repeat(60), "]".repeat(60));
        let spans = convert(&format!(
            r#"{{"name": "a", "id": "70de5b6f19ff9a0a", "trace_id": "1-581cf771-a006649127e371903a2de979",
                "start_time": 1.0, "parent_id": "0000000000000000", "metadata": {{"deep": {deep}}}}}"#
        ))
        .unwrap();
        assert!(
            spans[0].parent_span_id.is_none(),
            "an all-zero parent is no parent"
        );
        let mut depth = 0;
        let mut value = spans[0].attr("aws.xray.metadata.deep").unwrap();
        while let AttrValue::Array(items) = value {
            depth += 1;
            value = &items[0];
        }
        assert!(depth <= MAX_VALUE_DEPTH, "{depth}");
        assert!(matches!(value, AttrValue::String(s) if s.starts_with('[')));
        // Far-future times are a bad document, not an overflow.
        assert_eq!(
            convert(r#"{"name": "a", "id": "70de5b6f19ff9a0a", "trace_id": "1-581cf771-a006649127e371903a2de979", "start_time": 2e10}"#).err(),
            Some(DropReason::BadDocument)
        );
    }

    #[test]
    fn a_server_4xx_is_not_a_failure_but_a_client_4xx_is() {
        let spans = convert(
            r#"{"name": "api", "id": "70de5b6f19ff9a0a", "trace_id": "1-581cf771-a006649127e371903a2de979",
                "start_time": 1.0, "error": true, "http": {"response": {"status": 404}},
                "subsegments": [{"name": "users", "id": "70de5b6f19ff9a0b", "namespace": "remote",
                                 "start_time": 1.0, "error": true}]}"#,
        )
        .unwrap();
        assert_eq!(spans[0].status.code, StatusCode::Unset);
        assert_eq!(
            spans[0].attr("aws.xray.error"),
            Some(&AttrValue::Bool(true))
        );
        assert_eq!(spans[1].status.code, StatusCode::Error);
    }

    #[test]
    fn urls_give_host_and_database() {
        assert_eq!(
            url_host("jdbc:postgresql://db.internal:5432/books"),
            Some("db.internal")
        );
        assert_eq!(url_host("http://user@[::1]:80/x"), Some("::1"));
        assert_eq!(
            url_database("postgresql://db:5432/bookstore?sslmode=require"),
            Some("bookstore")
        );
        assert_eq!(url_database("postgresql://db:5432"), None);
        assert_eq!(db_system("Microsoft SQL Server"), "microsoft.sql_server");
    }
}
