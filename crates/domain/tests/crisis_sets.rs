//! The crisis screen against its labelled sets (`tests/safety/*.txt`): every
//! must-catch text is caught (recall 100%), and no must-not-catch text is. The
//! figures are printed so a run shows them (`cargo test -- --nocapture`).

#![allow(clippy::unwrap_used)]

use std::path::Path;

use sidekick_domain::safety::assess;

/// The non-comment, non-empty lines of a labelled set.
fn set(name: &str) -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/safety")
        .join(name);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

#[test]
fn crisis_screen_meets_its_labelled_sets() {
    let must_catch = set("crisis_must_catch.txt");
    let must_not = set("crisis_must_not_catch.txt");
    assert!(
        must_catch.len() >= 40 && must_not.len() >= 40,
        "each set needs at least 40 texts ({} / {})",
        must_catch.len(),
        must_not.len()
    );

    let missed: Vec<&String> = must_catch.iter().filter(|t| !assess(t).crisis).collect();
    let misfired: Vec<(&String, &'static str)> = must_not
        .iter()
        .filter_map(|t| assess(t).matched.map(|m| (t, m.pattern)))
        .collect();
    let recall = 1.0 - missed.len() as f64 / must_catch.len() as f64;
    let fpr = misfired.len() as f64 / must_not.len() as f64;
    eprintln!(
        "crisis screen: recall {:.1}% ({}/{} must-catch), false-positive rate {:.1}% ({}/{} must-not-catch)",
        recall * 100.0,
        must_catch.len() - missed.len(),
        must_catch.len(),
        fpr * 100.0,
        misfired.len(),
        must_not.len()
    );
    assert!(missed.is_empty(), "missed crisis texts: {missed:#?}");
    assert!(
        misfired.is_empty(),
        "ordinary texts read as crisis (text, pattern): {misfired:#?}"
    );
}
