//! The command fingerprint for key-value and document stores: Redis-style
//! argument lists, read by what each command's arguments are (keys, values,
//! a script, a subcommand), and MongoDB-style command documents, rewritten as
//! compact JSON. The canonical form is in the parent module's doc.

use super::{is_id, is_uuid_at, quoted_end};

/// The template of a Redis-style or MongoDB-style command.
///
/// `command("SET user:42:name alice EX 60")` is `SET user:?:name ?`;
/// `command(r#"{"find":"users","filter":{"_id":7}}"#)` is
/// `{"find":"users","filter":{"_id":?}}`.
pub fn command(text: &str) -> String {
    let text = text.trim();
    if text.starts_with(['{', '[']) {
        let mut document = Document {
            text,
            pos: 0,
            out: String::with_capacity(text.len()),
        };
        document.value(0, false);
        document.out
    } else {
        key_value(text)
    }
}

// ---------------------------------------------------------------- Redis

/// How a Redis command's arguments divide into keys and values.
enum Shape {
    /// `GET key`, `SET key value …`: one key, then values.
    Key,
    /// `MGET k1 k2 …`, `DEL k1 k2 …`: every argument a key.
    Keys,
    /// `MSET k1 v1 k2 v2 …`.
    Pairs,
    /// `EVALSHA sha numkeys k1 … args`, `FCALL name numkeys k1 … args`.
    Script { keep_name: bool },
    /// `CLIENT SETNAME name`: a subcommand, then values.
    Subcommand,
    /// `AUTH password`, `PING`, `SCAN cursor`: no keys, and the values (a
    /// password among them) must not reach the template.
    NoKey,
}

fn shape(command: &str) -> Shape {
    match command {
        "MGET" | "DEL" | "UNLINK" | "EXISTS" | "TOUCH" | "WATCH" | "SINTER" | "SUNION"
        | "SDIFF" | "SINTERSTORE" | "SUNIONSTORE" | "SDIFFSTORE" | "PFCOUNT" | "PFMERGE"
        | "RENAME" | "RENAMENX" | "KEYS" | "SUBSCRIBE" | "UNSUBSCRIBE" | "PSUBSCRIBE"
        | "PUNSUBSCRIBE" | "SSUBSCRIBE" => Shape::Keys,
        "MSET" | "MSETNX" => Shape::Pairs,
        "EVAL" | "EVALSHA" | "EVAL_RO" | "EVALSHA_RO" => Shape::Script { keep_name: false },
        "FCALL" | "FCALL_RO" => Shape::Script { keep_name: true },
        "CLIENT" | "CONFIG" | "CLUSTER" | "COMMAND" | "MEMORY" | "OBJECT" | "SCRIPT"
        | "FUNCTION" | "ACL" | "PUBSUB" | "MODULE" | "SLOWLOG" | "LATENCY" | "XINFO" | "XGROUP"
        | "DEBUG" => Shape::Subcommand,
        "AUTH" | "HELLO" | "PING" | "ECHO" | "SELECT" | "INFO" | "MULTI" | "EXEC" | "DISCARD"
        | "QUIT" | "RESET" | "FLUSHDB" | "FLUSHALL" | "DBSIZE" | "TIME" | "SCAN" | "WAIT"
        | "SWAPDB" | "SAVE" | "BGSAVE" | "LASTSAVE" | "ROLE" | "READONLY" | "READWRITE"
        | "SHUTDOWN" | "REPLICAOF" | "SLAVEOF" | "FAILOVER" | "MONITOR" => Shape::NoKey,
        _ => Shape::Key,
    }
}

fn key_value(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut args = Arguments { text, pos: 0 };
    let Some(name) = args.next() else {
        return out;
    };
    out.push_str(name);
    out.make_ascii_uppercase();
    let mut seen = Vec::new();
    match shape(&out) {
        Shape::Key => {
            if let Some(key) = args.next() {
                out.push(' ');
                push_key(&mut out, key);
            }
        }
        Shape::Keys => {
            for key in args.by_ref() {
                push_distinct_key(&mut out, key, &mut seen);
            }
        }
        Shape::Pairs => {
            let mut any_value = false;
            while let Some(key) = args.next() {
                push_distinct_key(&mut out, key, &mut seen);
                any_value |= args.next().is_some();
            }
            if any_value {
                out.push_str(" ?");
            }
        }
        Shape::Script { keep_name } => {
            if let Some(script) = args.next() {
                out.push(' ');
                out.push_str(if keep_name { script } else { "?" });
            }
            let keys = args
                .next()
                .and_then(|n| n.parse::<usize>().ok())
                .unwrap_or(0);
            for key in args.by_ref().take(keys) {
                push_distinct_key(&mut out, key, &mut seen);
            }
        }
        Shape::Subcommand => {
            if let Some(sub) = args.next() {
                out.push(' ');
                let start = out.len();
                out.push_str(sub);
                out[start..].make_ascii_uppercase();
            }
        }
        Shape::NoKey => {}
    }
    if args.next().is_some() {
        out.push_str(" ?");
    }
    out
}

/// How many different shapes a list of keys or array elements keeps; past
/// this a template stops growing, and comparing each new one stays cheap.
const MAX_SHAPES: usize = 16;

/// Appends ` key` unless a key of the same shape is already there, so
/// `MGET p:1 p:2 p:3` is `MGET p:?` whatever the batch size.
fn push_distinct_key(out: &mut String, key: &str, seen: &mut Vec<(usize, usize)>) {
    let start = out.len();
    out.push(' ');
    push_key(out, key);
    if seen.len() >= MAX_SHAPES || seen.iter().any(|&(s, e)| out[s..e] == out[start + 1..]) {
        out.truncate(start);
    } else {
        seen.push((start + 1, out.len()));
    }
}

/// A key with its id segments as `?`: segments split at `: / . - _ | # { }`,
/// a UUID is taken whole before it can be split at its dashes.
fn push_key(out: &mut String, key: &str) {
    let is_delimiter = |c: u8| b":/.-_|#{}".contains(&c);
    let b = key.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if is_delimiter(b[i]) {
            out.push(char::from(b[i]));
            i += 1;
        } else if is_uuid_at(b, i) && b.get(i + 36).is_none_or(|&c| is_delimiter(c)) {
            out.push('?');
            i += 36;
        } else {
            let end = b[i..]
                .iter()
                .position(|&c| is_delimiter(c))
                .map_or(b.len(), |n| i + n);
            let segment = &key[i..end];
            out.push_str(if is_id(segment) { "?" } else { segment });
            i = end;
        }
    }
}

/// Whitespace-separated arguments; a quoted argument is one, without quotes.
struct Arguments<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Iterator for Arguments<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let b = self.text.as_bytes();
        while b.get(self.pos).is_some_and(u8::is_ascii_whitespace) {
            self.pos += 1;
        }
        let start = self.pos;
        let &c = b.get(start)?;
        if c == b'"' || c == b'\'' {
            let end = quoted_end(b, start + 1, c, true);
            self.pos = end;
            let inner_end = if b.get(end - 1) == Some(&c) && end > start + 1 {
                end - 1
            } else {
                end
            };
            return Some(&self.text[start + 1..inner_end]);
        }
        self.pos = b[start..]
            .iter()
            .position(u8::is_ascii_whitespace)
            .map_or(b.len(), |n| start + n);
        Some(&self.text[start..self.pos])
    }
}

// ---------------------------------------------------------------- MongoDB

/// Deeper nesting than this is written `?`, bounding the recursion.
const MAX_DEPTH: usize = 32;

/// A JSON-ish command document (strict JSON, or shell syntax with bare keys,
/// single quotes and `ObjectId(…)` calls) rewritten as compact JSON with
/// values as `?`.
struct Document<'a> {
    text: &'a str,
    pos: usize,
    out: String,
}

impl<'a> Document<'a> {
    fn peek(&mut self) -> Option<u8> {
        let b = self.text.as_bytes();
        while b.get(self.pos).is_some_and(u8::is_ascii_whitespace) {
            self.pos += 1;
        }
        b.get(self.pos).copied()
    }

    fn value(&mut self, depth: usize, keep_string: bool) {
        match self.peek() {
            Some(b'{' | b'[') if depth >= MAX_DEPTH => {
                self.skip_nested();
                self.out.push('?');
            }
            Some(b'{') => self.object(depth + 1),
            Some(b'[') => self.array(depth + 1),
            Some(b'"' | b'\'') => {
                let inner = self.string();
                if keep_string {
                    self.out.push('"');
                    self.out.push_str(inner);
                    self.out.push('"');
                } else {
                    self.out.push('?');
                }
            }
            _ => {
                self.bare();
                // `ObjectId("…")`, `ISODate(…)`, `NumberLong(5)`: the call is the value.
                if self.peek() == Some(b'(') {
                    self.skip_nested();
                }
                self.out.push('?');
            }
        }
    }

    fn object(&mut self, depth: usize) {
        self.pos += 1;
        self.out.push('{');
        let first = self.out.len();
        while let Some(c) = self.peek() {
            let key = match c {
                b'}' => {
                    self.pos += 1;
                    break;
                }
                b',' => {
                    self.pos += 1;
                    continue;
                }
                b'"' | b'\'' => self.string(),
                _ => self.bare(),
            };
            if key.is_empty() && !matches!(c, b'"' | b'\'') {
                // A stray `]`, `:` or `)`: step over it.
                self.pos += 1;
                continue;
            }
            let leading = self.out.len() == first;
            if !leading {
                self.out.push(',');
            }
            self.out.push('"');
            self.out.push_str(key);
            self.out.push_str("\":");
            if self.peek() == Some(b':') {
                self.pos += 1;
            }
            // A command's first field names its collection (`"find": "users"`),
            // which keeps finds on different collections apart.
            self.value(depth, leading && depth == 1);
        }
        self.out.push('}');
    }

    /// Elements of the same shape are written once: `[1, 2, 3]` is `[?]`,
    /// while a pipeline's different stages all stay.
    fn array(&mut self, depth: usize) {
        self.pos += 1;
        self.out.push('[');
        let mut elements: Vec<(usize, usize)> = Vec::new();
        while let Some(c) = self.peek() {
            match c {
                b']' => {
                    self.pos += 1;
                    break;
                }
                b',' => {
                    self.pos += 1;
                    continue;
                }
                _ => {}
            }
            let start = self.out.len();
            if !elements.is_empty() {
                self.out.push(',');
            }
            let element = self.out.len();
            let before = self.pos;
            self.value(depth, false);
            if self.pos == before {
                self.pos += 1;
            }
            if elements.len() >= MAX_SHAPES
                || elements
                    .iter()
                    .any(|&(s, e)| self.out[s..e] == self.out[element..])
            {
                self.out.truncate(start);
            } else {
                elements.push((element, self.out.len()));
            }
        }
        self.out.push(']');
    }

    /// A quoted string at `pos`, returned without its quotes.
    fn string(&mut self) -> &'a str {
        let b = self.text.as_bytes();
        let quote = b[self.pos];
        let start = self.pos + 1;
        self.pos = quoted_end(b, start, quote, true);
        let end = if self.pos > start && b[self.pos - 1] == quote {
            self.pos - 1
        } else {
            self.pos
        };
        &self.text[start..end]
    }

    /// An unquoted key or scalar: `find`, `$in`, `-1`, `true`.
    fn bare(&mut self) -> &'a str {
        let b = self.text.as_bytes();
        let start = self.pos;
        while b
            .get(self.pos)
            .is_some_and(|&c| !c.is_ascii_whitespace() && !b",:{}[]()\"'".contains(&c))
        {
            self.pos += 1;
        }
        &self.text[start..self.pos]
    }

    /// Steps over the bracketed value at `pos`, strings included.
    fn skip_nested(&mut self) {
        let b = self.text.as_bytes();
        let mut depth = 0usize;
        while let Some(&c) = b.get(self.pos) {
            match c {
                b'"' | b'\'' => {
                    self.string();
                    continue;
                }
                b'(' | b'{' | b'[' => depth += 1,
                b')' | b'}' | b']' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        self.pos += 1;
                        return;
                    }
                }
                _ => {}
            }
            self.pos += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::fingerprint::tests::check;

    const COMMAND_CORPUS: &str = r#"
# Redis
GET user:123:profile
=> GET user:?:profile
set user:42:name alice EX 3600
=> SET user:?:name ?
SET user:42:name ?
=> SET user:?:name ?
MGET product:1 product:2 product:3 product:4
=> MGET product:?
DEL session:550e8400-e29b-41d4-a716-446655440000 cart:550e8400-e29b-41d4-a716-446655440000
=> DEL session:? cart:?
HGET cache:v2:user:77 email
=> HGET cache:v2:user:? ?
ZADD leaderboard:2024-06 1500 player_8812
=> ZADD leaderboard:?-? ?
SETEX rate_limit:ip:10.0.0.1 60 1
=> SETEX rate_limit:ip:?.?.?.? ?
MSET a:1 x a:2 y
=> MSET a:? ?
KEYS user:*:profile
=> KEYS user:*:profile
GET "user:9:name"
=> GET user:?:name
AUTH default s3cr3t-passw0rd
=> AUTH ?
PING
=> PING
client setname worker-7
=> CLIENT SETNAME ?
EVALSHA 5f1c2a7e9b3d4c6a8e0f1b2d3c4a5e6f7a8b9c0d 2 lock:order:9 lock:order:10 60000
=> EVALSHA ? lock:order:? ?
GET blob:a94a8fe5ccb19ba61c4c0873d391e987982fbbd3
=> GET blob:?

# MongoDB, as the Java, Node and shell clients write them
{"find":"users","filter":{"_id":{"$oid":"507f1f77bcf86cd799439011"}},"limit":1}
=> {"find":"users","filter":{"_id":{"$oid":?}},"limit":?}
{"aggregate": "orders", "pipeline": [{"$match": {"status": "paid", "total": {"$gt": 100}}}, {"$group": {"_id": "$customer", "n": {"$sum": 1}}}]}
=> {"aggregate":"orders","pipeline":[{"$match":{"status":?,"total":{"$gt":?}}},{"$group":{"_id":?,"n":{"$sum":?}}}]}
{"insert":"events","documents":[{"kind":"click","at":1},{"kind":"view","at":2}]}
=> {"insert":"events","documents":[{"kind":?,"at":?}]}
{ find: 'users', filter: { _id: ObjectId("507f1f77bcf86cd799439011"), tags: { $in: ["a", "b", "c"] } } }
=> {"find":"users","filter":{"_id":?,"tags":{"$in":[?]}}}
{"find":"users","filter":{"name":"trunc
=> {"find":"users","filter":{"name":?}}
"#;

    #[test]
    fn command_corpus() {
        assert!(check(command, COMMAND_CORPUS) >= 20);
        assert_eq!(command(""), "");
    }

    #[test]
    fn commands_keep_different_work_apart() {
        let pairs = [
            ("GET user:1:profile", "SET user:1:profile x"),
            ("GET user:1:profile", "GET user:1:settings"),
            ("HGET user:1 email", "HGET order:1 email"),
            ("MGET a:1 b:1", "MGET a:1"),
            (
                r#"{"find":"users","filter":{"_id":1}}"#,
                r#"{"find":"orders","filter":{"_id":1}}"#,
            ),
            (
                r#"{"find":"users","filter":{"_id":1}}"#,
                r#"{"find":"users","filter":{"email":"a"}}"#,
            ),
            (
                r#"{"find":"users","filter":{"age":{"$gt":1}}}"#,
                r#"{"find":"users","filter":{"age":{"$lt":1}}}"#,
            ),
        ];
        for (a, b) in pairs {
            assert_ne!(command(a), command(b), "{a} | {b}");
        }
    }
}
