//! House rules that keep the code readable, checked like behaviour
//! (rust-analyzer's tidy tests are the model): ARCHITECTURE.md's codemap
//! names every module of `dispatchd/src`, and no Rust file grows into a
//! room that hides its design.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace")
        .to_path_buf()
}

/// Every `.rs` file below `dir`, skipping build output and vendored trees.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        let name = e.file_name();
        let name = name.to_string_lossy();
        if path.is_dir() {
            if !matches!(name.as_ref(), "target" | "node_modules" | ".git" | "dist") {
                rust_files(&path, out);
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

/// How ARCHITECTURE.md names a file of `dispatchd/src`: `store/` for
/// `store/mod.rs`, `store/postgres/queue` for `store/postgres/queue.rs`,
/// `pipeline` for `pipeline.rs`, and `main.rs`, `lib.rs` as they are.
fn codemap_name(rel: &Path) -> String {
    let s = rel.to_string_lossy().replace('\\', "/");
    if s == "main.rs" || s == "lib.rs" {
        return s;
    }
    match s.strip_suffix("/mod.rs") {
        Some(dir) => format!("{dir}/"),
        None => s.trim_end_matches(".rs").to_string(),
    }
}

#[test]
fn the_codemap_names_every_module_of_dispatchd() {
    let doc = std::fs::read_to_string(root().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let start = doc.find("## Codemap").expect("a codemap section");
    let end = doc[start..].find("\n## ").map_or(doc.len(), |i| start + i);
    let codemap = &doc[start..end];
    let src = root().join("dispatchd/src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(files.len() > 20, "found only {} files", files.len());
    let missing: Vec<String> = files
        .iter()
        .map(|f| codemap_name(f.strip_prefix(&src).expect("under src")))
        .filter(|name| !codemap.contains(&format!("`{name}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md's codemap does not name these modules of dispatchd/src \
         (write each in backticks, as `store/postgres/queue`): {missing:?}"
    );
}

#[test]
fn no_rust_file_is_a_room_that_hides_its_design() {
    let mut files = Vec::new();
    for dir in [
        "dispatchd",
        "dispatch-tui",
        "dispatch-wire",
        "dispatch-bench",
        "plugin-sdk",
        "tests",
        "plugins",
    ] {
        rust_files(&root().join(dir), &mut files);
    }
    let mut sizes: Vec<(usize, PathBuf)> = files
        .into_iter()
        .map(|f| {
            let lines = std::fs::read_to_string(&f).map_or(0, |t| t.lines().count());
            (lines, f)
        })
        .collect();
    let big: Vec<String> = sizes
        .iter()
        .filter(|(n, _)| *n > 600)
        .map(|(n, f)| format!("{} ({n} lines)", f.display()))
        .collect();
    assert!(big.is_empty(), "split these by what they hold: {big:?}");
    sizes.sort();
    let median = sizes[sizes.len() / 2].0;
    assert!(
        median <= 150,
        "the median Rust file has {median} lines; small files with one job"
    );
}
