//! The bookstore the demo pretends to run: its instrumented services, how
//! each exports its spans, and the databases and outside APIs they call.
//!
//! ```text
//!  user ─► api-gateway ─┬─► auth-service ─┬─► user-service ─► users-db (PostgreSQL)
//!                       │                 └─► DynamoDB (sessions)
//!                       ├─► user-service
//!                       ├─► product-catalog ─► redis-cache, catalog-db (PostgreSQL)
//!                       ├─► order-service ─┬─► product-catalog
//!                       │                  ├─► orders-db (PostgreSQL), redis-cache (carts)
//!                       │                  └─► payment-service ─┬─► api.stripe.com
//!                       │                                       ├─► payments-db (PostgreSQL)
//!                       │                                       └─► notification-service ─► api.sendgrid.com
//!                       └─► search-service ─► elasticsearch
//! ```
//!
//! Most services export OTLP over gRPC, as an OpenTelemetry SDK does by
//! default; notification-service exports OTLP/HTTP protobuf and
//! search-service is traced by the X-Ray SDK, so one demo exercises every
//! receiver a real mixed fleet would use.

use opentelemetry_proto::tonic::common::v1::KeyValue;

use crate::loadgen::corpus::{attr, s};

/// How a service's spans reach tracemap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    OtlpGrpc,
    OtlpHttp,
    Xray,
}

/// An instrumented service of the bookstore.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Service {
    Gateway,
    Auth,
    User,
    Catalog,
    Order,
    Payment,
    Notification,
    Search,
}

impl Service {
    pub const ALL: [Service; 8] = [
        Service::Gateway,
        Service::Auth,
        Service::User,
        Service::Catalog,
        Service::Order,
        Service::Payment,
        Service::Notification,
        Service::Search,
    ];

    /// `service.name`, and the host name other services call it by.
    pub fn name(self) -> &'static str {
        match self {
            Service::Gateway => "api-gateway",
            Service::Auth => "auth-service",
            Service::User => "user-service",
            Service::Catalog => "product-catalog",
            Service::Order => "order-service",
            Service::Payment => "payment-service",
            Service::Notification => "notification-service",
            Service::Search => "search-service",
        }
    }

    pub fn transport(self) -> Transport {
        match self {
            Service::Notification => Transport::OtlpHttp,
            Service::Search => Transport::Xray,
            _ => Transport::OtlpGrpc,
        }
    }

    /// The language its SDK reports, as a fleet of several teams has.
    fn language(self) -> &'static str {
        match self {
            Service::Gateway | Service::Auth => "go",
            Service::User | Service::Order | Service::Search => "java",
            Service::Catalog | Service::Notification => "nodejs",
            Service::Payment => "python",
        }
    }

    /// Whether its instrumentation still writes the older database
    /// attribute names (`db.system`, `db.statement`, `db.name`,
    /// `net.peer.name`): a real fleet upgrades one team at a time.
    pub fn old_db_names(self) -> bool {
        matches!(self, Service::Auth | Service::User)
    }

    /// The OTLP resource attributes its SDK sends.
    pub fn resource(self) -> Vec<KeyValue> {
        let name = self.name();
        vec![
            attr("service.name", s(name.into())),
            attr("service.namespace", s("bookstore".into())),
            attr("service.version", s(format!("2.{}.0", name.len() % 7))),
            attr("deployment.environment.name", s("demo".into())),
            attr("telemetry.sdk.name", s("opentelemetry".into())),
            attr("telemetry.sdk.language", s(self.language().into())),
            attr("k8s.namespace.name", s("bookstore".into())),
            attr("k8s.pod.name", s(format!("{name}-7d4f9c6b8-x2k9p"))),
        ]
    }
}

/// A database or cache the services call: a virtual node on the map.
#[derive(Debug, Clone, Copy)]
pub struct Database {
    /// `db.system.name` (older `db.system`).
    pub system: &'static str,
    /// `server.address`: the node's name on the map.
    pub host: &'static str,
    pub port: i64,
    /// `db.namespace`, when the system has one.
    pub namespace: Option<&'static str>,
}

pub const USERS_DB: Database = Database {
    system: "postgresql",
    host: "users-db",
    port: 5432,
    namespace: Some("users"),
};

pub const ORDERS_DB: Database = Database {
    system: "postgresql",
    host: "orders-db",
    port: 5432,
    namespace: Some("orders"),
};

pub const CATALOG_DB: Database = Database {
    system: "postgresql",
    host: "catalog-db",
    port: 5432,
    namespace: Some("catalog"),
};

pub const PAYMENTS_DB: Database = Database {
    system: "postgresql",
    host: "payments-db",
    port: 5432,
    namespace: Some("payments"),
};

pub const REDIS: Database = Database {
    system: "redis",
    host: "redis-cache",
    port: 6379,
    namespace: Some("0"),
};

/// Auth sessions, called through the AWS SDK's instrumentation.
pub const DYNAMODB: Database = Database {
    system: "dynamodb",
    host: "dynamodb.eu-west-1.amazonaws.com",
    port: 443,
    namespace: None,
};

/// search-service's Elasticsearch, queried over its SQL interface (the JDBC
/// driver), so the X-Ray SDK records the calls as `sql` subsegments named
/// after the host: the node X-Ray, and tracemap, draws for it.
pub const ELASTICSEARCH: Database = Database {
    system: "elasticsearch",
    host: "elasticsearch",
    port: 9200,
    namespace: None,
};

/// Outside HTTP APIs: external nodes on the map.
pub const STRIPE: &str = "api.stripe.com";
pub const SENDGRID: &str = "api.sendgrid.com";
