//! The core's layers as `src/lib.rs` lists them are true: every module of the crate is in the
//! list, and no module imports one of its own layer or a layer above it.
//!
//! Reads `src/` as text, as `../shared/tools/layering.py` does: an import is a `use crate::…`
//! (names at the top of a `{…}` group included) or a `crate::x::` path, outside comments. A
//! module is `src/x.rs` and every file under `src/x/`. Names the crate root re-exports
//! (`crate::Run`, `crate::Session`) count as imports of the module they come from.
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The layer list of `src/lib.rs`'s doc comment: module → layer (0 is the bottom).
fn listed_layers(lib: &str) -> BTreeMap<String, usize> {
    let mut layers = BTreeMap::new();
    for line in lib.lines() {
        let Some(rest) = line.trim().strip_prefix("//! - layer ") else { continue };
        let (number, rest) = rest.split_once(':').unwrap_or_else(|| panic!("src/lib.rs: `{line}` has no `:` after the layer number"));
        let layer: usize = number.trim().parse().unwrap_or_else(|_| panic!("src/lib.rs: `{line}`: `{number}` is not a layer number"));
        let names = rest.split(" — ").next().unwrap_or_default();
        for name in names.split(',') {
            let name = name.trim().trim_start_matches("[`").trim_end_matches("`]").trim_matches('`');
            assert!(is_identifier(name), "src/lib.rs: `{line}`: `{name}` is not a module name");
            if let Some(before) = layers.insert(name.to_string(), layer) {
                panic!("src/lib.rs lists `{name}` twice (layers {before} and {layer})");
            }
        }
    }
    assert!(!layers.is_empty(), "src/lib.rs has no `//! - layer N: …` lines");
    layers
}

fn is_identifier(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') && !s.starts_with(|c: char| c.is_ascii_digit())
}

/// The crate's modules, from the `mod x;` lines of `src/lib.rs`.
fn declared_modules(lib: &str) -> BTreeSet<String> {
    lib.lines()
        .map(|line| line.trim())
        .filter_map(|line| line.strip_prefix("pub mod ").or_else(|| line.strip_prefix("mod ")))
        .map(|rest| rest.trim_end_matches(';').trim().to_string())
        .collect()
}

/// Names the crate root re-exports (`pub use session::{Session, …};`), with their module.
fn root_reexports(lib: &str) -> BTreeMap<String, String> {
    let mut names = BTreeMap::new();
    for line in lib.lines() {
        let Some(path) = line.trim().strip_prefix("pub use ") else { continue };
        let path = path.trim_end_matches(';');
        let Some((module, items)) = path.split_once("::") else { continue };
        for item in items.trim_matches(|c| c == '{' || c == '}').split(',') {
            let item = item.trim();
            let name = item.rsplit(" as ").next().unwrap_or(item).rsplit("::").next().unwrap_or(item).trim();
            if !name.is_empty() {
                names.insert(name.to_string(), module.to_string());
            }
        }
    }
    names
}

/// Every `.rs` file of module `name`: `src/name.rs` and all files under `src/name/`.
fn module_files(name: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let file = src().join(format!("{name}.rs"));
    if file.exists() {
        files.push(file);
    }
    let mut dirs = vec![src().join(name)];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The text with comments and string literals blanked out (so a doc link or a message that
/// names `crate::x::` is not an import).
fn code_only(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            i += 2;
            while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                i += 1;
            }
            i += 2;
        } else if c == '\'' && next.is_some() && chars.get(i + 2) == Some(&'\'') {
            // A one-character literal such as '"' (a lifetime never closes with a quote there).
            out.push(' ');
            i += 3;
        } else if c == '\'' && next == Some('\\') && chars.get(i + 3) == Some(&'\'') {
            // An escaped one: '\"', '\n'.
            out.push(' ');
            i += 4;
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// The first path segments of a `use crate::` tree (`a`, `b::c`, `{d, e::{f}}` → a, b, d, e).
fn group_heads(tree: &str) -> Vec<String> {
    let tree = tree.trim();
    let Some(inner) = tree.strip_prefix('{') else {
        return vec![leading_identifier(tree)];
    };
    let inner = inner.strip_suffix('}').unwrap_or(inner);
    let (mut heads, mut depth, mut item) = (Vec::new(), 0, String::new());
    for c in inner.chars().chain(std::iter::once(',')) {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                let head = leading_identifier(&item);
                if !head.is_empty() {
                    heads.push(head);
                }
                item.clear();
                continue;
            }
            _ => {}
        }
        item.push(c);
    }
    heads
}

/// The identifier a path starts with (`Run` of `Run as _`, `params` of `params::{self, X}`).
fn leading_identifier(path: &str) -> String {
    path.trim().chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect()
}

/// The names a file's code reaches through `crate::` (modules and root re-exports alike).
fn crate_names(code: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let before = &rest[..at];
        let after = &rest[at + "crate::".len()..];
        let is_use = before.trim_end().ends_with("use");
        if is_use {
            let end = after.find(';').unwrap_or(after.len());
            names.extend(group_heads(&after[..end]));
        } else {
            names.insert(leading_identifier(after));
        }
        rest = after;
    }
    names
}

struct Layering {
    layers: BTreeMap<String, usize>,
    modules: BTreeSet<String>,
    reexports: BTreeMap<String, String>,
}

impl Layering {
    fn read() -> Self {
        let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
        Layering { layers: listed_layers(&lib), modules: declared_modules(&lib), reexports: root_reexports(&lib) }
    }

    /// The modules `module`'s files import: (imported module, file).
    fn imports(&self, module: &str) -> Vec<(String, PathBuf)> {
        let mut imports = Vec::new();
        for file in module_files(module) {
            let code = code_only(&std::fs::read_to_string(&file).unwrap());
            for name in crate_names(&code) {
                let target = if self.modules.contains(&name) { Some(name) } else { self.reexports.get(&name).cloned() };
                if let Some(target) = target.filter(|t| t != module) {
                    imports.push((target, file.clone()));
                }
            }
        }
        imports
    }

    /// Every import that does not point to a lower layer, as a message.
    fn violations(&self) -> Vec<String> {
        let mut wrong = Vec::new();
        for module in &self.modules {
            let Some(&layer) = self.layers.get(module) else { continue };
            for (target, file) in self.imports(module) {
                let target_layer = self.layers.get(&target).copied().unwrap_or(usize::MAX);
                if target_layer >= layer {
                    let file = file.strip_prefix(src().parent().unwrap()).unwrap_or(&file).display().to_string();
                    wrong.push(format!("{file}: `{module}` (layer {layer}) uses `{target}` (layer {target_layer}): a module may only use layers below its own"));
                }
            }
        }
        wrong
    }
}

#[test]
fn every_module_is_in_the_layer_list() {
    let layering = Layering::read();
    let missing: Vec<&String> = layering.modules.iter().filter(|m| !layering.layers.contains_key(*m)).collect();
    assert!(missing.is_empty(), "modules missing from the layer list in src/lib.rs's doc comment: {missing:?}");
    let unknown: Vec<&String> = layering.layers.keys().filter(|m| !layering.modules.contains(*m)).collect();
    assert!(unknown.is_empty(), "src/lib.rs's layer list names modules the crate does not have: {unknown:?}");
}

#[test]
fn no_module_uses_its_own_layer_or_one_above() {
    let wrong = Layering::read().violations();
    assert!(wrong.is_empty(), "imports against the layer list of src/lib.rs:\n{}", wrong.join("\n"));
}

#[test]
fn the_checks_see_imports_of_every_form() {
    let code = code_only(
        "use crate::config::BertConfig;\nuse crate::{alloc_stats, params::{self, GradSlot}, Run as _};\n\
         // use crate::plan;\nlet s = \"crate::bench::x\";\nlet v = crate::lora::f(x);\n/* crate::probe:: */\nlet q = '\"'; let e = '\\\"'; crate::rng::seeded(1, 2);",
    );
    let names = crate_names(&code);
    let expected: BTreeSet<String> = ["config", "alloc_stats", "params", "Run", "lora", "rng"].map(String::from).into();
    assert_eq!(names, expected);
    let layering = Layering::read();
    assert_eq!(layering.reexports.get("Run").map(String::as_str), Some("train"), "crate::Run is train's");
    assert!(!module_files("encoder").is_empty() && !module_files("kernels").is_empty(), "modules are found as files and folders");
    assert!(layering.imports("train").iter().any(|(m, _)| m == "encoder"), "train's use of the encoder is seen");
}
