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
//!
//! One file per form: `sql.rs` (a lexer and the pass that writes the
//! template), `command.rs` (Redis argument lists and MongoDB documents) and
//! `http.rs`; the helpers below recognize ids and quoted runs for more than
//! one of them.

mod command;
mod http;
mod sql;

pub use command::command;
pub use http::http;
pub use sql::sql;

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

/// Bytes that continue a word; bytes of non-ASCII characters count, so a
/// word never ends inside a character.
fn is_word_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Checks a corpus of input lines, each followed by its template on a
    /// `=> ` line (`#` lines say where the statements come from), and returns
    /// how many pairs it held.
    pub(super) fn check(f: impl Fn(&str) -> String, corpus: &str) -> usize {
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

    proptest! {
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
