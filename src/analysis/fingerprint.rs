//! Statement fingerprints: the template a SQL statement, a Redis or MongoDB
//! command, or an HTTP call reduces to once its values are taken out, so calls
//! that differ only in their arguments fall together and calls that do
//! different work stay apart.
//!
//! The detectors group spans by these templates: `slow_db` and `n_plus_one`
//! compare calls by them, and a finding's `statement` field (and with it the
//! cross-trace finding groups) carries one. Each function is pure and total:
//! no I/O, no state, and input that is truncated (SDKs cut long attributes) or
//! valid in no dialect still yields a template rather than an error.
//!
//! Canonical forms:
//!
//! - [`sql`]: every literal and bind parameter (`'…'`, `E'…'`, `$$…$$`,
//!   numbers, `0x…`, bare UUIDs and hex ids, `$1`, `?`, `?1`, `:name`, `@p1`,
//!   `%s`, `%(name)s`) becomes `?`; comments go; keywords are upper-cased,
//!   identifiers keep their spelling (quoted ones keep their quotes). Tokens are
//!   separated by one space, except none inside brackets, before `,` or `;`,
//!   around `.` and `::`, or between a function or table name and its `(`. A
//!   list of values after `IN` (or in `ARRAY[…]`) becomes `IN (?)`, whatever
//!   its length, while `IN (SELECT …)` keeps its subquery; a multi-row
//!   `VALUES` keeps only its first row, `VALUES (?, ?)`; trailing `;` go.
//!   Applying [`sql`] to its own output changes nothing.
//! - [`command`]: Redis-style commands become the upper-cased command word,
//!   the key shape (numeric, UUID and hex segments of a key become `?`) and a
//!   single `?` standing for any other arguments; MongoDB-style command
//!   documents keep their keys and nesting with every value `?`, except the
//!   first field's string, the collection.
//! - [`http`]: method, lower-cased host (default port dropped) and route, with
//!   id-like path segments (numbers, UUIDs, hashes, ids of 8 or more
//!   characters with a digit) replaced by `{id}`; query and fragment dropped.

use std::iter::Peekable;

/// The template of a SQL statement; the module doc gives the canonical form.
///
/// `sql("select * from users where id = 42")` is
/// `SELECT * FROM users WHERE id = ?`.
pub fn sql(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut tokens = Lexer::new(text).peekable();
    let mut groups: Vec<Group> = Vec::new();
    let mut values: Option<Values> = None;
    let mut prev: Option<Kind> = None;
    // After `INTO name` or `TABLE name`, a `(` opens a column list, spaced
    // like the statement reads rather than like a function call.
    let mut naming = false;
    let mut semicolon = false;

    while let Some(token) = tokens.next() {
        let mut kind = token.kind;
        if kind == Kind::Semicolon {
            semicolon = true;
            continue;
        }
        if let Some(v) = values {
            if groups.len() < v.depth {
                values = None;
            } else if groups.len() == v.depth && v.row_done {
                if kind == Kind::Comma && tokens.peek().is_some_and(|t| t.kind == Kind::Open) {
                    skip_group(&mut tokens);
                    continue;
                }
                values = None;
            }
        }
        // A keyword used as a qualified name (`t.key`, `order.id`) is a name.
        if matches!(kind, Kind::Keyword(_) | Kind::Function(_))
            && (prev == Some(Kind::Dot) || tokens.peek().is_some_and(|t| t.kind == Kind::Dot))
        {
            kind = Kind::Ident;
        }
        if semicolon && !out.is_empty() {
            out.push(';');
            prev = Some(Kind::Semicolon);
        }
        semicolon = false;

        let text = match kind {
            Kind::Keyword(k) | Kind::Function(k) => k,
            Kind::Literal => "?",
            _ => token.text,
        };
        if prev.is_some_and(|p| spaced(p, kind, text, naming)) {
            out.push(' ');
        }
        match kind {
            Kind::Open => {
                let inside_list = groups.last().is_some_and(|g| g.list)
                    && matches!(prev, Some(Kind::Open | Kind::Comma));
                let list = inside_list
                    || prev == Some(Kind::Keyword(if text == "(" { "IN" } else { "ARRAY" }));
                groups.push(Group {
                    start: out.len(),
                    list,
                });
            }
            Kind::Close => {
                if let Some(group) = groups.pop() {
                    if group.list && is_value_list(&out[group.start + 1..]) {
                        out.truncate(group.start + 1);
                        out.push('?');
                    }
                }
                if let Some(v) = &mut values {
                    v.row_done |= groups.len() == v.depth;
                }
            }
            Kind::Keyword("VALUES") => {
                values = Some(Values {
                    depth: groups.len(),
                    row_done: false,
                });
            }
            _ => {}
        }
        out.push_str(text);
        naming = match kind {
            Kind::Keyword("INTO" | "TABLE") => true,
            Kind::Ident | Kind::Dot => naming,
            _ => false,
        };
        prev = Some(kind);
    }
    // A statement cut short inside a list still collapses it, so where the
    // cut fell does not split one template into many.
    while let Some(group) = groups.pop() {
        if group.list && is_value_list(&out[group.start + 1..]) {
            out.truncate(group.start + 1);
            out.push('?');
        }
    }
    out
}

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

/// Whether a path or key segment is a value rather than a name, judged by
/// what ids look like and words do not: all digits, a UUID, 16 or more hex
/// digits, an `@` (an email or handle), or 8 or more characters with a digit
/// among them (`ch_3Nabc123`, `9780141036144`, `2024-06-01`). Short names
/// with digits (`v1`, `s3`, `oauth2`) stay.
fn is_id(segment: &str) -> bool {
    let b = segment.as_bytes();
    !b.is_empty()
        && (b.iter().all(u8::is_ascii_digit)
            || is_uuid_at(b, 0)
            || (b.len() >= 16 && b.iter().all(u8::is_ascii_hexdigit))
            || (b.len() >= 8 && b.iter().any(u8::is_ascii_digit))
            || b.contains(&b'@'))
}

/// Whether a UUID (8-4-4-4-12 hex digits) starts at `i` and ends a token.
fn is_uuid_at(b: &[u8], i: usize) -> bool {
    let Some(candidate) = b.get(i..i + 36) else {
        return false;
    };
    candidate.iter().enumerate().all(|(j, &c)| match j {
        8 | 13 | 18 | 23 => c == b'-',
        _ => c.is_ascii_hexdigit(),
    }) && !b.get(i + 36).is_some_and(|&c| is_word_byte(c))
}

// ---------------------------------------------------------------- SQL lexer

/// What a SQL token is, as far as the template cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Upper-cased from [`KEYWORDS`].
    Keyword(&'static str),
    /// Upper-cased from [`FUNCTIONS`]; its `(` follows without a space.
    Function(&'static str),
    /// A name, bare or quoted, kept as written.
    Ident,
    /// A value or bind parameter; written `?`.
    Literal,
    /// `(` or `[`.
    Open,
    /// `)` or `]`.
    Close,
    Comma,
    Dot,
    /// PostgreSQL's `::`.
    Cast,
    Semicolon,
    Operator,
}

#[derive(Clone, Copy, Debug)]
struct Token<'a> {
    kind: Kind,
    text: &'a str,
}

/// An open bracket in the output: where it starts, and whether it holds a
/// list of values that collapses to `(?)` when it closes.
struct Group {
    start: usize,
    list: bool,
}

/// A `VALUES` clause at bracket depth `depth`; once its first row is done,
/// further `, (…)` rows are dropped.
#[derive(Clone, Copy)]
struct Values {
    depth: usize,
    row_done: bool,
}

/// Reserved words that read as keywords in every dialect we see, sorted for
/// binary search. Words that are often column names (`name`, `type`,
/// `status`, `level`) are left out so they keep their spelling.
#[rustfmt::skip]
const KEYWORDS: &[&str] = &[
    "ADD", "ALL", "ALTER", "ANALYZE", "AND", "ANY", "ARRAY", "AS", "ASC", "BEGIN", "BETWEEN", "BY",
    "CASCADE", "CASE", "CHECK", "COLLATE", "COLUMN", "COMMIT", "CONFLICT", "CONSTRAINT", "CREATE",
    "CROSS", "CURRENT_DATE", "CURRENT_TIME", "CURRENT_TIMESTAMP", "DEFAULT", "DELETE", "DESC",
    "DISTINCT", "DO", "DROP", "DUPLICATE", "ELSE", "END", "ESCAPE", "EXCEPT", "EXISTS", "EXPLAIN",
    "FALSE", "FETCH", "FILTER", "FIRST", "FOR", "FOREIGN", "FROM", "FULL", "GROUP", "HAVING", "IF",
    "IGNORE", "ILIKE", "IN", "INDEX", "INNER", "INSERT", "INTERSECT", "INTERVAL", "INTO", "IS",
    "JOIN", "KEY", "LATERAL", "LEFT", "LIKE", "LIMIT", "LOCK", "LOCKED", "NATURAL", "NEXT", "NOT",
    "NOTHING", "NOWAIT", "NULL", "NULLS", "OFFSET", "ON", "ONLY", "OR", "ORDER", "OUTER", "OVER",
    "PARTITION", "PRAGMA", "PRIMARY", "RECURSIVE", "REFERENCES", "REGEXP", "RELEASE", "REPLACE",
    "RETURNING", "RIGHT", "ROLLBACK", "ROW", "ROWS", "SAVEPOINT", "SELECT", "SET", "SHARE", "SHOW",
    "SIMILAR", "SKIP", "SOME", "START", "TABLE", "THEN", "TO", "TOP", "TRANSACTION", "TRUE",
    "TRUNCATE", "UNION", "UNIQUE", "UPDATE", "USING", "VALUES", "VIEW", "WHEN", "WHERE", "WINDOW",
    "WITH",
];

/// Common functions, upper-cased so `count(*)` and `COUNT(*)` agree; sorted.
#[rustfmt::skip]
const FUNCTIONS: &[&str] = &[
    "ABS", "ARRAY_AGG", "AVG", "CAST", "CEIL", "COALESCE", "CONCAT", "COUNT", "DATE_TRUNC",
    "EXTRACT", "FLOOR", "GREATEST", "IFNULL", "JSON_AGG", "JSON_EXTRACT", "LEAST", "LOWER", "MAX",
    "MIN", "NOW", "NULLIF", "RANK", "ROUND", "ROW_NUMBER", "STRING_AGG", "SUBSTRING", "SUM",
    "TO_CHAR", "TRIM", "UNNEST", "UPPER",
];

/// Multi-character operators, longest first, so `->>` is one token.
#[rustfmt::skip]
const OPERATORS: &[&str] = &[
    "->>", "#>>", "<=>", "!~*", "<>", "<=", ">=", "!=", "==", "||", "&&", "->", "#>", "<@", "<<",
    ">>", "~*", "!~",
];

/// One pass over the bytes of a statement; every token is a slice of it.
struct Lexer<'a> {
    text: &'a str,
    pos: usize,
    prev: Option<Kind>,
}

impl<'a> Lexer<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            text,
            pos: 0,
            prev: None,
        }
    }

    /// Whether a value may start here, which makes `-1` a negative number
    /// rather than a minus: not right after a name, a value, a `)` or a `.`.
    fn expects_value(&self) -> bool {
        !matches!(
            self.prev,
            Some(Kind::Ident | Kind::Literal | Kind::Close | Kind::Dot)
        )
    }

    fn token(&mut self, kind: Kind, end: usize) -> Token<'a> {
        let start = self.pos;
        self.pos = end.min(self.text.len());
        Token {
            kind,
            text: &self.text[start..self.pos],
        }
    }

    fn scan(&mut self) -> Option<Token<'a>> {
        let b = self.text.as_bytes();
        loop {
            let c = *b.get(self.pos)?;
            let next = b.get(self.pos + 1).copied();
            let i = self.pos;
            match (c, next) {
                (c, _) if c.is_ascii_whitespace() => self.pos += 1,
                (b'-', Some(b'-')) => {
                    self.pos = b[i..]
                        .iter()
                        .position(|&c| c == b'\n')
                        .map_or(b.len(), |n| i + n);
                }
                (b'/', Some(b'*')) => self.pos = find(b, i + 2, b"*/").map_or(b.len(), |n| n + 2),
                _ => return Some(self.lex(c, next)),
            }
        }
    }

    fn lex(&mut self, c: u8, next: Option<u8>) -> Token<'a> {
        let b = self.text.as_bytes();
        let i = self.pos;
        let is_digit = |c: Option<u8>| c.is_some_and(|c| c.is_ascii_digit());
        match c {
            b'\'' => self.token(Kind::Literal, quoted_end(b, i + 1, b'\'', true)),
            b'"' | b'`' => self.token(Kind::Ident, quoted_end(b, i + 1, c, false)),
            b'(' | b'[' => self.token(Kind::Open, i + 1),
            b')' | b']' => self.token(Kind::Close, i + 1),
            b',' => self.token(Kind::Comma, i + 1),
            b';' => self.token(Kind::Semicolon, i + 1),
            b'?' => self.token(Kind::Literal, digits_end(b, i + 1)),
            b'$' => match next {
                Some(n) if n.is_ascii_digit() => self.token(Kind::Literal, digits_end(b, i + 1)),
                Some(n) if n == b'$' || n.is_ascii_alphabetic() || n == b'_' => {
                    let tag_end = b[i + 1..]
                        .iter()
                        .position(|&c| !(c.is_ascii_alphanumeric() || c == b'_'))
                        .map_or(b.len(), |n| i + 1 + n);
                    if b.get(tag_end) == Some(&b'$') {
                        // `$tag$ … $tag$`: PostgreSQL's dollar-quoted string.
                        let tag = &b[i..=tag_end];
                        let end = find(b, tag_end + 1, tag).map_or(b.len(), |n| n + tag.len());
                        self.token(Kind::Literal, end)
                    } else {
                        self.token(Kind::Ident, word_end(b, i + 1))
                    }
                }
                _ => self.token(Kind::Operator, i + 1),
            },
            b':' => match next {
                Some(b':') => self.token(Kind::Cast, i + 2),
                Some(b'=') => self.token(Kind::Operator, i + 2),
                Some(n) if is_word_byte(n) => self.token(Kind::Literal, word_end(b, i + 1)),
                _ => self.token(Kind::Operator, i + 1),
            },
            b'@' => match next {
                // `@@version`: a MySQL system variable, a name.
                Some(b'@') => self.token(Kind::Ident, word_end(b, i + 2)),
                Some(b'>') => self.token(Kind::Operator, i + 2),
                Some(n) if is_word_byte(n) => self.token(Kind::Literal, word_end(b, i + 1)),
                _ => self.token(Kind::Operator, i + 1),
            },
            b'%' => {
                // Python DB-API parameters: `%s` and `%(name)s`.
                let named = (next == Some(b'(')).then(|| word_end(b, i + 2));
                match (next, named) {
                    (Some(b's'), _) if !b.get(i + 2).is_some_and(|&c| is_word_byte(c)) => {
                        self.token(Kind::Literal, i + 2)
                    }
                    (_, Some(end)) if b.get(end..end + 2) == Some(b")s") => {
                        self.token(Kind::Literal, end + 2)
                    }
                    _ => self.token(Kind::Operator, i + 1),
                }
            }
            b'.' if is_digit(next) && self.expects_value() => {
                self.token(Kind::Literal, number_end(b, i))
            }
            b'.' => self.token(Kind::Dot, i + 1),
            b'-' | b'+'
                if self.expects_value()
                    && (is_digit(next)
                        || (next == Some(b'.') && is_digit(b.get(i + 2).copied()))) =>
            {
                self.token(Kind::Literal, number_end(b, i + 1))
            }
            _ if is_uuid_at(b, i) => self.token(Kind::Literal, i + 36),
            b'0'..=b'9' => self.token(Kind::Literal, number_end(b, i)),
            _ if is_word_byte(c) => {
                let end = word_end(b, i);
                let word = &self.text[i..end];
                if end == i + 1 && b.get(end) == Some(&b'\'') && b"eEnNbBxX".contains(&c) {
                    // `E'…'`, `N'…'`, `B'…'`, `X'…'`: prefixed strings.
                    self.token(Kind::Literal, quoted_end(b, end + 1, b'\'', true))
                } else if is_hex_id(word) {
                    self.token(Kind::Literal, end)
                } else {
                    self.token(classify(word), end)
                }
            }
            _ => {
                let end = OPERATORS
                    .iter()
                    .find(|op| b[i..].starts_with(op.as_bytes()))
                    .map_or(i + 1, |op| i + op.len());
                self.token(Kind::Operator, end)
            }
        }
    }
}

impl<'a> Iterator for Lexer<'a> {
    type Item = Token<'a>;

    fn next(&mut self) -> Option<Token<'a>> {
        let token = self.scan()?;
        self.prev = Some(token.kind);
        Some(token)
    }
}

/// Bytes that continue a word; bytes of non-ASCII characters count, so a
/// word never ends inside a character.
fn is_word_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80
}

fn word_end(b: &[u8], i: usize) -> usize {
    b[i.min(b.len())..]
        .iter()
        .position(|&c| !is_word_byte(c))
        .map_or(b.len(), |n| i + n)
}

fn digits_end(b: &[u8], i: usize) -> usize {
    b[i.min(b.len())..]
        .iter()
        .position(|c| !c.is_ascii_digit())
        .map_or(b.len(), |n| i + n)
}

/// The end of a number starting at `i`: `0x…`, digits, a fraction, an
/// exponent, and any letters run into it (`1st`, MySQL's `1abc`).
fn number_end(b: &[u8], i: usize) -> usize {
    if b.get(i) == Some(&b'0') && matches!(b.get(i + 1), Some(b'x' | b'X')) {
        return word_end(b, i + 2);
    }
    let mut end = digits_end(b, i);
    if b.get(end) == Some(&b'.') {
        end = digits_end(b, end + 1);
    }
    if matches!(b.get(end), Some(b'e' | b'E')) {
        let sign = matches!(b.get(end + 1), Some(b'+' | b'-'));
        let digits = end + 1 + usize::from(sign);
        if b.get(digits).is_some_and(u8::is_ascii_digit) {
            end = digits_end(b, digits);
        }
    }
    word_end(b, end)
}

/// The end of a quoted run opened before `i`: a doubled quote stays inside,
/// and so does a backslash-escaped one where `backslash` (MySQL strings,
/// PostgreSQL `E'…'`). Unterminated runs end with the text.
fn quoted_end(b: &[u8], mut i: usize, quote: u8, backslash: bool) -> usize {
    while let Some(&c) = b.get(i) {
        if c == b'\\' && backslash {
            i += 2;
        } else if c == quote {
            if b.get(i + 1) != Some(&quote) {
                return i + 1;
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    b.len()
}

fn find(b: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    b.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|n| from + n)
}

/// A word made only of hex digits, at least 8 long, with a digit: a hash or
/// id written bare. The digit keeps words like `deadbeef` or `facade` names.
fn is_hex_id(word: &str) -> bool {
    word.len() >= 8
        && word.bytes().all(|c| c.is_ascii_hexdigit())
        && word.bytes().any(|c| c.is_ascii_digit())
}

fn classify(word: &str) -> Kind {
    let mut buf = [0u8; 24];
    let Some(upper) = buf.get_mut(..word.len()) else {
        return Kind::Ident;
    };
    upper.copy_from_slice(word.as_bytes());
    upper.make_ascii_uppercase();
    let upper = &*upper;
    if let Ok(i) = KEYWORDS.binary_search_by(|k| k.as_bytes().cmp(upper)) {
        Kind::Keyword(KEYWORDS[i])
    } else if let Ok(i) = FUNCTIONS.binary_search_by(|k| k.as_bytes().cmp(upper)) {
        Kind::Function(FUNCTIONS[i])
    } else {
        Kind::Ident
    }
}

/// Whether a space goes between two tokens. Only token kinds decide, never
/// the input's own spacing, which keeps the template stable.
fn spaced(prev: Kind, next: Kind, text: &str, naming: bool) -> bool {
    match next {
        // `: ::x` written `:::x` would read back as `::` and `:x`.
        Kind::Cast => prev == Kind::Operator,
        Kind::Close | Kind::Comma | Kind::Dot | Kind::Semicolon => false,
        _ if matches!(prev, Kind::Open | Kind::Dot | Kind::Cast) => false,
        Kind::Open if text == "(" => naming || !matches!(prev, Kind::Ident | Kind::Function(_)),
        Kind::Open => !matches!(prev, Kind::Ident | Kind::Close | Kind::Keyword("ARRAY")),
        _ => true,
    }
}

/// Whether the inside of a bracket is nothing but values (after they became
/// `?`), so `(?, ?, ?)`, `((?), (?))` and `[[?], [?]]` may become `(?)`/`[?]`.
fn is_value_list(inside: &str) -> bool {
    inside.contains('?') && inside.bytes().all(|c| b"?, ()[]".contains(&c))
}

/// Drops the bracketed group the next token opens, through its close.
fn skip_group(tokens: &mut Peekable<Lexer<'_>>) {
    let mut depth = 0usize;
    for token in tokens.by_ref() {
        match token.kind {
            Kind::Open => depth += 1,
            Kind::Close => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return;
                }
            }
            _ => {}
        }
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
    use proptest::prelude::*;

    /// Checks a corpus of input lines, each followed by its template on a
    /// `=> ` line (`#` lines say where the statements come from), and returns
    /// how many pairs it held.
    fn check(f: impl Fn(&str) -> String, corpus: &str) -> usize {
        let mut lines = corpus
            .lines()
            .filter(|line| !line.is_empty() && !line.starts_with('#'));
        let mut pairs = 0;
        while let Some(input) = lines.next() {
            let expected = lines.next().and_then(|line| line.strip_prefix("=> "));
            let expected = expected.unwrap_or_else(|| panic!("no template after {input}"));
            assert_eq!(f(input), expected, "input: {input}");
            pairs += 1;
        }
        pairs
    }

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

        #[test]
        fn ids_never_change_commands_or_routes(n: u64, m: u64, uuid: u128) {
            let hex = format!("{uuid:032x}");
            let uuid = format!(
                "{}-{}-{}-{}-{}",
                &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..]
            );
            prop_assert_eq!(command(&format!("GET user:{n}:cart")), command(&format!("GET user:{m}:cart")));
            prop_assert_eq!(command(&format!("GET s:{uuid}")), "GET s:?");
            let url = format!("https://api.example.com/orders/{n}/items/{uuid}?page={m}");
            prop_assert_eq!(http("GET", &url), "GET api.example.com /orders/{id}/items/{id}");
        }

        #[test]
        fn any_text_yields_a_template(text: String, method in "[A-Za-z]{0,7}") {
            sql(&text);
            command(&text);
            command(&format!("{{{text}"));
            command(&format!("[{text}"));
            http(&method, &text);
        }
    }
}
