//! The import map of `src/`: which top-level module uses which. Layers run one way: no module imports one
//! that imports it back (directly or around a circle), nothing below `cmd/` imports `cmd/`, nothing but
//! `cmd/` imports `tui/`, and the map in docs/architecture.md is the one the code has. Inside each folder the
//! same holds between its files, with its `mod.rs` a node of its own, except the named, reasoned exceptions
//! below; grouped imports (`use super::{a, b::c}`) are read path by path. A `mod.rs` holds declarations and
//! re-exports only, except the named ones.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `src/tui/app/mod.rs` → `["tui", "app"]`; `src/text.rs` → `["text"]`.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap();
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// The module paths one `use` tree names, starting just after `crate::` or `super::`: `a::b::{c, d::e}` gives
/// `a::b::c` and `a::b::d::e` (groups nest); a segment that is not a module (an item, `self`, `*`) ends a path.
fn expand(rest: &str) -> Vec<Vec<String>> {
    fn tree(text: &str, at: &mut usize, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
        let bytes = text.as_bytes();
        let mut path = prefix;
        loop {
            while *at < bytes.len() && bytes[*at].is_ascii_whitespace() {
                *at += 1;
            }
            if *at < bytes.len() && bytes[*at] == b'{' {
                *at += 1;
                loop {
                    tree(text, at, path.clone(), out);
                    while *at < bytes.len() && bytes[*at].is_ascii_whitespace() {
                        *at += 1;
                    }
                    match bytes.get(*at) {
                        Some(b',') => *at += 1,
                        Some(b'}') => {
                            *at += 1;
                            break;
                        }
                        _ => break,
                    }
                    while *at < bytes.len() && bytes[*at].is_ascii_whitespace() {
                        *at += 1;
                    }
                    if bytes.get(*at) == Some(&b'}') {
                        *at += 1;
                        break;
                    }
                }
                return;
            }
            let word: String = text[*at..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            *at += word.len();
            let module = word.chars().next().is_some_and(|c| c.is_lowercase()) && word != "self";
            if module {
                path.push(word);
            }
            if module && text[*at..].starts_with("::") {
                *at += 2;
                continue;
            }
            // Skip the rest of this tree (`as name`, `::*`, an item's own path) up to `,` or `}` at this depth.
            let mut depth = 0usize;
            while let Some(&b) = bytes.get(*at) {
                match b {
                    b'{' => depth += 1,
                    b'}' if depth == 0 => break,
                    b'}' => depth -= 1,
                    b',' if depth == 0 => break,
                    b';' | b'(' | b')' | b'\n' if depth == 0 => break,
                    _ => {}
                }
                *at += 1;
            }
            out.push(path);
            return;
        }
    }
    let mut out = Vec::new();
    tree(rest, &mut 0, Vec::new(), &mut out);
    out
}

/// Where a file's own test module (`#[cfg(test)]` then `mod NAME {`) begins; a test-only child declared as
/// `mod NAME;` is not one, and the code after it is still the file's.
fn test_module_start(text: &str) -> Option<usize> {
    text.match_indices("#[cfg(test)]\nmod ")
        .find(|(at, m)| {
            let rest = &text[at + m.len()..];
            let name = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            rest[name..].starts_with(" {")
        })
        .map(|(at, _)| at)
}

/// Every module path a file names: `crate::a::b` anywhere, `super::x` resolved against its module, grouped
/// imports expanded, and in a parent module (a `mod.rs`) its own children named by a relative path (`child::item`).
fn uses(
    module: &[String],
    is_parent: bool,
    children: &BTreeSet<String>,
    text: &str,
) -> Vec<Vec<String>> {
    // A file's own test module names the file by `super::`: it is not an import of the file's parent.
    let text = &text[..test_module_start(text).unwrap_or(text.len())];
    let code: String = text
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let mut found = Vec::new();
    let starts_path = |i: usize| {
        let before = code[..i].chars().last();
        !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':')
    };
    for (i, _) in code.match_indices("crate::") {
        if starts_path(i) {
            found.extend(expand(&code[i + "crate::".len()..]));
        }
    }
    // `super` in a mod.rs is the parent of the directory's module; elsewhere the file's parent.
    let parent: Vec<String> = module[..module.len().saturating_sub(1)].to_vec();
    for (i, _) in code.match_indices("super::") {
        if starts_path(i) {
            for p in expand(&code[i + "super::".len()..]) {
                let mut path = parent.clone();
                path.extend(p);
                found.push(path);
            }
        }
    }
    if is_parent {
        for child in children {
            let needle = format!("{child}::");
            for (i, _) in code.match_indices(&needle) {
                if starts_path(i) {
                    let mut path = module.to_vec();
                    path.push(child.clone());
                    found.push(path);
                }
            }
        }
    }
    found.retain(|p| !p.is_empty());
    found
}

/// The `mod.rs` of a folder, as a node of the folder's own map.
const MOD_RS: &str = "mod.rs";

/// The edges between modules at `depth` path segments below `within` (`[]` for the top level). Inside a
/// folder (`within` not empty, depth 1) the folder's `mod.rs` is a node of its own, [`MOD_RS`]: a path to the
/// folder itself or to an item it defines is an edge to it.
fn edges(within: &[&str], depth: usize) -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let within: Vec<String> = within.iter().map(|s| s.to_string()).collect();
    let inner = !within.is_empty() && depth == 1;
    // Every module below each module, from the files: what a path segment may name.
    let mut modules: BTreeMap<Vec<String>, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let module = module_of(&src, file);
        for n in 0..module.len() {
            modules
                .entry(module[..n].to_vec())
                .or_default()
                .insert(module[n].clone());
        }
    }
    let children = modules.get(&within).cloned().unwrap_or_default();
    let mut map: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let module = module_of(&src, &file);
        if module == ["lib"] || module == ["main"] || !module.starts_with(&within) {
            continue;
        }
        let name = if module.len() >= within.len() + depth {
            module[within.len()..within.len() + depth].join("::")
        } else if inner && module == within {
            MOD_RS.to_string()
        } else {
            continue;
        };
        // A module with children (`mod.rs`, or `health.rs` beside `health/`) names them by relative paths.
        let own_children = modules.get(&module).cloned().unwrap_or_default();
        let is_mod_rs = !own_children.is_empty();
        let text = std::fs::read_to_string(&file).unwrap();
        let entry = map.entry(name.clone()).or_default();
        for used in uses(&module, is_mod_rs, &own_children, &text) {
            if !used.starts_with(&within) {
                continue;
            }
            let target = if used.len() >= within.len() + depth
                && (!inner || children.contains(&used[within.len()]))
            {
                used[within.len()..within.len() + depth].join("::")
            } else if inner {
                MOD_RS.to_string()
            } else {
                continue;
            };
            if target != name {
                entry.insert(target);
            }
        }
    }
    map
}

/// A circle in the map, if there is one.
fn circle(map: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        map: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == node) {
            let mut c = path[at..].to_vec();
            c.push(node.to_string());
            return Some(c);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in map.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, map, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    map.keys()
        .find_map(|k| visit(k, map, &mut Vec::new(), &mut done))
}

fn render(map: &BTreeMap<String, BTreeSet<String>>) -> String {
    map.iter()
        .map(|(from, to)| {
            let to: Vec<&str> = to.iter().map(String::as_str).collect();
            format!(
                "{from:<10} → {}\n",
                if to.is_empty() {
                    "-".into()
                } else {
                    to.join(", ")
                }
            )
        })
        .collect()
}

#[test]
fn layers_run_one_way() {
    let top = edges(&[], 1);
    assert!(top.len() > 10, "the map was read: {top:?}");
    assert_eq!(
        circle(&top),
        None,
        "a circle in the top-level import map:\n{}",
        render(&top)
    );
    for (from, to) in &top {
        assert!(from == "cmd" || !to.contains("cmd"), "{from} imports cmd/");
        assert!(
            from == "cmd" || from == "tui" || !to.contains("tui"),
            "{from} imports tui/"
        );
    }
}

/// The folders whose files get an inner check, `mod.rs` a node of its own.
const FOLDERS: &[&[&str]] = &[
    &["transport", "ssh"],
    &["transport"],
    &["actions"],
    &["telemetry"],
    &["fleet"],
    &["agent"],
    &["inventory"],
    &["tui"],
    &["tui", "app"],
    &["repair"],
    &["cmd"],
    &["snapshot"],
];

/// `mod.rs` files that still hold items of their own, each with why. The list only shrinks: the test fails once
/// one of them holds declarations and re-exports only.
const MOD_RS_WITH_ITEMS: &[(&str, &str)] = &[
    (
        "cmd/mod.rs",
        "the dispatch, the one function the command layer exists for; no command imports it",
    ),
    (
        "tui/ui/mod.rs",
        "render, drawing's one entry, with the header, footer and hit tests every view shares (the view half \
         of the kept tui/app <-> tui/ui loop)",
    ),
];

/// The items a file defines at its top level (functions, types, impls, constants), outside its test module.
fn top_level_items(text: &str) -> Vec<&str> {
    let code = &text[..test_module_start(text).unwrap_or(text.len())];
    code.lines()
        .filter(|line| {
            let bare = ["pub(crate) ", "pub(super) ", "pub "]
                .iter()
                .find_map(|p| line.strip_prefix(p))
                .unwrap_or(line);
            [
                "fn ",
                "async fn ",
                "struct ",
                "enum ",
                "impl",
                "const ",
                "static ",
                "trait ",
                "type ",
            ]
            .iter()
            .any(|kw| bare.starts_with(kw))
        })
        .collect()
}

/// A `mod.rs` declares its children and re-exports what they define; the logic lives in named files.
#[test]
fn mod_rs_files_hold_declarations_and_re_exports_only() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut mod_rs: Vec<PathBuf> = files
        .into_iter()
        .filter(|f| f.file_name().is_some_and(|n| n == "mod.rs"))
        .collect();
    mod_rs.sort();
    assert!(mod_rs.len() > 10, "the mod.rs files were found: {mod_rs:?}");
    for file in mod_rs {
        let rel = file
            .strip_prefix(&src)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let text = std::fs::read_to_string(&file).unwrap();
        let items = top_level_items(&text);
        let excepted = MOD_RS_WITH_ITEMS.iter().any(|(f, _)| *f == rel);
        if excepted {
            assert!(
                !items.is_empty(),
                "{rel} holds declarations only now: drop it from MOD_RS_WITH_ITEMS"
            );
        } else {
            assert!(
                items.is_empty(),
                "{rel} holds items of its own; move them to a named file:\n{}",
                items.join("\n")
            );
        }
    }
}

/// Loops between two files of one folder, kept on purpose: (folder, from, back to, why).
const KEPT_LOOPS: &[(&str, &str, &str, &str)] = &[(
    "tui",
    "app",
    "ui",
    "input asks the drawing code for its geometry (hit tests, scroll offsets) and drawing reads the app: a \
     view and its controller, kept in one module on purpose",
)];

#[test]
fn no_loop_inside_a_folder_but_the_named_ones() {
    for within in FOLDERS {
        let folder = within.join("::");
        let mut inner = edges(within, 1);
        assert!(inner.len() > 1, "{folder} was read: {inner:?}");
        for (_, from, back, _) in KEPT_LOOPS.iter().filter(|k| k.0 == folder) {
            assert!(
                inner.get(*from).is_some_and(|to| to.contains(*back))
                    && inner.get(*back).is_some_and(|to| to.contains(*from)),
                "{folder}: {from} and {back} no longer import each other: drop them from KEPT_LOOPS"
            );
            if let Some(to) = inner.get_mut(*back) {
                to.remove(*from);
            }
        }
        assert_eq!(
            circle(&inner),
            None,
            "a circle inside {folder} (a mod.rs is a node of its own):\n{}",
            render(&inner)
        );
    }
}

/// A folder's `mod.rs` is a node like any file: a child that imports it back while it names the child is a loop.
#[test]
fn a_mod_rs_and_its_child_importing_each_other_is_a_loop() {
    let map: BTreeMap<String, BTreeSet<String>> = [
        (MOD_RS.to_string(), BTreeSet::from(["state".to_string()])),
        ("state".to_string(), BTreeSet::from(["acks".to_string()])),
        ("acks".to_string(), BTreeSet::from([MOD_RS.to_string()])),
    ]
    .into();
    assert_eq!(
        circle(&map),
        Some(vec![
            "acks".to_string(),
            MOD_RS.into(),
            "state".into(),
            "acks".into()
        ])
    );
}

/// `use super::{a, b::{c, D}}` is read as imports of `a` and `b::c`, and a mod.rs naming its child is an edge.
#[test]
fn grouped_imports_and_a_mod_rs_are_read() {
    let paths = expand("{a, b::{c, D}, e::*, self};");
    assert_eq!(
        paths,
        vec![
            vec!["a".to_string()],
            vec!["b".into(), "c".into()],
            vec!["b".into()],
            vec!["e".into()],
            vec![],
        ]
    );
    let actions = edges(&["actions"], 1);
    assert!(actions[MOD_RS].contains("guard"), "{actions:?}");
    assert!(actions["run"].contains("guard"), "{actions:?}");
}

#[test]
fn the_documented_map_is_the_code_s() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/architecture.md"))
        .unwrap();
    let start = doc
        .find("```imports\n")
        .expect("docs/architecture.md has an ```imports block")
        + "```imports\n".len();
    let end = start + doc[start..].find("```").unwrap();
    let documented = &doc[start..end];
    let actual = render(&edges(&[], 1));
    assert_eq!(
        documented, actual,
        "update the ```imports block in docs/architecture.md to:\n{actual}"
    );
}

/// The files and folders directly under `dir`, as the layers diagram names them (`name/`, `name.rs`, or the
/// bare `name` inside a folder's own list).
fn entries(dir: &Path) -> Vec<(String, bool)> {
    let mut out: Vec<(String, bool)> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            (name, e.path().is_dir())
        })
        .filter(|(name, dir)| *dir || name.ends_with(".rs"))
        .collect();
    out.sort();
    out
}

/// The layers diagram of docs/architecture.md names every module of `src/`, every command of `cmd/` and every
/// transport, so the map a contributor reads first cannot leave one out.
#[test]
fn the_documented_module_list_is_the_code_s() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/architecture.md"))
        .unwrap();
    let start = doc
        .find("## Layers\n\n```\n")
        .expect("docs/architecture.md has a layers diagram");
    let end = start + "## Layers\n\n```\n".len();
    let layers = &doc[end..end + doc[end..].find("```").unwrap()];
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for (name, is_dir) in entries(&src) {
        let shown = if is_dir {
            format!("{name}/")
        } else {
            name.clone()
        };
        if name != "lib.rs" {
            assert!(
                layers.contains(&shown),
                "the layers diagram leaves out {shown}"
            );
        }
    }
    let cmd_line = layers
        .lines()
        .find(|l| l.contains("cmd/ ("))
        .expect("the diagram lists cmd/");
    for (name, _) in entries(&src.join("cmd")) {
        let command = name.trim_end_matches(".rs");
        if command != "mod" {
            assert!(
                [",", ";", ")"]
                    .iter()
                    .any(|end| cmd_line.contains(&format!(" {command}{end}"))),
                "cmd/ in the layers diagram leaves out {command}: {cmd_line}"
            );
        }
    }
    for (name, is_dir) in entries(&src.join("transport")) {
        if is_dir {
            assert!(
                layers.contains(&format!("{name}/")),
                "transport/ in the layers diagram leaves out {name}/"
            );
        }
    }
    let flow = doc
        .lines()
        .find(|l| l.contains("─▶ Transport ("))
        .expect("the data flow names the transports");
    for (name, is_dir) in entries(&src.join("transport")) {
        if is_dir {
            assert!(
                flow.contains(&name),
                "the data flow leaves out the {name} transport: {flow}"
            );
        }
    }
}
