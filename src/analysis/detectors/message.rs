//! How findings' messages word what they measured: durations, shares of a
//! request and statements, so every detector's sentence reads alike.

/// A duration for a person: `340 ms`, `4.2 ms`, `2.4 s`.
pub(super) fn duration(ns: u64) -> String {
    let ms = ns as f64 / 1e6;
    if ms >= 10_000.0 {
        format!("{:.0} s", ms / 1e3)
    } else if ms >= 1_000.0 {
        format!("{:.1} s", ms / 1e3)
    } else if ms >= 10.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{ms:.1} ms")
    }
}

/// A share (0..1) as a whole percentage, `61 %`; a share too small to round
/// to 1 % says so rather than claiming 0 %.
pub(super) fn percent(share: f64) -> String {
    let pct = (share * 100.0).round();
    if pct < 1.0 && share > 0.0 {
        "under 1 %".to_string()
    } else {
        format!("{pct:.0} %")
    }
}

/// Longest statement a message quotes in full; the finding's `statement`
/// field always carries all of it.
const STATEMENT_CHARS: usize = 120;

/// A statement as a message quotes it: in backticks, cut with `…` when long.
pub(super) fn quote(statement: &str) -> String {
    match statement.char_indices().nth(STATEMENT_CHARS) {
        Some((cut, _)) => format!("`{}…`", statement[..cut].trim_end()),
        None => format!("`{statement}`"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_keep_two_or_three_significant_figures() {
        assert_eq!(duration(340_000_000), "340 ms");
        assert_eq!(duration(4_240_000), "4.2 ms");
        assert_eq!(duration(2_400_000_000), "2.4 s");
        assert_eq!(duration(12_600_000_000), "13 s");
    }

    #[test]
    fn shares_round_to_whole_percent_but_never_to_zero() {
        assert_eq!(percent(0.6149), "61 %");
        assert_eq!(percent(0.001), "under 1 %");
        assert_eq!(percent(0.0), "0 %");
    }

    #[test]
    fn long_statements_are_cut_on_a_char_boundary() {
        assert_eq!(quote("SELECT 1"), "`SELECT 1`");
        let long = format!("SELECT {} FROM t", "é, ".repeat(60));
        let quoted = quote(&long);
        assert!(quoted.ends_with("…`"));
        assert_eq!(quoted.chars().count(), STATEMENT_CHARS + 3);
    }
}
