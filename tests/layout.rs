//! The crate's modules form layers: each uses only modules before it in [`ORDER`] (the table in
//! docs/design.md), so none imports one above it and there are no cycles. This reads the
//! sources and checks every `crate::` path outside comments.

use std::path::{Path, PathBuf};

/// The library's top-level modules, bottom first.
const ORDER: &[&str] = &[
    "lock",
    "key",
    "error",
    "item",
    "delta",
    "codec",
    "backend",
    "stream",
    "version",
    "stored",
    "journal",
    "retry",
    "options",
    "stats",
    "telemetry",
    "shard",
    "shared",
    "load",
    "warm",
    "flusher",
    "resume",
    "follow",
    "write",
    "store",
    "builder",
    "testing",
    "internals",
];

fn sources(path: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if path.is_dir() {
        for entry in std::fs::read_dir(path)? {
            sources(&entry?.path(), out)?;
        }
    } else if path.extension().is_some_and(|e| e == "rs") {
        out.push(path.to_path_buf());
    }
    Ok(())
}

#[test]
fn modules_use_only_the_modules_below_them() -> Result<(), Box<dyn std::error::Error>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut problems = Vec::new();
    for (rank, module) in ORDER.iter().enumerate() {
        let mut files = Vec::new();
        for path in [src.join(format!("{module}.rs")), src.join(module)] {
            if path.exists() {
                sources(&path, &mut files)?;
            }
        }
        if files.is_empty() {
            problems.push(format!("module `{module}` has no source"));
        }
        for file in files {
            let text = std::fs::read_to_string(&file)?;
            for (number, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or_default();
                for (at, _) in code.match_indices("crate::") {
                    let used: String = code[at + "crate::".len()..]
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if used.is_empty() {
                        problems.push(format!(
                            "{}:{}: write one `use crate::module::...` per module, so that \
                             this check sees it",
                            file.display(),
                            number + 1
                        ));
                    }
                    match ORDER.iter().position(|m| *m == used) {
                        Some(used_rank) if used_rank < rank || used == *module => {}
                        Some(_) => problems.push(format!(
                            "{}:{}: `{module}` uses `{used}`, which is above it",
                            file.display(),
                            number + 1
                        )),
                        // Items re-exported at the crate root, used by path in tests.
                        None => {}
                    }
                }
            }
        }
    }
    let mut declared = Vec::new();
    for line in std::fs::read_to_string(src.join("lib.rs"))?.lines() {
        if let Some(name) = line
            .trim_start_matches("pub ")
            .strip_prefix("mod ")
            .and_then(|rest| rest.strip_suffix(';'))
        {
            declared.push(name.to_owned());
        }
    }
    declared.sort();
    let mut ordered: Vec<String> = ORDER.iter().map(|m| (*m).to_owned()).collect();
    ordered.sort();
    if declared != ordered {
        problems.push(format!(
            "lib.rs declares {declared:?}, the layers list {ordered:?}"
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    Ok(())
}
