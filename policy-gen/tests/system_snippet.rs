//! The XML blocks of `docs/muen.md`, read from the file so that the document and the
//! test cannot drift apart:
//!
//! - every block is marked (` ```xml system `: pasted into a system policy, ` ```xml
//!   component `: a component specification, ` ```xml variant `: the power-off
//!   variant, ` ```xml generated `: an excerpt of what policy-gen writes for the
//!   guestbook's pair `web` and `vault`);
//! - each but the excerpts validates against Muen's schema (both generations of Muen's
//!   tools); each excerpt's lines are, in order, lines of policy-gen's output for web
//!   and vault (their specifications or their system additions);
//! - each subject maps every logical resource of its generated specification and no
//!   other;
//! - all of them together, on Muen's demo system with the examples' specifications as
//!   policy-gen writes them, pass Muen's whole tool chain (`../shared/muen/pipeline.sh`)
//!   for both generations, the power-off variant with `hello` in the same system, and
//!   `web` and `vault` with policy-gen's system additions (whose excerpts the document
//!   shows) too.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::muen_kit::{Kit, Run};
use common::*;
use roxmltree::{Document, Node};

/// How a block of docs/muen.md is used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Use {
    /// Pasted into the system policy (its root says where).
    System,
    /// A component specification.
    Component,
    /// Part of the power-off variant.
    Variant,
    /// An excerpt of policy-gen's output for web and vault.
    Generated,
}

/// The fenced ```xml blocks of `docs/muen.md` with their use; panics at an unmarked
/// one.
fn xml_blocks() -> Vec<(Use, String)> {
    let doc = std::fs::read_to_string(repo_root().join("docs/muen.md")).unwrap();
    let mut blocks = Vec::new();
    let mut current: Option<(Use, String)> = None;
    for (number, line) in doc.lines().enumerate() {
        let trimmed = line.trim_start();
        match &mut current {
            None if trimmed.starts_with("```xml") => {
                let use_ = match trimmed["```xml".len()..].trim() {
                    "system" => Use::System,
                    "component" => Use::Component,
                    "variant" => Use::Variant,
                    "generated" => Use::Generated,
                    other => panic!(
                        "docs/muen.md:{}: an xml block marked `{other}`; mark it `xml \
                         system`, `xml component`, `xml variant` or `xml generated` so \
                         that the test runs it through Muen's tools",
                        number + 1
                    ),
                };
                current = Some((use_, String::new()));
            }
            Some(_) if trimmed == "```" => blocks.extend(current.take()),
            Some((_, block)) => {
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

/// The guestbook's pair, whose app-to-app channels docs/muen.md shows.
const PAIR: [&str; 2] = ["web", "vault"];

/// `policy-gen --system-additions` for [`PAIR`].
fn pair_additions() -> String {
    let manifests: Vec<PathBuf> = PAIR
        .iter()
        .map(|e| repo_root().join("examples").join(e).join("app.toml"))
        .collect();
    policy_gen::system_additions(&manifests, None).unwrap()
}

/// Fails unless the lines of `excerpt` are consecutive lines of `generated` (both
/// without their indentation).
fn assert_excerpt_of(excerpt: &str, generated: &[String], what: &str) {
    let lines: Vec<&str> = excerpt.lines().map(str::trim).collect();
    assert!(
        generated
            .windows(lines.len())
            .any(|w| w.iter().zip(&lines).all(|(g, l)| g == l)),
        "{what}: not what policy-gen writes for web and vault:\n{excerpt}"
    );
}

/// `$logchannel_size` is the system's configuration value, which `mucfgmerge`
/// replaces before the schema applies; the demo system's.
fn resolved(block: &str) -> String {
    block.replace("$logchannel_size", "16#0002_0000#")
}

/// The generated `hello` with the variant's exit event in place of its own.
fn hello_powering_off(generation: Generation, variant_event: &str) -> String {
    let spec = spec_of("hello", generation);
    let exit = "<event id=\"0\" logical=\"exit\"/>";
    assert!(spec.contains(exit));
    spec.replace(exit, variant_event)
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
    let mut roots: Vec<(Use, &str)> = blocks.iter().map(|(u, b)| (*u, root(b))).collect();
    // What policy-gen writes for web and vault, line by line, for the excerpts.
    let mut generated: Vec<String> = PAIR
        .iter()
        .flat_map(|e| {
            spec_of(e, generation)
                .lines()
                .map(|l| l.trim().to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    generated.extend(pair_additions().lines().map(|l| l.trim().to_string()));
    for (use_, block) in &blocks {
        let what = format!("{generation}: docs/muen.md block <{}>", root(block));
        if *use_ == Use::Generated {
            assert_excerpt_of(block, &generated, &what);
            continue;
        }
        match (use_, root(block)) {
            (Use::Variant, "event") => xmllint(
                &hello_powering_off(generation, block),
                &component_schema(generation),
                "exit with system_poweroff",
            ),
            (Use::Component, _) => xmllint(block, &component_schema(generation), &what),
            _ => xmllint(&resolved(block), &schema, &what),
        }
        if let Some(at) = block.find("<component ref=\"") {
            let name = &block[at + 16..];
            let name = &name[..name.find('"').unwrap()];
            if !Path::new(&repo_root().join("examples").join(name)).is_dir() {
                continue;
            }
            // Every logical name of the specification (and its libraries) is mapped,
            // and nothing else.
            let spec = muen_spec::parse(&spec_of(name, generation), Path::new(name)).unwrap();
            let mut wanted: Vec<String> = ["debuglog", "time_info"].map(String::from).to_vec();
            wanted.extend(spec.channels.iter().map(|c| c.logical.clone()));
            wanted.extend(spec.memory.iter().map(|m| m.logical.clone()));
            wanted.extend(spec.events.source.iter().map(|e| e.logical.clone()));
            let mut mapped: Vec<String> = block
                .split("<map logical=\"")
                .skip(1)
                .map(|m| m[..m.find('"').unwrap()].to_string())
                .collect();
            wanted.sort();
            mapped.sort();
            assert_eq!(mapped, wanted, "{name}: the maps of docs/muen.md");
        }
    }
    roots.sort();
    roots.dedup();
    assert_eq!(
        roots,
        [
            (Use::System, "channels"),
            (Use::System, "events"),
            (Use::System, "map"),
            (Use::System, "memory"),
            (Use::System, "partition"),
            (Use::System, "subject"),
            (Use::Component, "component"),
            (Use::Variant, "event"),
            (Use::Variant, "map"),
            (Use::Generated, "channel"),
            (Use::Generated, "map"),
            (Use::Generated, "writer"),
        ]
    );
}

/// A `<systemAdditions>` document (the input of `pipeline.sh --additions`), section by
/// section: the elements to append to each.
#[derive(Default)]
struct Additions {
    sections: BTreeMap<&'static str, Vec<String>>,
}

const SECTIONS: [&str; 6] = [
    "memory",
    "events",
    "channels",
    "subjects",
    "dbgserverLogs",
    "components",
];

impl Additions {
    fn add(&mut self, section: &'static str, xml: String) {
        self.sections.entry(section).or_default().push(xml);
    }

    /// The blocks of docs/muen.md, each in its section.
    fn from_docs(blocks: &[(Use, String)]) -> Additions {
        let mut a = Additions::default();
        for (use_, block) in blocks {
            // The excerpts are policy-gen's; its whole additions are merged instead.
            if *use_ == Use::Generated {
                continue;
            }
            let doc = Document::parse(block).unwrap();
            let top = doc.root_element();
            let children = || {
                top.children()
                    .filter(Node::is_element)
                    .map(|n| block[n.range()].to_string())
            };
            match (use_, root(block)) {
                (Use::System, "memory") => children().for_each(|c| a.add("memory", c)),
                (Use::System, "events") => children().for_each(|c| a.add("events", c)),
                (Use::System, "channels") => children().for_each(|c| a.add("channels", c)),
                (Use::System, "subject") => a.add("subjects", block.clone()),
                (Use::System, "map") => a.add("dbgserverLogs", block.clone()),
                (Use::System, "partition") => a.add("partitions", block.clone()),
                (Use::Component, _) => a.add("components", block.clone()),
                (Use::Variant, _) => {}
                (u, r) => panic!("a {u:?} block <{r}> has no place"),
            }
        }
        a
    }

    /// Adds the sections of the additions document `xml`, and its partition's groups
    /// to the partition `apps`.
    fn merge(&mut self, xml: &str) {
        let doc = Document::parse(xml).unwrap();
        for section in doc.root_element().children().filter(Node::is_element) {
            let name = section.tag_name().name();
            if name == "scheduling" {
                for group in section.descendants().filter(|n| n.has_tag_name("group")) {
                    self.add("groups", xml[group.range()].to_string());
                }
                continue;
            }
            let section_name = SECTIONS
                .into_iter()
                .find(|s| *s == name)
                .unwrap_or_else(|| panic!("unknown section <{name}>"));
            for child in section.children().filter(Node::is_element) {
                self.add(section_name, xml[child.range()].to_string());
            }
        }
    }

    fn to_xml(&self) -> String {
        let mut out = String::from("<systemAdditions>\n");
        for section in SECTIONS {
            if let Some(items) = self.sections.get(section) {
                out.push_str(&format!(
                    "<{section}>\n{}\n</{section}>\n",
                    items.join("\n")
                ));
            }
        }
        let partition = &self.sections["partitions"];
        assert_eq!(partition.len(), 1, "one partition in docs/muen.md");
        let mut partition = partition[0].clone();
        if let Some(groups) = self.sections.get("groups") {
            let end = partition.rfind("</partition>").unwrap();
            partition.insert_str(end, &groups.join("\n"));
        }
        out.push_str(&format!(
            "<scheduling cpu=\"0\" takeFrom=\"nic_linux\" ticks=\"20\">\n{partition}</scheduling>\n"
        ));
        out.push_str("</systemAdditions>\n");
        out
    }
}

/// Every block of docs/muen.md through Muen's tool chain of `generation`: echo and
/// blockstore with their peers as the document wires them, hello with the power-off
/// variant (its additions from `policy-gen --system-additions` on its changed
/// specification, which must contain the variant's map), and web and vault with
/// policy-gen's additions (of which the document shows excerpts).
fn docs_pass_muens_tool_chain(generation: Generation) {
    let kit = Kit::beside(&repo_root());
    let dir = TempDir::new(&format!("docs-muen-{generation}"));
    let blocks = xml_blocks();
    let mut additions = Additions::from_docs(&blocks);

    let variant = |r: &str| {
        blocks
            .iter()
            .find(|(u, b)| *u == Use::Variant && root(b) == r)
            .map(|(_, b)| b.clone())
            .unwrap()
    };
    let hello = hello_powering_off(generation, &variant("event"));
    let hello_spec = muen_spec::parse(&hello, Path::new("hello.xml")).unwrap();
    let hello_additions = policy_gen::additions::SystemAdditions::new(&[((), hello_spec)])
        .unwrap()
        .to_xml("hello, powering off");
    assert!(
        hello_additions.contains(variant("map").trim()),
        "hello's subject lacks the variant's map:\n{hello_additions}"
    );
    additions.merge(&hello_additions);
    additions.merge(&pair_additions());
    let additions_file = dir.write("additions.xml", additions.to_xml());

    let mut specs: Vec<PathBuf> = ["echo", "blockstore", "web", "vault"]
        .iter()
        .map(|e| dir.write(&format!("{e}.xml"), spec_of(e, generation)))
        .collect();
    specs.push(dir.write("hello.xml", hello));
    let outcome = kit.run(&Run {
        generation: generation.name(),
        out: dir.path().join("out"),
        additions: Some(additions_file),
        files: None,
        specs,
    });
    outcome.print();
    outcome.assert_passed();
    for page in [
        "echo",
        "bridge",
        "blockstore",
        "blockserver",
        "hello",
        "web",
        "vault",
    ] {
        assert!(
            outcome.file(&format!("sinfo/{page}_sinfo")).is_file(),
            "no sinfo page for {page}"
        );
    }
}

#[test]
fn docs_muen_md_passes_muens_tool_chain_2026_01() {
    docs_pass_muens_tool_chain(Generation::V2026_01);
}

#[test]
fn docs_muen_md_passes_muens_tool_chain_2026_04() {
    docs_pass_muens_tool_chain(Generation::V2026_04);
}
