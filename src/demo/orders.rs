//! order-service's part of the bookstore: listing a user's orders (the
//! N+1 loop), adding to the cart, and checking out, where payment-service
//! charges Stripe (the retry storm) and notification-service mails the
//! confirmation. See [`super::scenario`] for the problems' story.

use rand::Rng;

use super::scenario::query;
use super::schedule::Phase;
use super::topology::{Service, CATALOG_DB, ORDERS_DB, PAYMENTS_DB, REDIS, SENDGRID, STRIPE};
use super::trace::{Reply, SpanRef, TraceBuilder};

/// order-service lists a user's orders: the N+1 loop.
pub(super) fn orders(b: &mut TraceBuilder, root: SpanRef, at: u64, user: u32) -> Reply {
    let path = format!("/orders?customer_id={user}&limit=40");
    b.call(root, at, Service::Order, ("GET", "/orders", &path), |b, server, start| {
        let sql = format!("SELECT id FROM orders WHERE customer_id = {user} ORDER BY created_at DESC LIMIT 40");
        let at = start + b.work(0.3);
        let mut end = query(b, server, at, &ORDERS_DB, ("SELECT", "orders"), sql, 2.5);
        let count = b.rng.random_range(10..=40u32);
        let first = b.rng.random_range(100_000..900_000u32);
        for i in 0..count {
            let sql = format!(
                "SELECT id, status, total_cents, currency, created_at, shipped_at FROM orders WHERE id = {}",
                first + i * 7
            );
            let gap = b.latency(0.25, 0.4, (0.05, 1.0));
            end = query(b, server, end + gap, &ORDERS_DB, ("SELECT", "orders"), sql, 4.0);
        }
        Reply { status: 200, end: end + b.work(1.0) }
    })
}

pub(super) fn add_to_cart(
    b: &mut TraceBuilder,
    root: SpanRef,
    at: u64,
    user: u32,
    book: u32,
) -> Reply {
    b.call(
        root,
        at,
        Service::Order,
        ("POST", "/cart/items", "/cart/items"),
        |b, server, start| {
            let path = format!("/products/{book}/stock");
            let at = start + b.work(0.3);
            let stock = b.call(
                server,
                at,
                Service::Catalog,
                ("GET", "/products/{id}/stock", &path),
                |b, server, start| {
                    let sql = format!("SELECT stock FROM products WHERE id = {book}");
                    let at = start + b.work(0.2);
                    let end = query(b, server, at, &CATALOG_DB, ("SELECT", "products"), sql, 1.5);
                    let status = if b.chance(0.03) { 404 } else { 200 };
                    Reply {
                        status,
                        end: end + b.work(0.2),
                    }
                },
            );
            if stock.status != 200 {
                return Reply {
                    status: 409,
                    end: stock.end + b.work(0.2),
                };
            }
            let command = format!("HINCRBY cart:{user} {book} ?");
            let at = stock.end + b.work(0.3);
            let end = query(b, server, at, &REDIS, ("HINCRBY", ""), command, 0.5);
            Reply {
                status: 201,
                end: end + b.work(0.3),
            }
        },
    )
}

/// order-service turns the cart into an order and has payment-service charge it.
pub(super) fn checkout(
    b: &mut TraceBuilder,
    root: SpanRef,
    at: u64,
    user: u32,
    phase: Phase,
) -> Reply {
    b.call(root, at, Service::Order, ("POST", "/orders", "/orders"), |b, server, start| {
        let cart = format!("HGETALL cart:{user}");
        let at = start + b.work(0.3);
        let end = query(b, server, at, &REDIS, ("HGETALL", ""), cart, 0.5);
        let lines = b.rng.random_range(1..=4u32);
        let first = b.rng.random_range(1..250_000u32);
        let ids: Vec<String> = (0..lines).map(|i| (first + i * 13).to_string()).collect();
        let at = end + b.work(0.3);
        let priced = b.call(server, at, Service::Catalog, ("POST", "/products/prices", "/products/prices"), |b, server, start| {
            let sql = format!("SELECT id, price_cents, stock FROM products WHERE id IN ({})", ids.join(", "));
            let at = start + b.work(0.3);
            let end = query(b, server, at, &CATALOG_DB, ("SELECT", "products"), sql, 2.0);
            Reply { status: 200, end: end + b.work(0.3) }
        });
        let order = b.rng.random_range(1_000_000..9_000_000u32);
        let sql = format!("INSERT INTO orders (customer_id, status, total_cents, currency) VALUES ({user}, 'pending', {}, 'EUR') RETURNING id", 1_299 * lines);
        let at = priced.end + b.work(0.4);
        let end = query(b, server, at, &ORDERS_DB, ("INSERT", "orders"), sql, 3.0);
        if b.chance(0.003) {
            return Reply { status: 500, end: end + b.work(0.3) };
        }
        let values: Vec<String> = ids.iter().map(|id| format!("({order}, {id}, 1, 1299)")).collect();
        let sql = format!("INSERT INTO order_lines (order_id, book_id, quantity, unit_price_cents) VALUES {}", values.join(", "));
        let at = end + b.work(0.2);
        let end = query(b, server, at, &ORDERS_DB, ("INSERT", "order_lines"), sql, 2.5);
        let at = end + b.work(0.4);
        let paid = b.call(server, at, Service::Payment, ("POST", "/payments", "/payments"), |b, server, start| {
            pay(b, server, start, order, phase)
        });
        let status = if paid.status == 201 { "paid" } else { "payment_failed" };
        let sql = format!("UPDATE orders SET status = '{status}' WHERE id = {order}");
        let at = paid.end + b.work(0.3);
        let mut end = query(b, server, at, &ORDERS_DB, ("UPDATE", "orders"), sql, 2.0);
        if paid.status == 201 {
            let clear = format!("DEL cart:{user}");
            let at = end + b.work(0.2);
            end = query(b, server, at, &REDIS, ("DEL", ""), clear, 0.4);
        }
        let status = match paid.status {
            201 => 201,
            402 => 402,
            _ => 502,
        };
        Reply { status, end: end + b.work(0.4) }
    })
}

/// Attempts a payment-service makes at Stripe during the storm: 3 or 4.
/// (Five would also read as an N+1 of Stripe calls, which it is not.)
const STORM_ATTEMPTS: (i64, i64) = (3, 4);

/// payment-service charges Stripe, retrying failures at once (the storm's
/// cause), records the outcome, then has notification-service mail the
/// confirmation.
fn pay(b: &mut TraceBuilder, server: SpanRef, start: u64, order: u32, phase: Phase) -> Reply {
    let storm = b.chance(phase.storm);
    let attempts = if storm {
        // More attempts the harder Stripe fails.
        let extra = (STORM_ATTEMPTS.1 - STORM_ATTEMPTS.0) as f64;
        STORM_ATTEMPTS.0 + (b.rng.random::<f64>() * extra * phase.storm).round() as i64
    } else if b.chance(0.015) {
        2
    } else {
        1
    };
    let mut at = start + b.work(0.5);
    let mut status = 0;
    for attempt in 0..attempts {
        let last = attempt + 1 == attempts;
        let (answer, took) = if !last || (storm && b.chance(0.15)) {
            if b.chance(0.7) {
                (503, b.latency(30.0, 0.4, (8.0, 60.0)))
            } else {
                (429, b.latency(15.0, 0.4, (5.0, 40.0)))
            }
        } else if b.chance(0.02) {
            (402, b.latency(180.0, 0.3, (80.0, 400.0)))
        } else {
            (200, b.latency(220.0, 0.3, (80.0, 450.0)))
        };
        let path = ("POST", "/v1/payment_intents");
        let reply = b.external(server, at, STRIPE, path, answer, took, attempt);
        status = answer;
        at = reply.end;
        if !last {
            // No backoff to speak of: what turns Stripe's trouble into a storm.
            at += b.latency(12.0, 0.5, (3.0, 35.0));
        }
    }
    let outcome = match status {
        200 => "succeeded",
        402 => "declined",
        _ => "failed",
    };
    let sql = format!(
        "INSERT INTO payments (order_id, provider, status, amount_cents) VALUES ({order}, 'stripe', '{outcome}', 1299)"
    );
    let at = at + b.work(0.4);
    let at = query(
        b,
        server,
        at,
        &PAYMENTS_DB,
        ("INSERT", "payments"),
        sql,
        2.5,
    );
    if status != 200 {
        let status = if status == 402 { 402 } else { 502 };
        let end = at + b.work(0.3);
        return Reply { status, end };
    }
    let path = format!("/notifications/order-confirmation?order_id={order}");
    let at = at + b.work(0.3);
    let sent = b.call(
        server,
        at,
        Service::Notification,
        ("POST", "/notifications/order-confirmation", &path),
        |b, server, start| {
            let took = b.latency(60.0, 0.35, (20.0, 250.0));
            let at = start + b.work(0.5);
            let mail = b.external(
                server,
                at,
                SENDGRID,
                ("POST", "/v3/mail/send"),
                202,
                took,
                0,
            );
            Reply {
                status: 202,
                end: mail.end + b.work(0.3),
            }
        },
    );
    Reply {
        status: 201,
        end: sent.end + b.work(0.3),
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    use opentelemetry_proto::tonic::trace::v1::Span;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;
    use crate::demo::scenario::request;
    use crate::demo::trace::Recorded;

    fn text<'a>(span: &'a Span, key: &str) -> Option<&'a str> {
        span.attributes.iter().find(|a| a.key == key).and_then(|a| {
            match a.value.as_ref()?.value.as_ref()? {
                Value::StringValue(s) => Some(s.as_str()),
                _ => None,
            }
        })
    }

    fn requests(phase: Phase, n: usize) -> Vec<Vec<Recorded>> {
        let mut rng = StdRng::seed_from_u64(5);
        (0..n)
            .map(|_| request(&mut rng, phase, 1_800_000_000_000_000_000))
            .collect()
    }

    /// Per trace, the Stripe attempts of its payment: (resend count, status).
    fn stripe_attempts(trace: &[Recorded]) -> Vec<(i64, i64)> {
        let int = |span: &Span, key: &str| {
            span.attributes.iter().find(|a| a.key == key).and_then(|a| {
                match a.value.as_ref()?.value.as_ref()? {
                    Value::IntValue(i) => Some(*i),
                    _ => None,
                }
            })
        };
        trace
            .iter()
            .filter(|r| text(&r.span, "server.address") == Some(STRIPE))
            .map(|r| {
                let resend = int(&r.span, "http.request.resend_count").unwrap_or(0);
                (resend, int(&r.span, "http.response.status_code").unwrap())
            })
            .collect()
    }

    #[test]
    fn the_order_list_loads_each_order_one_after_another() {
        let calm = Phase {
            slow_catalog_query: false,
            storm: 0.0,
        };
        let mut loops = 0;
        for trace in requests(calm, 300) {
            let looped: Vec<&Span> = trace
                .iter()
                .map(|r| &r.span)
                .filter(|s| {
                    text(s, "db.query.text").is_some_and(|q| q.starts_with("SELECT id, status"))
                })
                .collect();
            if looped.is_empty() {
                continue;
            }
            loops += 1;
            assert!((10..=40).contains(&looped.len()), "{}", looped.len());
            assert!(looped
                .iter()
                .all(|s| s.parent_span_id == looped[0].parent_span_id));
            for pair in looped.windows(2) {
                assert!(pair[0].end_time_unix_nano <= pair[1].start_time_unix_nano);
            }
        }
        assert!(loops > 30, "{loops}");
    }

    #[test]
    fn payments_retry_into_a_storm_only_while_it_blows() {
        let calm = Phase {
            slow_catalog_query: false,
            storm: 0.0,
        };
        let peak = Phase {
            slow_catalog_query: false,
            storm: 1.0,
        };
        let calm: Vec<Vec<(i64, i64)>> = requests(calm, 1_500)
            .iter()
            .map(|t| stripe_attempts(t))
            .filter(|a| !a.is_empty())
            .collect();
        assert!(calm.len() > 40);
        assert!(calm.iter().all(|a| a.len() <= 2), "{calm:?}");
        let stormy: Vec<Vec<(i64, i64)>> = requests(peak, 1_500)
            .iter()
            .map(|t| stripe_attempts(t))
            .filter(|a| !a.is_empty())
            .collect();
        assert!(
            stormy.iter().all(|a| (3..=4).contains(&a.len())),
            "{stormy:?}"
        );
        for attempts in &stormy {
            // Numbered resends, every attempt but the last failed with 503 or 429.
            for (i, &(resend, status)) in attempts.iter().enumerate() {
                assert_eq!(resend, i as i64);
                if i + 1 < attempts.len() {
                    assert!(status == 503 || status == 429, "{attempts:?}");
                }
            }
        }
    }

    #[test]
    fn the_catalog_search_is_slow_only_without_its_index() {
        let slowest = |slow: bool| {
            let phase = Phase {
                slow_catalog_query: slow,
                storm: 0.0,
            };
            let durations: Vec<u64> = requests(phase, 600)
                .iter()
                .flatten()
                .filter(|r| text(&r.span, "db.query.text").is_some_and(|q| q.contains("ILIKE")))
                .map(|r| r.span.end_time_unix_nano - r.span.start_time_unix_nano)
                .collect();
            assert!(durations.len() > 5);
            (
                durations.iter().copied().min().unwrap(),
                durations.into_iter().max().unwrap(),
            )
        };
        assert!(slowest(false).1 < 100_000_000);
        assert!(slowest(true).0 >= 100_000_000);
    }
}
