//! Checks on the shape of `src/` that the compiler does not make: no import
//! cycle between top-level modules, the lock and the supervisor free of
//! clap's types, no public module (what is public is
//! re-exported by `lib.rs`), and no function over 80 lines without a reason
//! written above it (`// Over 80 lines: <why>`).
//!
//! The checks read the source files. A small scanner drops comments and
//! literals, then collects each top-level module's references to the
//! others: `crate::x`, `use crate::{x, y}`, `super::` (resolved against the
//! file and its inline modules), and in `lib.rs` the bare `x::`. Code under
//! `#[cfg(test)]` is left out of the references: a test may use any layer.
//! A function's length runs from its `fn` to its closing brace, tests
//! included.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The crate root's name in the graph (`lib.rs`, the entry).
const ROOT: &str = "lib";

/// One top-level module's reference to another, and where it was first seen.
type Edges = BTreeMap<(String, String), String>;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    /// `::`
    Sep,
    Punct(char),
}

/// `src` with comments, strings and character literals blanked out
/// (newlines kept, so line numbers still hold).
fn strip(src: &str) -> String {
    let c: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < c.len() {
        match skipped(&c, i) {
            Some(end) => {
                let end = end.min(c.len());
                out.extend(
                    c[i..end]
                        .iter()
                        .map(|&ch| if ch == '\n' { ch } else { ' ' }),
                );
                i = end;
            }
            None => {
                out.push(c[i]);
                i += 1;
            }
        }
    }
    out
}

/// Where the comment or literal that starts at `i` ends (exclusive), if
/// one does.
fn skipped(c: &[char], i: usize) -> Option<usize> {
    let at = |k: usize| c.get(k).copied().unwrap_or('\0');
    let word_before = i > 0 && (c[i - 1].is_alphanumeric() || c[i - 1] == '_');
    match (c[i], at(i + 1)) {
        ('/', '/') => Some((i..c.len()).find(|&k| c[k] == '\n').unwrap_or(c.len())),
        ('/', '*') => Some(block_comment_end(c, i)),
        ('r', '"' | '#') | ('b', 'r') if !word_before => raw_string_end(c, i),
        ('"', _) => {
            let mut k = i + 1;
            while k < c.len() && c[k] != '"' {
                k += if c[k] == '\\' { 2 } else { 1 };
            }
            Some(k + 1)
        }
        // A character literal ('x', '\n', '\u{..}'); not a lifetime ('a).
        ('\'', '\\') => (i + 3..c.len()).find(|&k| c[k] == '\'').map(|k| k + 1),
        ('\'', _) if at(i + 2) == '\'' => Some(i + 3),
        _ => None,
    }
}

/// The end of the block comment at `i`, nested ones included.
fn block_comment_end(c: &[char], i: usize) -> usize {
    let (mut depth, mut k) = (0, i);
    while k + 1 < c.len() {
        match (c[k], c[k + 1]) {
            ('/', '*') => depth += 1,
            ('*', '/') => depth -= 1,
            _ => {
                k += 1;
                continue;
            }
        }
        k += 2;
        if depth == 0 {
            return k;
        }
    }
    c.len()
}

/// The end of the raw string (`r".."`, `r#".."#`, `br".."`) at `i`; None
/// for a raw identifier (`r#type`) or a plain word.
fn raw_string_end(c: &[char], i: usize) -> Option<usize> {
    let mut k = i + 1 + usize::from(c[i] == 'b');
    let hashes = c[k..].iter().take_while(|&&ch| ch == '#').count();
    k += hashes;
    if c.get(k) != Some(&'"') {
        return None;
    }
    let closes = |j: usize| {
        c[j] == '"'
            && c[j + 1..]
                .iter()
                .take(hashes)
                .filter(|&&h| h == '#')
                .count()
                == hashes
    };
    (k + 1..c.len())
        .find(|&j| closes(j))
        .map(|j| j + 1 + hashes)
}

/// The tokens of stripped source, each with its line (1-based).
fn tokens(src: &str) -> Vec<(Tok, usize)> {
    let c: Vec<char> = strip(src).chars().collect();
    let (mut out, mut line, mut i) = (Vec::new(), 1, 0);
    while i < c.len() {
        let ch = c[i];
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch.is_alphabetic() || ch == '_' {
            let start = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            out.push((Tok::Ident(c[start..i].iter().collect()), line));
        } else if ch.is_ascii_digit() {
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
        } else if ch == ':' && c.get(i + 1) == Some(&':') {
            out.push((Tok::Sep, line));
            i += 2;
        } else {
            out.push((Tok::Punct(ch), line));
            i += 1;
        }
    }
    out
}

/// The module path of a file under `src/`: `lock/mod.rs` is `[lock]`,
/// `lock/wait.rs` is `[lock, wait]`, `lib.rs` is `[]`.
fn file_path(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap_or_default();
    let stem = last.trim_end_matches(".rs");
    if !(stem == "mod" || (parts.is_empty() && stem == "lib")) {
        parts.push(stem.to_owned());
    }
    parts
}

/// The top-level module a path names: its first segment, if that is one of
/// `modules`, else the crate root.
fn top(first: &str, modules: &BTreeSet<String>) -> String {
    if modules.contains(first) {
        first.to_owned()
    } else {
        ROOT.to_owned()
    }
}

/// The name at token `k`, if it is one.
fn ident(toks: &[(Tok, usize)], k: usize) -> Option<&str> {
    match toks.get(k) {
        Some((Tok::Ident(s), _)) => Some(s.as_str()),
        _ => None,
    }
}

/// Whether token `k` is `t`.
fn is(toks: &[(Tok, usize)], k: usize, t: Tok) -> bool {
    toks.get(k).map(|x| &x.0) == Some(&t)
}

/// Whether `#[cfg(test)]` starts at token `k`.
fn is_cfg_test(toks: &[(Tok, usize)], k: usize) -> bool {
    is(toks, k, Tok::Punct('#'))
        && is(toks, k + 1, Tok::Punct('['))
        && ident(toks, k + 2) == Some("cfg")
        && is(toks, k + 3, Tok::Punct('('))
        && ident(toks, k + 4) == Some("test")
        && is(toks, k + 5, Tok::Punct(')'))
}

/// Adds the references of one file (`rel`, under `src/`) to `edges`.
fn scan(rel: &Path, src: &str, modules: &BTreeSet<String>, edges: &mut Edges) {
    let toks = tokens(src);
    let base = file_path(rel);
    let from = base.first().cloned().unwrap_or_else(|| ROOT.to_owned());
    // Open braces: Some(name) for an inline module; and whether it is test code.
    let mut scopes: Vec<(Option<String>, bool)> = Vec::new();
    let mut pending_test = false;
    let mut k = 0;
    while k < toks.len() {
        let skipping = pending_test || scopes.iter().any(|s| s.1);
        match &toks[k].0 {
            Tok::Punct('#') if is_cfg_test(&toks, k) => {
                pending_test = true;
                k += 6;
                continue;
            }
            Tok::Punct('{') => {
                let name = (k >= 2 && ident(&toks, k - 2) == Some("mod"))
                    .then(|| ident(&toks, k - 1).unwrap_or("").to_owned());
                scopes.push((name, skipping));
                pending_test = false;
            }
            Tok::Punct('}') => {
                scopes.pop();
            }
            Tok::Punct(';') => pending_test = false,
            Tok::Ident(_) if !skipping && (k == 0 || !is(&toks, k - 1, Tok::Sep)) => {
                let mut here = base.clone();
                here.extend(scopes.iter().filter_map(|s| s.0.clone()));
                let (found, next) = path_targets(&toks, k, here, modules);
                for (to, line) in found.into_iter().filter(|(to, _)| *to != from) {
                    let site = format!("src/{}:{line} ({from} -> {to})", rel.display());
                    edges.entry((from.clone(), to)).or_insert(site);
                }
                k = next.max(k + 1);
                continue;
            }
            _ => {}
        }
        k += 1;
    }
}

/// The top-level modules a path starting at token `k`, written in module
/// `here`, names (with the line of each), and the token after what was
/// read. A path that is not `crate::`, `self::`, `super::` or, in the
/// root, a module's name names none.
fn path_targets(
    toks: &[(Tok, usize)],
    k: usize,
    mut here: Vec<String>,
    modules: &BTreeSet<String>,
) -> (Vec<(String, usize)>, usize) {
    let line = toks[k].1;
    if !is(toks, k + 1, Tok::Sep) {
        return (Vec::new(), k + 1);
    }
    // The module the path starts in, and the token after that start.
    let (start, j) = match ident(toks, k) {
        Some("crate") => (Vec::new(), k + 2),
        Some("self") => (here, k + 2),
        Some("super") => {
            let mut j = k;
            while ident(toks, j) == Some("super") && is(toks, j + 1, Tok::Sep) {
                here.pop();
                j += 2;
            }
            (here, j)
        }
        Some(w) if here.is_empty() && modules.contains(w) => (Vec::new(), k),
        _ => return (Vec::new(), k + 1),
    };
    if let Some(first) = start.first() {
        return (vec![(top(first, modules), line)], j);
    }
    match ident(toks, j) {
        Some(name) => (vec![(top(name, modules), line)], j + 1),
        None if is(toks, j, Tok::Punct('{')) => group_heads(toks, j, modules),
        None => (Vec::new(), j),
    }
}

/// `{a, b::c, d::{e}}` from the root: the top-level module of each part's
/// first name, and the token after the group.
fn group_heads(
    toks: &[(Tok, usize)],
    open: usize,
    modules: &BTreeSet<String>,
) -> (Vec<(String, usize)>, usize) {
    let mut found = Vec::new();
    let (mut depth, mut first_of_part) = (0, true);
    for (j, (tok, line)) in toks.iter().enumerate().skip(open) {
        match tok {
            Tok::Punct('{') => depth += 1,
            Tok::Punct('}') if depth == 1 => return (found, j + 1),
            Tok::Punct('}') => depth -= 1,
            Tok::Punct(',') if depth == 1 => {
                first_of_part = true;
                continue;
            }
            Tok::Ident(n) if depth == 1 && first_of_part && n != "self" => {
                found.push((top(n, modules), *line));
            }
            _ => {}
        }
        first_of_part = depth == 1 && first_of_part && matches!(tok, Tok::Punct('{'));
    }
    (found, toks.len())
}

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("read src/") {
        let p = e.expect("dir entry").path();
        if p.is_dir() {
            out.extend(rust_files(&p));
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// Every source file under `src/`: its path under `src/`, and its text.
fn sources() -> Vec<(PathBuf, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    rust_files(&src)
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("read a source file");
            (
                p.strip_prefix(&src).expect("under src/").to_path_buf(),
                text,
            )
        })
        .collect()
}

/// The references between the library's top-level modules (the binary,
/// `main.rs`, is a crate of its own and left out).
fn graph() -> Edges {
    let files: Vec<(PathBuf, String)> = sources()
        .into_iter()
        .filter(|(p, _)| p != Path::new("main.rs"))
        .collect();
    let modules: BTreeSet<String> = files
        .iter()
        .filter_map(|(p, _)| file_path(p).first().cloned())
        .collect();
    let mut edges = Edges::new();
    for (rel, text) in &files {
        scan(rel, text, &modules, &mut edges);
    }
    edges
}

/// A function longer than this (from `fn` to its closing brace) says why
/// above it.
const MAX_LINES: usize = 80;

/// How it says why: a line comment among its doc comments and attributes,
/// `// Over 80 lines: <the reason>`.
const REASON: &str = "// Over 80 lines:";

/// Each function with a body in `src`: its name, the line of its `fn`, and
/// its length in lines.
fn functions(src: &str) -> Vec<(String, usize, usize)> {
    let toks = tokens(src);
    let mut out = Vec::new();
    for (k, (tok, line)) in toks.iter().enumerate() {
        let (Tok::Ident(kw), Some((Tok::Ident(name), _))) = (tok, toks.get(k + 1)) else {
            continue;
        };
        if kw != "fn" {
            continue;
        }
        // The body: the first `{` outside the parameters and types, unless
        // a `;` (no body) comes first.
        let mut depth = 0i32;
        let Some(open) = (k + 2..toks.len()).find(|&j| {
            match toks[j].0 {
                Tok::Punct('(' | '[') => depth += 1,
                Tok::Punct(')' | ']') => depth -= 1,
                Tok::Punct('{' | ';') if depth == 0 => return true,
                _ => {}
            }
            false
        }) else {
            continue;
        };
        if toks[open].0 == Tok::Punct(';') {
            continue;
        }
        let mut braces = 0;
        let close = (open..toks.len()).find(|&j| {
            match toks[j].0 {
                Tok::Punct('{') => braces += 1,
                Tok::Punct('}') => braces -= 1,
                _ => {}
            }
            braces == 0
        });
        let end = close.map_or(*line, |j| toks[j].1);
        out.push((name.clone(), *line, end - line + 1));
    }
    out
}

/// Whether the lines just above line `at` (1-based: its doc comments and
/// attributes) hold the reason marker.
fn reason_above(src: &str, at: usize) -> bool {
    src.lines()
        .take(at - 1)
        .collect::<Vec<_>>()
        .iter()
        .rev()
        .map(|l| l.trim())
        .take_while(|l| l.starts_with("//") || l.starts_with("#["))
        .any(|l| l.starts_with(REASON))
}

/// The import cycles, each as the sites of its references: the shortest
/// cycle through each module that no shorter cycle shown passes.
fn cycles(edges: &Edges) -> Vec<Vec<String>> {
    let mut next: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (a, b) in edges.keys() {
        next.entry(a).or_default().push(b);
    }
    let reach = |from: &str| -> BTreeMap<String, String> {
        // Breadth first: each reached module and the one it was reached from.
        let mut prev = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([from.to_owned()]);
        while let Some(m) = queue.pop_front() {
            for &n in next.get(m.as_str()).into_iter().flatten() {
                if !prev.contains_key(n) {
                    prev.insert(n.to_owned(), m.clone());
                    queue.push_back(n.to_owned());
                }
            }
        }
        prev
    };
    // The shortest cycle through each module, shortest first.
    let mut rings: Vec<Vec<String>> = Vec::new();
    for m in next.keys() {
        let prev = reach(m);
        if !prev.contains_key(*m) {
            continue;
        }
        // Walk back from m to m.
        let mut ring = vec![m.to_string()];
        let mut at = prev[*m].clone();
        while at != *m {
            ring.push(at.clone());
            at = prev[&at].clone();
        }
        ring.reverse();
        rings.push(std::iter::once(m.to_string()).chain(ring).collect());
    }
    rings.sort_by_key(|r| r.len());
    // Each module on a cycle is shown on at least one.
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut out = Vec::new();
    for ring in rings {
        if seen.contains(&ring[0]) {
            continue;
        }
        let sites: Vec<String> = ring
            .windows(2)
            .map(|w| edges[&(w[0].clone(), w[1].clone())].clone())
            .collect();
        seen.extend(ring);
        out.push(sites);
    }
    out
}

#[test]
fn no_import_cycle_between_top_level_modules() {
    let found = cycles(&graph());
    let text: Vec<String> = found
        .iter()
        .map(|sites| format!("  cycle:\n    {}", sites.join("\n    ")))
        .collect();
    assert!(
        found.is_empty(),
        "import cycles between modules of src/ (break each: move what both need to a module below both):\n{}",
        text.join("\n")
    );
}

/// Modules that take plain values, never the command line's clap types
/// (`cli`): the lock, and the supervisor with what it drives.
const PLAIN_VALUES: [&str; 4] = ["lock", "supervise", "guardian", "child"];

#[test]
fn the_lock_and_the_supervisor_never_use_the_command_line() {
    let uses: Vec<String> = graph()
        .into_iter()
        .filter(|((from, to), _)| PLAIN_VALUES.contains(&from.as_str()) && to == "cli")
        .map(|(_, site)| format!("  {site}"))
        .collect();
    assert!(
        uses.is_empty(),
        "these take plain values (config turns the command line into them):\n{}",
        uses.join("\n")
    );
}

#[test]
fn the_scanner_reads_paths_not_comments_strings_or_tests() {
    let modules: BTreeSet<String> = ["a", "b", "c", "d", "e", "f", "g"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let src = r##"
        use crate::{b::X, c};
        // crate::d in a comment
        const S: &str = "crate::d in a string"; const R: &str = r#"crate::d"#;
        const C: char = '"'; fn f<'a>(x: &'a str) { super::e::g(); }
        #[cfg(test)]
        mod tests { use crate::f; }
        #[cfg(test)] use crate::f;
        mod inner { fn h() { super::super::g::h(); } }
    "##;
    let mut edges = Edges::new();
    scan(Path::new("a/mod.rs"), src, &modules, &mut edges);
    let to: Vec<&str> = edges.keys().map(|(_, b)| b.as_str()).collect();
    // super::e from a/mod.rs is the root's e; super::super from a::inner too.
    assert_eq!(to, ["b", "c", "e", "g"]);
    let mut edges = Edges::new();
    scan(
        Path::new("a/x.rs"),
        "fn f() { super::b::y(); crate::lock(); }",
        &modules,
        &mut edges,
    );
    let to: Vec<&str> = edges.keys().map(|(_, b)| b.as_str()).collect();
    // super from a/x.rs is a itself; crate::lock is not a module: the root.
    assert_eq!(to, [ROOT]);
}

#[test]
fn cycles_are_found_and_named() {
    let mut edges = Edges::new();
    for (a, b) in [
        ("a", "b"),
        ("b", "c"),
        ("c", "a"),
        ("c", "d"),
        ("d", "e"),
        ("e", "d"),
        ("e", "f"),
        ("f", "e"),
    ] {
        edges.insert((a.into(), b.into()), format!("{a}->{b}"));
    }
    assert_eq!(
        cycles(&edges),
        [
            vec!["d->e", "e->d"],
            vec!["f->e", "e->f"],
            vec!["a->b", "b->c", "c->a"]
        ]
    );
}

#[test]
fn no_function_over_80_lines_without_a_reason() {
    let mut long = Vec::new();
    for (rel, text) in sources() {
        for (name, line, len) in functions(&text) {
            if len > MAX_LINES && !reason_above(&text, line) {
                long.push(format!(
                    "  src/{}:{line} fn {name}: {len} lines",
                    rel.display()
                ));
            }
        }
    }
    assert!(
        long.is_empty(),
        "functions over {MAX_LINES} lines: split each into named steps, or write why above it \
         ({REASON} ...):\n{}",
        long.join("\n")
    );
}

#[test]
fn function_lengths_are_counted_from_fn_to_its_closing_brace() {
    let src = "trait T { fn decl(&self) -> [u8; 2]; }\n\
               /// Doc.\n\
               // Over 80 lines: a reason.\n\
               #[inline]\n\
               fn f(a: [u8; 2]) -> Vec<u8>\n\
               where\n\
               {\n\
                   let s = \"}\"; { }\n\
               }\n\
               fn g() {}\n";
    let found = functions(src);
    assert_eq!(found, [("f".to_string(), 5, 5), ("g".to_string(), 10, 1)]);
    assert!(reason_above(src, 5));
    assert!(!reason_above(src, 10));
}

#[test]
fn every_module_is_private() {
    let (_, lib) = sources()
        .into_iter()
        .find(|(p, _)| p == Path::new("lib.rs"))
        .expect("src/lib.rs");
    let public: Vec<&str> = lib
        .lines()
        .filter(|l| l.trim_start().starts_with("pub mod "))
        .collect();
    assert!(
        public.is_empty(),
        "public modules in src/lib.rs: make each private (`mod`) and re-export (`pub use`) \
         only what src/main.rs or tests/it use: {public:?}"
    );
}
