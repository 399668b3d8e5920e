//! Who may use tracemap's ports: credentials on ingest and on the query port
//! (`auth`), and TLS on every TCP listener (`tls`). Both are off until
//! configured; every listener binds to 127.0.0.1 unless `bind` says otherwise.

pub mod auth;
pub mod tls;
