//! The import map of `src/`: which top-level module uses which. Layers run one way: no module imports one
//! that imports it back (directly or around a circle), nothing below `cmd/` imports `cmd/`, nothing but
//! `cmd/` imports `tui/`, and the map in docs/architecture.md is the one the code has.

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

/// Every module path a file names: `crate::a::b` anywhere, and `super::x` resolved against its module.
fn uses(module: &[String], text: &str) -> Vec<Vec<String>> {
    let code: String = text
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let mut found = Vec::new();
    let segments = |rest: &str| -> Vec<String> {
        rest.split("::")
            .map(|s| {
                s.chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect::<String>()
            })
            .take_while(|s| !s.is_empty() && s.chars().next().is_some_and(|c| c.is_lowercase()))
            .collect()
    };
    for (i, _) in code.match_indices("crate::") {
        let before = code[..i].chars().last();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        found.push(segments(&code[i + "crate::".len()..]));
    }
    // `super` in a mod.rs is the parent of the directory's module; elsewhere the file's parent.
    let parent: Vec<String> = module[..module.len().saturating_sub(1)].to_vec();
    for (i, _) in code.match_indices("super::") {
        let before = code[..i].chars().last();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let mut path = parent.clone();
        path.extend(segments(&code[i + "super::".len()..]));
        found.push(path);
    }
    found.retain(|p| !p.is_empty());
    found
}

/// The edges between modules at `depth` path segments below `within` (`[]` for the top level).
fn edges(within: &[&str], depth: usize) -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut map: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let module = module_of(&src, &file);
        if module == ["lib"] || module == ["main"] {
            continue;
        }
        if !module.starts_with(&within.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            || module.len() < within.len() + depth
        {
            continue;
        }
        let name = module[within.len()..within.len() + depth].join("::");
        let text = std::fs::read_to_string(&file).unwrap();
        let entry = map.entry(name.clone()).or_default();
        for used in uses(&module, &text) {
            if !used.starts_with(&within.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                || used.len() < within.len() + depth
            {
                continue;
            }
            let target = used[within.len()..within.len() + depth].join("::");
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
    // Inside tui/, input asks the drawing code for its geometry (hit tests, scroll offsets) and drawing reads
    // the app: a view and its controller, kept in one module on purpose.
    for within in [
        &["transport", "ssh"][..],
        &["transport"],
        &["actions"],
        &["telemetry"],
        &["fleet"],
        &["agent"],
        &["inventory"],
    ] {
        let inner = edges(within, 1);
        assert_eq!(
            circle(&inner),
            None,
            "a circle inside {within:?}:\n{}",
            render(&inner)
        );
    }
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
