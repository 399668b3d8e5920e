//! The SQL fingerprint: a lexer that never fails (comments, every dialect's
//! quoting and bind parameters, statements cut short) and one pass over its
//! tokens that writes the template, collapsing value lists and extra
//! `VALUES` rows as it goes. The canonical form is in the parent module's doc.

use std::iter::Peekable;

use super::{is_uuid_at, is_word_byte, quoted_end};

/// The template of a SQL statement; the `fingerprint` module doc gives the
/// canonical form.
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

// ---------------------------------------------------------------- Lexer

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

#[cfg(test)]
mod tests;
