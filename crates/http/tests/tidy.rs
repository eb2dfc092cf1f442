//! Tidy tests: architecture invariants (see `architecture.md`) checked by reading the source
//! tree, as rust-analyzer does. Each fails naming the file and line (or route) that breaks the
//! rule.
//!
//! - every route registered in the router (`crates/http/src/lib.rs`) has exactly one row in
//!   the authorization table (`tessera_http::authz::TABLE`), and every row has a route; routes
//!   are registered nowhere else;
//! - no production code outside `tessera-domain`'s `authorization` module compares roles
//!   (a role value next to a comparison, `roles.contains(` and the like, a credential compared
//!   with the caller's) or applies a `Requirement` (`.is_met(`), and only the table names a
//!   requirement (`Requirement::`): authorization is decided by the domain, on the table's
//!   rules; the HTTP crate names no role value at all;
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

/// The production code of `text`, line by line (1-based numbers), without comments: everything
/// before the file's test module (`#[cfg(test)]` followed by `mod …`), each line cut at a
/// `//` that is not inside a string literal.
fn production_lines(text: &str) -> Vec<(usize, String)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.trim() == "#[cfg(test)]"
            && lines[i + 1..]
                .iter()
                .find(|l| !l.trim().is_empty())
                .is_some_and(|l| l.trim_start().starts_with("mod "))
        {
            break;
        }
        out.push((i + 1, strip_line_comment(line).to_owned()));
    }
    out
}

fn strip_line_comment(line: &str) -> &str {
    let bytes = line.as_bytes();
    let mut in_str = false;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if in_str => i += 1,
            b'"' => in_str = !in_str,
            b'/' if !in_str && bytes.get(i + 1) == Some(&b'/') => return &line[..i],
            _ => {}
        }
        i += 1;
    }
    line
}

/// Every production `.rs` file under the crates' `src/` directories.
fn production_files(root: &Path) -> Vec<PathBuf> {
    rust_files(&root.join("crates"))
        .into_iter()
        .filter(|f| rel(root, f).split('/').nth(2) == Some("src"))
        .collect()
}

/// The home of every authorization decision.
const AUTHORIZATION_MODULE: &str = "crates/domain/src/authorization/";
/// The one place outside it that names requirements: the route table.
const ROUTE_TABLE: &str = "crates/http/src/authz/table.rs";

/// What makes a line a role comparison, an application of a requirement or a "self" check.
fn authorization_outside_the_domain(code: &str) -> Option<&'static str> {
    const COMPARISONS: &[&str] = &[
        "==",
        "!=",
        "matches!",
        "=>",
        ".contains(",
        ".any(",
        ".all(",
        ".find(",
        ".position(",
        ".retain(",
        ".filter(",
    ];
    const ROLE_LIST_QUERIES: &[&str] = &[
        "roles.contains(",
        "roles.iter().any(",
        "roles.iter().all(",
        "roles.iter().find(",
        "roles.iter().position(",
        "roles.iter().filter(",
        "roles.is_empty()",
        "roles.get(",
        "roles.first(",
    ];
    let names_role = code.contains("OrgRole::") || code.contains("GroupRole::");
    if code.contains(".is_met(") {
        Some("applies a requirement to roles (`.is_met(`)")
    } else if names_role && COMPARISONS.iter().any(|c| code.contains(c)) {
        Some("compares a role value")
    } else if ROLE_LIST_QUERIES.iter().any(|q| code.contains(q)) {
        Some("queries a list of roles")
    } else if code.contains("PrincipalKind::")
        && (code.contains("==") || code.contains("if let") || code.contains(" if "))
    {
        Some("compares the caller's credential (a \"self\" check)")
    } else {
        None
    }
}

#[test]
fn authorization_is_decided_only_by_the_domain() {
    let root = workspace_root();
    let files = production_files(&root);
    assert!(files.len() >= 30, "found only {} files", files.len());
    let mut hits = Vec::new();
    for f in &files {
        let r = rel(&root, f);
        if r.starts_with(AUTHORIZATION_MODULE) {
            continue;
        }
        let text = std::fs::read_to_string(f).unwrap_or_else(|e| panic!("{r}: {e}"));
        for (n, code) in production_lines(&text) {
            let why = authorization_outside_the_domain(&code).or_else(|| {
                (code.contains("Requirement::") && r != ROUTE_TABLE)
                    .then_some("names a requirement outside the route table")
            });
            if let Some(why) = why {
                hits.push(format!("{r}:{n}: {why}: {}", code.trim()));
            }
        }
    }
    assert!(
        hits.is_empty(),
        "authorization decided outside tessera_domain::authorization; give the route a rule in \
         crates/http/src/authz/table.rs and ask Principal (or the rule) for the decision:\n{}",
        hits.join("\n")
    );
}

#[test]
fn the_http_crate_names_no_role_value() {
    // It parses role names from bodies and prints them; which role meets what is the domain's.
    let root = workspace_root();
    let files = rust_files(&root.join("crates/http/src"));
    assert!(files.len() >= 20, "found only {files:?}");
    let mut hits = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        for (n, code) in production_lines(&text) {
            if code.contains("OrgRole::") || code.contains("GroupRole::") {
                hits.push(format!("{}:{n}: {}", rel(&root, f), code.trim()));
            }
        }
    }
    assert!(
        hits.is_empty(),
        "the HTTP crate names role values; decide in tessera_domain::authorization instead:\n{}",
        hits.join("\n")
    );
}

#[test]
fn the_detector_sees_what_it_must() {
    // The rule above is only as good as its patterns: each of these must be caught.
    for line in [
        "if key.org_roles.contains(&OrgRole::Owner) {",
        "let ok = roles.iter().all(|r| *r != GroupRole::Owner);",
        "matches!(r, GroupRole::Owner | GroupRole::AccessManager)",
        "if caller.org_roles.contains(&r) {",
        "Requirement::OrgOwner.is_met(&caller.org_roles, &[])",
        "let is_self = matches!(&caller.kind, PrincipalKind::ApiKey { id, .. } if *id == key.id);",
        "if let PrincipalKind::ServiceAccount { client_id, .. } = &caller.kind {",
        "if account.group_roles.is_empty() {",
    ] {
        assert!(
            authorization_outside_the_domain(line).is_some(),
            "not caught: {line}"
        );
    }
    for line in [
        "vec![OrgRole::Owner],",
        "roles: a.org_roles.iter().map(ToString::to_string).collect(),",
        "PrincipalKind::ApiKey { id, .. } => Some(*id),",
        "let group = group_for(&state, &caller, path.get(\"groupId\"), rule).await?;",
    ] {
        assert!(
            authorization_outside_the_domain(line).is_none(),
            "caught by mistake: {line}"
        );
    }
    assert_eq!(strip_line_comment("a // b \"c\""), "a ");
    assert_eq!(strip_line_comment("\"http://x\" // y"), "\"http://x\" ");
}

// --- The router and the authorization table ------------------------------------------------

/// The router's source with string literals kept and everything else as is, for a scanner
/// that must not mistake a brace inside a path pattern (`"/orgs/{orgId}"`) for code.
struct Scanner<'a> {
    src: &'a [u8],
}

impl Scanner<'_> {
    /// The index just past the literal (string or char) starting at `i`, if one starts there.
    fn skip_literal(&self, i: usize) -> Option<usize> {
        let s = self.src;
        match s[i] {
            b'"' => {
                let mut j = i + 1;
                while j < s.len() && s[j] != b'"' {
                    j += if s[j] == b'\\' { 2 } else { 1 };
                }
                Some(j + 1)
            }
            b'\'' if s.get(i + 2) == Some(&b'\'') => Some(i + 3),
            b'\'' if s.get(i + 1) == Some(&b'\\') && s.get(i + 3) == Some(&b'\'') => Some(i + 4),
            _ => None,
        }
    }

    /// The index of the bracket that closes the one at `open` (`(` or `{`).
    fn closing(&self, open: usize) -> usize {
        let (o, c) = match self.src[open] {
            b'(' => (b'(', b')'),
            b'{' => (b'{', b'}'),
            other => panic!("not an opening bracket: {}", other as char),
        };
        let mut depth = 0;
        let mut i = open;
        while i < self.src.len() {
            if let Some(next) = self.skip_literal(i) {
                i = next;
                continue;
            }
            if self.src[i] == o {
                depth += 1;
            } else if self.src[i] == c {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
            i += 1;
        }
        panic!("unbalanced brackets in the router source");
    }

    /// Every occurrence of `needle` in code (not inside a literal).
    fn find_all(&self, needle: &str) -> Vec<usize> {
        let n = needle.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < self.src.len() {
            if let Some(next) = self.skip_literal(i) {
                i = next;
                continue;
            }
            if self.src[i..].starts_with(n) {
                out.push(i);
            }
            i += 1;
        }
        out
    }
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The router functions of `lib.rs` and where their routes are mounted.
fn mount_of(function: &str) -> Option<tessera_http::authz::Mount> {
    use tessera_http::authz::Mount;
    match function {
        "api_routes" => Some(Mount::Api),
        "tessera_router" => Some(Mount::Tessera),
        "oauth_routes" | "app" => Some(Mount::Root),
        _ => None,
    }
}

/// The value of a route's path argument: a string literal, or `module::CONST` naming a
/// `const CONST: &str = "…";` of `crates/http/src/module.rs`.
fn path_value(root: &Path, expr: &str) -> String {
    let expr = expr.trim();
    if let Some(lit) = expr.strip_prefix('"').and_then(|e| e.strip_suffix('"')) {
        return lit.to_owned();
    }
    let (module, name) = expr
        .rsplit_once("::")
        .unwrap_or_else(|| panic!("route path `{expr}`: a literal or module::CONST, please"));
    let file = root.join(format!(
        "crates/http/src/{}.rs",
        module.trim_start_matches("crate::")
    ));
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{expr}: {e}"));
    let decl = format!("const {name}: &str = \"");
    let start = text
        .find(&decl)
        .unwrap_or_else(|| panic!("{expr}: no `{decl}…\";` in {}", file.display()))
        + decl.len();
    let len = text[start..].find('"').unwrap();
    text[start..start + len].to_owned()
}

type RouteKey = (tessera_http::authz::Mount, &'static str, String);

/// Every (mount, method, path) the router in `lib.rs` registers, with the line of its
/// `.route(` call; panics on a registration this test cannot read.
fn registered_routes(root: &Path) -> Vec<(RouteKey, usize)> {
    use tessera_http::authz::Verb;
    let text = std::fs::read_to_string(root.join("crates/http/src/lib.rs")).unwrap();
    let cleaned: String = text
        .lines()
        .map(strip_line_comment)
        .collect::<Vec<_>>()
        .join("\n");
    let sc = Scanner {
        src: cleaned.as_bytes(),
    };
    for forbidden in [".route_service(", ".nest_service(", ".fallback_service("] {
        assert!(
            sc.find_all(forbidden).is_empty(),
            "lib.rs uses `{forbidden}`: this test (and the table) cannot see such a route"
        );
    }
    // Function bodies: (name, start, end).
    let mut functions = Vec::new();
    for at in sc.find_all("fn ") {
        if at > 0 && is_ident(sc.src[at - 1]) {
            continue;
        }
        let name: String = cleaned[at + 3..]
            .bytes()
            .take_while(|b| is_ident(*b))
            .map(char::from)
            .collect();
        let Some(open) = cleaned[at..].find('{').map(|o| at + o) else {
            continue;
        };
        functions.push((name, open, sc.closing(open)));
    }
    let line_of = |at: usize| cleaned[..at].matches('\n').count() + 1;
    let mut routes = Vec::new();
    for at in sc.find_all(".route(") {
        let line = line_of(at);
        let function = functions
            .iter()
            .filter(|(_, start, end)| *start < at && at < *end)
            .min_by_key(|(_, start, end)| end - start)
            .map(|(name, _, _)| name.as_str())
            .unwrap_or_else(|| panic!("lib.rs:{line}: a route outside any function"));
        let mount = mount_of(function).unwrap_or_else(|| {
            panic!("lib.rs:{line}: a route in `fn {function}`, whose mount this test does not know; add it to `mount_of`")
        });
        let open = at + ".route".len();
        let args = &cleaned[open + 1..sc.closing(open)];
        let (path_expr, methods) = args
            .split_once(',')
            .unwrap_or_else(|| panic!("lib.rs:{line}: cannot read `.route({args})`"));
        let path = path_value(root, path_expr);
        let m = Scanner {
            src: methods.as_bytes(),
        };
        let mut verbs = Vec::new();
        for (name, verb) in [
            ("get", Some(Verb::Get)),
            ("post", Some(Verb::Post)),
            ("patch", Some(Verb::Patch)),
            ("delete", Some(Verb::Delete)),
            ("put", Some(Verb::Put)),
            ("head", None),
            ("options", None),
            ("trace", None),
            ("connect", None),
            ("any", None),
            ("on", None),
        ] {
            for hit in m.find_all(&format!("{name}(")) {
                if hit > 0 && is_ident(methods.as_bytes()[hit - 1]) {
                    continue;
                }
                let verb = verb.unwrap_or_else(|| {
                    panic!("lib.rs:{line}: `{name}(` on {path}: the table has no such method")
                });
                verbs.push(verb);
            }
        }
        assert!(
            !verbs.is_empty(),
            "lib.rs:{line}: no method found in the route for {path}"
        );
        for verb in verbs {
            routes.push(((mount, verb.as_str(), path.clone()), line));
        }
    }
    routes
}

#[test]
fn every_route_has_exactly_one_rule_and_every_rule_a_route() {
    let root = workspace_root();
    let routes = registered_routes(&root);
    assert!(
        routes.len() >= 60,
        "read only {} routes from lib.rs",
        routes.len()
    );
    let table: Vec<RouteKey> = tessera_http::authz::TABLE
        .iter()
        .map(|e| (e.mount, e.verb.as_str(), e.path.to_owned()))
        .collect();
    let mut problems = Vec::new();
    for (key, line) in &routes {
        match table.iter().filter(|t| *t == key).count() {
            1 => {}
            0 => problems.push(format!(
                "lib.rs:{line}: {:?} {} {} is routed but has no rule in authz::TABLE",
                key.0, key.1, key.2
            )),
            n => problems.push(format!(
                "{:?} {} {}: {n} rows in authz::TABLE",
                key.0, key.1, key.2
            )),
        }
    }
    for (i, key) in table.iter().enumerate() {
        if !routes.iter().any(|(r, _)| r == key) {
            problems.push(format!(
                "authz::TABLE row {i}: {:?} {} {} has no route in lib.rs",
                key.0, key.1, key.2
            ));
        }
        if routes.iter().filter(|(r, _)| r == key).count() > 1 {
            problems.push(format!("{:?} {} {} is routed twice", key.0, key.1, key.2));
        }
    }
    assert!(
        problems.is_empty(),
        "router and authorization table disagree:\n{}",
        problems.join("\n")
    );
}

#[test]
fn routes_are_registered_only_in_the_router() {
    let root = workspace_root();
    let needles = [
        ".route(",
        ".route_service(",
        ".nest_service(",
        "Router::new()",
    ];
    // `crates/bench` is not Tessera: it is the bare one-signature server benchmarks compare
    // against, with a router of its own. `crates/console` routes HTML pages, not API routes:
    // a page decides nothing itself, every read and change it makes is an in-process request
    // to this router, decided by the table (`console_pages_call_the_api_in_process` below).
    let hits: Vec<String> = offending_lines(&root, &production_files(&root), &needles)
        .into_iter()
        .filter(|h| {
            !h.starts_with("crates/http/src/lib.rs:")
                && !h.starts_with("crates/bench/")
                && !h.starts_with("crates/console/src/lib.rs:")
                && !h.starts_with("crates/console/src/pages/mod.rs:")
        })
        .collect();
    assert!(
        hits.is_empty(),
        "routes registered outside crates/http/src/lib.rs (the table's tidy test reads only \
         that file):\n{}",
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

/// An id newtype with a public field could be built from any `ObjectId`, unchecked: the field
/// stays private to `ids.rs`, so ids are made only by parsing or generating.
#[test]
fn id_newtypes_keep_their_field_private() {
    let root = workspace_root();
    let ids = root.join("crates/domain/src/ids.rs");
    let text = std::fs::read_to_string(&ids).expect("ids.rs");
    assert!(
        text.contains("(ObjectId);"),
        "ids.rs no longer declares its newtypes over ObjectId; update this test"
    );
    let hits = offending_lines(&root, &[ids], &["(pub ObjectId)", "(pub(crate) ObjectId)"]);
    assert!(
        hits.is_empty(),
        "an id newtype's field is public; ids are made only by parsing or generating:\n{}",
        hits.join("\n")
    );
}

/// The console's pages change nothing in the store themselves: every change is an in-process
/// request to the API router (`crate::api::Api`), which the route table decides. The only
/// writes a page makes are the session's own one-time message (`set_flash`/`take_flash`) and
/// a person accepting their own invitation (`people_edit::edit` in `pages/orgs.rs`, which no
/// API route does in Atlas either).
#[test]
fn console_pages_call_the_api_in_process() {
    let root = workspace_root();
    let pages = rust_files(&root.join("crates/console/src/pages"));
    assert!(pages.len() >= 7, "found only {pages:?}");
    let writes = [
        ".create_",
        ".update_",
        ".delete_",
        ".put_",
        ".edit_people(",
        ".revoke",
        ".grant",
        ".record_",
        ".add_",
        ".remove_",
        ".set_",
        ".insert_",
        ".bootstrap(",
        ".swap_meta(",
    ];
    let mut hits = Vec::new();
    for f in &pages {
        let text = std::fs::read_to_string(f).unwrap();
        let r = rel(&root, f);
        for (n, code) in production_lines(&text) {
            let write = writes.iter().find(|w| code.contains(*w));
            let allowed = code.contains(".set_flash(")
                || (r.ends_with("pages/orgs.rs") && code.contains("people_edit::edit("));
            if let (Some(w), false) = (write, allowed) {
                hits.push(format!("{r}:{n}: {w}: {}", code.trim()));
            }
        }
    }
    assert!(
        hits.is_empty(),
        "a console page writes to the store itself; make the change an API call (Api::ok) so \
         the route table decides it:\n{}",
        hits.join("\n")
    );
    let api = std::fs::read_to_string(root.join("crates/console/src/api.rs")).unwrap();
    assert!(
        api.contains("InProcessCaller(self.principal.clone())"),
        "the console's API calls must carry the person's principal"
    );
}
