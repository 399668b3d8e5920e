//! Generates the storage codec's protobuf types from `proto/`, and builds the
//! web UI in `web/` (npm, Vite) into `$OUT_DIR/web`, listed in
//! `$OUT_DIR/web_assets.rs` for the binary to embed: a fresh clone's
//! `cargo build` makes a binary that serves the UI.
//!
//! npm runs only when `web/`'s sources or lockfile changed. Without Node.js
//! the build stops with a message saying so, unless `TRACEMAP_WEB_DIST`
//! names an already built UI (a `web/dist`) to embed instead.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=proto");
    if std::env::var_os("PROTOC").is_none() && which("protoc").is_none() {
        panic!(
            "protoc was not found: install it (Debian: `apt-get install protobuf-compiler`, \
             or run scripts/setup.sh) or set PROTOC to its path"
        );
    }
    prost_build::Config::new()
        .compile_protos(&["proto/tracemap/storage/v1/spans.proto"], &["proto"])
        .expect("compiling proto/tracemap/storage/v1/spans.proto");
    build_web();
}

/// What, when it changes, changes the built UI.
const WEB_INPUTS: [&str; 7] = [
    "web/src",
    "web/public",
    "web/index.html",
    "web/package.json",
    "web/package-lock.json",
    "web/vite.config.ts",
    "web/tsconfig.json",
];

fn build_web() {
    // A path that does not exist (`web/public` while the UI has no static
    // files) would make cargo rerun this script, and rebuild the crate, on
    // every build.
    for input in WEB_INPUTS.iter().filter(|input| Path::new(input).exists()) {
        println!("cargo:rerun-if-changed={input}");
    }
    println!("cargo:rerun-if-env-changed=TRACEMAP_WEB_DIST");
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let built = out_dir.join("web");
    match std::env::var_os("TRACEMAP_WEB_DIST") {
        Some(dist) => {
            let dist = PathBuf::from(dist);
            if !dist.join("index.html").is_file() {
                panic!("TRACEMAP_WEB_DIST={}: no index.html there", dist.display());
            }
            let _ = std::fs::remove_dir_all(&built);
            copy_dir(&dist, &built);
        }
        None => npm_build(Path::new("web"), &built),
    }
    let mut files = Vec::new();
    list_files(&built, &built, &mut files);
    files.sort();
    let mut table = String::from(
        "/// The built web UI: (URL path, file contents), sorted by path.\n\
         pub static ASSETS: &[(&str, &[u8])] = &[\n",
    );
    for (url, path) in &files {
        writeln!(
            table,
            "    ({url:?}, include_bytes!({:?})),",
            path.display()
        )
        .expect("writing to a String");
    }
    table.push_str("];\n");
    std::fs::write(out_dir.join("web_assets.rs"), table).expect("writing web_assets.rs");
}

/// `npm ci` when `node_modules` is missing or older than the lockfile, then
/// `npm run build` into `out`. One build at a time per `web/`: builds of two
/// target directories (say, a debug and a release one) share `node_modules`.
fn npm_build(web: &Path, out: &Path) {
    if which("npm").is_none() {
        panic!(
            "building tracemap's web UI needs Node.js and npm (Debian: `apt-get install nodejs \
             npm`, or run scripts/setup.sh); or set TRACEMAP_WEB_DIST to an already built \
             web/dist to embed"
        );
    }
    let lock = std::fs::File::create(std::env::temp_dir().join("tracemap-web-build.lock"))
        .expect("creating the web build's lock file");
    lock.lock().expect("locking the web build");
    let installed = web.join("node_modules/.package-lock.json");
    let stale = match (
        modified(&installed),
        modified(&web.join("package-lock.json")),
    ) {
        (Some(installed), Some(lock)) => installed < lock,
        _ => true,
    };
    if stale {
        run(
            web,
            Command::new("npm").args(["ci", "--no-audit", "--no-fund"]),
        );
    }
    run(
        web,
        Command::new("npm")
            .args(["run", "build"])
            .env("TRACEMAP_WEB_OUT", out),
    );
}

fn run(dir: &Path, command: &mut Command) {
    let shown = format!("{command:?}");
    let output = command
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("running {shown} in {}: {e}", dir.display()));
    if !output.status.success() {
        panic!(
            "{shown} in {} failed ({}):\n{}\n{}",
            dir.display(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

fn modified(path: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(path).ok()?.modified().ok()
}

/// Every file under `dir` as (URL path from `root`, absolute path).
fn list_files(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) {
    let entries = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading the built web UI in {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("reading a directory entry").path();
        if path.is_dir() {
            list_files(root, &path, out);
        } else {
            let relative = path.strip_prefix(root).expect("under the root");
            let url = format!("/{}", relative.to_string_lossy().replace('\\', "/"));
            let absolute = std::fs::canonicalize(&path).expect("a built file's path");
            out.push((url, absolute));
        }
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("creating the web UI's output directory");
    for entry in std::fs::read_dir(from).expect("reading TRACEMAP_WEB_DIST") {
        let path = entry.expect("reading a directory entry").path();
        let target = to.join(path.file_name().expect("a file name"));
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).expect("copying a built web file");
        }
    }
}

fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}
