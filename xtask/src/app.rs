//! `cargo xtask build-app`: compiles `chibo-app` to wasm and writes a deployable `app/dist/`.
//! `cargo xtask measure-startup` builds the blank page (`bench/blank-page`) the same way into
//! `target/blank-dist/`, with the app's `static/` files.
//!
//! Steps: cargo build (size profile) → wasm-bindgen `--target web` → wasm-opt `-Oz` → content-hash
//! file names (the JS is rewritten to load the hashed wasm) → `index.html` and `sw.js` from
//! `app/static/` with the hashed names and precache list filled in → manifest and icons copied →
//! every text and wasm asset precompressed to `.br` and `.gz`.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use sha2::{Digest, Sha256};

use crate::{cargo, command, run_cmd, tools};

pub(crate) const WASM_TARGET: &str = "wasm32-unknown-unknown";

/// A wasm page crate to build and where its dist goes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Page {
    /// The package and its bin target: wasm-bindgen names its outputs after the bin.
    pub(crate) name: &'static str,
    /// Relative to the workspace root.
    pub(crate) dist: &'static str,
}

/// The member app.
pub(crate) const APP: Page = Page { name: "chibo-app", dist: "app/dist" };
/// The blank Leptos page `cargo xtask measure-startup` compares the app with.
pub(crate) const BLANK: Page = Page { name: "chibo-blank-page", dist: "target/blank-dist" };

/// Copied to dist as they are.
const STATIC_FILES: [&str; 3] = ["manifest.webmanifest", "icon-192.png", "icon-512.png"];
/// Extensions worth precompressing (PNGs are compressed already).
const COMPRESSIBLE: [&str; 6] = ["html", "js", "wasm", "webmanifest", "json", "css"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Size profile, wasm-opt.
    Release,
    /// Debug profile, no wasm-opt: quick to build, large.
    Dev,
}

/// Builds the app; returns the dist directory.
pub(crate) fn build(root: &Path, mode: Mode) -> Result<PathBuf> {
    build_page(root, APP, mode)
}

/// Builds `page` (with the app's `static/` files); returns its dist directory.
pub(crate) fn build_page(root: &Path, page: Page, mode: Mode) -> Result<PathBuf> {
    let Page { name, dist } = page;
    let (profile, profile_dir) = match mode {
        Mode::Release => ("wasm-release", "wasm-release"),
        Mode::Dev => ("dev", "debug"),
    };
    cargo(&["build", "-p", name, "--bin", name, "--target", WASM_TARGET, "--profile", profile])?;
    let target_dir = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    let wasm = target_dir.join(WASM_TARGET).join(profile_dir).join(format!("{name}.wasm"));

    let staging = target_dir.join(format!("{name}-bindgen"));
    clean_dir(&staging)?;
    run_cmd(
        command("wasm-bindgen")
            .args(["--target", "web", "--no-typescript", "--out-dir"])
            .arg(&staging)
            .arg(&wasm),
    )?;
    let bindgen_wasm = staging.join(format!("{name}_bg.wasm"));
    if mode == Mode::Release {
        let optimised = staging.join(format!("{name}_bg.opt.wasm"));
        // The features rustc's wasm32 target enables by default; wasm-opt must accept them.
        let features = [
            "--enable-bulk-memory",
            "--enable-nontrapping-float-to-int",
            "--enable-sign-ext",
            "--enable-mutable-globals",
            "--enable-reference-types",
            "--enable-multivalue",
        ];
        run_cmd(
            command(tools::wasm_opt(root))
                .arg("-Oz")
                .args(features)
                .arg(&bindgen_wasm)
                .arg("-o")
                .arg(&optimised),
        )?;
        std::fs::rename(&optimised, &bindgen_wasm)?;
    }

    let dist = root.join(dist);
    clean_dir(&dist)?;
    let wasm_bytes = read(&bindgen_wasm)?;
    let wasm_name = format!("{name}_bg-{}.wasm", short_hash(&wasm_bytes));
    let js = std::fs::read_to_string(staging.join(format!("{name}.js")))?;
    let js = replace_once(&js, &format!("'{name}_bg.wasm'"), &format!("'{wasm_name}'"))
        .context("wasm-bindgen's JS no longer names its wasm as expected")?;
    let js_name = format!("{name}-{}.js", short_hash(js.as_bytes()));
    std::fs::write(dist.join(&wasm_name), &wasm_bytes)?;
    std::fs::write(dist.join(&js_name), &js)?;

    let statics = root.join("app/static");
    let html = std::fs::read_to_string(statics.join("index.html"))?;
    let html = replace_all(&html, "{{app_js}}", &js_name)?;
    let html = replace_all(&html, "{{app_wasm}}", &wasm_name)?;
    std::fs::write(dist.join("index.html"), &html)?;
    for name in STATIC_FILES {
        std::fs::copy(statics.join(name), dist.join(name)).with_context(|| format!("copying {name}"))?;
    }

    // The service worker lists everything else; its cache name changes whenever any of it does,
    // which is also what makes the browser see a new worker.
    let mut precache = vec!["index.html".to_owned(), js_name, wasm_name.clone()];
    precache.extend(STATIC_FILES.map(str::to_owned));
    let mut version = Sha256::new();
    for name in &precache {
        version.update(name.as_bytes());
        version.update(Sha256::digest(read(&dist.join(name))?));
    }
    let urls: Vec<String> = precache.iter().map(|n| format!("/{n}")).collect();
    let sw = std::fs::read_to_string(statics.join("sw.js"))?;
    let sw = replace_once(
        &sw,
        "\"__CACHE_VERSION__\"",
        &format!("\"{}\"", &hex::encode(version.finalize())[..16]),
    )?;
    let sw = replace_once(&sw, "[\"__PRECACHE__\"]", &serde_json::to_string(&urls)?)?;
    std::fs::write(dist.join("sw.js"), sw)?;

    precompress(&dist)?;
    report(&dist, page.dist, &wasm_name, mode)?;
    Ok(dist)
}

/// Writes `<file>.br` (brotli, quality 11) and `<file>.gz` (gzip, best) beside each compressible file.
fn precompress(dist: &Path) -> Result<()> {
    for entry in std::fs::read_dir(dist)? {
        let path = entry?.path();
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or_default();
        if !COMPRESSIBLE.contains(&ext) {
            continue;
        }
        let bytes = read(&path)?;
        std::fs::write(with_suffix(&path, "br"), brotli(&bytes)?)?;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&bytes)?;
        std::fs::write(with_suffix(&path, "gz"), gz.finish()?)?;
    }
    Ok(())
}

fn brotli(bytes: &[u8]) -> Result<Vec<u8>> {
    let mut out = brotli::CompressorWriter::new(Vec::new(), 64 * 1024, 11, 22);
    out.write_all(bytes)?;
    out.flush()?;
    Ok(out.into_inner())
}

fn report(dist: &Path, shown: &str, wasm_name: &str, mode: Mode) -> Result<()> {
    let size = |name: &str| std::fs::metadata(dist.join(name)).map(|m| m.len());
    let mut line = format!("{shown} ({mode:?}): {wasm_name} {} raw", kib(size(wasm_name)?));
    write!(line, ", {} brotli", kib(size(&format!("{wasm_name}.br"))?))?;
    write!(line, ", {} gzip", kib(size(&format!("{wasm_name}.gz"))?))?;
    println!("{line}");
    Ok(())
}

fn kib(bytes: u64) -> String {
    format!("{:.1} KiB", bytes as f64 / 1024.0)
}

/// The first 16 hex digits of the SHA-256 of `bytes`: enough to never collide between builds.
fn short_hash(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))[..16].to_owned()
}

/// Replaces the one occurrence of `from`; a template that lost or doubled it is a build error.
fn replace_once(text: &str, from: &str, to: &str) -> Result<String> {
    let n = text.matches(from).count();
    ensure!(n == 1, "expected `{from}` exactly once, found it {n} times");
    Ok(text.replacen(from, to, 1))
}

/// Replaces every occurrence of a placeholder that must be there.
fn replace_all(text: &str, from: &str, to: &str) -> Result<String> {
    ensure!(text.contains(from), "expected `{from}` in the template");
    Ok(text.replace(from, to))
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".");
    s.push(suffix);
    PathBuf::from(s)
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

fn clean_dir(dir: &Path) -> Result<()> {
    if dir.exists() {
        if !dir.is_dir() {
            bail!("{} is not a directory", dir.display());
        }
        std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_must_be_present() {
        assert_eq!(replace_once("a {{x}} b", "{{x}}", "1").unwrap(), "a 1 b");
        assert!(replace_once("a {{x}} {{x}}", "{{x}}", "1").is_err());
        assert!(replace_once("a", "{{x}}", "1").is_err());
        assert_eq!(replace_all("{{x}}{{x}}", "{{x}}", "1").unwrap(), "11");
        assert!(replace_all("a", "{{x}}", "1").is_err());
    }

    #[test]
    fn hashed_names_follow_content() {
        assert_eq!(short_hash(b"a"), short_hash(b"a"));
        assert_ne!(short_hash(b"a"), short_hash(b"b"));
        assert_eq!(short_hash(b"").len(), 16);
    }
}
