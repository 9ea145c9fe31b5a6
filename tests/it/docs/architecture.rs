//! ARCHITECTURE.md held to the code. The page names paths, functions,
//! types and tests in backticks, and draws the layers as a `text` block;
//! none of that is run by the docs harness, so this checks it:
//!
//! - every path (`src/...`, `tests/...`, `scripts/...`, a link's target)
//!   exists, a `*` matching at least one file;
//! - every Rust-looking name exists in `src/` or `tests/it/`: a path
//!   (`outcome::exit_code`, `Supervisor::on`, `lock::scripts::Acquire`) is
//!   resolved segment by segment (a module's file, an inline module, a
//!   type's definition and `impl` blocks), the last segment defined there;
//!   a lone `snake_case` or `name()` is a function, a lone `CamelCase` a
//!   type or variant, an `UPPER_CASE` name a constant or an environment
//!   variable the code reads;
//! - the layer diagram lists every top-level module of `src/` once, and
//!   no module uses (`crate::x` outside its tests) one on a line above it.
//!
//! A lone lowercase word (`run`, `console`) is not checked: it is as often
//! a word as a name.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::markdown::blocks;
use super::root;

/// Crates whose paths are not ours to check.
const EXTERNAL: [&str; 10] = [
    "std",
    "tokio",
    "nix",
    "clap",
    "redis",
    "anyhow",
    "tracing",
    "serde",
    "futures_util",
    "libc",
];

/// Macros that are not defined here.
const EXTERNAL_MACROS: [&str; 3] = ["select", "format", "println"];

/// This file, left out of the code it checks against.
const THIS: &str = "tests/it/docs/architecture.rs";

/// Where a relative path may start.
const PATH_ROOTS: [&str; 6] = ["src/", "tests/", "scripts/", "docs/", ".ci/", "benches/"];

/// The sources a name may be found in, by path relative to the root.
struct Code {
    files: BTreeMap<PathBuf, String>,
    /// Text a variable name may be read in (scripts/ and .ci/ besides).
    other: String,
}

impl Code {
    fn load(root: &Path) -> Code {
        let mut files = BTreeMap::new();
        for dir in ["src", "tests/it"] {
            for path in walk(&root.join(dir)) {
                // Not this file: it names what does not exist, on purpose.
                if path.extension().is_some_and(|e| e == "rs") && !path.ends_with(THIS) {
                    let text = std::fs::read_to_string(&path).unwrap();
                    files.insert(path.strip_prefix(root).unwrap().to_path_buf(), text);
                }
            }
        }
        let mut other = String::new();
        for dir in ["scripts", ".ci"] {
            for path in walk(&root.join(dir)) {
                other += &std::fs::read_to_string(&path).unwrap_or_default();
            }
        }
        Code { files, other }
    }

    fn all(&self) -> Vec<&Path> {
        self.files.keys().map(PathBuf::as_path).collect()
    }

    fn text(&self, f: &Path) -> &str {
        &self.files[f]
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries {
        let path = e.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out.sort();
    out
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn is_ident(s: &str) -> bool {
    !s.is_empty() && s.chars().all(is_ident_char) && !s.starts_with(|c: char| c.is_ascii_digit())
}

/// `line` starts with `word` as a whole word; what follows it.
fn after_word<'a>(line: &'a str, word: &str) -> Option<&'a str> {
    let rest = line.strip_prefix(word)?;
    (!rest.starts_with(is_ident_char)).then_some(rest)
}

/// A declaration without its visibility and qualifiers (`pub(crate) async
/// fn f` is `fn f`).
fn bare(mut t: &str) -> &str {
    loop {
        let before = t;
        for p in ["pub(crate) ", "pub(super) ", "pub ", "async ", "unsafe "] {
            t = t.strip_prefix(p).unwrap_or(t);
        }
        if t.starts_with("const fn ") {
            t = &t["const ".len()..];
        }
        if t == before {
            return t;
        }
    }
}

/// Whether `text` defines `name`: a fn, type, trait, const, static,
/// module, macro, a variant or field (`Name(`, `Name {`, `name:`), or a
/// `pub use` that re-exports it.
fn defines(text: &str, name: &str) -> bool {
    let mut in_use = false;
    for line in text.lines() {
        let t = line.trim_start();
        if in_use || t.starts_with("pub use ") || t.starts_with("pub(crate) use ") {
            in_use = t.contains('{') && !t.contains('}') || in_use && !t.contains('}');
            if t.split(|c: char| !is_ident_char(c)).any(|w| w == name) {
                return true;
            }
            continue;
        }
        let t = bare(t);
        for kw in [
            "fn ",
            "struct ",
            "enum ",
            "trait ",
            "type ",
            "const ",
            "static ",
            "mod ",
            "union ",
            "macro_rules! ",
        ] {
            if t.strip_prefix(kw)
                .and_then(|r| after_word(r, name))
                .is_some()
            {
                return true;
            }
        }
        if let Some(rest) = after_word(t, name) {
            let variant = name.starts_with(|c: char| c.is_uppercase())
                && (rest.is_empty()
                    || [",", "(", " {", " =", "{"]
                        .iter()
                        .any(|p| rest.starts_with(p)));
            let field = rest.starts_with(':') && !rest.starts_with("::");
            if variant || field {
                return true;
            }
        }
    }
    false
}

/// The files about type `name`: its definition and its `impl` blocks.
fn about_type<'a>(code: &'a Code, name: &str) -> Vec<&'a Path> {
    code.all()
        .into_iter()
        .filter(|f| {
            code.text(f).lines().any(|l| {
                let t = bare(l.trim_start());
                let impl_of = t.starts_with("impl")
                    && t.split(|c: char| !is_ident_char(c))
                        .take_while(|w| *w != "where")
                        .any(|w| w == name);
                let def = ["struct ", "enum ", "trait "].iter().any(|kw| {
                    t.strip_prefix(kw)
                        .and_then(|r| after_word(r, name))
                        .is_some()
                });
                impl_of || def
            })
        })
        .collect()
}

/// The files of module `seg` inside `scope` (None: a top-level module of
/// the crate or of the test binary).
fn module_files<'a>(code: &'a Code, scope: Option<&[&Path]>, seg: &str) -> Vec<&'a Path> {
    let dirs: Vec<PathBuf> = match scope {
        None if seg == "redlock_run" || seg == "crate" => {
            return code
                .all()
                .into_iter()
                .filter(|f| *f == Path::new("src/lib.rs"))
                .collect();
        }
        None => vec![PathBuf::from("src"), PathBuf::from("tests/it")],
        Some(files) => files
            .iter()
            .map(|f| {
                let stem = f.file_stem().unwrap().to_string_lossy();
                let parent = f.parent().unwrap().to_path_buf();
                if ["mod", "lib", "main"].contains(&stem.as_ref()) {
                    parent
                } else {
                    parent.join(stem.as_ref())
                }
            })
            .collect(),
    };
    let wanted: Vec<PathBuf> = dirs
        .iter()
        .flat_map(|d| [d.join(format!("{seg}.rs")), d.join(seg).join("mod.rs")])
        .collect();
    code.all()
        .into_iter()
        .filter(|f| wanted.iter().any(|w| w == f))
        .collect()
}

/// Resolve `a::b::c` (a trailing `()` dropped): None if it is found.
fn resolve(code: &Code, path: &str) -> Option<String> {
    let segs: Vec<&str> = path.trim_end_matches("()").split("::").collect();
    if EXTERNAL.contains(&segs[0]) {
        return None;
    }
    let mut scope: Option<Vec<&Path>> = None;
    for (i, seg) in segs.iter().enumerate() {
        let files = scope.clone().unwrap_or_else(|| code.all());
        if i == segs.len() - 1 {
            return if files.iter().any(|f| defines(code.text(f), seg)) {
                None
            } else {
                Some(format!("`{path}`: no `{seg}` defined where `{path}` says"))
            };
        }
        let modules = module_files(code, scope.as_deref(), seg);
        if !modules.is_empty() {
            scope = Some(modules);
            continue;
        }
        let inline = scope.is_some()
            && files.iter().any(|f| {
                code.text(f).lines().any(|l| {
                    bare(l.trim_start())
                        .strip_prefix("mod ")
                        .and_then(|r| after_word(r, seg))
                        .is_some()
                })
            });
        if inline {
            continue;
        }
        if scope.is_some() && !files.iter().any(|f| defines(code.text(f), seg)) {
            return Some(format!("`{path}`: no `{seg}` where `{path}` says"));
        }
        let types = about_type(code, seg);
        if types.is_empty() {
            return Some(format!("`{path}`: no module or type `{seg}`"));
        }
        scope = Some(types);
    }
    None
}

/// Whether relative `path` (a `*` allowed in its last part, a trailing
/// `/` for a directory) names something under one of `bases`.
fn path_exists(bases: &[PathBuf], path: &str) -> bool {
    let path = path.split('#').next().unwrap_or(path);
    let (dir, file) = path
        .trim_end_matches('/')
        .rsplit_once('/')
        .unwrap_or(("", path));
    let file = file.trim_end_matches('/');
    bases.iter().any(|base| {
        let d = base.join(dir);
        match file.split_once('*') {
            None => {
                let p = d.join(file);
                if path.ends_with('/') {
                    p.is_dir()
                } else {
                    p.exists()
                }
            }
            Some((pre, post)) => std::fs::read_dir(&d).is_ok_and(|mut es| {
                es.any(|e| {
                    let n = e.unwrap().file_name().to_string_lossy().into_owned();
                    n.starts_with(pre) && n.ends_with(post) && n.len() >= pre.len() + post.len()
                })
            }),
        }
    })
}

/// The inline code spans of `text` outside its fenced blocks, and the
/// targets of its relative links.
fn spans_and_links(text: &str) -> (Vec<String>, Vec<String>) {
    let (mut spans, mut links, mut fenced) = (Vec::new(), Vec::new(), false);
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        // Odd parts are spans; an unclosed backtick's text is outside.
        let parts: Vec<&str> = line.split('`').collect();
        let closed = parts.len() - usize::from(parts.len() % 2 == 0);
        let mut outside = String::new();
        for (i, p) in parts.iter().enumerate() {
            if i % 2 == 1 && i < closed {
                spans.push(p.to_string());
            } else {
                outside.push_str(p);
            }
        }
        for (at, _) in outside.match_indices("](") {
            let target = &outside[at + 2..];
            let target = &target[..target.find(')').unwrap_or(target.len())];
            if !target.contains("://") && !target.starts_with('#') {
                links.push(target.to_string());
            }
        }
    }
    (spans, links)
}

/// What one span names that does not exist, if anything.
fn check_span(code: &Code, root: &Path, span: &str) -> Option<String> {
    let bases = [root.to_path_buf(), root.join("src"), root.join("tests/it")];
    if span.contains(char::is_whitespace) {
        // A command line: its paths.
        return span
            .split_whitespace()
            .filter(|w| PATH_ROOTS.iter().any(|r| w.starts_with(r)))
            .find(|w| !path_exists(&bases, w))
            .map(|w| format!("`{span}`: no {w}"));
    }
    let is_path = span.contains('/') && !span.starts_with("//") && !span.contains("://");
    if is_path
        || [".rs", ".lua", ".md", ".c"]
            .iter()
            .any(|e| span.ends_with(e))
    {
        return (!path_exists(&bases, span)).then(|| format!("`{span}`: no such file"));
    }
    let name = span.split('=').next().unwrap_or(span);
    if let Some(m) = name.strip_suffix('!') {
        let known = EXTERNAL_MACROS.contains(&m)
            || code.all().iter().any(|f| {
                code.text(f).lines().any(|l| {
                    l.trim_start()
                        .strip_prefix("macro_rules! ")
                        .and_then(|r| after_word(r, m))
                        .is_some()
                })
            });
        return (is_ident(m) && !known).then(|| format!("`{span}`: no macro {m}!"));
    }
    let path = name.trim_end_matches("()");
    if !path.split("::").all(is_ident) {
        return None;
    }
    if path.contains("::") {
        return resolve(code, path);
    }
    let upper = path
        .chars()
        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    if upper {
        if !path.contains('_') {
            return None; // SIGKILL, KEYS, READY: words as often as names
        }
        let word = |t: &str| t.split(|c: char| !is_ident_char(c)).any(|w| w == path);
        let found = code.all().iter().any(|f| word(code.text(f))) || word(&code.other);
        return (!found).then(|| format!("`{span}`: {path} appears nowhere in the code"));
    }
    let camel = path.starts_with(|c: char| c.is_ascii_uppercase());
    if camel || path.contains('_') || name.ends_with("()") {
        let found = code.all().iter().any(|f| defines(code.text(f), path));
        return (!found).then(|| format!("`{span}`: nothing named {path} is defined"));
    }
    None
}

/// The top-level modules of the library (not those only tests build),
/// with `main` and `lib`.
fn top_modules(code: &Code) -> Vec<String> {
    let lib = code.text(Path::new("src/lib.rs"));
    let mut out = vec!["main".to_string(), "lib".to_string()];
    let mut test_only = false;
    for line in lib.lines() {
        let t = line.trim();
        if let Some(m) = bare(t)
            .strip_prefix("mod ")
            .and_then(|r| r.strip_suffix(';'))
        {
            if !test_only {
                out.push(m.to_string());
            }
        }
        test_only = t == "#[cfg(test)]";
    }
    out
}

/// The top-level modules `text` refers to as `crate::x` or
/// `crate::{x, y::z}`, its comments and its test module left out.
fn uses(text: &str) -> Vec<String> {
    let mut code = String::new();
    let mut lines = text.lines().peekable();
    while let Some(l) = lines.next() {
        if l.trim() == "#[cfg(test)]"
            && lines
                .peek()
                .is_some_and(|n| n.trim_end().ends_with('{') && n.contains("mod "))
        {
            break;
        }
        if !l.trim_start().starts_with("//") {
            code += l;
            code.push('\n');
        }
    }
    let mut out = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        if code[..at].ends_with(|c: char| is_ident_char(c) || c == '$') {
            continue;
        }
        let rest = &code[at + "crate::".len()..];
        match rest.strip_prefix('{') {
            Some(group) => {
                let (mut depth, mut item_start) = (0, true);
                let mut word = String::new();
                for c in group.chars() {
                    if is_ident_char(c) && item_start && depth == 0 {
                        word.push(c);
                        continue;
                    }
                    if !word.is_empty() {
                        out.push(std::mem::take(&mut word));
                        item_start = false;
                    }
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => item_start = true,
                        _ => {}
                    }
                }
                if !word.is_empty() {
                    out.push(word);
                }
            }
            None => out.push(rest.chars().take_while(|c| is_ident_char(*c)).collect()),
        }
    }
    out.retain(|m| m != "self");
    out
}

/// The layer diagram (the first `text` block): each line's modules, from
/// the top. A line is `name, name/, file.rs   description`.
fn layer_lines(page: &str) -> Vec<Vec<String>> {
    let Some(block) = blocks("ARCHITECTURE.md", page)
        .into_iter()
        .find(|b| b.lang == "text")
    else {
        return Vec::new();
    };
    block
        .body
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let names = l.trim().split("  ").next().unwrap_or("");
            names
                .split(',')
                .map(|n| {
                    let n = n.trim().trim_end_matches('/').trim_end_matches(".rs");
                    n.rsplit('/').next().unwrap_or(n).to_string()
                })
                .collect()
        })
        .collect()
}

/// What the layer diagram gets wrong: a module missing or listed twice,
/// a name that is not a module, a use of a module on a line above.
fn check_layers(code: &Code, page: &str) -> Vec<String> {
    let lines = layer_lines(page);
    let mut problems = Vec::new();
    let mut line_of: BTreeMap<String, usize> = BTreeMap::new();
    for (i, names) in lines.iter().enumerate() {
        for n in names {
            if line_of.insert(n.clone(), i).is_some() {
                problems.push(format!("layers: {n} is listed twice"));
            }
        }
    }
    let modules = top_modules(code);
    for m in &modules {
        if !line_of.contains_key(m) {
            problems.push(format!(
                "layers: module {m} (src/lib.rs) is not in the diagram"
            ));
        }
    }
    for n in line_of.keys() {
        if !modules.contains(n) {
            problems.push(format!("layers: {n} is not a top-level module of src/"));
        }
    }
    for (m, &line) in &line_of {
        if m == "main" || m == "lib" {
            continue;
        }
        let files: Vec<&Path> = code
            .all()
            .into_iter()
            .filter(|f| {
                *f == Path::new("src").join(format!("{m}.rs"))
                    || f.starts_with(Path::new("src").join(m))
            })
            .collect();
        for f in files {
            for used in uses(code.text(f)) {
                if let Some(&above) = line_of.get(&used) {
                    if above < line {
                        problems.push(format!(
                            "layers: {} uses {used}, which the diagram puts on a line above {m}",
                            f.display()
                        ));
                    }
                }
            }
        }
    }
    problems
}

/// The functions the `rust` blocks call (`name(`, `.name(`, `Type::name(`)
/// that nothing defines: an example is not compiled, but what it calls
/// must exist.
fn check_calls(code: &Code, page: &str) -> Vec<String> {
    let mut problems = Vec::new();
    for block in blocks("ARCHITECTURE.md", page) {
        if block.lang != "rust" {
            continue;
        }
        let body = &block.body;
        for (at, _) in body.match_indices('(') {
            let before = &body[..at];
            let name: String = before
                .chars()
                .rev()
                .take_while(|c| is_ident_char(*c))
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            let head = &before[..before.len() - name.len()];
            if !is_ident(&name) || head.ends_with("fn ") || head.ends_with('!') {
                continue;
            }
            if !code.all().iter().any(|f| defines(code.text(f), &name)) {
                problems.push(format!(
                    "{}: the example calls {name}(), defined nowhere",
                    block.at
                ));
            }
        }
    }
    problems
}

/// Everything `page` names that the code does not have.
fn check(code: &Code, root: &Path, page: &str) -> Vec<String> {
    let (spans, links) = spans_and_links(page);
    let bases = [root.to_path_buf()];
    let mut problems: Vec<String> = spans
        .iter()
        .filter_map(|s| check_span(code, root, s))
        .collect();
    problems.extend(
        links
            .iter()
            .filter(|l| !path_exists(&bases, l))
            .map(|l| format!("link to {l}: no such file")),
    );
    problems.extend(check_layers(code, page));
    problems.extend(check_calls(code, page));
    problems.dedup();
    problems
}

#[test]
fn architecture_names_only_what_the_code_has() {
    let root = root();
    let page = std::fs::read_to_string(root.join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let code = Code::load(&root);
    let (spans, _) = spans_and_links(&page);
    assert!(
        spans.len() > 100,
        "only {} names found in ARCHITECTURE.md",
        spans.len()
    );
    assert!(layer_lines(&page).len() >= 5, "no layer diagram found");
    let problems = check(&code, &root, &page);
    assert!(
        problems.is_empty(),
        "ARCHITECTURE.md disagrees with the code (fix the page, or the name that moved):\n  {}",
        problems.join("\n  ")
    );
}

/// The check sees what it is for: wrong names, paths and layers fail, the
/// shapes of right ones pass.
#[test]
fn the_architecture_check_finds_what_does_not_exist() {
    let root = root();
    let code = Code::load(&root);
    let good = [
        "src/lock/lua/*.lua",
        "tests/it/support/",
        "scripts/test --lib",
        "outcome::exit_code",
        "outcome::tests::no_module_below_the_entry_picks_an_exit_code",
        "Supervisor::on",
        "Locker::try_acquire_until",
        "lock::scripts::Acquire",
        "Failure::Usage",
        "support::Rr",
        "redlock_run::main",
        "Rr::key_absent",
        "usable_until",
        "WaitObserver",
        "REDLOCK_TEST_SERVER=valkey-9.1",
        "scenario!",
    ];
    for s in good {
        assert_eq!(check_span(&code, &root, s), None, "{s}");
    }
    let bad = [
        "src/lock/lua/*.py",
        "tests/it/nowhere/",
        "scripts/no-such-script --lib",
        "outcome::no_such_function",
        "outcome::tests::no_such_test",
        "Supervisor::no_such_method",
        "NoSuchType::on",
        "lock::no_such_module::Acquire",
        "Failure::NoSuchVariant",
        "no_such_function()",
        "NoSuchType",
        "REDLOCK_NO_SUCH_SWITCH",
        "no_such_macro!",
    ];
    for s in bad {
        assert!(check_span(&code, &root, s).is_some(), "{s} passed");
    }
    // A link, and the layers: a missing module, an unknown one, and `lock`
    // put above `config`, which it uses.
    let modules: Vec<String> = top_modules(&code)
        .into_iter()
        .filter(|m| !["main", "lib", "lock", "config", "run"].contains(&m.as_str()))
        .collect();
    let page = format!(
        "[x](docs/nowhere.md)\n\n```text\nmain.rs, lib.rs   entry\nconfig, nosuch   config\nlock/   lock\n{}   rest\n```\n\n```rust\nRr::on(&s).args([\"-q\"]).no_such_call();\n```\n",
        modules.join(", ")
    );
    let problems = check(&code, &root, &page);
    for want in [
        "docs/nowhere.md",
        "module run (src/lib.rs) is not in the diagram",
        "nosuch is not a top-level module",
        "uses config, which the diagram puts on a line above lock",
        "calls no_such_call()",
    ] {
        assert!(
            problems.iter().any(|p| p.contains(want)),
            "{want:?} not among {problems:#?}"
        );
    }
    assert_eq!(
        uses(
            "use crate::{a, b::{c, d}, e::F};\n// crate::z\nfn f() { crate::g::h(); }\n#[cfg(test)]\nmod tests {\n use crate::t;\n}\n"
        ),
        ["a", "b", "e", "g"]
    );
}
