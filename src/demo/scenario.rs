//! The bookstore's traffic: which requests its users make, and what each
//! service does to answer them, with the planted problems in place.
//!
//! Requests arrive at api-gateway in a fixed mix (browsing and searching
//! most, checkouts rarely), each answered through the services and stores of
//! [`super::topology`]. Errors come at rates a healthy shop has: expired
//! sessions (401), unknown products (404), an occasional rate limit (429),
//! rare faults (5xx). The problems:
//!
//! - **N+1**: order-service lists a user's orders by loading their ids, then
//!   each order with its own `SELECT … WHERE id = …`, one after another.
//!   Always on, and on the busiest authenticated page, so it costs the most
//!   time of all the findings: the one a team should fix first.
//! - **Slow query**: while [`Phase::slow_catalog_query`], product-catalog's
//!   title search (`ILIKE '%…%'`) runs without its trigram index: 110–700 ms.
//! - **Retry storm**: with probability [`Phase::storm`] a payment meets a
//!   failing Stripe (503, some 429) and payment-service retries at once, 3–4
//!   attempts with only a few ms between them; outside the storm a payment
//!   is retried once in a while, which is no storm.

use rand::rngs::StdRng;
use rand::Rng;

use super::orders::{add_to_cart, checkout, orders};
use super::schedule::Phase;
use super::topology::{Database, Service, CATALOG_DB, DYNAMODB, ELASTICSEARCH, REDIS, USERS_DB};
use super::trace::{Recorded, Reply, SpanRef, TraceBuilder};

/// What users ask api-gateway for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Search,
    Product,
    Browse,
    Orders,
    Profile,
    Checkout,
    Login,
    AddToCart,
}

/// The mix of requests, in percent.
const MIX: [(Route, u32); 8] = [
    (Route::Search, 24),
    (Route::Product, 25),
    (Route::Browse, 3),
    (Route::Orders, 22),
    (Route::Profile, 10),
    (Route::Checkout, 6),
    (Route::Login, 5),
    (Route::AddToCart, 5),
];

const TERMS: [&str; 10] = [
    "dune", "tolkien", "le guin", "python", "rust", "murakami", "atwood", "history", "poetry",
    "sapiens",
];

/// Picks a route by the mix.
pub fn pick(rng: &mut StdRng) -> Route {
    let total: u32 = MIX.iter().map(|(_, share)| share).sum();
    let mut at = rng.random_range(0..total);
    for (route, share) in MIX {
        if at < share {
            return route;
        }
        at -= share;
    }
    MIX[0].0
}

/// One user request, all of its spans, ending at `end_unix_ns`.
pub fn request(rng: &mut StdRng, phase: Phase, end_unix_ns: u64) -> Vec<Recorded> {
    let route = pick(rng);
    let mut b = TraceBuilder::new(rng, (end_unix_ns / 1_000_000_000) as u32);
    let user = b.rng.random_range(1_000..90_000u32);
    let book = b.rng.random_range(1..250_000u32);
    let term = TERMS[b.rng.random_range(0..TERMS.len())];
    let (method, template, path) = match route {
        Route::Search => (
            "GET",
            "/api/search",
            format!("/api/search?q={}", term.replace(' ', "+")),
        ),
        Route::Product => ("GET", "/api/products/{id}", format!("/api/products/{book}")),
        Route::Browse => (
            "GET",
            "/api/products",
            format!("/api/products?q={}", term.replace(' ', "+")),
        ),
        Route::Orders => ("GET", "/api/orders", "/api/orders".to_string()),
        Route::Profile => ("GET", "/api/users/me", "/api/users/me".to_string()),
        Route::Checkout => ("POST", "/api/checkout", "/api/checkout".to_string()),
        Route::Login => ("POST", "/api/login", "/api/login".to_string()),
        Route::AddToCart => ("POST", "/api/cart/items", "/api/cart/items".to_string()),
    };
    let root = b.server(Service::Gateway, None, (method, template, &path), 0);
    let at = b.work(0.4);
    let reply = if b.chance(0.005) {
        // The gateway's own rate limiter.
        Reply {
            status: 429,
            end: at,
        }
    } else {
        match route {
            Route::Search => search(&mut b, root, at, term),
            Route::Product => product(&mut b, root, at, book),
            Route::Browse => browse(&mut b, root, at, term, phase),
            Route::Login => login(&mut b, root, at, user),
            _ => match verify(&mut b, root, at) {
                reply if reply.status != 200 => reply,
                Reply { end, .. } => {
                    let at = end + b.work(0.3);
                    match route {
                        Route::Orders => orders(&mut b, root, at, user),
                        Route::Profile => profile(&mut b, root, at, user),
                        Route::Checkout => checkout(&mut b, root, at, user, phase),
                        _ => add_to_cart(&mut b, root, at, user, book),
                    }
                }
            },
        }
    };
    let end = reply.end + b.work(0.3);
    b.respond(
        root,
        Reply {
            status: reply.status,
            end,
        },
    );
    b.finish(end_unix_ns)
}

/// A database call lasting a log-normal time around `median_ms`.
pub(super) fn query(
    b: &mut TraceBuilder,
    parent: SpanRef,
    at: u64,
    db: &Database,
    what: (&str, &str),
    statement: String,
    median_ms: f64,
) -> u64 {
    let took = b.latency(median_ms, 0.45, (median_ms / 4.0, median_ms * 8.0));
    b.query(parent, at, db, what, statement, took)
}

/// auth-service checks the session token against DynamoDB.
fn verify(b: &mut TraceBuilder, root: SpanRef, at: u64) -> Reply {
    b.call(
        root,
        at,
        Service::Auth,
        ("POST", "/auth/verify", "/auth/verify"),
        |b, server, start| {
            let took = b.latency(4.0, 0.4, (1.5, 40.0));
            let at = start + b.work(0.2);
            let end = b.dynamodb(server, at, &DYNAMODB, ("GetItem", "sessions"), took);
            // Expired or revoked sessions.
            let status = if b.chance(0.03) { 401 } else { 200 };
            Reply {
                status,
                end: end + b.work(0.2),
            }
        },
    )
}

fn login(b: &mut TraceBuilder, root: SpanRef, at: u64, user: u32) -> Reply {
    b.call(root, at, Service::Auth, ("POST", "/auth/login", "/auth/login"), |b, server, start| {
        let at = start + b.work(0.3);
        let checked = b.call(server, at, Service::User, ("POST", "/users/credentials", "/users/credentials"), |b, server, start| {
            let sql = format!("SELECT id, password_hash, failed_logins FROM users WHERE email = 'reader{user}@example.com'");
            let at = start + b.work(0.2);
            let end = query(b, server, at, &USERS_DB, ("SELECT", "users"), sql, 2.0);
            let hashing = b.latency(55.0, 0.15, (35.0, 90.0));
            let at = end + b.work(0.1);
            let end = b.internal(server, at, "bcrypt.compare", hashing);
            let status = if b.chance(0.08) { 401 } else { 200 };
            Reply { status, end: end + b.work(0.2) }
        });
        if checked.status != 200 {
            return checked;
        }
        let took = b.latency(6.0, 0.4, (2.0, 50.0));
        let at = checked.end + b.work(0.2);
        let end = b.dynamodb(server, at, &DYNAMODB, ("PutItem", "sessions"), took);
        Reply { status: 200, end: end + b.work(0.2) }
    })
}

fn profile(b: &mut TraceBuilder, root: SpanRef, at: u64, user: u32) -> Reply {
    let path = format!("/users/{user}");
    b.call(
        root,
        at,
        Service::User,
        ("GET", "/users/{id}", &path),
        |b, server, start| {
            let sql = format!(
                "SELECT id, email, display_name, locale, created_at FROM users WHERE id = {user}"
            );
            let at = start + b.work(0.2);
            let end = query(b, server, at, &USERS_DB, ("SELECT", "users"), sql, 1.8);
            Reply {
                status: 200,
                end: end + b.work(0.4),
            }
        },
    )
}

/// search-service (traced with X-Ray) asks Elasticsearch, then ranks.
fn search(b: &mut TraceBuilder, root: SpanRef, at: u64, term: &str) -> Reply {
    let path = format!("/search?q={}&page=1", term.replace(' ', "+"));
    b.call(root, at, Service::Search, ("GET", "/search", &path), |b, server, start| {
        let at = start + b.work(0.5);
        if b.chance(0.01) {
            // A query the parser rejects.
            return Reply { status: 400, end: at };
        }
        let sql = format!(
            "SELECT id, title, author, SCORE() FROM books WHERE MATCH(title, '{term}') ORDER BY SCORE() DESC LIMIT 20"
        );
        let took = b.latency(14.0, 0.5, (3.0, 85.0));
        let end = b.query(server, at, &ELASTICSEARCH, ("SELECT", "books"), sql, took);
        if b.chance(0.003) {
            return Reply { status: 503, end: end + b.work(0.2) };
        }
        let ranking = b.latency(1.5, 0.4, (0.4, 8.0));
        let at = end + b.work(0.1);
        let end = b.internal(server, at, "rank_results", ranking);
        Reply { status: 200, end: end + b.work(0.3) }
    })
}

/// product-catalog serves a product from Redis, or from PostgreSQL on a miss.
fn product(b: &mut TraceBuilder, root: SpanRef, at: u64, book: u32) -> Reply {
    let path = format!("/products/{book}");
    b.call(root, at, Service::Catalog, ("GET", "/products/{id}", &path), |b, server, start| {
        let cache = format!("GET product:{book}");
        let at = start + b.work(0.2);
        let end = query(b, server, at, &REDIS, ("GET", ""), cache, 0.5);
        if b.chance(0.8) {
            return Reply { status: 200, end: end + b.work(0.3) };
        }
        let sql = format!("SELECT id, isbn, title, author, price_cents, stock FROM products WHERE id = {book}");
        let at = end + b.work(0.2);
        let end = query(b, server, at, &CATALOG_DB, ("SELECT", "products"), sql, 2.5);
        if b.chance(0.04) {
            return Reply { status: 404, end: end + b.work(0.2) };
        }
        let fill = format!("SET product:{book} ? EX 300");
        let at = end + b.work(0.3);
        let end = query(b, server, at, &REDIS, ("SET", ""), fill, 0.5);
        Reply { status: 200, end: end + b.work(0.3) }
    })
}

/// product-catalog's title search: fast with its index, slow without.
fn browse(b: &mut TraceBuilder, root: SpanRef, at: u64, term: &str, phase: Phase) -> Reply {
    let path = format!("/products?q={}&sort=popularity", term.replace(' ', "+"));
    b.call(root, at, Service::Catalog, ("GET", "/products", &path), |b, server, start| {
        let sql = format!(
            "SELECT id, title, author, price_cents FROM products WHERE title ILIKE '%{term}%' OR author ILIKE '%{term}%' ORDER BY popularity DESC LIMIT 24"
        );
        let took = if phase.slow_catalog_query {
            b.latency(260.0, 0.35, (110.0, 700.0))
        } else {
            b.latency(9.0, 0.45, (2.0, 60.0))
        };
        let at = start + b.work(0.3);
        let end = b.query(server, at, &CATALOG_DB, ("SELECT", "products"), sql, took);
        Reply { status: 200, end: end + b.work(0.8) }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn the_mix_reaches_every_route() {
        let mut rng = StdRng::seed_from_u64(3);
        let picks: Vec<Route> = (0..2_000).map(|_| pick(&mut rng)).collect();
        for (route, share) in MIX {
            let n = picks.iter().filter(|&&r| r == route).count() as f64;
            let expected = 2_000.0 * share as f64 / 100.0;
            assert!(
                (n - expected).abs() < expected * 0.35 + 10.0,
                "{route:?}: {n} vs {expected}"
            );
        }
    }

    #[test]
    fn every_request_is_one_well_linked_trace_with_its_correlation_id() {
        let mut rng = StdRng::seed_from_u64(4);
        let phase = Phase {
            slow_catalog_query: false,
            storm: 0.5,
        };
        let mut services = std::collections::BTreeSet::new();
        for _ in 0..500 {
            let spans = request(&mut rng, phase, 1_800_000_000_000_000_000);
            let root = &spans[0].span;
            assert!(root.parent_span_id.is_empty());
            assert_eq!(root.end_time_unix_nano, 1_800_000_000_000_000_000);
            let correlation = spans[0]
                .span
                .attributes
                .iter()
                .find(|a| a.key == "correlation_id")
                .cloned()
                .unwrap();
            for recorded in &spans {
                let span = &recorded.span;
                services.insert(recorded.service);
                assert_eq!(span.trace_id, root.trace_id);
                assert!(span.attributes.contains(&correlation));
                assert!(span.start_time_unix_nano <= span.end_time_unix_nano);
                if span.parent_span_id.is_empty() {
                    continue;
                }
                let parent = spans
                    .iter()
                    .find(|p| p.span.span_id == span.parent_span_id)
                    .expect("the parent is in the trace");
                assert!(parent.span.start_time_unix_nano <= span.start_time_unix_nano);
                // Another service is only entered by a SERVER span under a CLIENT span.
                if parent.service != recorded.service {
                    assert_eq!(span.kind, 2, "{span:?}");
                    assert_eq!(parent.span.kind, 3);
                }
            }
        }
        assert_eq!(services.len(), Service::ALL.len(), "{services:?}");
    }
}
