//! No import circles: in every crate of the workspace, no two modules use each other, directly
//! or around a longer loop.
//!
//! The checker reads the sources itself (std only). For each crate root (`src/lib.rs`,
//! `src/main.rs`, `src/bin/*.rs`) it follows the `mod` declarations to build the module tree,
//! then collects every reference from one module to another:
//!
//! - `use` declarations, with their trees (`use crate::a::{b::{self, C}, d::*}`), starting at
//!   `crate::`, `super::`, `self::`, or at a name the module can see (a child module, a module it
//!   `use`d, or a child of a module it glob-imports, such as a sibling after `use super::*`);
//! - paths written in code: `crate::x::f()`, `super::x::Y`, `self::x::Z`, and paths that start at
//!   such a visible module name.
//!
//! A path is mapped to the deepest module that exists (`crate::a::b::C` is module `a::b` when
//! `a/b.rs` exists, module `a` otherwise). Comments (so doc-tests too), string and character
//! literals, `$crate` inside macros and visibilities (`pub(in crate::a)`) are not references.
//!
//! The rule: **a module is judged together with its descendants, against its siblings.** A
//! reference from module `F` to module `T` becomes an edge between the two children of their
//! closest common ancestor that contain `F` and `T` (`crate::room::seats` → `crate::hub::x` is an
//! edge `room → hub` among the crate root's children). A reference between a module and one of its
//! own ancestors or descendants is containment, not an edge: a parent may use its children (and
//! its `mod child;` is no import at all) and a child may use its parent. Every set of siblings
//! that reach each other (a strongly connected component of more than one) is a circle; the test
//! fails listing each, with every reference that makes it up. Test modules (`mod tests`) count:
//! they are compiled into the same crate.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

// ---------------------------------------------------------------------------------------------
// tokens

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Ident(String),
    /// `::`
    PathSep,
    Punct(char),
    /// A string literal's raw text (only `#[path = "…"]` needs it).
    Str(String),
    /// A number, a character literal or a lifetime: never part of a module path.
    Other,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    line: usize,
}

fn is_ident_start(c: char) -> bool {
    c == '_' || c.is_alphabetic()
}

fn is_ident_char(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// Rust source to tokens, dropping whitespace and comments and keeping string literals opaque.
fn tokenize(src: &str) -> Vec<Token> {
    let c: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut line = 1;
    let at = |i: usize| c.get(i).copied().unwrap_or('\0');
    while i < c.len() {
        let ch = c[i];
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch == '/' && at(i + 1) == '/' {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && at(i + 1) == '*' {
            // Block comments nest.
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if c[i] == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
            }
        } else if ch == '"' {
            let start = line;
            let (text, next) = quoted(&c, i + 1, &mut line);
            out.push(Token { tok: Tok::Str(text), line: start });
            i = next;
        } else if ch == '\'' {
            // A character literal ('x', '\n', '\'', '\u{1F600}') or a lifetime ('a).
            if at(i + 1) == '\\' {
                i += 3;
                while i < c.len() && c[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if at(i + 2) == '\'' {
                i += 3;
            } else {
                i += 1;
                while i < c.len() && is_ident_char(c[i]) {
                    i += 1;
                }
            }
            out.push(Token { tok: Tok::Other, line });
        } else if is_ident_start(ch) {
            let s = i;
            while i < c.len() && is_ident_char(c[i]) {
                i += 1;
            }
            let word: String = c[s..i].iter().collect();
            let prefix = matches!(word.as_str(), "r" | "b" | "br" | "c" | "cr");
            if prefix && (at(i) == '"' || (word != "b" && word != "c" && at(i) == '#' && raw_string_at(&c, i))) {
                // String with a prefix: b"…", r"…", r#"…"#, br#"…"#, c"…".
                let start = line;
                let (text, next) =
                    if word.contains('r') { raw(&c, i, &mut line) } else { quoted(&c, i + 1, &mut line) };
                out.push(Token { tok: Tok::Str(text), line: start });
                i = next;
            } else if word == "b" && at(i) == '\'' {
                // A byte literal: b'x', b'\''.
                i += if at(i + 1) == '\\' { 3 } else { 2 };
                while i < c.len() && c[i] != '\'' {
                    i += 1;
                }
                i += 1;
                out.push(Token { tok: Tok::Other, line });
            } else if word == "r" && at(i) == '#' && is_ident_start(at(i + 1)) {
                // A raw identifier: r#type.
                let s = i + 1;
                i = s;
                while i < c.len() && is_ident_char(c[i]) {
                    i += 1;
                }
                out.push(Token { tok: Tok::Ident(c[s..i].iter().collect()), line });
            } else {
                out.push(Token { tok: Tok::Ident(word), line });
            }
        } else if ch.is_ascii_digit() {
            while i < c.len() && is_ident_char(c[i]) {
                i += 1;
            }
            out.push(Token { tok: Tok::Other, line });
        } else if ch == ':' && at(i + 1) == ':' {
            out.push(Token { tok: Tok::PathSep, line });
            i += 2;
        } else {
            out.push(Token { tok: Tok::Punct(ch), line });
            i += 1;
        }
    }
    out
}

/// Whether `c[i..]` is `#…#"` (the start of a raw string after its `r`).
fn raw_string_at(c: &[char], mut i: usize) -> bool {
    while c.get(i) == Some(&'#') {
        i += 1;
    }
    c.get(i) == Some(&'"')
}

/// A "…" string whose opening quote was just before `i`: its text and the index after it.
fn quoted(c: &[char], mut i: usize, line: &mut usize) -> (String, usize) {
    let mut text = String::new();
    while i < c.len() && c[i] != '"' {
        if c[i] == '\\' {
            i += 1;
        }
        if let Some(&ch) = c.get(i) {
            if ch == '\n' {
                *line += 1;
            }
            text.push(ch);
        }
        i += 1;
    }
    (text, i + 1)
}

/// A raw string whose `#…#"` starts at `i`: its text and the index after it.
fn raw(c: &[char], mut i: usize, line: &mut usize) -> (String, usize) {
    let mut hashes = 0;
    while c.get(i) == Some(&'#') {
        hashes += 1;
        i += 1;
    }
    i += 1;
    let mut text = String::new();
    while i < c.len() {
        if c[i] == '"' && (1..=hashes).all(|k| c.get(i + k) == Some(&'#')) {
            return (text, i + 1 + hashes);
        }
        if c[i] == '\n' {
            *line += 1;
        }
        text.push(c[i]);
        i += 1;
    }
    (text, i)
}

// ---------------------------------------------------------------------------------------------
// the module tree

/// One module: a file, or an inline `mod x { … }` within one.
#[derive(Debug)]
struct Module {
    /// Names from the crate root (empty for the root).
    path: Vec<String>,
    parent: Option<usize>,
    children: BTreeMap<String, usize>,
}

/// One file of a crate, tokenized, with the module each token belongs to.
struct FileTokens {
    file: String,
    tokens: Vec<Token>,
    owner: Vec<usize>,
}

/// A crate's modules and tokens, from the sources `files` (path relative to `src/` → text).
struct Crate {
    modules: Vec<Module>,
    files: Vec<FileTokens>,
}

fn is_mod_rs(file: &str) -> bool {
    matches!(Path::new(file).file_name().and_then(|n| n.to_str()), Some("mod.rs" | "lib.rs" | "main.rs"))
        || file.starts_with("bin/")
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}

fn parent_dir(file: &str) -> String {
    file.rsplit_once('/').map_or(String::new(), |(d, _)| d.to_owned())
}

impl Crate {
    fn load(files: &BTreeMap<String, String>, root: &str) -> Result<Crate, String> {
        let mut krate = Crate {
            modules: vec![Module { path: Vec::new(), parent: None, children: BTreeMap::new() }],
            files: Vec::new(),
        };
        let mut queue = vec![(root.to_owned(), 0usize)];
        let mut seen = BTreeSet::new();
        while let Some((file, module)) = queue.pop() {
            if !seen.insert(file.clone()) {
                return Err(format!("{file} is declared as a module twice"));
            }
            let text = files.get(&file).ok_or_else(|| format!("no file {file}"))?;
            let tokens = tokenize(text);
            // Where `mod x;` looks for x's file: the file's folder for mod.rs-like files,
            // otherwise a folder named after the file.
            let base =
                if is_mod_rs(&file) { parent_dir(&file) } else { file.strip_suffix(".rs").unwrap_or(&file).to_owned() };
            let mut owner = Vec::with_capacity(tokens.len());
            // Inline modules open here: (module, brace depth inside it, folder of its children).
            let mut stack: Vec<(usize, usize, String)> = vec![(module, 0, base)];
            let mut depth = 0usize;
            let mut path_attr: Option<String> = None;
            let mut i = 0;
            while i < tokens.len() {
                let current = stack.last().map_or(module, |s| s.0);
                owner.push(current);
                match &tokens[i].tok {
                    Tok::Punct('{') => depth += 1,
                    Tok::Punct('}') => {
                        if stack.len() > 1 && stack.last().is_some_and(|s| s.1 == depth) {
                            stack.pop();
                        }
                        depth = depth.saturating_sub(1);
                        path_attr = None;
                    }
                    Tok::Punct(';') => path_attr = None,
                    Tok::Punct('#') => {
                        if let [Tok::Punct('['), Tok::Ident(p), Tok::Punct('='), Tok::Str(s), Tok::Punct(']')] =
                            toks(&tokens, i + 1, 5).as_slice()
                        {
                            if p == "path" {
                                path_attr = Some(s.clone());
                            }
                        }
                    }
                    Tok::Ident(kw) if kw == "mod" => {
                        if let [Tok::Ident(name), next] = toks(&tokens, i + 1, 2).as_slice() {
                            let dir = stack.last().map(|s| s.2.clone()).unwrap_or_default();
                            let child = krate.add_child(current, name);
                            match next {
                                Tok::Punct(';') => {
                                    let target = match path_attr.take() {
                                        Some(p) if stack.len() == 1 => join(&parent_dir(&file), &p),
                                        Some(_) => {
                                            return Err(format!(
                                                "{file}:{}: #[path] inside an inline module is not supported",
                                                tokens[i].line
                                            ))
                                        }
                                        None => {
                                            let flat = join(&dir, &format!("{name}.rs"));
                                            let nested = join(&dir, &format!("{name}/mod.rs"));
                                            match (files.contains_key(&flat), files.contains_key(&nested)) {
                                                (true, false) => flat,
                                                (false, true) => nested,
                                                (true, true) => return Err(format!("both {flat} and {nested} exist")),
                                                (false, false) => {
                                                    return Err(format!(
                                                    "{file}:{}: `mod {name};` but neither {flat} nor {nested} exists",
                                                    tokens[i].line
                                                ))
                                                }
                                            }
                                        }
                                    };
                                    queue.push((target, child));
                                }
                                Tok::Punct('{') => {
                                    // `name` and `{` belong to the enclosing module; what
                                    // follows, up to the matching `}`, to the inline one.
                                    owner.push(current);
                                    owner.push(current);
                                    depth += 1;
                                    stack.push((child, depth, join(&dir, name)));
                                    i += 3;
                                    continue;
                                }
                                _ => {}
                            }
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            assert_eq!(owner.len(), tokens.len(), "one module per token");
            krate.files.push(FileTokens { file, tokens, owner });
        }
        Ok(krate)
    }

    fn add_child(&mut self, parent: usize, name: &str) -> usize {
        if let Some(&c) = self.modules[parent].children.get(name) {
            return c;
        }
        let mut path = self.modules[parent].path.clone();
        path.push(name.to_owned());
        let idx = self.modules.len();
        self.modules.push(Module { path, parent: Some(parent), children: BTreeMap::new() });
        self.modules[parent].children.insert(name.to_owned(), idx);
        idx
    }

    /// The deepest module along `segs` from `start`, and whether the path named only modules.
    fn walk(&self, start: usize, segs: &[String]) -> (usize, bool) {
        let mut m = start;
        for (k, s) in segs.iter().enumerate() {
            // A trailing `self` (`use crate::a::{self}`) names the module itself.
            if s == "self" && k + 1 == segs.len() {
                break;
            }
            match self.modules[m].children.get(s) {
                Some(&c) => m = c,
                None => return (m, false),
            }
        }
        (m, true)
    }

    fn name(&self, m: usize) -> String {
        let p = &self.modules[m].path;
        if p.is_empty() {
            "crate".into()
        } else {
            format!("crate::{}", p.join("::"))
        }
    }
}

fn toks(tokens: &[Token], from: usize, n: usize) -> Vec<Tok> {
    tokens.iter().skip(from).take(n).map(|t| t.tok.clone()).collect()
}

// ---------------------------------------------------------------------------------------------
// references

/// A reference from one module to another, where it is written.
#[derive(Debug, Clone)]
struct Reference {
    from: usize,
    to: usize,
    file: String,
    line: usize,
    text: String,
}

/// One path of a `use` tree.
struct UsePath {
    segs: Vec<String>,
    alias: Option<String>,
    glob: bool,
    line: usize,
}

/// Parse the use tree at `tokens[i..]` (after `use`, up to `;`), appending its paths to `out`.
/// Returns the index after the tree.
fn use_tree(tokens: &[Token], mut i: usize, prefix: &[String], out: &mut Vec<UsePath>) -> usize {
    let mut segs = prefix.to_vec();
    let line = tokens.get(i).map_or(0, |t| t.line);
    if tokens.get(i).map(|t| &t.tok) == Some(&Tok::PathSep) {
        // `use ::extern_crate…`: outside this crate.
        segs.push("::".into());
        i += 1;
    }
    loop {
        match tokens.get(i).map(|t| &t.tok) {
            Some(Tok::Ident(s)) => {
                segs.push(s.clone());
                i += 1;
                match tokens.get(i).map(|t| &t.tok) {
                    Some(Tok::PathSep) => i += 1,
                    Some(Tok::Ident(a)) if a == "as" => {
                        let alias = match tokens.get(i + 1).map(|t| &t.tok) {
                            Some(Tok::Ident(n)) => Some(n.clone()),
                            _ => None,
                        };
                        out.push(UsePath { segs, alias, glob: false, line });
                        return i + 2;
                    }
                    _ => {
                        out.push(UsePath { segs, alias: None, glob: false, line });
                        return i;
                    }
                }
            }
            Some(Tok::Punct('*')) => {
                out.push(UsePath { segs, alias: None, glob: true, line });
                return i + 1;
            }
            Some(Tok::Punct('{')) => {
                i += 1;
                loop {
                    match tokens.get(i).map(|t| &t.tok) {
                        Some(Tok::Punct('}')) => return i + 1,
                        Some(Tok::Punct(',')) => i += 1,
                        None | Some(Tok::Punct(';')) => return i,
                        Some(_) => {
                            let next = use_tree(tokens, i, &segs, out);
                            if next == i {
                                i += 1; // something unexpected: skip it rather than loop
                            } else {
                                i = next;
                            }
                        }
                    }
                }
            }
            _ => return i,
        }
    }
}

/// Where `segs` (a path written in module `m`) points: the deepest module, or None when it
/// leaves the crate (an extern crate, a std path, an item of a non-module scope).
fn resolve(krate: &Crate, scope: &Scope, m: usize, segs: &[String]) -> Option<(usize, bool)> {
    let first = segs.first()?;
    match first.as_str() {
        "crate" => Some(krate.walk(0, &segs[1..])),
        "self" => Some(krate.walk(m, &segs[1..])),
        "super" => {
            let mut cur = m;
            let mut k = 0;
            while segs.get(k).map(String::as_str) == Some("super") {
                cur = krate.modules[cur].parent?;
                k += 1;
            }
            if segs.get(k).map(String::as_str) == Some("self") {
                k += 1;
            }
            Some(krate.walk(cur, &segs[k..]))
        }
        "::" => None,
        name => {
            let start = scope.lookup(krate, m, name)?;
            Some(krate.walk(start, &segs[1..]))
        }
    }
}

/// The module names visible in each module beyond its children: its `use`d modules (by name or
/// alias) and the targets of its glob imports.
#[derive(Default)]
struct Scope {
    named: BTreeMap<(usize, String), usize>,
    globs: BTreeMap<usize, BTreeSet<usize>>,
}

impl Scope {
    fn lookup(&self, krate: &Crate, m: usize, name: &str) -> Option<usize> {
        if let Some(&c) = krate.modules[m].children.get(name) {
            return Some(c);
        }
        if let Some(&t) = self.named.get(&(m, name.to_owned())) {
            return Some(t);
        }
        // A glob import brings in the target's children and the modules it imported by name
        // (`use super::*` in a child sees its siblings and its parent's imports).
        let globs = self.globs.get(&m)?;
        globs.iter().find_map(|g| {
            krate.modules[*g].children.get(name).copied().or_else(|| self.named.get(&(*g, name.to_owned())).copied())
        })
    }
}

/// Every reference between modules of `krate`.
fn references(krate: &Crate) -> Vec<Reference> {
    // Pass 1: the use declarations of every file, and the names they bind.
    let mut uses: Vec<Vec<(usize, UsePath)>> = Vec::new();
    let mut in_use: Vec<Vec<bool>> = Vec::new();
    for f in &krate.files {
        let mut list = Vec::new();
        let mut mask = vec![false; f.tokens.len()];
        let mut i = 0;
        while i < f.tokens.len() {
            let is_use = matches!(&f.tokens[i].tok, Tok::Ident(k) if k == "use")
                && !matches!(f.tokens.get(i + 1).map(|t| &t.tok), Some(Tok::Punct('<')));
            if is_use {
                let mut paths = Vec::new();
                let end = use_tree(&f.tokens, i + 1, &[], &mut paths);
                mask[i..end.min(f.tokens.len())].fill(true);
                list.extend(paths.into_iter().map(|p| (f.owner[i], p)));
                i = end.max(i + 1);
            } else {
                i += 1;
            }
        }
        uses.push(list);
        in_use.push(mask);
    }
    // Bindings can build on each other (`use crate::a; use a::b;`): settle them in rounds.
    let mut scope = Scope::default();
    for _ in 0..4 {
        for list in &uses {
            for (m, p) in list {
                if let Some((target, whole)) = resolve(krate, &scope, *m, &p.segs) {
                    if p.glob {
                        scope.globs.entry(*m).or_default().insert(target);
                    } else if whole {
                        // `use a::b::{self}` binds `b`, like `use a::b`.
                        let named = p.segs.iter().rev().find(|s| *s != "self").cloned();
                        let name = p.alias.clone().or(named);
                        if let Some(name) = name.filter(|n| n != "super" && n != "crate") {
                            scope.named.insert((*m, name), target);
                        }
                    }
                }
            }
        }
    }
    let mut refs = Vec::new();
    for (f, list) in krate.files.iter().zip(&uses) {
        for (m, p) in list {
            if let Some((to, _)) = resolve(krate, &scope, *m, &p.segs) {
                let text = format!("use {}{}", p.segs.join("::"), if p.glob { "::*" } else { "" });
                refs.push(Reference { from: *m, to, file: f.file.clone(), line: p.line, text });
            }
        }
    }
    // Pass 2: paths in code.
    for (f, mask) in krate.files.iter().zip(&in_use) {
        let t = &f.tokens;
        let mut i = 0;
        while i < t.len() {
            let Tok::Ident(first) = &t[i].tok else {
                i += 1;
                continue;
            };
            let starts_path = !mask[i]
                && t.get(i + 1).map(|x| &x.tok) == Some(&Tok::PathSep)
                && !matches!(i.checked_sub(1).map(|k| &t[k].tok), Some(Tok::PathSep | Tok::Punct('$')))
                && !matches!(i.checked_sub(1).map(|k| &t[k].tok), Some(Tok::Ident(w)) if w == "in");
            if !starts_path {
                i += 1;
                continue;
            }
            let mut segs = vec![first.clone()];
            let mut k = i + 1;
            while t.get(k).map(|x| &x.tok) == Some(&Tok::PathSep) {
                match t.get(k + 1).map(|x| &x.tok) {
                    Some(Tok::Ident(s)) => {
                        segs.push(s.clone());
                        k += 2;
                    }
                    _ => break,
                }
            }
            let m = f.owner[i];
            if let Some((to, _)) = resolve(krate, &scope, m, &segs) {
                refs.push(Reference { from: m, to, file: f.file.clone(), line: t[i].line, text: segs.join("::") });
            }
            i = k.max(i + 1);
        }
    }
    refs
}

// ---------------------------------------------------------------------------------------------
// circles

/// A circle: siblings under `parent` that reach each other, and the references that do it.
#[derive(Debug)]
struct Circle {
    parent: String,
    members: Vec<String>,
    edges: Vec<(String, String, Reference)>,
}

/// The circles of one crate root.
fn circles_of(krate: &Crate) -> Vec<Circle> {
    // Lift every reference to an edge between siblings: (parent, from child, to child).
    let mut edges: BTreeMap<usize, BTreeMap<(String, String), Vec<Reference>>> = BTreeMap::new();
    for r in references(krate) {
        let (a, b) = (&krate.modules[r.from].path, &krate.modules[r.to].path);
        let n = a.iter().zip(b).take_while(|(x, y)| x == y).count();
        if n == a.len() || n == b.len() {
            continue; // the same module, or an ancestor and its descendant
        }
        let (parent, _) = krate.walk(0, &a[..n]);
        edges.entry(parent).or_default().entry((a[n].clone(), b[n].clone())).or_default().push(r);
    }
    let mut out = Vec::new();
    for (parent, pairs) in &edges {
        let names: Vec<String> =
            pairs.keys().flat_map(|(x, y)| [x.clone(), y.clone()]).collect::<BTreeSet<_>>().into_iter().collect();
        let index = |n: &String| names.iter().position(|x| x == n).expect("a node");
        let mut adj = vec![Vec::new(); names.len()];
        for (x, y) in pairs.keys() {
            adj[index(x)].push(index(y));
        }
        for comp in strongly_connected(&adj) {
            if comp.len() < 2 {
                continue;
            }
            let members: BTreeSet<usize> = comp.iter().copied().collect();
            let mut circle = Circle {
                parent: krate.name(*parent),
                members: members.iter().map(|&k| names[k].clone()).collect(),
                edges: Vec::new(),
            };
            for ((x, y), refs) in pairs {
                if members.contains(&index(x)) && members.contains(&index(y)) {
                    for r in refs {
                        circle.edges.push((x.clone(), y.clone(), r.clone()));
                    }
                }
            }
            out.push(circle);
        }
    }
    out
}

/// Tarjan's strongly connected components of a graph given as adjacency lists.
fn strongly_connected(adj: &[Vec<usize>]) -> Vec<Vec<usize>> {
    struct State<'a> {
        adj: &'a [Vec<usize>],
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on_stack: Vec<bool>,
        stack: Vec<usize>,
        next: usize,
        out: Vec<Vec<usize>>,
    }
    fn visit(s: &mut State, v: usize) {
        s.index[v] = Some(s.next);
        s.low[v] = s.next;
        s.next += 1;
        s.stack.push(v);
        s.on_stack[v] = true;
        for k in 0..s.adj[v].len() {
            let w = s.adj[v][k];
            match s.index[w] {
                None => {
                    visit(s, w);
                    s.low[v] = s.low[v].min(s.low[w]);
                }
                Some(iw) if s.on_stack[w] => s.low[v] = s.low[v].min(iw),
                Some(_) => {}
            }
        }
        if Some(s.low[v]) == s.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack[w] = false;
                comp.push(w);
                if w == v {
                    break;
                }
            }
            comp.sort_unstable();
            s.out.push(comp);
        }
    }
    let n = adj.len();
    let mut s = State {
        adj,
        index: vec![None; n],
        low: vec![0; n],
        on_stack: vec![false; n],
        stack: Vec::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in 0..n {
        if s.index[v].is_none() {
            visit(&mut s, v);
        }
    }
    s.out
}

/// The circles of a crate's sources (path relative to `src/` → text), for each root present.
fn check(files: &BTreeMap<String, String>) -> Result<Vec<(String, Circle)>, String> {
    let mut roots: Vec<String> =
        ["lib.rs", "main.rs"].into_iter().filter(|r| files.contains_key(*r)).map(String::from).collect();
    roots.extend(files.keys().filter(|f| f.starts_with("bin/") && f.matches('/').count() == 1).cloned());
    if roots.is_empty() {
        return Err("no crate root (lib.rs, main.rs, bin/*.rs)".into());
    }
    let mut out = Vec::new();
    for root in roots {
        let krate = Crate::load(files, &root)?;
        out.extend(circles_of(&krate).into_iter().map(|c| (root.clone(), c)));
    }
    Ok(out)
}

fn describe(prefix: &str, root: &str, c: &Circle) -> String {
    let mut s =
        format!("{prefix} ({root}): among the children of `{}`: {} reach each other\n", c.parent, c.members.join(", "));
    // One line per place: `use a::{B, C}` is one reference written once.
    let mut places: BTreeMap<(&str, &str, &str, usize), Vec<&str>> = BTreeMap::new();
    for (x, y, r) in &c.edges {
        let texts = places.entry((x, y, &r.file, r.line)).or_default();
        if !texts.contains(&r.text.as_str()) {
            texts.push(&r.text);
        }
    }
    for ((x, y, file, line), texts) in places {
        let _ = writeln!(s, "    {x} -> {y}: {prefix}/{file}:{line} `{}`", texts.join("`, `"));
    }
    s
}

// ---------------------------------------------------------------------------------------------
// the workspace

fn read_tree(dir: &Path, rel: &str, out: &mut BTreeMap<String, String>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let r = join(rel, &name);
        if p.is_dir() {
            read_tree(&p, &r, out);
        } else if name.ends_with(".rs") {
            out.insert(r, std::fs::read_to_string(&p).unwrap());
        }
    }
}

/// The `members` of the workspace's Cargo.toml.
fn workspace_members(root: &Path) -> Vec<String> {
    let toml = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let start = toml.find("members").expect("a [workspace] members list");
    let list = &toml[start..];
    let list = &list[list.find('[').unwrap() + 1..list.find(']').unwrap()];
    list.split(',').map(|m| m.trim().trim_matches('"').to_owned()).filter(|m| !m.is_empty()).collect()
}

#[test]
fn the_workspace_has_no_import_circles() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let members = workspace_members(root);
    for expected in [".", "signaling", "media", "bench"] {
        assert!(members.iter().any(|m| m == expected), "workspace member {expected} (members: {members:?})");
    }
    let mut report = String::new();
    let (mut checked, mut found) = (0, 0);
    for member in &members {
        let src = root.join(member).join("src");
        let mut files = BTreeMap::new();
        read_tree(&src, "", &mut files);
        let prefix = if member == "." { "src".to_owned() } else { format!("{member}/src") };
        if let Ok(krate) = Crate::load(&files, "lib.rs") {
            found += references(&krate).len();
        }
        match check(&files) {
            Ok(circles) => {
                for (r, c) in &circles {
                    report.push_str(&describe(&prefix, r, c));
                }
            }
            Err(e) => {
                let _ = writeln!(report, "{prefix}: {e}");
            }
        }
        checked += files.len();
    }
    assert!(checked > 40 && found > 200, "read the sources: {checked} files, {found} references between modules");
    assert!(report.is_empty(), "import circles:\n{report}");
}

// ---------------------------------------------------------------------------------------------
// the checker's own tests, on small synthetic crates

fn tree(files: &[(&str, &str)]) -> BTreeMap<String, String> {
    files.iter().map(|(p, t)| ((*p).to_owned(), (*t).to_owned())).collect()
}

/// The circles as sorted member lists, e.g. `["crate: a b"]`.
fn circles(files: &[(&str, &str)]) -> Vec<String> {
    let mut v: Vec<String> = check(&tree(files))
        .unwrap_or_else(|e| panic!("{e}"))
        .iter()
        .map(|(_, c)| format!("{}: {}", c.parent, c.members.join(" ")))
        .collect();
    v.sort();
    v
}

/// The edges between children of the root, as "from -> to".
fn root_edges(files: &[(&str, &str)]) -> BTreeSet<String> {
    let krate = Crate::load(&tree(files), "lib.rs").unwrap();
    references(&krate)
        .iter()
        .filter_map(|r| {
            let (a, b) = (&krate.modules[r.from].path, &krate.modules[r.to].path);
            (!a.is_empty() && !b.is_empty() && a[0] != b[0]).then(|| format!("{} -> {}", a[0], b[0]))
        })
        .collect()
}

#[test]
fn a_two_module_circle_fails() {
    let found = circles(&[
        ("lib.rs", "mod a;\nmod b;\nmod c;\n"),
        ("a.rs", "use crate::b::B;\npub struct A;\n"),
        ("b.rs", "use crate::a::A;\npub struct B(A);\n"),
        ("c.rs", "use crate::a::A;\n"),
    ]);
    assert_eq!(found, vec!["crate: a b"]);
    let (_, c) = check(&tree(&[
        ("lib.rs", "mod a;\nmod b;\n"),
        ("a.rs", "use crate::b::B;\n"),
        ("b.rs", "\n\nfn f() { crate::a::g() }\n"),
    ]))
    .unwrap()
    .pop()
    .unwrap();
    let text = describe("x/src", "lib.rs", &c);
    assert!(text.contains("a -> b: x/src/a.rs:1 `use crate::b::B`"), "{text}");
    assert!(text.contains("b -> a: x/src/b.rs:3 `crate::a::g`"), "{text}");
}

#[test]
fn a_three_module_circle_fails_and_names_every_link() {
    let files = [
        ("lib.rs", "pub mod hub;\npub mod room;\npub mod session;\npub mod ids;\n"),
        ("hub.rs", "use crate::room::Room;\nuse crate::ids::Id;\n"),
        ("room.rs", "pub struct Room;\nfn f() -> crate::session::Session { todo!() }\n"),
        ("session.rs", "use super::{hub::Hub, ids};\npub struct Session;\n"),
        ("ids.rs", "pub struct Id;\n"),
    ];
    assert_eq!(circles(&files), vec!["crate: hub room session"]);
    let (_, c) = check(&tree(&files)).unwrap().pop().unwrap();
    let links: Vec<String> = c.edges.iter().map(|(x, y, _)| format!("{x}->{y}")).collect();
    assert_eq!(links, vec!["hub->room", "room->session", "session->hub"], "ids is outside the circle");
}

#[test]
fn a_circle_through_super_fails_at_every_level() {
    // Among the children of `room`: seats and members use each other through `super::`.
    let files = [
        ("lib.rs", "mod hub;\nmod room;\n"),
        ("hub.rs", "pub struct Hub;\n"),
        ("room/mod.rs", "mod members;\nmod seats;\npub use seats::Seats;\n"),
        ("room/seats.rs", "use super::members::Member;\npub struct Seats;\n"),
        ("room/members.rs", "pub struct Member(super::seats::Seats);\n"),
    ];
    assert_eq!(circles(&files), vec!["crate::room: members seats"]);
    // A grandchild reaching up two levels and across is an edge between the top-level modules.
    let files = [
        ("lib.rs", "mod hub;\nmod room;\n"),
        ("hub.rs", "use crate::room::seats::Seats;\n"),
        ("room/mod.rs", "pub mod seats;\n"),
        ("room/seats.rs", "use super::super::hub;\npub struct Seats;\n"),
    ];
    assert_eq!(circles(&files), vec!["crate: hub room"]);
    // The same through a glob import of the parent: `members` is then a visible name.
    let files = [
        ("lib.rs", "mod room;\n"),
        ("room.rs", "mod members;\nmod seats;\n"),
        ("room/seats.rs", "use super::*;\nfn f() { members::g() }\n"),
        ("room/members.rs", "use super::seats;\n"),
    ];
    assert_eq!(circles(&files), vec!["crate::room: members seats"]);
}

#[test]
fn comments_strings_doc_tests_and_visibilities_are_not_imports() {
    let a = r####"
//! Module docs naming crate::b::B.
/// ```
/// use crate::b::B;
/// ```
pub struct A;
/* use crate::b::B; /* nested */ crate::b::x(); */
#[doc = "crate::b::B"]
pub(crate) fn f() -> &'static str {
    let _quote = '"';
    let _brace = '{';
    let _escaped = '\'';
    let _byte = b'"';
    let _raw = r#"use crate::b::B; "quoted" "#;
    let _s = "crate::b::x() \" still a string";
    crate::c::g();
    "done"
}
pub(in crate::b) fn h() {}
macro_rules! m { () => { $crate::b::x() } }
fn lifetimes<'a>(x: &'a str) -> &'a str { crate::d::id(x) }
"####;
    let files = [
        ("lib.rs", "mod a;\nmod b;\nmod c;\nmod d;\n"),
        ("a.rs", a),
        ("b.rs", "use crate::a::A;\npub fn x() {}\n"),
        ("c.rs", "pub fn g() {}\n"),
        ("d.rs", "pub fn id(x: &str) -> &str { x }\n"),
    ];
    assert_eq!(
        root_edges(&files),
        ["a -> c", "a -> d", "b -> a"].into_iter().map(String::from).collect(),
        "the real paths after each literal are seen, none of the ones inside"
    );
    assert!(circles(&files).is_empty());
}

#[test]
fn an_acyclic_crate_passes() {
    let files = [
        (
            "lib.rs",
            "pub mod game;\npub mod protocol;\npub mod room;\nmod util;\npub use room::Room;\npub struct Error;\n",
        ),
        // A parent and its children may use each other; children may use the crate root.
        ("game/mod.rs", "pub mod mafia;\npub mod routes;\npub use mafia::Mafia;\npub struct Phase;\n"),
        ("game/mafia.rs", "use super::{routes, Phase};\nuse crate::Error;\npub struct Mafia;\nmod policy;\n"),
        ("game/mafia/policy.rs", "use super::super::routes::Routes;\nuse super::Mafia;\n"),
        ("game/routes.rs", "pub struct Routes;\n"),
        ("protocol.rs", "use crate::game::{self, Phase};\nuse crate::util::*;\n"),
        (
            "room/mod.rs",
            "mod seats;\nuse crate::{game::mafia::Mafia, protocol};\npub struct Room;\n\
             #[cfg(test)]\nmod tests {\n    use super::*;\n    use crate::util::helper;\n}\n",
        ),
        ("room/seats.rs", "use super::Room;\nuse crate::protocol::*;\n"),
        ("util.rs", "pub fn helper() {}\nmod inner { fn f() { super::helper() } }\n"),
    ];
    assert!(circles(&files).is_empty(), "{:?}", circles(&files));
    assert_eq!(
        root_edges(&files),
        ["protocol -> game", "protocol -> util", "room -> game", "room -> protocol", "room -> util"]
            .into_iter()
            .map(String::from)
            .collect(),
        "the references are found (so passing means acyclic, not blind)"
    );
}

#[test]
fn test_modules_and_use_trees_count() {
    // `b` reaches back to `a` only from its inline test module, through a nested use tree.
    let files = [
        ("lib.rs", "mod a;\nmod b;\n"),
        ("a.rs", "use crate::b;\n"),
        ("b.rs", "pub fn f() {}\n#[cfg(test)]\nmod tests {\n    use crate::{a::{self}, b::*};\n}\n"),
    ];
    assert_eq!(circles(&files), vec!["crate: a b"]);
    // A module `use`d by name resolves paths that start with that name.
    let files = [
        ("lib.rs", "mod a;\nmod b;\n"),
        ("a.rs", "use crate::b;\n"),
        ("b.rs", "mod inner;\n"),
        ("b/inner.rs", "use crate::a as up;\nfn f() { up::g() }\n"),
    ];
    assert_eq!(circles(&files), vec!["crate: a b"]);
}

#[test]
fn a_missing_module_file_is_an_error() {
    let err = check(&tree(&[("lib.rs", "mod a;\nmod gone;\n"), ("a.rs", "")])).unwrap_err();
    assert!(err.contains("mod gone;") && err.contains("gone.rs"), "{err}");
    // Inline modules look for their children in a folder named after them.
    let ok = check(&tree(&[("lib.rs", "mod a { mod b; }\n"), ("a/b.rs", "")]));
    assert!(ok.is_ok_and(|c| c.is_empty()));
}
