//! Embeds the web client: walks `web/` and writes the asset table that `src/web.rs` includes,
//! so a new file under `web/` is served without a Rust edit.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Content type by file extension; files with other extensions are not served.
fn content_type(path: &Path) -> Option<&'static str> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    Some(match ext.as_str() {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "txt" => "text/plain; charset=utf-8",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        _ => return None,
    })
}

/// Every file below `dir`, sorted (a stable table from one build to the next).
fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(read) => read.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(e) => panic!("cannot read {}: {e}", dir.display()),
    };
    entries.sort();
    for path in entries {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        // Editor backups, dotfiles and docs next to the client are not part of it.
        if name.starts_with('.') || name.ends_with('~') || name.ends_with(".md") {
            continue;
        }
        if path.is_dir() {
            walk(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let web = root.join("web");
    // Cargo scans a directory named here for any change below it (new files too).
    println!("cargo:rerun-if-changed=web");
    let mut files = Vec::new();
    walk(&web, &mut files);
    let mut table = String::from("&[\n");
    for file in &files {
        let Some(ty) = content_type(file) else { continue };
        let rel = file.strip_prefix(&web).expect("below web/");
        let url: Vec<&str> =
            rel.components().map(|c| c.as_os_str().to_str().expect("UTF-8 file names in web/")).collect();
        let url = format!("/{}", url.join("/"));
        let body = format!("include_bytes!({:?})", file.display().to_string());
        writeln!(table, "    Asset {{ path: {url:?}, content_type: {ty:?}, body: {body} }},").unwrap();
    }
    table.push(']');
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("web_assets.rs");
    std::fs::write(&out, table).unwrap_or_else(|e| panic!("cannot write {}: {e}", out.display()));
}
