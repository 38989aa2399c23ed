//! `policy-gen --system-additions`: the fragment for the example apps (snapshot), every
//! section of it valid Muen system-policy XML (both generations' schemas), every
//! logical resource of each specification wired once with the specification's sizes,
//! and the errors. That Muen's tools accept it on Muen's demo system is tested in
//! muen-testbed's `tests/muen_pipeline.rs`, which runs `../shared/muen/pipeline.sh`.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::*;
use roxmltree::{Document, Node};

const EXAMPLES: [&str; 5] = ["hello", "echo", "blockstore", "web", "vault"];

fn manifest(example: &str) -> PathBuf {
    repo_root().join("examples").join(example).join("app.toml")
}

/// `policy-gen --system-additions [extra...] <examples' manifests>`.
fn additions(extra: &[&str], examples: &[&str]) -> String {
    let manifests: Vec<PathBuf> = examples.iter().map(|e| manifest(e)).collect();
    let mut args = vec!["--system-additions"];
    args.extend(extra);
    args.extend(manifests.iter().map(|m| m.to_str().unwrap()));
    generate(&repo_root(), &args)
}

fn elements<'a, 'i>(node: Node<'a, 'i>) -> impl Iterator<Item = Node<'a, 'i>> {
    node.children().filter(|n| n.is_element())
}

fn section<'a, 'i>(doc: &'a Document<'i>, name: &str) -> Node<'a, 'i> {
    elements(doc.root_element())
        .find(|n| n.has_tag_name(name))
        .unwrap_or_else(|| panic!("no <{name}> section"))
}

#[test]
fn the_examples_additions_match_their_snapshot() {
    let xml = additions(&[], &EXAMPLES);
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/additions.xml");
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some_and(|v| v == "1") {
        std::fs::write(&path, &xml).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (create it with UPDATE_SNAPSHOTS=1)",
            path.display()
        )
    });
    assert!(
        xml == expected,
        "the output differs from {}; if the change is intended, regenerate with \
         UPDATE_SNAPSHOTS=1.\n--- got ---\n{xml}",
        path.display()
    );
}

/// Each section is what an integrator pastes into a Muen system policy, so each must be
/// valid there: `<memory>`, `<events>`, `<channels>`, every `<subject>`, every dbgserver
/// `<map>` and the `<partition>` against Muen's system schema, the stand-ins'
/// `<component>` against its component schema; for both generations (the fragment is
/// the same for both). The debug log channels' size is the system's configuration
/// variable `$logchannel_size`, which `mucfgmerge` replaces by its value before the
/// schema applies; here it is the demo system's value.
#[test]
fn every_section_is_muen_system_policy_xml() {
    let xml = additions(&[], &EXAMPLES);
    for generation in Generation::ALL {
        assert_eq!(
            additions(&tools(generation), &EXAMPLES),
            xml,
            "the additions differ for {generation}"
        );
    }
    let doc = Document::parse(&xml).unwrap();
    let root = doc.root_element();
    assert!(root.has_tag_name("systemAdditions"));
    let names: Vec<&str> = elements(root).map(|n| n.tag_name().name()).collect();
    assert_eq!(
        names,
        [
            "memory",
            "events",
            "channels",
            "subjects",
            "dbgserverLogs",
            "scheduling",
            "components"
        ]
    );
    let text = |n: Node| xml[n.range()].replace("$logchannel_size", "16#0002_0000#");
    let mut fragments = vec![
        text(section(&doc, "memory")),
        text(section(&doc, "events")),
        text(section(&doc, "channels")),
    ];
    fragments.extend(elements(section(&doc, "subjects")).map(text));
    fragments.extend(elements(section(&doc, "dbgserverLogs")).map(text));
    fragments.extend(elements(section(&doc, "scheduling")).map(text));
    let components: Vec<String> = elements(section(&doc, "components")).map(text).collect();
    assert_eq!(
        components,
        ["<component name=\"peer\" profile=\"native\"/>"]
    );
    for generation in Generation::ALL {
        let dir = TempDir::new("additions");
        let schema = fragment_schema(&dir, generation);
        for fragment in &fragments {
            xmllint(fragment, &schema, &format!("{generation}: additions"));
        }
        for component in &components {
            xmllint(
                component,
                &component_schema(generation),
                "the stand-ins' component",
            );
        }
    }
}

/// For each app: every logical resource of its specification (and of its libraries) is
/// mapped exactly once; every physical name is declared in the fragment (or is the
/// system's `time_info`); channel and memory sizes are the specification's; every
/// device channel's other end is held by the stand-in peer with the opposite role,
/// every app channel's by the app at its other end (web and vault: `requests`,
/// `responses`); the app's debug log is read by dbgserver; every subject has a
/// scheduling group.
#[test]
fn every_resource_of_the_specifications_is_wired() {
    let xml = additions(&[], &EXAMPLES);
    let doc = Document::parse(&xml).unwrap();
    let declared = |section_name: &str| -> BTreeMap<String, Option<String>> {
        elements(section(&doc, section_name))
            .map(|n| {
                (
                    n.attribute("name").unwrap().to_string(),
                    n.attribute("size").map(str::to_string),
                )
            })
            .collect()
    };
    let (memory, events, channels) = (declared("memory"), declared("events"), declared("channels"));
    let subjects: Vec<Node> = elements(section(&doc, "subjects")).collect();
    let subject = |name: &str| {
        *subjects
            .iter()
            .find(|s| s.attribute("name") == Some(name))
            .unwrap_or_else(|| panic!("no subject {name}"))
    };
    let groups: Vec<&str> = section(&doc, "scheduling")
        .descendants()
        .filter(|n| n.has_tag_name("subject"))
        .map(|n| n.attribute("name").unwrap())
        .collect();
    let logs: Vec<(&str, &str)> = elements(section(&doc, "dbgserverLogs"))
        .map(|m| {
            (
                m.attribute("logical").unwrap(),
                m.attribute("physical").unwrap(),
            )
        })
        .collect();
    for example in EXAMPLES {
        let spec = policy_gen::component_spec(&manifest(example), None, None).unwrap();
        let s = subject(example);
        let component = elements(s).find(|n| n.has_tag_name("component")).unwrap();
        assert_eq!(component.attribute("ref"), Some(example));
        let maps: Vec<(&str, &str)> = elements(component)
            .map(|m| {
                (
                    m.attribute("logical").unwrap(),
                    m.attribute("physical").unwrap(),
                )
            })
            .collect();
        let physical = |logical: &str| -> &str {
            let found: Vec<&str> = maps
                .iter()
                .filter(|(l, _)| *l == logical)
                .map(|(_, p)| *p)
                .collect();
            assert_eq!(found.len(), 1, "{example}: `{logical}` mapped {found:?}");
            found[0]
        };
        let mut logical: Vec<String> = vec!["debuglog".into(), "time_info".into()];
        let debuglog = physical("debuglog");
        assert_eq!(
            channels[debuglog].as_deref(),
            Some("$logchannel_size"),
            "{example}"
        );
        assert!(logs.contains(&(&format!("log_{example}"), debuglog)));
        assert_eq!(physical("time_info"), "time_info");
        let has_peer = !spec.channels.is_empty() || !spec.memory.is_empty();
        let peer = if has_peer {
            subject(&format!("{example}_peer"))
        } else {
            s
        };
        for c in &spec.channels {
            let p = physical(&c.logical);
            assert_eq!(
                channels[p].as_deref(),
                Some(muen_spec::hex::word64(c.region.size).as_str()),
                "{example}: size of `{}`",
                c.logical
            );
            logical.push(c.logical.clone());
            if policy_gen::additions::is_app_channel(&c.logical) {
                // The other app maps the same physical channel under the same name.
                let other = if example == "web" { "vault" } else { "web" };
                assert!(
                    subject(other).descendants().any(|n| n.has_tag_name("map")
                        && n.attribute("logical") == Some(c.logical.as_str())
                        && n.attribute("physical") == Some(p)),
                    "{example}: `{}` is not {other}'s `{p}`",
                    c.logical
                );
                assert!(
                    !peer
                        .descendants()
                        .any(|n| n.attribute("physical") == Some(p)),
                    "{example}: a stand-in holds `{p}`"
                );
                continue;
            }
            let peer_end = peer
                .descendants()
                .find(|n| n.attribute("physical") == Some(p))
                .unwrap_or_else(|| panic!("{example}: no peer end of {p}"));
            let opposite = match c.role() {
                muen_abi::names::Role::Reader => "writer",
                _ => "reader",
            };
            assert_eq!(peer_end.tag_name().name(), opposite, "{p}");
        }
        for m in &spec.memory {
            let p = physical(&m.logical);
            assert_eq!(
                memory[p].as_deref(),
                Some(muen_spec::hex::word64(m.region.size).as_str())
            );
            assert!(peer
                .descendants()
                .any(|n| n.has_tag_name("memory") && n.attribute("physical") == Some(p)));
            logical.push(m.logical.clone());
        }
        for e in &spec.events.source {
            assert!(events.contains_key(physical(&e.logical)), "{example}");
            logical.push(e.logical.clone());
        }
        // Nothing else is mapped.
        let mut mapped: Vec<String> = maps.iter().map(|(l, _)| l.to_string()).collect();
        mapped.sort();
        logical.sort();
        assert_eq!(mapped, logical, "{example}");
        // `exit` restarts the subject; HLT sleeps.
        let restart = s
            .descendants()
            .find(|n| n.has_tag_name("event") && n.attribute("logical") == Some("restart"))
            .unwrap();
        assert_eq!(restart.attribute("physical"), Some(physical("exit")));
        assert!(elements(restart).any(|n| n.has_tag_name("reset")));
        assert!(s
            .descendants()
            .any(|n| n.attribute("id") == Some("12")
                && n.attribute("physical") == Some("subject_sleep")));
        assert!(groups.contains(&example));
    }
    // hello has no channels, so no peer.
    assert!(!subjects
        .iter()
        .any(|s| s.attribute("name") == Some("hello_peer")));
    assert_eq!(
        groups,
        [
            "hello",
            "echo",
            "echo_peer",
            "blockstore",
            "blockstore_peer",
            "web",
            "web_peer",
            "vault",
            "vault_peer"
        ]
    );
}

/// Runs policy-gen and returns (status, stderr); stdout must be empty.
fn fails(args: &[&str]) -> (Option<i32>, String) {
    let out = run(&repo_root(), args);
    assert!(
        out.stdout.is_empty(),
        "policy-gen {args:?} wrote to stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    (out.status.code(), String::from_utf8(out.stderr).unwrap())
}

#[test]
fn bad_additions_requests_are_refused() {
    let echo = manifest("echo");
    let echo = echo.to_str().unwrap();
    let hello = manifest("hello");
    let hello = hello.to_str().unwrap();
    assert_eq!(
        fails(&["--system-additions", echo, hello, echo]),
        (
            Some(1),
            format!(
                "policy-gen: error: {echo}: two apps are named `echo`; subject names must \
                 be unique\n"
            )
        )
    );
    assert_eq!(
        fails(&["--system-additions", "--name", "x", echo, hello]),
        (
            Some(1),
            "policy-gen: error: --name: names the component of one manifest; 2 were given\n"
                .to_string()
        )
    );
    // Several manifests and --elf belong to --system-additions and the specification
    // respectively: usage errors.
    let (status, stderr) = fails(&[echo, hello]);
    assert_eq!(status, Some(2), "{stderr}");
    assert!(stderr.contains("--system-additions"), "{stderr}");
    let (status, stderr) = fails(&["--system-additions", "--elf", "x", echo]);
    assert_eq!(status, Some(2), "{stderr}");
    assert!(stderr.contains("cannot be used with"), "{stderr}");
    // A manifest error names its file, as without --system-additions.
    let (status, stderr) = fails(&["--system-additions", echo, "missing.toml"]);
    assert_eq!(status, Some(1));
    assert!(
        stderr.starts_with("policy-gen: error: missing.toml: cannot read the file: "),
        "{stderr}"
    );
    // A name that gets too long as a physical name.
    let dir = TempDir::new("additions-long");
    let name = format!("a{}", "b".repeat(56));
    dir.write("app.toml", format!("name = \"{name}\"\n"));
    let out = run(dir.path(), &["--system-additions", "app.toml"]);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr,
        format!(
            "policy-gen: error: app.toml: the debug log channel name `debuglog_{name}` has \
             66 characters, more than Muen's 63; use a shorter app or device name\n"
        )
    );
}
