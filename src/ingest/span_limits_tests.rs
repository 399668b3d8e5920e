//! Unit tests for each span limit, and property tests on pathological spans:
//! whatever a generator builds, `enforce` never panics and leaves a span within
//! every limit, with OTLP's dropped counts right, every cut string a valid
//! UTF-8 prefix of the original and the marker naming exactly what was cut.

use super::*;
use crate::model::{Event, Link, SpanId, TraceId};
use proptest::prelude::*;

fn attr(key: &str, value: AttrValue) -> KeyValue {
    KeyValue::new(key, value)
}

fn string(s: &str) -> AttrValue {
    AttrValue::String(s.to_string())
}

fn limits(attributes: usize, value_bytes: usize, events: usize, links: usize) -> SpanLimits {
    SpanLimits {
        max_attributes: attributes,
        max_value_bytes: value_bytes,
        max_events: events,
        max_links: links,
    }
}

fn marker(span: &Span) -> Option<Vec<String>> {
    match span.attr(TRUNCATED_KEY)? {
        AttrValue::Array(items) => Some(
            items
                .iter()
                .map(|v| match v {
                    AttrValue::String(s) => s.clone(),
                    other => panic!("marker holds {other:?}"),
                })
                .collect(),
        ),
        other => panic!("marker is {other:?}"),
    }
}

#[test]
fn a_span_within_the_limits_is_untouched() {
    let mut span = Span {
        attributes: vec![attr("a", string("short")), attr("n", AttrValue::Int(1))],
        events: vec![Event::default()],
        ..Span::default()
    };
    let before = span.clone();
    assert_eq!(SpanLimits::default().enforce(&mut span), Trimmed::default());
    assert_eq!(span, before);
}

#[test]
fn attributes_beyond_the_limit_are_dropped_and_counted() {
    let mut span = Span {
        attributes: (0..10)
            .map(|i| attr(&format!("k{i}"), AttrValue::Int(i)))
            .collect(),
        dropped_attributes: 2,
        ..Span::default()
    };
    let trimmed = limits(4, 100, 10, 10).enforce(&mut span);
    assert!(trimmed.attributes && !trimmed.attribute_value);
    let keys: Vec<&str> = span.attributes.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(keys, ["k0", "k1", "k2", "k3"], "the first ones are kept");
    assert_eq!(
        span.dropped_attributes,
        2 + 6,
        "added to what the SDK dropped"
    );
}

#[test]
fn long_values_are_cut_at_a_character_boundary_and_marked() {
    // "é" is two bytes: a cut at 13 bytes would split the seventh one.
    let mut span = Span {
        attributes: vec![
            attr("db.statement", string("éééééééé")),
            attr("ok", string("fine")),
            attr(
                "tags",
                AttrValue::Array(vec![string("abcdefghijklmnop"), string("ab")]),
            ),
            attr("blob", AttrValue::Bytes(vec![7; 20])),
        ],
        ..Span::default()
    };
    let trimmed = limits(10, 13, 10, 10).enforce(&mut span);
    assert_eq!(
        trimmed,
        Trimmed {
            attribute_value: true,
            ..Trimmed::default()
        }
    );
    assert_eq!(span.attr("db.statement"), Some(&string("éééééé")));
    assert_eq!(span.attr("ok"), Some(&string("fine")));
    assert_eq!(
        span.attr("tags"),
        Some(&AttrValue::Array(vec![
            string("abcdefghijklm"),
            string("ab")
        ]))
    );
    assert_eq!(span.attr("blob"), Some(&AttrValue::Bytes(vec![7; 13])));
    assert_eq!(marker(&span).unwrap(), ["db.statement", "tags", "blob"]);
    assert_eq!(span.dropped_attributes, 0, "truncation is not a drop");
    // A key longer than the value limit is cut in the marker like any value.
    let mut span = Span {
        attributes: vec![attr("a.very.long.attribute.key", string(&"v".repeat(20)))],
        ..Span::default()
    };
    limits(10, 13, 10, 10).enforce(&mut span);
    assert_eq!(marker(&span).unwrap(), ["a.very.long.a"]);
}

#[test]
fn the_marker_takes_the_last_place_when_the_span_is_full() {
    let mut span = Span {
        attributes: vec![
            attr("long", string("0123456789")),
            attr("b", AttrValue::Int(1)),
            attr("c", AttrValue::Int(2)),
        ],
        ..Span::default()
    };
    limits(3, 4, 10, 10).enforce(&mut span);
    let keys: Vec<&str> = span.attributes.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(keys, ["long", "b", TRUNCATED_KEY]);
    assert_eq!(span.dropped_attributes, 1);
    assert_eq!(marker(&span).unwrap(), ["long"]);
}

#[test]
fn events_and_links_beyond_the_limit_are_dropped_and_counted() {
    let link = |n: u8| Link {
        trace_id: TraceId([1; 16]),
        span_id: SpanId([n; 8]),
        ..Link::default()
    };
    let mut span = Span {
        events: (0..5)
            .map(|i| Event {
                name: format!("e{i}"),
                attributes: vec![attr("x", AttrValue::Int(1)), attr("y", AttrValue::Int(2))],
                ..Event::default()
            })
            .collect(),
        links: (1..=4).map(link).collect(),
        dropped_links: 1,
        ..Span::default()
    };
    let trimmed = limits(1, 100, 2, 3).enforce(&mut span);
    assert!(trimmed.events && trimmed.links && trimmed.attributes);
    assert_eq!(span.events.len(), 2);
    assert_eq!(span.events[1].name, "e1");
    assert_eq!(span.dropped_events, 3);
    assert_eq!(span.links.len(), 3);
    assert_eq!(span.dropped_links, 1 + 1);
    assert!(span
        .events
        .iter()
        .all(|e| e.attributes.len() == 1 && e.dropped_attributes == 1));
}

#[test]
fn nested_event_and_link_values_are_named_in_the_marker() {
    let mut span = Span {
        events: vec![
            Event::default(),
            Event {
                attributes: vec![attr(
                    "exception.stacktrace",
                    AttrValue::Map(vec![attr("deep", string(&"x".repeat(40)))]),
                )],
                ..Event::default()
            },
        ],
        links: vec![Link {
            attributes: vec![attr("note", string(&"y".repeat(33)))],
            ..Link::default()
        }],
        ..Span::default()
    };
    limits(8, 32, 8, 8).enforce(&mut span);
    assert_eq!(
        marker(&span).unwrap(),
        ["events[1].exception.stacktrace", "links[0].note"]
    );
    assert_eq!(
        span.events[1].attributes[0].value,
        AttrValue::Map(vec![attr("deep", string(&"x".repeat(32)))])
    );
}

#[test]
fn every_cut_of_a_multibyte_string_is_its_longest_valid_prefix() {
    let text = "aé€😀b\u{10FFFF}z";
    for max in 0..=text.len() + 1 {
        let mut cut = text.to_string();
        let changed = truncate_str(&mut cut, max);
        assert_eq!(changed, text.len() > max);
        assert!(cut.len() <= max || !changed);
        assert!(text.starts_with(&cut));
        // The next character would not have fitted.
        if changed {
            let next = text[cut.len()..].chars().next().unwrap();
            assert!(cut.len() + next.len_utf8() > max, "{max}: {cut:?}");
        }
    }
}

fn arb_leaf() -> impl Strategy<Value = AttrValue> {
    prop_oneof![
        Just(AttrValue::Empty),
        any::<bool>().prop_map(AttrValue::Bool),
        any::<i64>().prop_map(AttrValue::Int),
        any::<f64>().prop_map(AttrValue::Double),
        // Any Unicode: one to four bytes a character, cut anywhere.
        "\\PC{0,40}".prop_map(AttrValue::String),
        "[aé€😀]{0,30}".prop_map(AttrValue::String),
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(AttrValue::Bytes),
    ]
}

/// Arrays of arrays, maps of arrays: up to 24 levels deep.
fn arb_value() -> impl Strategy<Value = AttrValue> {
    arb_leaf().prop_recursive(24, 48, 3, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(AttrValue::Array),
            proptest::collection::vec(("[a-z.]{0,4}", inner), 0..4).prop_map(|kvs| {
                AttrValue::Map(kvs.into_iter().map(|(k, v)| KeyValue::new(k, v)).collect())
            }),
        ]
    })
}

fn arb_key() -> impl Strategy<Value = String> {
    // Empty keys, repeated keys and the marker's own key among them.
    prop_oneof![
        "[a-z]{0,3}",
        Just(String::new()),
        Just(TRUNCATED_KEY.to_string()),
        "\\PC{0,12}",
    ]
}

fn arb_attrs(max: usize) -> impl Strategy<Value = Vec<KeyValue>> {
    proptest::collection::vec((arb_key(), arb_value()), 0..max)
        .prop_map(|kvs| kvs.into_iter().map(|(k, v)| KeyValue::new(k, v)).collect())
}

/// Events and links come by the hundred: their attributes are flat.
fn arb_flat_attrs() -> impl Strategy<Value = Vec<KeyValue>> {
    proptest::collection::vec((arb_key(), arb_leaf()), 0..6)
        .prop_map(|kvs| kvs.into_iter().map(|(k, v)| KeyValue::new(k, v)).collect())
}

prop_compose! {
    fn arb_span()(
        attributes in arb_attrs(260),
        events in proptest::collection::vec((".{0,5}", arb_flat_attrs(), any::<u32>()), 0..200),
        links in proptest::collection::vec((arb_flat_attrs(), any::<u32>()), 0..200),
        dropped in (any::<u32>(), 0u32..10, prop_oneof![Just(u32::MAX), 0u32..10]),
    ) -> Span {
        Span {
            attributes,
            events: events
                .into_iter()
                .map(|(name, attributes, dropped_attributes)| Event {
                    name,
                    attributes,
                    dropped_attributes,
                    ..Event::default()
                })
                .collect(),
            links: links
                .into_iter()
                .map(|(attributes, dropped_attributes)| Link {
                    attributes,
                    dropped_attributes,
                    ..Link::default()
                })
                .collect(),
            dropped_attributes: dropped.0,
            dropped_events: dropped.1,
            dropped_links: dropped.2,
            ..Span::default()
        }
    }
}

fn arb_limits() -> impl Strategy<Value = SpanLimits> {
    (1usize..200, 0usize..48, 1usize..150, 1usize..150).prop_map(|(a, v, e, l)| limits(a, v, e, l))
}

/// Every string and bytes value in `value` within `max`, and each a prefix of
/// the value at the same place in `original`.
fn cut_from(value: &AttrValue, original: &AttrValue, max: usize) -> bool {
    match (value, original) {
        (AttrValue::String(s), AttrValue::String(o)) => {
            s.len() <= max && o.starts_with(s.as_str()) && (s == o || o.len() > max)
        }
        (AttrValue::Bytes(b), AttrValue::Bytes(o)) => b.len() <= max && o.starts_with(b),
        (AttrValue::Array(a), AttrValue::Array(o)) => {
            a.len() == o.len() && a.iter().zip(o).all(|(a, o)| cut_from(a, o, max))
        }
        (AttrValue::Map(a), AttrValue::Map(o)) => {
            a.len() == o.len()
                && a.iter()
                    .zip(o)
                    .all(|(a, o)| a.key == o.key && cut_from(&a.value, &o.value, max))
        }
        (a, o) => a == o,
    }
}

fn expected_drop(had: usize, max: usize, before: u32) -> u32 {
    before.saturating_add(had.saturating_sub(max) as u32)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn pathological_spans_end_within_the_limits(original in arb_span(), limits in arb_limits()) {
        let mut span = original.clone();
        let trimmed = limits.enforce(&mut span);
        prop_assert!(limits.within(&span), "not within the limits after enforce");
        prop_assert!(span.attributes.len() <= limits.max_attributes);
        prop_assert!(span.events.len() <= limits.max_events);
        prop_assert!(span.links.len() <= limits.max_links);

        // Events and links: the first ones kept, the rest counted as dropped.
        prop_assert_eq!(span.dropped_events,
            expected_drop(original.events.len(), limits.max_events, original.dropped_events));
        prop_assert_eq!(span.dropped_links,
            expected_drop(original.links.len(), limits.max_links, original.dropped_links));
        prop_assert_eq!(trimmed.events, original.events.len() > limits.max_events);
        prop_assert_eq!(trimmed.links, original.links.len() > limits.max_links);
        for (kept, was) in span.events.iter().zip(&original.events) {
            prop_assert_eq!(&kept.name, &was.name);
            prop_assert_eq!(kept.dropped_attributes,
                expected_drop(was.attributes.len(), limits.max_attributes, was.dropped_attributes));
            for (kv, o) in kept.attributes.iter().zip(&was.attributes) {
                prop_assert!(cut_from(&kv.value, &o.value, limits.max_value_bytes));
            }
        }
        for (kept, was) in span.links.iter().zip(&original.links) {
            prop_assert_eq!(kept.dropped_attributes,
                expected_drop(was.attributes.len(), limits.max_attributes, was.dropped_attributes));
            for (kv, o) in kept.attributes.iter().zip(&was.attributes) {
                prop_assert!(cut_from(&kv.value, &o.value, limits.max_value_bytes));
            }
        }

        // Span attributes: the original's first ones, in place, each value a
        // cut of the original; the marker replaces the client's own in place
        // or comes last; every attribute not kept is counted as dropped.
        let marked = trimmed.attribute_value;
        let marker_at = marked
            .then(|| span.attributes.iter().position(|kv| kv.key == TRUNCATED_KEY))
            .flatten();
        prop_assert_eq!(marked, marker_at.is_some());
        let pushed = marker_at.is_some_and(|at| {
            original.attributes.get(at).is_none_or(|kv| kv.key != TRUNCATED_KEY)
        });
        for (at, (kv, o)) in span.attributes.iter().zip(&original.attributes).enumerate() {
            if Some(at) == marker_at {
                continue;
            }
            prop_assert_eq!(&kv.key, &o.key);
            prop_assert!(cut_from(&kv.value, &o.value, limits.max_value_bytes));
        }
        let from_original = span.attributes.len() - usize::from(pushed);
        prop_assert_eq!(span.dropped_attributes,
            expected_drop(original.attributes.len(), from_original, original.dropped_attributes));
        if marked {
            let names = marker(&span).expect("a marker when a value was cut");
            prop_assert!(!names.is_empty());
            prop_assert!(names.iter().all(|n| n.len() <= limits.max_value_bytes));
        }

        // Enforcing again changes nothing: the result is within the limits.
        let once = span.clone();
        prop_assert_eq!(limits.enforce(&mut span), Trimmed::default());
        prop_assert_eq!(span, once);
    }

    #[test]
    fn strings_cut_anywhere_stay_valid_prefixes(text in "\\PC{0,64}", max in 0usize..260) {
        let mut cut = text.clone();
        let changed = truncate_str(&mut cut, max);
        prop_assert_eq!(changed, text.len() > max);
        prop_assert!(text.starts_with(&cut));
        prop_assert!(changed || cut == text);
        // Cut: within the limit, at most one character (3 bytes) short of it.
        if changed {
            prop_assert!(cut.len() <= max && max - cut.len() < 4);
        }
    }
}
