//! The runtime's modules form no cycle: no module of `subject/src` imports a module
//! that imports it back, directly or through others (docs/runtime.md, "Layers").
//!
//! The test parses every source file of the crate with `syn`, starting at `lib.rs` and
//! following `mod` declarations, and records for every module (inline ones such as
//! `mod tests { .. }` included) the modules its paths name:
//!
//! - `use` trees (`use crate::a::{self, b::C}`, `use super::*`, `pub use child::X`);
//! - paths in code, types, patterns and macro arguments with at least two segments
//!   (`crate::a::f()`, `super::X`, `child::Y`, `alias::Z` after `use crate::alias;`).
//!
//! A path is resolved to the deepest module it names: `crate::platform::hosted::fatal`
//! names `platform::hosted`, `crate::Runtime` names the crate root. A `mod` declaration
//! is not an import (a child declared by its parent may use the parent), but a
//! re-export is: the crate root and every `mod.rs` facade import what they re-export,
//! so code inside the crate imports items from the module that defines them, never
//! through a facade above it. `$crate` paths in macros are the caller's and do not
//! count; comments and strings are not code.
//!
//! Every cycle is reported with the path that makes each of its edges, for example
//! `entry -> runtime -> entry` with `src/runtime.rs:259: crate::entry::finish`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use proc_macro2::{Delimiter, TokenStream, TokenTree};
use syn::visit::Visit;

/// A module: `""` for the crate root, else `a::b::c`.
type ModulePath = Vec<String>;

fn show(path: &[String]) -> String {
    if path.is_empty() {
        "crate".to_string()
    } else {
        path.join("::")
    }
}

/// Where a reference was seen.
#[derive(Clone, Debug)]
struct Site {
    file: String,
    line: usize,
    text: String,
}

/// A path as written in a module, before resolution.
#[derive(Clone, Debug)]
struct Reference {
    scope: ModulePath,
    segments: Vec<String>,
    /// From a `use` tree: its last segment may be a module being imported, and even a
    /// one-segment path counts.
    from_use: bool,
    /// The name a `use` gives its leaf (`as` rename or last segment).
    alias: Option<String>,
    site: Site,
}

/// The crate's modules and the paths written in them.
#[derive(Default)]
struct Crate {
    modules: BTreeSet<ModulePath>,
    references: Vec<Reference>,
    /// Files read, relative to the source directory.
    files: BTreeSet<String>,
}

/// Reads a source file by its path relative to the source directory.
trait Sources {
    fn read(&self, relative: &str) -> Option<String>;
}

struct Disk(PathBuf);

impl Sources for Disk {
    fn read(&self, relative: &str) -> Option<String> {
        std::fs::read_to_string(self.0.join(relative)).ok()
    }
}

impl Sources for BTreeMap<&str, &str> {
    fn read(&self, relative: &str) -> Option<String> {
        self.get(relative).map(|s| s.to_string())
    }
}

impl Crate {
    /// Loads the crate whose root is `lib.rs` in `sources`.
    fn load(sources: &dyn Sources) -> Result<Crate, String> {
        let mut krate = Crate::default();
        krate.modules.insert(Vec::new());
        krate.load_file(sources, "lib.rs", "", Vec::new())?;
        Ok(krate)
    }

    /// Loads `file` (module `module`); its children's files are in `child_dir`.
    fn load_file(
        &mut self,
        sources: &dyn Sources,
        file: &str,
        child_dir: &str,
        module: ModulePath,
    ) -> Result<(), String> {
        let text = sources
            .read(file)
            .ok_or_else(|| format!("src/{file}: cannot read it (declared by a `mod`)"))?;
        let ast = syn::parse_file(&text)
            .map_err(|e| format!("src/{file}:{}: does not parse: {e}", e.span().start().line))?;
        self.files.insert(file.to_string());
        let mut collector = Collector {
            file: file.to_string(),
            scope: module.clone(),
            references: Vec::new(),
            inline: Vec::new(),
            declared: Vec::new(),
            errors: Vec::new(),
        };
        collector.visit_file(&ast);
        if let Some(e) = collector.errors.pop() {
            return Err(e);
        }
        self.references.append(&mut collector.references);
        for inline in collector.inline {
            self.modules.insert(inline);
        }
        for (parent, name, line) in collector.declared {
            // Inline modules nest their children's directory (`mod a { mod b; }` is
            // `a/b.rs`); none of the crate's inline modules declares file modules, so
            // only the simple case is supported, and anything else is an error.
            if parent != module {
                return Err(format!(
                    "src/{file}:{line}: `mod {name};` inside an inline module is not supported by this test"
                ));
            }
            let mut child = module.clone();
            child.push(name.clone());
            self.modules.insert(child.clone());
            let flat = format!("{child_dir}{name}.rs");
            let nested = format!("{child_dir}{name}/mod.rs");
            let (child_file, grandchild_dir) = match (sources.read(&flat), sources.read(&nested)) {
                (Some(_), None) => (flat, format!("{child_dir}{name}/")),
                (None, Some(_)) => (nested, format!("{child_dir}{name}/")),
                (Some(_), Some(_)) => {
                    return Err(format!(
                        "src/{file}:{line}: both src/{flat} and src/{nested} exist"
                    ))
                }
                (None, None) => {
                    return Err(format!(
                        "src/{file}:{line}: `mod {name};` has neither src/{flat} nor src/{nested}"
                    ))
                }
            };
            self.load_file(sources, &child_file, &grandchild_dir, child)?;
        }
        Ok(())
    }

    /// The module a one-segment alias names in `scope` (`use crate::device;`).
    fn aliases(&self) -> BTreeMap<(ModulePath, String), ModulePath> {
        let mut aliases = BTreeMap::new();
        for r in self.references.iter().filter(|r| r.from_use) {
            let Some(alias) = &r.alias else { continue };
            if let Some((target, rest)) = self.resolve(r, &BTreeMap::new()) {
                if rest == 0 {
                    aliases.insert((r.scope.clone(), alias.clone()), target);
                }
            }
        }
        aliases
    }

    /// The deepest module `r` names, and how many of its segments remain after it;
    /// `None` for a path that does not start in this crate.
    fn resolve(
        &self,
        r: &Reference,
        aliases: &BTreeMap<(ModulePath, String), ModulePath>,
    ) -> Option<(ModulePath, usize)> {
        let segments = &r.segments;
        let first = segments.first()?;
        let mut at: ModulePath;
        let mut i = 1;
        match first.as_str() {
            "crate" => at = Vec::new(),
            "self" => at = r.scope.clone(),
            "super" => {
                at = r.scope.clone();
                at.pop()?;
                while segments.get(i).map(String::as_str) == Some("super") {
                    at.pop()?;
                    i += 1;
                }
            }
            name => {
                let mut child = r.scope.clone();
                child.push(name.to_string());
                if self.modules.contains(&child) {
                    at = child;
                } else if let Some(target) = aliases.get(&(r.scope.clone(), name.to_string())) {
                    at = target.clone();
                } else {
                    return None;
                }
            }
        }
        while let Some(next) = segments.get(i) {
            let mut deeper = at.clone();
            deeper.push(next.clone());
            if !self.modules.contains(&deeper) {
                break;
            }
            at = deeper;
            i += 1;
        }
        Some((at, segments.len() - i))
    }

    /// Module -> module it imports -> where.
    fn edges(&self) -> BTreeMap<ModulePath, BTreeMap<ModulePath, Vec<Site>>> {
        let aliases = self.aliases();
        let mut edges: BTreeMap<ModulePath, BTreeMap<ModulePath, Vec<Site>>> = BTreeMap::new();
        for r in &self.references {
            if !r.from_use && r.segments.len() < 2 {
                continue;
            }
            let Some((target, _)) = self.resolve(r, &aliases) else {
                continue;
            };
            if target != r.scope {
                edges
                    .entry(r.scope.clone())
                    .or_default()
                    .entry(target)
                    .or_default()
                    .push(r.site.clone());
            }
        }
        edges
    }

    /// Every cycle (one per strongly connected component), each as a description
    /// naming its modules and the paths that make its edges.
    fn cycles(&self) -> Vec<String> {
        let edges = self.edges();
        let successors = |m: &ModulePath| -> Vec<ModulePath> {
            edges
                .get(m)
                .map(|t| t.keys().cloned().collect())
                .unwrap_or_default()
        };
        let mut reported: BTreeSet<ModulePath> = BTreeSet::new();
        let mut cycles = Vec::new();
        for start in &self.modules {
            if reported.contains(start) {
                continue;
            }
            // The shortest way back to `start` (breadth first), if any.
            let mut previous: BTreeMap<ModulePath, ModulePath> = BTreeMap::new();
            let mut queue = std::collections::VecDeque::from([start.clone()]);
            let mut found = None;
            'search: while let Some(m) = queue.pop_front() {
                for next in successors(&m) {
                    if next == *start {
                        found = Some(m.clone());
                        break 'search;
                    }
                    if !previous.contains_key(&next) {
                        previous.insert(next.clone(), m.clone());
                        queue.push_back(next);
                    }
                }
            }
            let Some(mut last) = found else { continue };
            let mut ring = vec![start.clone()];
            let mut back = Vec::new();
            while last != *start {
                back.push(last.clone());
                last = previous[&last].clone();
            }
            ring.extend(back.into_iter().rev());
            ring.push(start.clone());
            let names: Vec<String> = ring.iter().map(|m| show(m)).collect();
            let mut text = format!("module cycle: {}", names.join(" -> "));
            for pair in ring.windows(2) {
                let sites = &edges[&pair[0]][&pair[1]];
                let _ = write!(text, "\n  {} -> {}:", show(&pair[0]), show(&pair[1]));
                for s in sites {
                    let _ = write!(text, "\n    src/{}:{}: {}", s.file, s.line, s.text);
                }
            }
            reported.extend(ring);
            cycles.push(text);
        }
        cycles
    }
}

/// Collects the paths of one file, by module.
struct Collector {
    file: String,
    scope: ModulePath,
    references: Vec<Reference>,
    /// Inline modules seen.
    inline: Vec<ModulePath>,
    /// `mod name;` declarations: (declaring module, name, line).
    declared: Vec<(ModulePath, String, usize)>,
    /// What this test cannot follow.
    errors: Vec<String>,
}

impl Collector {
    fn site(&self, line: usize, text: String) -> Site {
        Site {
            file: self.file.clone(),
            line,
            text,
        }
    }

    fn push(&mut self, segments: Vec<String>, from_use: bool, alias: Option<String>, line: usize) {
        let text = segments.join("::");
        self.references.push(Reference {
            scope: self.scope.clone(),
            segments,
            from_use,
            alias,
            site: self.site(line, text),
        });
    }

    /// Every leaf of a `use` tree as a full path.
    fn use_tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.use_tree(prefix, &p.tree);
                prefix.pop();
            }
            syn::UseTree::Name(n) => {
                let name = n.ident.to_string();
                let line = n.ident.span().start().line;
                if name == "self" {
                    // `use a::{self}` imports `a` under its own name.
                    let alias = prefix.last().cloned();
                    self.push(prefix.clone(), true, alias, line);
                } else {
                    let mut full = prefix.clone();
                    full.push(name.clone());
                    self.push(full, true, Some(name), line);
                }
            }
            syn::UseTree::Rename(r) => {
                let mut full = prefix.clone();
                let line = r.ident.span().start().line;
                if r.ident != "self" {
                    full.push(r.ident.to_string());
                }
                self.push(full, true, Some(r.rename.to_string()), line);
            }
            syn::UseTree::Glob(g) => {
                let line = g.star_token.spans[0].start().line;
                self.push(prefix.clone(), true, None, line);
            }
            syn::UseTree::Group(g) => {
                for t in &g.items {
                    self.use_tree(prefix, t);
                }
            }
        }
    }

    /// Paths inside a macro's tokens: `a::b::c` not preceded by `$` (`$crate` is the
    /// caller's crate) or by `::` (the middle of a longer path, or `::external`).
    fn tokens(&mut self, tokens: TokenStream) {
        let trees: Vec<TokenTree> = tokens.into_iter().collect();
        let mut i = 0;
        while i < trees.len() {
            match &trees[i] {
                TokenTree::Group(g) => {
                    if g.delimiter() != Delimiter::None || !g.stream().is_empty() {
                        self.tokens(g.stream());
                    }
                    i += 1;
                }
                TokenTree::Ident(ident) => {
                    let is = |k: usize, c: char| matches!(trees.get(k), Some(TokenTree::Punct(p)) if p.as_char() == c);
                    let after_dollar = i >= 1 && is(i - 1, '$');
                    let after_colons = i >= 2 && is(i - 1, ':') && is(i - 2, ':');
                    let mut segments = vec![ident.to_string()];
                    let line = ident.span().start().line;
                    let mut j = i + 1;
                    while is(j, ':') && is(j + 1, ':') {
                        let Some(TokenTree::Ident(next)) = trees.get(j + 2) else {
                            break;
                        };
                        segments.push(next.to_string());
                        j += 3;
                    }
                    if !after_dollar && !after_colons {
                        self.push(segments, false, None, line);
                    }
                    i = j;
                }
                TokenTree::Punct(_) | TokenTree::Literal(_) => i += 1,
            }
        }
    }
}

impl<'ast> Visit<'ast> for Collector {
    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        let line = m.ident.span().start().line;
        if m.attrs.iter().any(|a| a.path().is_ident("path")) {
            self.errors.push(format!(
                "src/{}:{line}: `#[path]` on `mod {}` is not supported by this test",
                self.file, m.ident
            ));
            return;
        }
        match &m.content {
            None => self
                .declared
                .push((self.scope.clone(), m.ident.to_string(), line)),
            Some((_, items)) => {
                self.scope.push(m.ident.to_string());
                self.inline.push(self.scope.clone());
                for item in items {
                    self.visit_item(item);
                }
                self.scope.pop();
            }
        }
    }

    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        if u.leading_colon.is_none() {
            self.use_tree(&mut Vec::new(), &u.tree);
        }
    }

    fn visit_path(&mut self, p: &'ast syn::Path) {
        if p.leading_colon.is_none() {
            let segments = p.segments.iter().map(|s| s.ident.to_string()).collect();
            let line = p
                .segments
                .first()
                .map_or(0, |s| s.ident.span().start().line);
            self.push(segments, false, None, line);
        }
        syn::visit::visit_path(self, p);
    }

    fn visit_macro(&mut self, m: &'ast syn::Macro) {
        self.visit_path(&m.path);
        self.tokens(m.tokens.clone());
    }
}

fn source_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file below `dir`, relative to it.
fn rust_files(dir: &Path, relative: &str, out: &mut BTreeSet<String>) {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
    for entry in entries {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, &format!("{relative}{name}/"), out);
        } else if name.ends_with(".rs") {
            out.insert(format!("{relative}{name}"));
        }
    }
}

#[test]
fn no_module_of_the_runtime_imports_a_module_that_imports_it_back() {
    let dir = source_dir();
    let krate = Crate::load(&Disk(dir.clone())).unwrap_or_else(|e| panic!("{e}"));
    let mut all = BTreeSet::new();
    rust_files(&dir, "", &mut all);
    let unread: Vec<&String> = all.difference(&krate.files).collect();
    assert!(
        unread.is_empty(),
        "files below src/ that no `mod` declares (the test would not see them): {unread:?}"
    );
    let cycles = krate.cycles();
    assert!(cycles.is_empty(), "{}", cycles.join("\n"));
    // The graph is not empty by accident: the runtime imports its drivers, and the
    // Muen CPU code reports exceptions through the exit module.
    let edges = krate.edges();
    let imports = |from: &str, to: &str| {
        let split = |s: &str| -> ModulePath {
            if s.is_empty() {
                Vec::new()
            } else {
                s.split("::").map(String::from).collect()
            }
        };
        edges
            .get(&split(from))
            .is_some_and(|t| t.contains_key(&split(to)))
    };
    assert!(imports("runtime", "net") && imports("runtime", "block"));
    assert!(imports("platform::muen::cpu", "exit"));
    assert!(imports("entry", "runtime"));
}

/// The checker itself, on small crates written here.
mod checker {
    use super::*;

    fn crate_of(files: &[(&'static str, &'static str)]) -> Crate {
        let sources: BTreeMap<&str, &str> = files.iter().copied().collect();
        Crate::load(&sources).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_cycle_through_use_and_a_call_is_named_with_its_sites() {
        let k = crate_of(&[
            ("lib.rs", "mod a;\nmod b;\n"),
            ("a.rs", "use crate::b::Thing;\npub fn f() {}\n"),
            (
                "b.rs",
                "pub struct Thing;\n\nfn g() {\n    crate::a::f();\n}\n",
            ),
        ]);
        let cycles = k.cycles();
        assert_eq!(cycles.len(), 1, "{cycles:?}");
        assert_eq!(
            cycles[0],
            "module cycle: a -> b -> a\n  a -> b:\n    src/a.rs:1: crate::b::Thing\n  \
             b -> a:\n    src/b.rs:4: crate::a::f"
        );
    }

    #[test]
    fn parents_children_facades_aliases_and_macros_count() {
        // A child that uses its parent's item while the parent uses the child's.
        let k = crate_of(&[
            ("lib.rs", "pub mod p;\n"),
            ("p/mod.rs", "mod c;\npub type T = c::C;\npub trait Tr {}\n"),
            ("p/c.rs", "use super::Tr;\npub struct C;\n"),
        ]);
        assert_eq!(k.cycles().len(), 1, "{:?}", k.cycles());
        assert!(k.cycles()[0].starts_with("module cycle: p -> p::c -> p"));
        // Importing through the root's re-export is importing the root.
        let k = crate_of(&[
            ("lib.rs", "mod a;\nmod b;\npub use b::B;\n"),
            ("a.rs", "pub fn f() {}\n"),
            ("b.rs", "pub struct B;\nfn g() { let _ = crate::B; }\n"),
        ]);
        assert!(k.cycles()[0].starts_with("module cycle: crate -> b -> crate"));
        // A module alias, and a path inside a macro's arguments.
        let k = crate_of(&[
            ("lib.rs", "mod a;\nmod b;\n"),
            ("a.rs", "use crate::b;\nfn f() { b::g(); }\npub fn h() {}\n"),
            (
                "b.rs",
                "pub fn g() { let _ = format_args!(\"{}\", crate::a::h()); }\n",
            ),
        ]);
        assert_eq!(k.cycles().len(), 1, "{:?}", k.cycles());
        let k = crate_of(&[
            ("lib.rs", "mod a;\nmod b;\n"),
            (
                "a.rs",
                "use crate::b as other;\nfn f() { other::g(); }\npub fn h() {}\n",
            ),
            (
                "b.rs",
                "pub fn g() { global_asm!(\"\", x = sym crate::a::h); }\n",
            ),
        ]);
        assert_eq!(k.cycles().len(), 1, "{:?}", k.cycles());
    }

    #[test]
    fn declarations_tests_comments_strings_and_dollar_crate_do_not_count() {
        let k = crate_of(&[
            (
                "lib.rs",
                "//! Uses [`crate::a::f`] in a doc comment.\nmod a;\nmod b;\n\
                 macro_rules! m { () => { $crate::a::f() }; }\n",
            ),
            (
                "a.rs",
                "use crate::b::g;\n/// See `crate::a`.\npub fn f() { g(); let _ = \"crate::a::f\"; }\n\
                 #[cfg(test)]\nmod tests {\n    use super::*;\n    use crate::b;\n}\n",
            ),
            ("b.rs", "pub fn g() {}\n#[cfg(test)]\nmod tests;\n"),
            ("b/tests.rs", "use super::*;\nuse crate::a::f;\n"),
        ]);
        assert_eq!(k.cycles(), Vec::<String>::new());
        let edges = k.edges();
        let a = vec!["a".to_string()];
        let b = vec!["b".to_string()];
        let b_tests = vec!["b".to_string(), "tests".to_string()];
        assert!(edges[&a].contains_key(&b));
        assert!(edges[&b_tests].contains_key(&a) && edges[&b_tests].contains_key(&b));
        assert!(!edges.contains_key(&b), "b imports nothing");
        assert!(!edges.contains_key(&Vec::new()), "the root imports nothing");
    }

    #[test]
    fn a_missing_module_file_is_named() {
        let sources: BTreeMap<&str, &str> = [("lib.rs", "mod gone;\n")].into_iter().collect();
        let e = Crate::load(&sources).err().unwrap();
        assert_eq!(
            e,
            "src/lib.rs:1: `mod gone;` has neither src/gone.rs nor src/gone/mod.rs"
        );
    }
}
