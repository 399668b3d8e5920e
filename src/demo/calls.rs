//! The calls a service makes to what the demo does not trace itself —
//! outside HTTPS APIs, databases and caches, DynamoDB through the AWS SDK —
//! and its local work: CLIENT and INTERNAL spans of [`TraceBuilder`], with
//! the attributes each kind of instrumentation writes.

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use rand::Rng;

use super::topology::Database;
use super::trace::{int, Reply, SpanRef, TraceBuilder};
use crate::loadgen::corpus::{attr, s};

impl TraceBuilder<'_> {
    /// A call to an outside HTTPS API (no span on its side): a CLIENT span
    /// answered `status` after `took` ns; `resend` > 0 marks a retry attempt.
    #[allow(clippy::too_many_arguments)]
    pub fn external(
        &mut self,
        parent: SpanRef,
        at: u64,
        host: &str,
        (method, path): (&str, &str),
        status: u16,
        took: u64,
        resend: i64,
    ) -> Reply {
        let caller = self.service_of(parent);
        let mut attributes = vec![
            attr("http.request.method", s(method.into())),
            attr("url.full", s(format!("https://{host}{path}"))),
            attr("server.address", s(host.into())),
            attr("server.port", int(443)),
        ];
        if resend > 0 {
            attributes.push(attr("http.request.resend_count", int(resend)));
        }
        let span = self.open(
            caller,
            Some(parent),
            method.into(),
            SpanKind::Client,
            at,
            attributes,
        );
        self.answer(span, status);
        self.close(span, at + took);
        Reply {
            status,
            end: at + took,
        }
    }

    /// A database call from `parent`'s service at `at`, taking `took` ns:
    /// `operation` on `collection` (the span's name), `statement` as sent.
    #[allow(clippy::too_many_arguments)]
    pub fn query(
        &mut self,
        parent: SpanRef,
        at: u64,
        db: &Database,
        (operation, collection): (&str, &str),
        statement: String,
        took: u64,
    ) -> u64 {
        let caller = self.service_of(parent);
        let old = caller.old_db_names();
        let key = |new: &'static str, older: &'static str| if old { older } else { new };
        let mut attributes = vec![
            attr(key("db.system.name", "db.system"), s(db.system.into())),
            attr(key("server.address", "net.peer.name"), s(db.host.into())),
            attr(key("server.port", "net.peer.port"), int(db.port)),
            attr(
                key("db.operation.name", "db.operation"),
                s(operation.into()),
            ),
            attr(key("db.query.text", "db.statement"), s(statement)),
        ];
        if let Some(namespace) = db.namespace {
            attributes.push(attr(key("db.namespace", "db.name"), s(namespace.into())));
        }
        if !collection.is_empty() {
            attributes.push(attr(
                key("db.collection.name", "db.sql.table"),
                s(collection.into()),
            ));
        }
        let name = if collection.is_empty() {
            operation.to_string()
        } else {
            format!("{operation} {collection}")
        };
        let span = self.open(caller, Some(parent), name, SpanKind::Client, at, attributes);
        self.close(span, at + took);
        at + took
    }

    /// A DynamoDB call through the AWS SDK's instrumentation.
    pub fn dynamodb(
        &mut self,
        parent: SpanRef,
        at: u64,
        db: &Database,
        (operation, table): (&str, &str),
        took: u64,
    ) -> u64 {
        let caller = self.service_of(parent);
        let request_id: u128 = self.rng.random();
        let attributes = vec![
            attr("rpc.system", s("aws-api".into())),
            attr("rpc.service", s("DynamoDB".into())),
            attr("rpc.method", s(operation.into())),
            attr("db.system", s(db.system.into())),
            attr("db.operation", s(operation.into())),
            attr("server.address", s(db.host.into())),
            attr("server.port", int(db.port)),
            attr("cloud.region", s("eu-west-1".into())),
            attr("aws.dynamodb.table_names", s(table.into())),
            attr("aws.request_id", s(format!("{request_id:032X}"))),
            attr("http.response.status_code", int(200)),
        ];
        let name = format!("DynamoDB.{operation}");
        let span = self.open(caller, Some(parent), name, SpanKind::Client, at, attributes);
        self.close(span, at + took);
        at + took
    }

    /// An INTERNAL span of the parent's service, `took` ns from `at`.
    pub fn internal(&mut self, parent: SpanRef, at: u64, name: &str, took: u64) -> u64 {
        let caller = self.service_of(parent);
        let span = self.open(
            caller,
            Some(parent),
            name.into(),
            SpanKind::Internal,
            at,
            Vec::new(),
        );
        self.close(span, at + took);
        at + took
    }
}
