use proptest::prelude::*;

use super::*;
use crate::analysis::fingerprint::tests::check;

#[test]
fn keyword_tables_are_sorted_for_binary_search() {
    assert!(KEYWORDS.windows(2).all(|w| w[0] < w[1]));
    assert!(FUNCTIONS.windows(2).all(|w| w[0] < w[1]));
    assert!(KEYWORDS.iter().chain(FUNCTIONS).all(|k| k.len() <= 24));
}

const SQL_CORPUS: &str = r#"
# PostgreSQL
SELECT * FROM users WHERE id = 42
=> SELECT * FROM users WHERE id = ?
select id, email from users where email = 'bob@example.com' and deleted_at is null
=> SELECT id, email FROM users WHERE email = ? AND deleted_at IS NULL
SELECT * FROM users WHERE id = ANY($1::bigint[])
=> SELECT * FROM users WHERE id = ANY (?::bigint[])
SELECT * FROM posts WHERE tags && ARRAY['rust', 'go', 'zig'] AND created_at > '2024-01-01'::date
=> SELECT * FROM posts WHERE tags && ARRAY[?] AND created_at > ?::date
INSERT INTO counters (name, n) VALUES ('hits', 1) ON CONFLICT (name) DO UPDATE SET n = counters.n + EXCLUDED.n RETURNING n
=> INSERT INTO counters (name, n) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET n = counters.n + EXCLUDED.n RETURNING n
SELECT $fn$ body; with 'quotes' $fn$ AS src, $$x$$ FROM t
=> SELECT ? AS src, ? FROM t
SELECT data->>'email' FROM profiles WHERE data @> '{"vip": true}'
=> SELECT data ->> ? FROM profiles WHERE data @> ?
WITH recent AS (SELECT * FROM orders WHERE created_at > now() - interval '7 days') SELECT count(*) FROM recent
=> WITH recent AS (SELECT * FROM orders WHERE created_at > NOW() - INTERVAL ?) SELECT COUNT(*) FROM recent
UPDATE sessions SET last_seen = now() WHERE id = '550e8400-e29b-41d4-a716-446655440000'
=> UPDATE sessions SET last_seen = NOW() WHERE id = ?
DELETE FROM carts WHERE id = 550e8400-e29b-41d4-a716-446655440000
=> DELETE FROM carts WHERE id = ?
SELECT * FROM commits WHERE sha = a94a8fe5ccb19ba61c4c0873d391e987982fbbd3
=> SELECT * FROM commits WHERE sha = ?
BEGIN; UPDATE accounts SET balance = balance - 100 WHERE id = 1; COMMIT;
=> BEGIN; UPDATE accounts SET balance = balance - ? WHERE id = ?; COMMIT
SELECT name FROM users WHERE note = E'line\nbreak \' quote'
=> SELECT name FROM users WHERE note = ?

# MySQL
SELECT `id`, `name` FROM `products` WHERE `price` > 19.99 AND `sku` = 'ABC-123' LIMIT 10, 20
=> SELECT `id`, `name` FROM `products` WHERE `price` > ? AND `sku` = ? LIMIT ?, ?
INSERT INTO stats (day, hits) VALUES ('2024-06-01', 1), ('2024-06-02', 5) ON DUPLICATE KEY UPDATE hits = hits + VALUES(hits)
=> INSERT INTO stats (day, hits) VALUES (?, ?) ON DUPLICATE KEY UPDATE hits = hits + VALUES (hits)
SELECT * FROM t WHERE name = 'O''Brien' AND note = 'it\'s' AND hash = 0xDEADBEEF OR bits = X'CAFE'
=> SELECT * FROM t WHERE name = ? AND note = ? AND hash = ? OR bits = ?
SELECT @@version
=> SELECT @@version

# SQLite
SELECT * FROM notes WHERE rowid = ?1 AND title LIKE :pattern
=> SELECT * FROM notes WHERE rowid = ? AND title LIKE ?
PRAGMA table_info(notes)
=> PRAGMA table_info(notes)

# SQL Server
SELECT TOP 10 [Id], [Name] FROM [dbo].[Customers] WHERE [Email] = @p0 AND [Region] = N'EU'
=> SELECT TOP ? [Id], [Name] FROM [dbo].[Customers] WHERE [Email] = ? AND [Region] = ?

# Django
SELECT "auth_user"."id", "auth_user"."username" FROM "auth_user" WHERE "auth_user"."id" = %s LIMIT 21
=> SELECT "auth_user"."id", "auth_user"."username" FROM "auth_user" WHERE "auth_user"."id" = ? LIMIT ?
SELECT "shop_item"."id" FROM "shop_item" WHERE "shop_item"."sku" = %(sku)s
=> SELECT "shop_item"."id" FROM "shop_item" WHERE "shop_item"."sku" = ?

# Hibernate 6
select u1_0.id,u1_0.email,u1_0.name from users u1_0 where u1_0.id=?
=> SELECT u1_0.id, u1_0.email, u1_0.name FROM users u1_0 WHERE u1_0.id = ?
select o1_0.id from orders o1_0 where o1_0.customer_id in (?,?,?,?,?)
=> SELECT o1_0.id FROM orders o1_0 WHERE o1_0.customer_id IN (?)

# ActiveRecord, with a marginalia comment
SELECT "posts".* FROM "posts" WHERE "posts"."author_id" = $1 ORDER BY "posts"."created_at" DESC LIMIT $2 /*application:Blog,controller:posts*/
=> SELECT "posts".* FROM "posts" WHERE "posts"."author_id" = ? ORDER BY "posts"."created_at" DESC LIMIT ?
INSERT INTO "events" ("kind", "payload", "created_at") VALUES ($1, $2, $3), ($4, $5, $6) RETURNING "id"
=> INSERT INTO "events" ("kind", "payload", "created_at") VALUES (?, ?, ?) RETURNING "id"

# SQLAlchemy
SELECT users.id AS users_id, users.name AS users_name FROM users WHERE users.id = %(pk_1)s
=> SELECT users.id AS users_id, users.name AS users_name FROM users WHERE users.id = ?

# Edges
SELECT * FROM m WHERE a = -1.5e10 AND b > .25 AND c < +3
=> SELECT * FROM m WHERE a = ? AND b > ? AND c < ?
SELECT price-1, price - 2 FROM items
=> SELECT price - ?, price - ? FROM items
SELECT * FROM users WHERE id IN (SELECT user_id FROM orders WHERE total > 100)
=> SELECT * FROM users WHERE id IN (SELECT user_id FROM orders WHERE total > ?)
SELECT * FROM t WHERE (a, b) IN ((1, 2), (3, 4), (5, 6))
=> SELECT * FROM t WHERE (a, b) IN (?)
SELECT ARRAY[[1, 2], [3, 4]] AS grid
=> SELECT ARRAY[?] AS grid
SELECT t.key, t.order FROM kv t
=> SELECT t.key, t.order FROM kv t
SELECT x FROM t WHERE y = : ::SELECT
=> SELECT x FROM t WHERE y = : ::SELECT

# Cut short by an attribute length limit
SELECT * FROM users WHERE name = 'trunc
=> SELECT * FROM users WHERE name = ?
SELECT * FROM users WHERE name IN ('a', 'b
=> SELECT * FROM users WHERE name IN (?
SELECT 1 /* unterminated
=> SELECT ?
"#;

#[test]
fn sql_corpus() {
    assert!(check(sql, SQL_CORPUS) >= 35);
    assert_eq!(sql(""), "");
    assert_eq!(
        sql("/* controller='users' */ SELECT * FROM users -- why\n WHERE id = 1;"),
        "SELECT * FROM users WHERE id = ?"
    );
    assert_eq!(
        sql("  select\n\tid\nFROM   users\n WHERE  id=1  ;  "),
        "SELECT id FROM users WHERE id = ?"
    );
}

#[test]
fn sql_collapses_what_differs_only_in_values() {
    let groups: &[&[&str]] = &[
        &[
            "SELECT * FROM orders WHERE customer_id IN (1, 2, 3, 4)",
            "select * from orders where customer_id in (7)",
            "SELECT * FROM orders WHERE customer_id IN ($1, $2, $3)",
            "SELECT * FROM orders WHERE customer_id IN (?, ?)",
            "SELECT *\nFROM orders\nWHERE customer_id IN ( %s , %s ) -- batch",
        ],
        &[
            "INSERT INTO t (a, b) VALUES (1, 'x')",
            "INSERT INTO t (a, b) VALUES (1, 'x'), (2, 'y'), (3, 'z')",
            "insert into t(a,b) values(?,?),(?,?)",
        ],
    ];
    for group in groups {
        let first = sql(group[0]);
        for statement in &group[1..] {
            assert_eq!(sql(statement), first, "{statement}");
        }
    }
}

#[test]
fn sql_keeps_different_work_apart() {
    let pairs = [
        (
            "SELECT * FROM users WHERE id = 1",
            "SELECT * FROM orders WHERE id = 1",
        ),
        (
            "SELECT name FROM users WHERE id = 1",
            "SELECT email FROM users WHERE id = 1",
        ),
        (
            "SELECT * FROM users WHERE id = 1",
            "SELECT * FROM users WHERE email = 'a'",
        ),
        (
            "SELECT * FROM users WHERE id IN (SELECT user_id FROM admins)",
            "SELECT * FROM users WHERE id IN (1, 2)",
        ),
        (
            "SELECT * FROM users ORDER BY name",
            "SELECT * FROM users ORDER BY id",
        ),
        (
            "SELECT * FROM users ORDER BY id ASC",
            "SELECT * FROM users ORDER BY id DESC",
        ),
        ("SELECT * FROM t WHERE a = 1", "SELECT * FROM t WHERE a > 1"),
        (
            "SELECT * FROM t WHERE a IS NULL",
            "SELECT * FROM t WHERE a IS NOT NULL",
        ),
        (
            "SELECT * FROM t WHERE a = 1 AND b = 2",
            "SELECT * FROM t WHERE a = 1 OR b = 2",
        ),
        ("SELECT * FROM \"Users\"", "SELECT * FROM \"users\""),
        ("SELECT * FROM users LIMIT 10", "SELECT * FROM users"),
        ("SELECT a - 1 FROM t", "SELECT a FROM t"),
        (
            "INSERT INTO t (a) VALUES (1)",
            "INSERT INTO t (a, b) VALUES (1, 2)",
        ),
    ];
    for (a, b) in pairs {
        assert_ne!(sql(a), sql(b), "{a} | {b}");
    }
}

/// Pieces real statements are made of, and the awkward ones between.
#[rustfmt::skip]
const FRAGMENTS: &[&str] = &[
    "SELECT", "select", "from", "users", "\"Users\"", "`t`", "[x]", "(", ")", "[", "]", ",",
    ".", ";", "::", ":", ":name", ":=", "$1", "$$a$$", "$t$x$t$", "$", "$x", "?", "?1", "%s",
    "%(k)s", "%", "@p1", "@@v", "@", "'str'", "'it''s'", "'a\\'b'", "E'x'", "N", "E", "'",
    "\"", "-", "+", "1", "-2", "3.5", ".5", "1e-3", "0xff", "deadbeef12",
    "550e8400-e29b-41d4-a716-446655440000", "IN", "in", "VALUES", "ARRAY", "INTO", "TABLE",
    "count", "now", "--c\n", "/*c*/", "/*", "*/", "=", "<=", "->>", "*", "/", "#", "x", "t",
    "key", "order", "é", "日本", "\t",
];

fn statement() -> impl Strategy<Value = String> {
    let part = (proptest::sample::select(FRAGMENTS), any::<bool>());
    proptest::collection::vec(part, 0..40).prop_map(|parts| {
        let mut text = String::new();
        for (part, space) in parts {
            text.push_str(part);
            if space {
                text.push(' ');
            }
        }
        text
    })
}

/// Statements with literal slots `{}`.
const TEMPLATES: &[&str] = &[
    "SELECT * FROM users WHERE id = {}",
    "select * from t where a in ({}, {}) and b = {} limit {}",
    "INSERT INTO t (a, b) VALUES ({}, {}), ({}, {})",
    "UPDATE t SET a = {} WHERE b > {} -- {}",
    "SELECT x FROM t WHERE y BETWEEN {} AND {} ORDER BY z",
];

fn literal() -> impl Strategy<Value = String> {
    let string = any::<String>().prop_map(|s| {
        let escaped = s.replace('\\', "\\\\").replace('\'', "''");
        format!("'{}'", escaped.replace('\n', " "))
    });
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| f.to_string()),
        string,
        Just("$7".to_string()),
        Just("?".to_string()),
    ]
}

fn fill(template: &str, values: &[String]) -> String {
    let mut out = String::new();
    for (i, part) in template.split("{}").enumerate() {
        if i > 0 {
            out.push_str(&values[(i - 1) % values.len()]);
        }
        out.push_str(part);
    }
    out
}

proptest! {
    #[test]
    fn sql_is_idempotent(text in statement()) {
        let once = sql(&text);
        prop_assert_eq!(sql(&once), once);
    }

    #[test]
    fn sql_is_idempotent_on_any_text(text in any::<String>()) {
        let once = sql(&text);
        prop_assert_eq!(sql(&once), once);
    }

    /// Changing only literals never changes the template.
    #[test]
    fn sql_ignores_literal_values(
        template in proptest::sample::select(TEMPLATES),
        a in proptest::collection::vec(literal(), 4),
        b in proptest::collection::vec(literal(), 4),
    ) {
        prop_assert_eq!(sql(&fill(template, &a)), sql(&fill(template, &b)));
    }

}
