//! Statement fingerprints (`analysis::fingerprint`), which every outgoing call
//! of every completed trace goes through: `sql` on ten statements as ORMs and
//! drivers send them (Django, ActiveRecord, Hibernate and SQLAlchemy SELECTs
//! with quoted identifiers and IN lists, multi-row INSERT … VALUES, UPDATEs,
//! a CTE), `command` on Redis commands and MongoDB command documents, and
//! `http` on client and server calls. Each iteration fingerprints the whole
//! fixed set; throughput is in statements (commands, calls) per second.
//!
//! Run: `cargo bench --bench fingerprint`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tracemap::analysis::fingerprint;

// As in the binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SQL: &[&str] = &[
    r#"SELECT "auth_user"."id", "auth_user"."username", "auth_user"."email", "auth_user"."is_active" FROM "auth_user" WHERE "auth_user"."id" IN (%s, %s, %s, %s, %s, %s, %s, %s) ORDER BY "auth_user"."id" ASC"#,
    r#"SELECT "posts".* FROM "posts" WHERE "posts"."author_id" = $1 AND "posts"."state" IN ('published', 'scheduled') ORDER BY "posts"."created_at" DESC LIMIT $2 /*application:Blog,controller:posts,action:index*/"#,
    "select o1_0.id,o1_0.customer_id,o1_0.total,o1_0.created_at from orders o1_0 where o1_0.customer_id in (?,?,?,?,?,?,?,?,?,?,?,?) and o1_0.status=?",
    "SELECT users.id AS users_id, users.name AS users_name, addresses.city AS addresses_city FROM users LEFT OUTER JOIN addresses ON users.id = addresses.user_id WHERE users.id = %(pk_1)s",
    "SELECT `products`.`id`, `products`.`name`, `products`.`price` FROM `products` WHERE `products`.`category_id` IN (12, 15, 19, 23) AND `products`.`price` BETWEEN 10.00 AND 99.99 LIMIT 50 OFFSET 100",
    r#"INSERT INTO "events" ("kind", "payload", "user_id", "created_at") VALUES ($1, $2, $3, $4), ($5, $6, $7, $8), ($9, $10, $11, $12), ($13, $14, $15, $16) RETURNING "id""#,
    "INSERT INTO stats (day, path, hits) VALUES ('2024-06-01', '/home', 1), ('2024-06-01', '/cart', 5), ('2024-06-02', '/home', 3) ON DUPLICATE KEY UPDATE hits = hits + VALUES(hits)",
    r#"UPDATE "accounts" SET "balance" = "balance" - 100.50, "updated_at" = '2024-06-01 12:00:00' WHERE "accounts"."id" = 42"#,
    "UPDATE sessions SET last_seen = now(), data = '{\"cart\": [1, 2, 3]}' WHERE id = '550e8400-e29b-41d4-a716-446655440000'",
    "WITH recent AS (SELECT * FROM orders WHERE created_at > now() - interval '7 days') SELECT customer_id, count(*), sum(total) FROM recent GROUP BY customer_id HAVING count(*) > 3",
];

const COMMANDS: &[&str] = &[
    "GET user:123:profile",
    "SET session:550e8400-e29b-41d4-a716-446655440000 eyJhbGciOiJIUzI1NiJ9 EX 3600",
    "MGET product:1 product:2 product:3 product:4 product:5 product:6",
    "HGET cache:v2:user:77 email",
    "EVALSHA 5f1c2a7e9b3d4c6a8e0f1b2d3c4a5e6f7a8b9c0d 2 lock:order:9 lock:order:10 60000",
    r#"{"find":"users","filter":{"_id":{"$oid":"507f1f77bcf86cd799439011"}},"limit":1}"#,
    r#"{"aggregate": "orders", "pipeline": [{"$match": {"status": "paid", "total": {"$gt": 100}}}, {"$group": {"_id": "$customer", "n": {"$sum": 1}}}]}"#,
    r#"{"insert":"events","documents":[{"kind":"click","at":1},{"kind":"view","at":2},{"kind":"click","at":3}]}"#,
];

const CALLS: &[(&str, &str)] = &[
    (
        "GET",
        "https://api.stripe.com/v1/charges/ch_3Nabc123?expand=customer",
    ),
    (
        "POST",
        "https://api.stripe.com:443/v1/customers/cus_NffrFeUfNV2Hib/sources",
    ),
    (
        "PUT",
        "https://my-bucket.s3.us-east-1.amazonaws.com/uploads/2024/06/a1b2c3d4e5f6a7b8.jpg",
    ),
    ("GET", "http://elasticsearch:9200/products/_search?q=shoes"),
    (
        "GET",
        "http://localhost:80/api/users/550e8400-e29b-41d4-a716-446655440000/orders/",
    ),
    ("GET", "/books/9780141036144"),
    ("GET", "/users/{id}/posts"),
    (
        "DELETE",
        "https://admin:hunter2@Example.COM/v2/items/42#frag",
    ),
];

fn fingerprints(c: &mut Criterion) {
    let mut group = c.benchmark_group("fingerprint");
    group.throughput(Throughput::Elements(SQL.len() as u64));
    group.bench_function("sql", |b| {
        b.iter(|| {
            for statement in SQL {
                black_box(fingerprint::sql(black_box(statement)));
            }
        })
    });
    group.throughput(Throughput::Elements(COMMANDS.len() as u64));
    group.bench_function("command", |b| {
        b.iter(|| {
            for command in COMMANDS {
                black_box(fingerprint::command(black_box(command)));
            }
        })
    });
    group.throughput(Throughput::Elements(CALLS.len() as u64));
    group.bench_function("http", |b| {
        b.iter(|| {
            for (method, url) in CALLS {
                black_box(fingerprint::http(black_box(method), black_box(url)));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, fingerprints);
criterion_main!(benches);
