//! The HTTP fingerprint: method, host and route of a client or server call,
//! from a full URL or a path alone. The canonical form is in the parent
//! module's doc.

use super::is_id;

/// The template of an HTTP call: method, host and route.
///
/// `http("GET", "https://api.stripe.com/v1/charges/ch_3Nabc123?expand=x")` is
/// `GET api.stripe.com /v1/charges/{id}`. `url` may be a full URL, `//host/…`,
/// or a path or route alone (`/books/{id}`), which then has no host.
pub fn http(method: &str, url: &str) -> String {
    let url = url.trim();
    let (scheme, rest) = match url.find("://") {
        Some(i)
            if i > 0
                && url[..i]
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"+-.".contains(&c)) =>
        {
            (&url[..i], Some(&url[i + 3..]))
        }
        _ => ("", url.strip_prefix("//")),
    };
    let (authority, path) = match rest {
        Some(rest) => rest.split_at(rest.find(['/', '?', '#']).unwrap_or(rest.len())),
        None => ("", url),
    };
    let path = &path[..path.find(['?', '#']).unwrap_or(path.len())];

    let method = method.trim();
    let mut out = String::with_capacity(method.len() + url.len() + 2);
    out.push_str(method);
    out.make_ascii_uppercase();

    // Credentials never belong in a template.
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let (name, port) = split_port(host);
    if !name.is_empty() {
        if !out.is_empty() {
            out.push(' ');
        }
        let start = out.len();
        out.push_str(name);
        out[start..].make_ascii_lowercase();
        let default = match port {
            Some("") | None => true,
            Some(port) => {
                let https =
                    scheme.eq_ignore_ascii_case("https") || scheme.eq_ignore_ascii_case("wss");
                let plain =
                    scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("ws");
                (https && port == "443") || (plain && port == "80")
            }
        };
        if let (false, Some(port)) = (default, port) {
            out.push(':');
            out.push_str(port);
        }
    }

    if !out.is_empty() {
        out.push(' ');
    }
    let start = out.len();
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        out.push('/');
        out.push_str(if is_id(segment) { "{id}" } else { segment });
    }
    if out.len() == start {
        out.push('/');
    }
    out
}

/// `host:port` into its parts, IPv6 brackets kept; a port is all digits.
fn split_port(host: &str) -> (&str, Option<&str>) {
    if host.starts_with('[') {
        if let Some(end) = host.find(']') {
            let (name, rest) = host.split_at(end + 1);
            return (name, rest.strip_prefix(':'));
        }
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|c| c.is_ascii_digit()) => (name, Some(port)),
        _ => (host, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::fingerprint::tests::check;

    const HTTP_CORPUS: &str = r#"
# Stripe
GET https://api.stripe.com/v1/charges/ch_3Nabc123?expand=x
=> GET api.stripe.com /v1/charges/{id}
post https://api.stripe.com:443/v1/customers/cus_NffrFeUfNV2Hib/sources
=> POST api.stripe.com /v1/customers/{id}/sources
# S3, virtual-hosted
PUT https://my-bucket.s3.us-east-1.amazonaws.com/uploads/2024/06/a1b2c3d4e5f6a7b8.jpg
=> PUT my-bucket.s3.us-east-1.amazonaws.com /uploads/{id}/{id}/{id}
# Elasticsearch
GET http://elasticsearch:9200/products/_search?q=shoes
=> GET elasticsearch:9200 /products/_search
POST http://es.internal:9200/logs-2024.06.01/_doc/
=> POST es.internal:9200 /{id}/_doc
# GitHub
GET https://api.github.com/repos/rust-lang/rust/commits/9f2a7c1e3b5d4a6f8e0c2b4d6f8a0c2e4b6d8f0a
=> GET api.github.com /repos/rust-lang/rust/commits/{id}
# Paths and routes from server spans
GET /books/9780141036144
=> GET /books/{id}
GET /users/{id}/posts
=> GET /users/{id}/posts
GET /search?q=rust&page=2
=> GET /search
GET /v1/oauth2/token
=> GET /v1/oauth2/token
GET /profile/alice@example.com
=> GET /profile/{id}
# Hosts
GET http://localhost:80/api/users/550e8400-e29b-41d4-a716-446655440000/orders/
=> GET localhost /api/users/{id}/orders
DELETE https://admin:hunter2@Example.COM/v2/items/42#frag
=> DELETE example.com /v2/items/{id}
GET https://[::1]:8080/healthz
=> GET [::1]:8080 /healthz
GET https://example.com
=> GET example.com /
"#;

    #[test]
    fn http_corpus() {
        let call = |line: &str| {
            let (method, url) = line.split_once(' ').unwrap_or(("", line));
            http(method, url)
        };
        assert!(check(call, HTTP_CORPUS) >= 15);
        assert_eq!(http("", "//cdn.example.com/a/1"), "cdn.example.com /a/{id}");
    }

    #[test]
    fn http_keeps_different_work_apart() {
        let pairs = [
            (
                "GET https://api.stripe.com/v1/customers",
                "GET https://api.stripe.com/v1/charges",
            ),
            ("GET /v1/charges/ch_1", "POST /v1/charges/ch_1"),
            ("GET https://a.example.com/x", "GET https://b.example.com/x"),
            ("GET /books/9780141036144", "GET /books/search"),
            ("GET http://svc:8080/x", "GET http://svc:8081/x"),
        ];
        for (a, b) in pairs {
            let call = |line: &'static str| {
                let (method, url) = line.split_once(' ').unwrap();
                http(method, url)
            };
            assert_ne!(call(a), call(b), "{a} | {b}");
        }
    }
}
