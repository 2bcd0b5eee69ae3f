//! The host crate's modules stand in layers: each top-level module of `src/`
//! uses (`crate::name`) only modules on the floors below it. Two modules that use
//! each other share a floor, which hides which one is the vocabulary and which
//! the user; the one pair allowed is the error catalogue and the image stage
//! (the catalogue names the image's types, the stage returns the catalogue's
//! errors).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

/// The most floors the host crate may have.
const MOST_FLOORS: usize = 9;

/// Modules that may use each other.
const ALLOWED_CYCLES: &[&[&str]] = &[&["error", "image"]];

/// Each top-level module of `src/` and the top-level modules it uses, from its
/// code (comments and its `#[cfg(test)] mod tests` left out).
fn uses() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    let mut dirs = vec![src.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap();
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let module = first.trim_end_matches(".rs").to_string();
        let text = fs::read_to_string(&file).unwrap();
        let code = text
            .split("#[cfg(test)]\nmod tests")
            .next()
            .unwrap()
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        let used = graph.entry(module.clone()).or_default();
        for (at, _) in code.match_indices("crate::") {
            let rest = &code[at + "crate::".len()..];
            let names: Vec<&str> = match rest.strip_prefix('{') {
                Some(group) => group
                    .split('}')
                    .next()
                    .unwrap()
                    .split(',')
                    .map(|item| item.trim().split("::").next().unwrap())
                    .collect(),
                None => vec![
                    rest.split(|c: char| !c.is_alphanumeric() && c != '_')
                        .next()
                        .unwrap(),
                ],
            };
            used.extend(
                names
                    .into_iter()
                    .filter(|n| !n.is_empty() && *n != module)
                    .map(str::to_string),
            );
        }
    }
    let modules: BTreeSet<String> = graph.keys().cloned().collect();
    for used in graph.values_mut() {
        used.retain(|m| modules.contains(m));
    }
    graph
}

/// The modules each one reaches, itself included.
fn reach(graph: &BTreeMap<String, BTreeSet<String>>, from: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::from([from.to_string()]);
    let mut todo = vec![from.to_string()];
    while let Some(m) = todo.pop() {
        for next in &graph[&m] {
            if seen.insert(next.clone()) {
                todo.push(next.clone());
            }
        }
    }
    seen
}

#[test]
fn the_host_crate_stands_in_layers() {
    let graph = uses();
    assert!(graph.len() > 10, "too few modules read: {graph:?}");
    let reaches: BTreeMap<&String, BTreeSet<String>> =
        graph.keys().map(|m| (m, reach(&graph, m))).collect();
    // Floors, modules that reach each other sharing one.
    let mut cycles: BTreeSet<Vec<String>> = BTreeSet::new();
    let floor_of = |m: &String, memo: &mut BTreeMap<String, usize>| -> usize {
        fn floor(
            m: &String,
            reaches: &BTreeMap<&String, BTreeSet<String>>,
            memo: &mut BTreeMap<String, usize>,
        ) -> usize {
            if let Some(f) = memo.get(m) {
                return *f;
            }
            let below = reaches[m]
                .iter()
                .filter(|other| !reaches[*other].contains(m))
                .map(|other| floor(other, reaches, memo))
                .max()
                .unwrap_or(0);
            memo.insert(m.clone(), below + 1);
            below + 1
        }
        floor(m, &reaches, memo)
    };
    let mut memo = BTreeMap::new();
    let mut floors = 0;
    for m in graph.keys() {
        floors = floors.max(floor_of(m, &mut memo));
        let together: Vec<String> = reaches[m]
            .iter()
            .filter(|other| reaches[*other].contains(m))
            .cloned()
            .collect();
        if together.len() > 1 {
            cycles.insert(together);
        }
    }
    let allowed: BTreeSet<Vec<String>> = ALLOWED_CYCLES
        .iter()
        .map(|c| c.iter().map(|m| m.to_string()).collect())
        .collect();
    assert_eq!(
        cycles, allowed,
        "modules that use each other (one of them should own the types both need)"
    );
    assert!(floors <= MOST_FLOORS, "{floors} floors: {memo:?}");
}
