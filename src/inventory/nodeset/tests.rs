//! Nodeset expansion: syntax, hostile expressions, and the edges of every count (0, 1, 2^32, 2^63, 2^64−1).

use super::*;

#[test]
fn keeps_padding_and_multiplies_dimensions() {
    assert_eq!(
        expand("c[001-002]n[1-2]").unwrap(),
        ["c001n1", "c001n2", "c002n1", "c002n2"]
    );
    assert_eq!(
        expand("gpu[01-03,12]").unwrap(),
        ["gpu01", "gpu02", "gpu03", "gpu12"]
    );
    assert_eq!(
        expand("node[0-6/2]").unwrap(),
        ["node0", "node2", "node4", "node6"]
    );
    assert_eq!(expand("a, b[1-2]").unwrap(), ["a", "b1", "b2"]);
    assert_eq!(expand("c[001-384]n[1-3]").unwrap().len(), 1152);
}

#[test]
fn hostile_expressions_are_refused_not_expanded() {
    // u64::MAX has no successor: one host, no wrap-around, no endless allocation.
    assert_eq!(
        expand("n[18446744073709551615]").unwrap(),
        ["n18446744073709551615"]
    );
    assert!(expand("n[18446744073709551614-18446744073709551615/7]").is_ok());
    assert!(expand("--selector=nvidia.com/gpu.present")
        .unwrap_err()
        .message
        .contains("unexpected"));
    assert!(expand("-n1")
        .unwrap_err()
        .message
        .contains("may not start with '-'"));
    assert!(expand("n\u{1b}[2J").is_err());
    assert_eq!(expand_indices("3,0-3,3").unwrap(), [0, 1, 2, 3]);
    assert!(expand_indices("64").is_err());
}

#[test]
fn rejects_bad_expressions_with_position() {
    let e = expand("c001n[5-1]").unwrap_err();
    assert!(e.message.contains("reversed range"), "{e}");
    assert_eq!(e.offset, 6, "points at the range inside the brackets");
    assert!(expand("n[]").unwrap_err().message.contains("empty range"));
    assert!(expand("n[1-2")
        .unwrap_err()
        .message
        .contains("without matching"));
    assert!(expand("n[a-b]")
        .unwrap_err()
        .message
        .contains("not a number"));
    assert!(expand("a,,b")
        .unwrap_err()
        .message
        .contains("empty element"));
    assert!(expand("").is_err());
    let big = expand("x[1-1000]y[1-1000]").unwrap_err();
    assert!(big.message.contains("100000"), "{big}");
    assert!(expand("n[1-99999999999]")
        .unwrap_err()
        .message
        .contains("100000"));
}

#[test]
fn gpu_indices() {
    assert_eq!(expand_indices("0-3").unwrap(), [0, 1, 2, 3]);
    assert_eq!(expand_indices("0,4-5").unwrap(), [0, 4, 5]);
    assert!(expand_indices("3-1").is_err());
}

proptest::proptest! {
    #[test]
    fn any_range_expands_to_its_count(low in 0u64..500, len in 0u64..300, pad in 1usize..5) {
        let expr = format!("n[{low:0pad$}-{:0pad$}]", low + len);
        let hosts = expand(&expr).unwrap();
        proptest::prop_assert_eq!(hosts.len() as u64, len + 1);
    }

    #[test]
    fn never_panics(s in "\\PC{0,30}") {
        let _ = expand(&s);
    }
}

/// The integers where counts used to wrap: 0, 1, 2^32, 2^63, 2^64−1 and their neighbours.
const EDGES: [u64; 9] = [
    0,
    1,
    2,
    u32::MAX as u64,
    1 << 32,
    (1 << 63) - 1,
    1 << 63,
    u64::MAX - 1,
    u64::MAX,
];

#[test]
fn counts_at_the_integer_edges_never_wrap() {
    for &low in &EDGES {
        for &high in EDGES.iter().filter(|&&h| h >= low) {
            for step in [1u64, 2, 7, 1 << 32, 1 << 63, u64::MAX] {
                let expected = u128::from((high - low) / step) + 1;
                let exprs = [
                    format!("n[{low}-{high}/{step}]"),
                    format!("n[1-5,{low}-{high}/{step}]"),
                    format!("a[1-2]b[{low}-{high}/{step}]"),
                    format!("a,n[{low}-{high}/{step}]"),
                ];
                for (i, expr) in exprs.iter().enumerate() {
                    let extra: u128 = [0, 5, 0, 1][i];
                    let factor: u128 = if i == 2 { 2 } else { 1 };
                    let total = expected * factor + extra;
                    match expand(expr) {
                        Ok(hosts) => {
                            assert_eq!(hosts.len() as u128, total, "{expr}");
                            assert!(total <= MAX_EXPANSION as u128, "{expr}");
                        }
                        Err(e) => {
                            assert!(total > MAX_EXPANSION as u128, "{expr}: {e}");
                            assert!(e.message.contains("100000"), "{expr}: {e}");
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn the_whole_u64_range_is_refused_not_expanded() {
    for expr in [
        "n[0-18446744073709551615]",
        "n[1-5,0-18446744073709551614]",
        "n[0-18446744073709551615,0-18446744073709551615]",
        "a[0-4294967296]b[0-4294967296]",
        "a[0-99999],b[0-1]",
        "x[1-2]y[0-9223372036854775808]z[1-3]",
    ] {
        let e = expand(expr).unwrap_err();
        assert!(e.message.contains("expands past 100000"), "{expr}: {e}");
    }
    // The largest run that fits is expanded in full: the cap is exact, not approximate.
    assert_eq!(expand("n[1-100000]").unwrap().len(), MAX_EXPANSION);
    assert!(expand("n[1-100000],m").is_err());
    assert!(expand("n[0-100000]").is_err());
}

#[test]
fn gpu_index_lists_at_the_integer_edges() {
    for expr in [
        "0-18446744073709551615",
        "18446744073709551615",
        "0-4294967296",
        "4294967295",
        "0-3,9223372036854775808",
        "0-64",
        "64",
    ] {
        let e = expand_indices(expr).unwrap_err();
        assert!(e.message.contains("is not a GPU index"), "{expr}: {e}");
    }
    assert_eq!(
        expand_indices("0-18446744073709551614/18446744073709551615").unwrap(),
        [0]
    );
    assert_eq!(expand_indices("63").unwrap(), [63]);
    assert_eq!(
        expand_indices("0-63/9").unwrap(),
        [0, 9, 18, 27, 36, 45, 54, 63]
    );
}

#[test]
fn names_are_bounded_before_they_are_built() {
    // The 20 KB inventory value that took 2.2 GB: refused on its length, nothing expanded.
    let long = format!("{}[1-50000]", "x".repeat(20_000));
    let e = expand(&long).unwrap_err();
    assert!(e.message.contains("more than 253"), "{e}");
    // Padding counts: a lower bound written with 300 zeros makes 300-digit names.
    let padded = format!("n[{}1-5]", "0".repeat(300));
    assert!(expand(&padded).unwrap_err().message.contains("253"));
    // Labels: 63 bytes between dots, numbers included.
    let label = "a".repeat(60);
    assert_eq!(expand(&format!("{label}[100-999]")).unwrap().len(), 900);
    let e = expand(&format!("{label}[1000-1001]")).unwrap_err();
    assert!(e.message.contains("label"), "{e}");
    assert!(expand(&format!("{label}[1-2].{label}[1-2].x")).is_ok());
    assert!(expand(&format!("x.{label}[1-2]{label}")).is_err());
    // 253 bytes is a name; 254 is not.
    let name = |n: usize| {
        (0..n)
            .map(|i| if i % 60 == 59 { '.' } else { 'a' })
            .collect::<String>()
    };
    assert!(expand(&name(253)).is_ok());
    assert!(expand(&name(254)).unwrap_err().message.contains("253"));
}

#[test]
fn bytes_are_bounded_across_the_expression() {
    // 100,000 names of 200 bytes each: within both per-name limits, past the 16 MiB of names.
    let prefix = (0..3).map(|_| "a".repeat(60)).collect::<Vec<_>>().join(".");
    let expr = format!("{prefix}.b[10000-59999],{prefix}.c[10000-59999]");
    let e = expand(&expr).unwrap_err();
    assert!(e.message.contains("bytes of host names"), "{e}");
    assert_eq!(
        expand(&format!("{prefix}.b[10000-10999]")).unwrap().len(),
        1000
    );
}
