//! The store's layering, checked from its source: a module under `tables/` knows
//! only the schema and the shared infrastructure (never a sibling table, never a
//! flow), and the modules under `flows/` use each other without a circle. Reading
//! the files keeps the rule where a reviewer can see it, as `conventions.rs` does
//! for the HTTP rules.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// What a table module may name under `crate::`: the schema and the infrastructure
/// at the top of the crate.
const INFRASTRUCTURE: &[&str] = &[
    "schema",
    "now",
    "StoreError",
    "StoreResult",
    "DbConnection",
    "Backend",
    "Store",
    "store",
    "conn",
    "error",
    "Tx",
    "tx",
    // Announcing a change on commit, for other processes' caches.
    "changes",
];

/// The `.rs` files of `src/<dir>`, by module name, with comments removed.
fn modules(dir: &str) -> BTreeMap<String, String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(dir);
    let mut found = BTreeMap::new();
    for entry in std::fs::read_dir(&path).expect("the source folder is readable") {
        let file = entry.expect("a directory entry").path();
        let Some(name) = file.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        if file.extension().is_some_and(|e| e == "rs") && name != "mod" {
            let text = std::fs::read_to_string(&file).expect("a source file is readable");
            found.insert(name.to_owned(), without_comments(&text));
        }
    }
    found
}

/// Doc and line comments may name any path (intra-doc links); only code counts.
fn without_comments(text: &str) -> String {
    text.lines()
        .map(|line| line.split_once("//").map_or(line, |(code, _)| code))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every path named after `prefix` (`crate::`, `super::`), use trees flattened:
/// `crate::{a, b::{c, d}}` gives `a`, `b::c` and `b::d`.
fn paths_after(src: &str, prefix: &str) -> Vec<String> {
    let mut paths = Vec::new();
    let mut rest = src;
    while let Some(at) = rest.find(prefix) {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + prefix.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let mut depth = 0usize;
        let end = rest
            .char_indices()
            .find(|&(_, c)| match c {
                '{' => {
                    depth += 1;
                    false
                }
                '}' if depth > 0 => {
                    depth -= 1;
                    false
                }
                c if depth > 0 => !(c.is_alphanumeric() || " \n_:,*".contains(c)),
                c => !(c.is_alphanumeric() || c == '_' || c == ':' || c == '{'),
            })
            .map_or(rest.len(), |(i, _)| i);
        paths.extend(flatten(&rest[..end]));
    }
    paths
}

fn flatten(tree: &str) -> Vec<String> {
    let tree = tree.trim().trim_end_matches("::");
    let Some(open) = tree.find('{') else {
        return vec![tree.split(" as ").next().unwrap_or(tree).trim().to_owned()];
    };
    let head = &tree[..open];
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let mut items = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&inner[start..]);
    items
        .into_iter()
        .filter(|item| !item.trim().is_empty())
        .flat_map(flatten)
        .map(|tail| format!("{head}{tail}"))
        .collect()
}

fn first_segment(path: &str) -> &str {
    path.split("::").next().unwrap_or(path)
}

/// What a table module names that it must not: a sibling table or a flow.
fn table_breaches(tables: &BTreeMap<String, String>) -> Vec<String> {
    let mut breaches = Vec::new();
    for (name, src) in tables {
        for path in paths_after(src, "crate::") {
            if !INFRASTRUCTURE.contains(&first_segment(&path)) {
                breaches.push(format!("tables/{name}.rs uses crate::{path}"));
            }
        }
        for path in paths_after(src, "super::") {
            let head = first_segment(&path);
            if head == "super" || head == "flows" || (head != *name && tables.contains_key(head)) {
                breaches.push(format!("tables/{name}.rs uses super::{path}"));
            }
        }
    }
    breaches
}

/// Which flows each flow uses.
fn flow_graph(flows: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    flows
        .iter()
        .map(|(name, src)| {
            let by_crate = paths_after(src, "crate::").into_iter().filter_map(|p| {
                p.strip_prefix("flows::")
                    .map(|t| first_segment(t).to_owned())
            });
            let by_super = paths_after(src, "super::")
                .into_iter()
                .map(|p| first_segment(&p).to_owned());
            let uses = by_crate
                .chain(by_super)
                .filter(|u| u != name && flows.contains_key(u))
                .collect();
            (name.clone(), uses)
        })
        .collect()
}

/// A circle among the flows, as the path that closes it, if there is one.
fn circle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == node) {
            let mut found = path[at..].to_vec();
            found.push(node.to_owned());
            return Some(found);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(found) = visit(next, graph, path, done) {
                return Some(found);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|start| visit(start, graph, &mut Vec::new(), &mut done))
}

#[test]
fn tables_know_only_the_schema_and_the_infrastructure() {
    let tables = modules("tables");
    assert!(tables.contains_key("subjects"), "tables/ is read");
    let breaches = table_breaches(&tables);
    assert!(
        breaches.is_empty(),
        "a table module may use only the schema and the crate's infrastructure; \
         compose tables in a flow instead:\n{}",
        breaches.join("\n")
    );
}

#[test]
fn flows_use_each_other_without_a_circle() {
    let flows = modules("flows");
    assert!(flows.contains_key("rights"), "flows/ is read");
    let graph = flow_graph(&flows);
    assert!(
        graph["rights"].contains("erasure"),
        "the graph sees flow imports"
    );
    if let Some(found) = circle(&graph) {
        panic!("the flows form a circle: {}", found.join(" -> "));
    }
}

#[test]
fn the_checks_see_what_they_must_refuse() {
    let tables: BTreeMap<String, String> = [
        (
            "a",
            "use crate::schema::a;\nuse crate::{DbConnection, tables::b};",
        ),
        ("b", "use super::a::Row;\nfn f() { crate::flows::x::go(); }"),
        (
            "c",
            "// [`crate::tables::a`]\nuse crate::{now, StoreResult};",
        ),
    ]
    .into_iter()
    .map(|(n, s)| (n.to_owned(), without_comments(s)))
    .collect();
    assert_eq!(
        table_breaches(&tables),
        [
            "tables/a.rs uses crate::tables::b",
            "tables/b.rs uses crate::flows::x::go",
            "tables/b.rs uses super::a::Row",
        ]
    );
    let flows: BTreeMap<String, String> = [
        ("x", "use crate::flows::{y, z as zz};"),
        ("y", "use crate::tables::a;"),
        ("z", "fn f() { super::x::go(); }"),
    ]
    .into_iter()
    .map(|(n, s)| (n.to_owned(), s.to_owned()))
    .collect();
    assert_eq!(
        circle(&flow_graph(&flows)),
        Some(vec!["x".into(), "z".into(), "x".into()])
    );
}
