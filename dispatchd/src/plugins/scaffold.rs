//! `dispatchd plugin new`: a small, ready plugin project in Rust,
//! JavaScript, Python or C: the source with a comment per hook, `build.sh`,
//! a README, the WIT, and `cases/` that pass. The templates live in
//! `dispatchd/templates/plugin/` and are compiled into the binary.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::ValueEnum;

/// The version of the WIT package the templates target.
const WIT_VERSION: &str = "0.1.0";

/// `dispatchd plugin new` flags.
#[derive(clap::Args)]
pub struct NewArgs {
    /// The plugin's name: lowercase letters, digits, '-' and '_', starting
    /// with a letter (it names the folder and NAME.wasm).
    pub name: String,
    /// The language of the plugin.
    #[arg(long, value_enum)]
    pub lang: Lang,
    /// Which hook it implements: a transformer runs per delivery, a router
    /// per event.
    #[arg(long, value_enum, default_value_t = World::Transformer)]
    pub world: World,
    /// Where to write it (default: ./NAME); it must not exist or be empty.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Rust: build against this published version of `dispatch-plugin`
    /// instead of the plugin-sdk of the checkout dispatchd was built from.
    #[arg(long)]
    pub sdk_version: Option<String>,
}

#[derive(Clone, Copy, PartialEq, ValueEnum)]
pub enum Lang {
    Rust,
    Javascript,
    Python,
    C,
}

#[derive(Clone, Copy, PartialEq, ValueEnum)]
pub enum World {
    Transformer,
    Router,
}

/// One file of the project: its path and its content (templates are text
/// with `{{placeholders}}`; bytes are written as they are).
struct File {
    path: String,
    text: Option<&'static str>,
    bytes: &'static [u8],
}

fn text(path: impl Into<String>, t: &'static str) -> File {
    File {
        path: path.into(),
        text: Some(t),
        bytes: &[],
    }
}

macro_rules! template {
    ($path:literal) => {
        include_str!(concat!("../../templates/plugin/", $path))
    };
}

macro_rules! c_binding {
    ($world:literal, $file:literal) => {
        include_bytes!(concat!("../../../plugin-sdk/c/", $world, "/", $file))
    };
}

/// The files of a project in `lang` implementing `world`.
fn files(lang: Lang, world: World) -> Vec<File> {
    let router = world == World::Router;
    let pick = |t: &'static str, r: &'static str| if router { r } else { t };
    let mut out = vec![
        text("README.md", template!("README.md")),
        text(
            "wit/plugin.wit",
            include_str!("../../../plugin-sdk/wit/plugin.wit"),
        ),
    ];
    let cases: &[(&str, &'static str)] = if router {
        &[
            ("routes.json", template!("cases/router-routes.json")),
            (
                "drops-test-events.json",
                template!("cases/router-drops-test-events.json"),
            ),
            (
                "only-subscription.json",
                template!("cases/router-only-subscription.json"),
            ),
            (
                "only-an-unknown-subscription.json",
                template!("cases/router-only-an-unknown-subscription.json"),
            ),
        ]
    } else {
        &[
            (
                "delivers.json",
                template!("cases/transformer-delivers.json"),
            ),
            (
                "drops-test-events.json",
                template!("cases/transformer-drops-test-events.json"),
            ),
            (
                "replaces-the-header.json",
                template!("cases/transformer-replaces-the-header.json"),
            ),
        ]
    };
    out.extend(
        cases
            .iter()
            .map(|(name, t)| text(format!("cases/{name}"), t)),
    );
    match lang {
        Lang::Rust => out.extend([
            text("Cargo.toml", template!("rust/Cargo.toml")),
            text(
                "src/lib.rs",
                pick(
                    template!("rust/transformer.rs"),
                    template!("rust/router.rs"),
                ),
            ),
            text("build.sh", template!("rust/build.sh")),
            text(".gitignore", "/target\n*.wasm\n.dispatch-cache/\n"),
        ]),
        Lang::Javascript => out.extend([
            text("package.json", template!("javascript/package.json")),
            text("build.mjs", template!("javascript/build.mjs")),
            text(
                "plugin.js",
                pick(
                    template!("javascript/transformer.js"),
                    template!("javascript/router.js"),
                ),
            ),
            text("build.sh", template!("javascript/build.sh")),
            text(".gitignore", "node_modules/\n*.wasm\n.dispatch-cache/\n"),
        ]),
        Lang::Python => out.extend([
            text(
                "app.py",
                pick(
                    template!("python/transformer.py"),
                    template!("python/router.py"),
                ),
            ),
            text("requirements.txt", template!("python/requirements.txt")),
            text("build.sh", template!("python/build.sh")),
            text(".gitignore", ".venv/\n*.wasm\n.dispatch-cache/\n"),
        ]),
        Lang::C => {
            out.extend([
                text(
                    "plugin.c",
                    pick(template!("c/transformer.c"), template!("c/router.c")),
                ),
                text("requirements.txt", template!("c/requirements.txt")),
                text("build.sh", template!("c/build.sh")),
                text(".gitignore", ".venv/\n*.wasm\n.dispatch-cache/\n"),
            ]);
            let bindings: [(&str, &'static [u8]); 3] = if router {
                [
                    ("router.c", c_binding!("router", "router.c")),
                    ("router.h", c_binding!("router", "router.h")),
                    (
                        "router_component_type.o",
                        c_binding!("router", "router_component_type.o"),
                    ),
                ]
            } else {
                [
                    ("transformer.c", c_binding!("transformer", "transformer.c")),
                    ("transformer.h", c_binding!("transformer", "transformer.h")),
                    (
                        "transformer_component_type.o",
                        c_binding!("transformer", "transformer_component_type.o"),
                    ),
                ]
            };
            out.extend(bindings.map(|(name, bytes)| File {
                path: format!("bindings/{name}"),
                text: None,
                bytes,
            }));
        }
    }
    out
}

/// Names Cargo refuses for a package (Rust keywords and the built-in
/// crates), with `-` read as `_`.
const RESERVED: &[&str] = &[
    "abstract",
    "alloc",
    "as",
    "async",
    "await",
    "become",
    "box",
    "break",
    "const",
    "continue",
    "core",
    "crate",
    "do",
    "dyn",
    "else",
    "enum",
    "extern",
    "false",
    "final",
    "fn",
    "for",
    "gen",
    "if",
    "impl",
    "in",
    "let",
    "loop",
    "macro",
    "match",
    "mod",
    "move",
    "mut",
    "override",
    "priv",
    "proc_macro",
    "pub",
    "ref",
    "return",
    "self",
    "static",
    "std",
    "struct",
    "super",
    "test",
    "trait",
    "true",
    "try",
    "type",
    "typeof",
    "unsafe",
    "unsized",
    "use",
    "virtual",
    "where",
    "while",
    "yield",
];

/// Checks a plugin name: it becomes a folder, a file and a crate name.
fn check_name(name: &str) -> Result<(), String> {
    if RESERVED.contains(&name.replace('-', "_").as_str()) {
        return Err(format!(
            "NAME {name:?} is a Rust keyword or a built-in crate's name: pick another"
        ));
    }
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_".contains(c));
    if first_ok && rest_ok && name.len() <= 64 {
        Ok(())
    } else {
        Err(format!(
            "NAME {name:?}: use lowercase letters, digits, '-' and '_', starting with a \
             letter (at most 64)"
        ))
    }
}

/// The `dispatch-plugin` dependency line of a Rust project.
fn sdk_dependency(version: Option<&str>) -> Result<String, String> {
    if let Some(v) = version {
        let ok = !v.is_empty()
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-+".contains(c))
            && v.starts_with(|c: char| c.is_ascii_digit());
        if !ok {
            return Err(format!("--sdk-version {v:?} is not a version (say 0.1.0)"));
        }
        return Ok(format!("dispatch-plugin = \"{v}\""));
    }
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugin-sdk");
    match sdk.canonicalize() {
        Ok(dir) if dir.join("Cargo.toml").exists() => {
            let path = dir.display().to_string();
            if path.chars().any(char::is_control) {
                return Err(format!(
                    "the plugin-sdk path {path:?} holds a control character: name a \
                     published version with --sdk-version"
                ));
            }
            let escaped = path.replace('\\', "\\\\").replace('"', "\\\"");
            Ok(format!("dispatch-plugin = {{ path = \"{escaped}\" }}"))
        }
        _ => Err(format!(
            "the plugin-sdk this dispatchd was built from ({}) is gone: name a published \
             version with --sdk-version",
            sdk.display()
        )),
    }
}

/// Writes the project; the error names what went wrong.
fn create(args: &NewArgs) -> Result<(PathBuf, Vec<File>), String> {
    check_name(&args.name)?;
    if args.sdk_version.is_some() && args.lang != Lang::Rust {
        return Err("--sdk-version is for --lang rust".into());
    }
    let sdk = match args.lang {
        Lang::Rust => sdk_dependency(args.sdk_version.as_deref())?,
        _ => String::new(),
    };
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(&args.name));
    if std::fs::read_dir(&dir).is_ok_and(|mut d| d.next().is_some()) {
        return Err(format!("{} exists and is not empty", dir.display()));
    }
    let (lang, source) = match args.lang {
        Lang::Rust => ("Rust", "src/lib.rs"),
        Lang::Javascript => ("JavaScript", "plugin.js"),
        Lang::Python => ("Python", "app.py"),
        Lang::C => ("C", "plugin.c"),
    };
    let world = match args.world {
        World::Transformer => "transformer",
        World::Router => "router",
    };
    let vars = [
        ("{{name}}", args.name.as_str()),
        ("{{crate}}", &args.name.replace('-', "_")),
        ("{{world}}", world),
        ("{{wit_version}}", WIT_VERSION),
        ("{{sdk}}", &sdk),
        ("{{lang}}", lang),
        ("{{source}}", source),
    ];
    let files = files(args.lang, args.world);
    for f in &files {
        let path = dir.join(&f.path);
        let fail = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(fail)?;
        }
        match f.text {
            Some(t) => {
                let body = vars.iter().fold(t.to_string(), |s, (k, v)| s.replace(k, v));
                std::fs::write(&path, body).map_err(fail)?;
            }
            None => std::fs::write(&path, f.bytes).map_err(fail)?,
        }
        #[cfg(unix)]
        if f.path.ends_with(".sh") {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                .map_err(fail)?;
        }
    }
    Ok((dir, files))
}

/// `dispatchd plugin new`: exit 0 with the next steps, 2 when the
/// arguments are wrong, 1 when writing failed.
pub fn run(args: &NewArgs) -> ExitCode {
    match create(args) {
        Ok((dir, files)) => {
            let world = match args.world {
                World::Transformer => "transformer",
                World::Router => "router",
            };
            println!("created {} (a {world}):", dir.display());
            for f in &files {
                println!("  {}", f.path);
            }
            let name = &args.name;
            println!(
                "next:\n  cd {} && ./build.sh\n  dispatchd plugin check {name}.wasm\n  \
                 dispatchd plugin test {name}.wasm --cases cases",
                dir.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) if e.starts_with("cannot write") => {
            eprintln!("dispatchd: {e}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("dispatchd: {e}");
            ExitCode::from(2)
        }
    }
}
