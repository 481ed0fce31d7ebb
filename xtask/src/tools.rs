//! The pinned external tools: wasm-bindgen-cli at exactly the version in `Cargo.lock` (the CLI
//! and the library must match), wasm-opt from npm `binaryen` (Debian's is too old to read what
//! rustc emits), the wasm32 target, and the JS automerge-repo client for the interop tests
//! (`tests/js`, from its `package-lock.json`).

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{Context, Result};

use crate::{command, output_of, run_cmd};

const BINARYEN: &str = "binaryen@132";
const BINARYEN_VERSION: &str = "version 132";

/// Checks each tool and installs what is missing or at the wrong version.
pub(crate) fn ensure(root: &Path) -> Result<()> {
    let want = wasm_bindgen_version(root)?;
    let have = output_of(command("wasm-bindgen").arg("--version"));
    let runner = output_of(command("wasm-bindgen-test-runner").arg("--version"));
    if have.as_deref() != Some(&format!("wasm-bindgen {want}")) || runner.is_none() {
        println!("wasm-bindgen-cli: have {have:?}, need {want}; installing");
        // Not --locked: the CLI's own lock file pins crates our toolchain may not build.
        run_cmd(command("cargo").args(["install", "wasm-bindgen-cli", "--version", &want]))?;
    }

    let opt = wasm_opt(root);
    let opt_version = output_of(command(&opt).arg("--version"));
    if !opt_version.as_deref().is_some_and(|v| v.contains(BINARYEN_VERSION)) {
        println!("wasm-opt: have {opt_version:?}, need {BINARYEN}; installing under .tools/");
        let prefix = root.join(".tools");
        run_cmd(command("npm").args(["install", "--prefix"]).arg(&prefix).arg(BINARYEN))
            .context("npm (Node.js) is needed to install binaryen's wasm-opt")?;
    }

    // The interop tests drive the real JS automerge-repo client (versions pinned by the lock file).
    let js = root.join("tests/js");
    if !js.join("node_modules/@automerge/automerge-repo").is_dir() {
        println!("tests/js: installing the JS automerge-repo client with npm ci");
        run_cmd(command("npm").args(["ci", "--no-audit", "--no-fund", "--prefix"]).arg(&js))
            .context("npm (Node.js) is needed for the JS interop tests")?;
    }

    let targets = output_of(command("rustup").args(["target", "list", "--installed"]));
    match targets {
        Some(t) if t.lines().any(|l| l.trim() == crate::app::WASM_TARGET) => {}
        Some(_) => run_cmd(command("rustup").args(["target", "add", crate::app::WASM_TARGET]))?,
        None => println!("rustup not found; assuming the {} target is installed", crate::app::WASM_TARGET),
    }
    println!("tools: wasm-bindgen {want}, wasm-opt ({BINARYEN}), {}", crate::app::WASM_TARGET);
    Ok(())
}

/// Where `ensure` puts wasm-opt.
pub(crate) fn wasm_opt(root: &Path) -> PathBuf {
    root.join(".tools/node_modules/binaryen/bin/wasm-opt")
}

/// The `wasm-bindgen` version `Cargo.lock` resolved.
fn wasm_bindgen_version(root: &Path) -> Result<String> {
    let lock = std::fs::read_to_string(root.join("Cargo.lock")).context("reading Cargo.lock")?;
    locked_version(&lock, "wasm-bindgen").context("Cargo.lock has no wasm-bindgen package")
}

/// The version of package `name` in a `Cargo.lock` (the first, if several are locked).
fn locked_version(lock: &str, name: &str) -> Option<String> {
    let wanted = format!("name = \"{name}\"");
    let mut in_package = false;
    for line in lock.lines().map(str::trim) {
        if line == "[[package]]" {
            in_package = false;
        } else if line == wanted {
            in_package = true;
        } else if let Some(version) = line.strip_prefix("version = ").filter(|_| in_package) {
            return Some(version.trim_matches('"').to_owned());
        }
    }
    None
}

/// PATH for child processes, with `$CARGO_HOME/bin` first: `cargo install` puts binaries there
/// and a fresh shell may not have it on PATH (and we may not change our own environment).
pub(crate) fn child_path() -> &'static OsStr {
    static PATH: OnceLock<OsString> = OnceLock::new();
    PATH.get_or_init(|| {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let home = std::env::var_os("CARGO_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
        let Some(bin) = home.map(|h| h.join("bin")) else { return path };
        let rest = std::env::split_paths(&path).filter(|p| *p != bin);
        std::env::join_paths(std::iter::once(bin.clone()).chain(rest)).unwrap_or(path)
    })
}

#[cfg(test)]
mod tests {
    use super::locked_version;

    #[test]
    fn the_locked_version_is_read_from_the_named_package_only() {
        let lock = r#"
[[package]]
name = "wasm-bindgen-futures"
version = "0.4.57"

[[package]]
name = "wasm-bindgen"
version = "0.2.130"
source = "registry+https://github.com/rust-lang/crates.io-index"
"#;
        assert_eq!(locked_version(lock, "wasm-bindgen").as_deref(), Some("0.2.130"));
        assert_eq!(locked_version(lock, "wasm-bindgen-futures").as_deref(), Some("0.4.57"));
        assert_eq!(locked_version(lock, "wasm"), None);
    }
}
