//! The README's two complete programs are files under `examples/`, so that CI can run them
//! (`scripts/readme-examples`, from `.ci/run`, runs each twice against dynalite). This checks
//! that each file, below its `//!` header, is a `rust` block of the README word for word: the
//! README cannot show a program that is not the one CI runs.

use std::path::Path;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The examples that are README blocks.
const EXAMPLES: &[&str] = &["quickstart.rs", "local_server.rs"];

/// The contents of the README's fenced `rust` blocks (their info string starts with `rust`).
fn rust_blocks(readme: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in readme.lines() {
        match current.as_mut() {
            None if line.starts_with("```rust") => current = Some(String::new()),
            None => {}
            Some(block) if line.starts_with("```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
        }
    }
    blocks
}

/// An example without its header: the leading `//!` lines and the blank line after them.
fn body(example: &str) -> &str {
    let mut rest = example;
    while rest.starts_with("//!") {
        rest = rest.split_once('\n').map_or("", |(_, after)| after);
    }
    rest.strip_prefix('\n').unwrap_or(rest)
}

#[test]
fn the_readme_shows_the_examples_word_for_word() -> TestResult {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let blocks = rust_blocks(&std::fs::read_to_string(root.join("README.md"))?);
    for name in EXAMPLES {
        let example = std::fs::read_to_string(root.join("examples").join(name))?;
        let body = body(&example);
        assert!(
            body.starts_with("use "),
            "examples/{name}: expected `//!` header lines, one blank line, then the program"
        );
        assert!(
            blocks.iter().any(|block| block == body),
            "README.md has no ```rust block equal to examples/{name} below its header: \
             change both together"
        );
    }
    Ok(())
}

#[test]
fn blocks_and_headers_are_read_as_described() {
    let readme =
        "text\n```rust,no_run\nfn main() {}\n```\n```sh\nls\n```\n```rust\nlet x = 1;\n```\n";
    assert_eq!(rust_blocks(readme), ["fn main() {}\n", "let x = 1;\n"]);
    assert_eq!(body("//! one\n//! two\n\nuse x;\n"), "use x;\n");
    assert_eq!(body("use x;\n"), "use x;\n");
}
