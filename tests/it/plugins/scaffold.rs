//! `dispatchd plugin new` from an empty folder, in each language and
//! world: the project's own `build.sh` builds it, `plugin check` accepts it
//! and `plugin test` passes its cases. The slow toolchains share what the
//! examples installed (the repository's .venv, js-enrich's node_modules,
//! plugins/target), as a plugin author's machine would after one build.

use std::path::{Path, PathBuf};
use std::time::Duration;

use dispatch_tests::{run_dispatchd, run_dispatchd_within};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace")
        .to_path_buf()
}

/// Runs the project's build.sh, bounded.
async fn build(dir: &Path) {
    let mut cmd = tokio::process::Command::new("bash");
    cmd.arg(dir.join("build.sh"))
        .env("CARGO_TARGET_DIR", root().join("plugins/target"))
        .env("VENV", root().join(".venv"))
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(600), cmd.output())
        .await
        .expect("build.sh finishes within 10 minutes")
        .expect("run build.sh");
    assert!(
        out.status.success(),
        "{} failed:\n{}{}",
        dir.join("build.sh").display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn new_build_check_test(lang: &str, world: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let name = format!("my-{lang}-{world}");
    let dir = tmp.path().join(&name);
    let dir_arg = dir.display().to_string();
    let args = [
        "plugin", "new", &name, "--lang", lang, "--world", world, "--dir", &dir_arg,
    ];
    let (code, out) = run_dispatchd(&args, &[]).await;
    assert_eq!(code, Some(0), "{out}");
    for file in ["README.md", "build.sh", "wit/plugin.wit"] {
        assert!(dir.join(file).is_file(), "{file} missing: {out}");
    }
    assert!(
        std::fs::read_to_string(dir.join("README.md"))
            .unwrap()
            .lines()
            .count()
            <= 12,
        "a short README"
    );
    // A second run into the same folder refuses to overwrite it.
    let (code, again) = run_dispatchd(&args, &[]).await;
    assert_eq!(code, Some(2), "{again}");
    assert!(again.contains("exists and is not empty"), "{again}");
    if lang == "javascript" {
        let modules = root().join("plugins/js-enrich/node_modules");
        std::os::unix::fs::symlink(modules, dir.join("node_modules")).unwrap();
    }
    build(&dir).await;

    let wasm = dir.join(format!("{name}.wasm")).display().to_string();
    // Checking compiles the component (JavaScript and Python ones take
    // tens of seconds on a loaded 2-core machine) and caches the compiled
    // form, which the commands after it load instead.
    let cache = [(
        "DISPATCH_PLUGIN_HOST__CACHE_DIR",
        tmp.path().join("cache").display().to_string(),
    )];
    let (code, out) = run_dispatchd_within(
        Duration::from_secs(120),
        &["plugin", "check", &wasm],
        &cache,
    )
    .await;
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains(&format!("is a dispatch:plugin@0.1.0 {world}"))
            && out.contains("; compiled and cached)"),
        "{out}"
    );
    let (code, out) = run_dispatchd(&["plugin", "check", &wasm], &cache).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("; compiled form from the cache)"), "{out}");
    let cases = dir.join("cases").display().to_string();
    let (code, out) = run_dispatchd_within(
        Duration::from_secs(120),
        &["plugin", "test", &wasm, "--cases", &cases],
        &cache,
    )
    .await;
    let n = if world == "router" { 4 } else { 3 };
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains(&format!("{n} cases: {n} passed, 0 failed")),
        "{out}"
    );
}

#[tokio::test]
async fn rust_transformer_from_an_empty_folder() {
    new_build_check_test("rust", "transformer").await;
}

#[tokio::test]
async fn rust_router_from_an_empty_folder() {
    new_build_check_test("rust", "router").await;
}

#[tokio::test]
async fn javascript_transformer_from_an_empty_folder() {
    new_build_check_test("javascript", "transformer").await;
}

#[tokio::test]
async fn javascript_router_from_an_empty_folder() {
    new_build_check_test("javascript", "router").await;
}

#[tokio::test]
async fn python_transformer_from_an_empty_folder() {
    new_build_check_test("python", "transformer").await;
}

#[tokio::test]
async fn python_router_from_an_empty_folder() {
    new_build_check_test("python", "router").await;
}

#[tokio::test]
async fn c_transformer_from_an_empty_folder() {
    new_build_check_test("c", "transformer").await;
}

#[tokio::test]
async fn c_router_from_an_empty_folder() {
    new_build_check_test("c", "router").await;
}

#[tokio::test]
async fn bad_names_and_flags_are_refused_before_anything_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("p").display().to_string();
    for (args, says) in [
        (vec!["Bad Name", "--lang", "rust"], "NAME \"Bad Name\""),
        (vec!["9lives", "--lang", "c"], "starting with a letter"),
        (
            vec!["test", "--lang", "rust"],
            "is a Rust keyword or a built-in",
        ),
        (vec!["ok", "--lang", "cobol"], "invalid value 'cobol'"),
        (
            vec!["ok", "--lang", "python", "--sdk-version", "0.1.0"],
            "--sdk-version is for --lang rust",
        ),
        (
            vec!["ok", "--lang", "rust", "--sdk-version", "latest"],
            "is not a version",
        ),
    ] {
        let mut full = vec!["plugin", "new"];
        full.extend(args);
        full.extend(["--dir", &dir]);
        let (code, out) = run_dispatchd(&full, &[]).await;
        assert_eq!(code, Some(2), "{full:?}: {out}");
        assert!(out.contains(says), "{full:?}: {out}");
        assert!(!Path::new(&dir).exists(), "{full:?} wrote {dir}");
    }
    // A published SDK version goes into Cargo.toml as it is.
    let (code, out) = run_dispatchd(
        &[
            "plugin",
            "new",
            "published",
            "--lang",
            "rust",
            "--sdk-version",
            "0.1.0",
            "--dir",
            &dir,
        ],
        &[],
    )
    .await;
    assert_eq!(code, Some(0), "{out}");
    let manifest = std::fs::read_to_string(Path::new(&dir).join("Cargo.toml")).unwrap();
    assert!(
        manifest.contains("dispatch-plugin = \"0.1.0\""),
        "{manifest}"
    );
}

#[test]
fn the_checked_in_c_bindings_are_of_this_wit() {
    use sha2::Digest;
    let wit = std::fs::read(root().join("plugin-sdk/wit/plugin.wit")).unwrap();
    let recorded = std::fs::read_to_string(root().join("plugin-sdk/c/WIT.sha256")).unwrap();
    assert_eq!(
        recorded.trim(),
        hex::encode(sha2::Sha256::digest(&wit)),
        "plugin-sdk/wit/plugin.wit changed: run scripts/gen-c-bindings.sh"
    );
}
