//! Tidy tests: architecture invariants (see `architecture.md`) checked by reading the source
//! tree, as rust-analyzer does. Each fails naming the file and line that breaks the rule.
//!
//! - no handler under `crates/http/src/routes/` names a role value (`OrgRole::…`,
//!   `GroupRole::…`), and no code outside `tessera-domain` applies a `Requirement` to raw
//!   roles (`.is_met(`): authorization is decided by `tessera_domain::Principal` only;
//! - SQL appears only in `crates/store` (in production code; tests may read the database to
//!   prove "nothing changed");
//! - `Utc::now` (and `Local::now`, `SystemTime::now`) appear only in the `SystemClock` file:
//!   time is a parameter.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

/// Every `.rs` file under `dir`, recursively, sorted; `target` directories are skipped.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n == "target") {
                    continue;
                }
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// `file:line: text` for every line of `files` containing one of `needles`.
fn offending_lines(root: &Path, files: &[PathBuf], needles: &[&str]) -> Vec<String> {
    let mut hits = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        for (i, line) in text.lines().enumerate() {
            if needles.iter().any(|n| line.contains(n)) {
                let rel = f.strip_prefix(root).unwrap_or(f);
                hits.push(format!("{}:{}: {}", rel.display(), i + 1, line.trim()));
            }
        }
    }
    hits
}

fn rel(root: &Path, p: &Path) -> String {
    p.strip_prefix(root)
        .unwrap_or(p)
        .to_string_lossy()
        .replace('\\', "/")
}

#[test]
fn handlers_do_not_compare_roles() {
    let root = workspace_root();
    let routes = rust_files(&root.join("crates/http/src/routes"));
    assert!(routes.len() >= 5, "found only {routes:?}");
    let hits = offending_lines(&root, &routes, &["OrgRole::", "GroupRole::"]);
    assert!(
        hits.is_empty(),
        "handlers name role values; decide in tessera_domain::Principal instead:\n{}",
        hits.join("\n")
    );
}

#[test]
fn requirements_are_applied_only_by_the_domain() {
    // `Requirement::is_met` on raw roles outside `tessera-domain` would be an authorization
    // decision made beside `Principal`.
    let root = workspace_root();
    let mut files = Vec::new();
    for dir in ["crates/http/src", "crates/server/src", "crates/store/src"] {
        files.extend(rust_files(&root.join(dir)));
    }
    assert!(files.len() >= 10, "found only {files:?}");
    let hits = offending_lines(&root, &files, &[".is_met("]);
    assert!(
        hits.is_empty(),
        "a requirement applied outside tessera_domain::Principal:\n{}",
        hits.join("\n")
    );
}

#[test]
fn sql_lives_in_the_store_crate() {
    let root = workspace_root();
    // Production code only: tests may read the database directly (the harness compares full
    // dumps to prove "nothing changed").
    let files: Vec<PathBuf> = rust_files(&root.join("crates"))
        .into_iter()
        .filter(|f| {
            let r = rel(&root, f);
            !r.starts_with("crates/store/") && r.split('/').nth(2) == Some("src")
        })
        .collect();
    assert!(files.len() >= 20, "found only {} files", files.len());
    let hits = offending_lines(
        &root,
        &files,
        &[
            "SELECT ",
            "INSERT INTO",
            "DELETE FROM",
            "CREATE TABLE",
            "BEGIN IMMEDIATE",
            "sqlx::query",
        ],
    );
    assert!(
        hits.is_empty(),
        "SQL outside crates/store; add a Store method instead:\n{}",
        hits.join("\n")
    );
}

#[test]
fn the_clock_is_read_only_by_system_clock() {
    let root = workspace_root();
    let clock_file = "crates/domain/src/clock.rs";
    let files = rust_files(&root.join("crates"));
    let needle = ["Utc::now", "Local::now", "SystemTime::now"];
    // The rule is not vacuous: the one allowed reader is where we think it is.
    assert!(
        !offending_lines(&root, &[root.join(clock_file)], &needle).is_empty(),
        "{clock_file} no longer holds SystemClock's Utc::now; update this test"
    );
    let hits: Vec<String> = offending_lines(&root, &files, &needle)
        .into_iter()
        .filter(|h| !h.starts_with(clock_file) && !h.starts_with("crates/http/tests/tidy.rs"))
        .collect();
    assert!(
        hits.is_empty(),
        "the time of day read outside SystemClock; take `now` from a tessera_domain::Clock:\n{}",
        hits.join("\n")
    );
}
