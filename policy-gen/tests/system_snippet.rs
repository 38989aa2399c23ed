//! The system-policy snippets in `docs/muen.md` validate against Muen's `system_src`
//! schema (of both generations of Muen's tools), and every logical name they map exists
//! in the generated specification.

mod common;

use std::path::Path;

use common::*;

/// The fenced ```xml blocks of `docs/muen.md`.
fn xml_blocks() -> Vec<String> {
    let doc = std::fs::read_to_string(repo_root().join("docs/muen.md")).unwrap();
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in doc.lines() {
        let trimmed = line.trim_start();
        match &mut current {
            None if trimmed == "```xml" => current = Some(String::new()),
            Some(block) if trimmed == "```" => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            Some(block) => {
                block.push_str(trimmed);
                block.push('\n');
            }
            None => {}
        }
    }
    blocks
}

/// The name of the first element of `xml`.
fn root(xml: &str) -> &str {
    let start = xml.find('<').unwrap() + 1;
    let end = xml[start..].find([' ', '>', '/']).unwrap();
    &xml[start..start + end]
}

fn spec_of(example: &str, generation: Generation) -> String {
    let manifest = repo_root().join("examples").join(example).join("app.toml");
    let mut args = tools(generation).to_vec();
    args.push(manifest.to_str().unwrap());
    generate(&repo_root(), &args)
}

#[test]
fn snippets_validate_and_match_the_generated_names() {
    for generation in Generation::ALL {
        snippets_validate(generation);
    }
}

fn snippets_validate(generation: Generation) {
    let dir = TempDir::new("system-snippet");
    let schema = fragment_schema(&dir, generation);
    let blocks = xml_blocks();
    let mut roots: Vec<&str> = blocks.iter().map(|b| root(b)).collect();
    for block in &blocks {
        match root(block) {
            "event" => {
                // The poweroff variant of the component's exit event.
                let spec = spec_of("echo", generation);
                let exit = "<event id=\"0\" logical=\"exit\"/>";
                assert!(spec.contains(exit));
                let changed = spec.replace(exit, block);
                xmllint(
                    &changed,
                    &component_schema(generation),
                    "exit with system_poweroff",
                );
            }
            _ => xmllint(
                block,
                &schema,
                &format!("{generation}: docs/muen.md block <{}>", root(block)),
            ),
        }
        if let Some(at) = block.find("<component ref=\"") {
            let name = &block[at + 16..];
            let name = &name[..name.find('"').unwrap()];
            if !Path::new(&repo_root().join("examples").join(name)).is_dir() {
                continue;
            }
            let spec = spec_of(name, generation);
            for map in block.split("<map logical=\"").skip(1) {
                let logical = &map[..map.find('"').unwrap()];
                let known = ["debuglog", "time_info"].contains(&logical)
                    || spec.contains(&format!("logical=\"{logical}\""));
                assert!(
                    known,
                    "{name}: `{logical}` is not in the generated specification"
                );
            }
        }
    }
    roots.sort();
    roots.dedup();
    assert_eq!(roots, ["channels", "event", "events", "memory", "subject"]);
}
