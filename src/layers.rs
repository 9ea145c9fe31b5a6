//! Checks on the shape of `src/` that the compiler does not make: no import
//! cycle between top-level modules.
//!
//! The checks read the source files. A small scanner drops comments and
//! literals, then collects each top-level module's references to the
//! others: `crate::x`, `use crate::{x, y}`, `super::` (resolved against the
//! file and its inline modules), and in `lib.rs` the bare `x::`. Code under
//! `#[cfg(test)]` is left out: a test may use any layer.

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
    let blank = |out: &mut String, ch: char| out.push(if ch == '\n' { '\n' } else { ' ' });
    let mut i = 0;
    while i < c.len() {
        let at = |k: usize| c.get(k).copied().unwrap_or('\0');
        let word_before = i > 0 && (c[i - 1].is_alphanumeric() || c[i - 1] == '_');
        if c[i] == '/' && at(i + 1) == '/' {
            while i < c.len() && c[i] != '\n' {
                blank(&mut out, c[i]);
                i += 1;
            }
        } else if c[i] == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            loop {
                if i >= c.len() {
                    break;
                }
                if c[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if c[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, c[i]);
                    i += 1;
                }
            }
        } else if !word_before
            && (c[i] == 'r' || (c[i] == 'b' && at(i + 1) == 'r'))
            && matches!(at(i + 1 + usize::from(c[i] == 'b')), '"' | '#')
        {
            // A raw string: r"..", r#".."#, br"..".
            let mut k = i + 1 + usize::from(c[i] == 'b');
            let mut hashes = 0;
            while at(k) == '#' {
                hashes += 1;
                k += 1;
            }
            if at(k) != '"' {
                out.push(c[i]);
                i += 1;
                continue;
            }
            let close: String = std::iter::once('"')
                .chain(std::iter::repeat_n('#', hashes))
                .collect();
            let rest: String = c[k + 1..].iter().collect();
            let end = rest
                .find(&close)
                .map_or(c.len(), |e| k + 1 + rest[..e].chars().count() + 1 + hashes);
            for &ch in &c[i..end] {
                blank(&mut out, ch);
            }
            i = end;
        } else if c[i] == '"' {
            blank(&mut out, c[i]);
            i += 1;
            while i < c.len() && c[i] != '"' {
                if c[i] == '\\' {
                    blank(&mut out, c[i]);
                    i += 1;
                }
                if i < c.len() {
                    blank(&mut out, c[i]);
                    i += 1;
                }
            }
            if i < c.len() {
                blank(&mut out, c[i]);
                i += 1;
            }
        } else if c[i] == '\'' && (at(i + 1) == '\\' || at(i + 2) == '\'') {
            // A character literal ('x', '\n', '\u{..}'); not a lifetime.
            let mut k = i + 1;
            if at(k) == '\\' {
                k += 2;
            } else {
                k += 1;
            }
            while k < c.len() && c[k] != '\'' {
                k += 1;
            }
            for &ch in &c[i..=k.min(c.len() - 1)] {
                blank(&mut out, ch);
            }
            i = k + 1;
        } else {
            out.push(c[i]);
            i += 1;
        }
    }
    out
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

/// Adds the references of one file (`rel`, under `src/`) to `edges`.
fn scan(rel: &Path, src: &str, modules: &BTreeSet<String>, edges: &mut Edges) {
    let toks = tokens(src);
    let base = file_path(rel);
    let from = base.first().cloned().unwrap_or_else(|| ROOT.to_owned());
    let ident = |k: usize| match toks.get(k) {
        Some((Tok::Ident(s), _)) => Some(s.as_str()),
        _ => None,
    };
    let is = |k: usize, t: Tok| toks.get(k).map(|x| &x.0) == Some(&t);
    // Open braces: Some(name) for an inline module; and whether it is test code.
    let mut scopes: Vec<(Option<String>, bool)> = Vec::new();
    let mut pending_test = false;
    let mut add = |to: String, line: usize| {
        if to != from {
            let site = format!("src/{}:{line} ({from} -> {to})", rel.display());
            edges.entry((from.clone(), to)).or_insert(site);
        }
    };
    let mut k = 0;
    while k < toks.len() {
        let (tok, line) = (&toks[k].0, toks[k].1);
        let skipping = pending_test || scopes.iter().any(|s| s.1);
        match tok {
            Tok::Punct('#')
                if is(k + 1, Tok::Punct('['))
                    && ident(k + 2) == Some("cfg")
                    && is(k + 3, Tok::Punct('('))
                    && ident(k + 4) == Some("test")
                    && is(k + 5, Tok::Punct(')')) =>
            {
                pending_test = true;
                k += 6;
                continue;
            }
            Tok::Punct('{') => {
                let name = (k >= 2 && ident(k - 2) == Some("mod"))
                    .then(|| ident(k - 1).unwrap_or("").to_owned());
                scopes.push((name, skipping));
                pending_test = false;
            }
            Tok::Punct('}') => {
                scopes.pop();
            }
            Tok::Punct(';') => pending_test = false,
            Tok::Ident(_) if skipping => {}
            Tok::Ident(w) if (k == 0 || !is(k - 1, Tok::Sep)) && is(k + 1, Tok::Sep) => {
                let mut path: Vec<String> = base.clone();
                path.extend(scopes.iter().filter_map(|s| s.0.clone()));
                // Where the path starts: Some(module path) it resolves into.
                let (start, mut j) = match w.as_str() {
                    "crate" => (Some(Vec::new()), k + 2),
                    "self" => (Some(path.clone()), k + 2),
                    "super" => {
                        let mut j = k;
                        while ident(j) == Some("super") && is(j + 1, Tok::Sep) {
                            path.pop();
                            j += 2;
                        }
                        (Some(path.clone()), j)
                    }
                    _ if path.is_empty() && modules.contains(w.as_str()) => (Some(Vec::new()), k),
                    _ => (None, k),
                };
                if let Some(start) = start {
                    if let Some(first) = start.first() {
                        add(top(first, modules), line);
                    } else if let Some(name) = ident(j) {
                        add(top(name, modules), line);
                    } else if is(j, Tok::Punct('{')) {
                        // `use crate::{a, b::c}`: the first name of each part.
                        let mut depth = 0;
                        let mut first_of_part = true;
                        while j < toks.len() {
                            match &toks[j].0 {
                                Tok::Punct('{') => {
                                    depth += 1;
                                    if depth == 1 {
                                        j += 1;
                                        continue;
                                    }
                                }
                                Tok::Punct('}') => {
                                    depth -= 1;
                                    if depth == 0 {
                                        break;
                                    }
                                }
                                Tok::Punct(',') if depth == 1 => {
                                    first_of_part = true;
                                    j += 1;
                                    continue;
                                }
                                Tok::Ident(n) if depth == 1 && first_of_part && n != "self" => {
                                    add(top(n, modules), toks[j].1);
                                }
                                _ => {}
                            }
                            first_of_part = false;
                            j += 1;
                        }
                        k = j + 1;
                        continue;
                    }
                }
            }
            _ => {}
        }
        k += 1;
    }
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

/// The references between the library's top-level modules (the binary,
/// `main.rs`, is a crate of its own and left out).
fn graph() -> Edges {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files: Vec<PathBuf> = rust_files(&src)
        .into_iter()
        .map(|p| p.strip_prefix(&src).expect("under src/").to_path_buf())
        .filter(|p| p != Path::new("main.rs"))
        .collect();
    let modules: BTreeSet<String> = files
        .iter()
        .filter_map(|p| file_path(p).first().cloned())
        .collect();
    let mut edges = Edges::new();
    for rel in &files {
        let text = std::fs::read_to_string(src.join(rel)).expect("read a source file");
        scan(rel, &text, &modules, &mut edges);
    }
    edges
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
