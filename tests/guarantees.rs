//! docs/GUARANTEES.md names, for each guarantee, the test that shows it: every test it names
//! must exist, so that the page cannot point at tests that were renamed or removed.

use std::path::Path;

#[test]
fn every_test_named_in_the_guarantees_exists() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let page = std::fs::read_to_string(root.join("docs/GUARANTEES.md"))?;
    let mut named = 0;
    let mut missing = Vec::new();
    for span in page.split('`').skip(1).step_by(2) {
        // `file::test`, `src/dir/file.rs::test`; a trailing `_*` stands for any suffix.
        let Some((file, test)) = span.rsplit_once("::") else {
            continue;
        };
        let path = if file.starts_with("src/") {
            root.join(file)
        } else if file.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
            root.join("tests").join(format!("{file}.rs"))
        } else {
            continue;
        };
        if !test
            .chars()
            .all(|c| c.is_ascii_lowercase() || c == '_' || c == '*')
        {
            continue;
        }
        named += 1;
        let source = std::fs::read_to_string(&path).unwrap_or_default();
        let found = match test.strip_suffix('*') {
            Some(prefix) => source.contains(&format!("fn {prefix}")),
            None => source.contains(&format!("fn {test}(")),
        };
        if !found {
            missing.push(span.to_owned());
        }
    }
    assert!(
        named > 20,
        "only {named} tests named: is the page's format unchanged?"
    );
    assert!(missing.is_empty(), "named but not found: {missing:?}");
    Ok(())
}
