//! docs/reasons.md lists exactly the reasons of `dealpay_api::Reason`, so the docs cannot drift from
//! the code in either direction.

use std::collections::BTreeSet;

use dealpay_operator::api::Reason;

fn documented() -> BTreeSet<String> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/reasons.md"))
        .expect("docs/reasons.md");
    text.lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .map(str::to_string)
        .collect()
}

#[test]
fn every_reason_is_documented_and_every_documented_reason_exists() {
    let code: BTreeSet<String> = Reason::NAMED
        .iter()
        .map(|r| r.as_str().to_string())
        .collect();
    let docs = documented();
    let undocumented: Vec<_> = code.difference(&docs).collect();
    let unknown: Vec<_> = docs.difference(&code).collect();
    assert!(
        undocumented.is_empty(),
        "not in docs/reasons.md: {undocumented:?}"
    );
    assert!(
        unknown.is_empty(),
        "docs/reasons.md names reasons the code does not have: {unknown:?}"
    );
    assert!(docs.len() > 40, "the table was not read: {docs:?}");
}
