//! Muen's own policy tool chain on the examples (`../shared/muen/pipeline.sh`, both
//! generations of Muen's tools), and the testbed's sinfo page against Muen's.
//!
//! For each generation, two runs of the whole chain on Muen's demo system, with hello,
//! echo, blockstore, web and vault added as subjects with their peers (web and vault
//! also with the channel pair between them), by `policy-gen --system-additions`:
//!
//! 1. the specifications as `policy-gen --muen-tools GEN` writes them (no ELF);
//! 2. with the release ELFs (`policy-gen --elf`, and `pipeline.sh --files`, which adds
//!    `mucfgmemhashes` and a second `mugensinfo`).
//!
//! Each run must pass every step ("Successfully validated" by `mucfgvalidate`). Then
//! `mugensinfo`'s page of each app is decoded with muen-sinfo and checked against its
//! specification: every resource it declares (and its libraries' channels and the
//! toolchain's pages) with its name, address, size, rights, memory kind, content, event
//! number or vector, and nothing else. And the testbed's page for the same app (`sinfo
//! build` in format 4, with the demo hardware's TSC rate) must be Muen's page byte for
//! byte; with the ELF, the page QEMU mode gives (the image regions included) must be
//! `mugensinfo`'s page before hashing, and after hashing equal but for the SHA-256
//! fields (docs/testbed.md lists these differences).
//!
//! Run with `--nocapture` (scripts/test.sh does) to see every step of every run.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use muen_abi::names;
use muen_sinfo::{Content as SinfoContent, MemoryKind, ResourceData, SubjectInfo, Version};
use muen_spec::{ChannelEnd, ComponentSpec, Content, Generation, Library};
use muen_testbed::clock::TscRate;
use muen_testbed::policy::{self, Image};

use common::muen_kit::{Kit, Outcome, Run};
use common::{example, show, testbed};

const APPS: [&str; 5] = ["hello", "echo", "blockstore", "web", "vault"];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn manifest(app: &str) -> PathBuf {
    example(app).join("app.toml")
}

/// A fresh folder for one test under cargo's temporary directory for tests.
fn folder(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("muen-pipeline-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The examples' release ELFs for Muen (`x86_64-unknown-none`), built once per test
/// binary in the target directory the QEMU tests use, copied into one folder under the
/// names the specifications' `<file filename>` give (what `pipeline.sh --files` takes).
fn elves() -> &'static Path {
    static ELVES: OnceLock<PathBuf> = OnceLock::new();
    ELVES.get_or_init(|| {
        let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("qemu-target");
        let dir = folder("elves");
        for app in APPS {
            let status = Command::new(env!("CARGO"))
                .args([
                    "build",
                    "--quiet",
                    "--release",
                    "--target",
                    "x86_64-unknown-none",
                ])
                .arg("--manifest-path")
                .arg(example(app).join("Cargo.toml"))
                .env("CARGO_TARGET_DIR", &target)
                .env("CARGO_NET_OFFLINE", "true")
                .status()
                .unwrap();
            assert!(status.success(), "building examples/{app} for Muen failed");
            std::fs::copy(
                target.join("x86_64-unknown-none/release").join(app),
                dir.join(app),
            )
            .unwrap();
        }
        dir
    })
}

/// Writes the specifications policy-gen writes for `generation` (with the ELFs of
/// `elves` if given) and the system additions into `dir`; returns the run.
fn inputs(dir: &Path, generation: Generation, elves: Option<&Path>, out: &str) -> Run {
    let specs_dir = dir.join(format!("specs-{out}"));
    std::fs::create_dir_all(&specs_dir).unwrap();
    let mut specs = Vec::new();
    for app in APPS {
        let elf = elves.map(|d| d.join(app));
        let xml = policy_gen::generate(&manifest(app), None, elf.as_deref(), generation)
            .unwrap_or_else(|e| panic!("policy-gen {app}: {e}"));
        let path = specs_dir.join(format!("{app}.xml"));
        std::fs::write(&path, xml).unwrap();
        specs.push(path);
    }
    let manifests: Vec<PathBuf> = APPS.iter().map(|a| manifest(a)).collect();
    let additions = dir.join("additions.xml");
    std::fs::write(
        &additions,
        policy_gen::system_additions(&manifests, None).unwrap(),
    )
    .unwrap();
    Run {
        generation: generation.name(),
        out: dir.join(out),
        additions: Some(additions),
        files: elves.map(Path::to_path_buf),
        specs,
    }
}

/// The TSC rate of the system's hardware in policy B, kHz: what `mugensinfo` writes
/// as `tsc_khz` (2026-01: `<processor speed>`; 2026-04: `<processor><x86_64
/// tscFrequency>`).
fn tsc_khz(outcome: &Outcome, generation: Generation) -> u32 {
    let path = outcome.file("policy_b.xml");
    let text = std::fs::read_to_string(&path).unwrap();
    let doc = roxmltree::Document::parse(&text).unwrap();
    let processor = doc
        .descendants()
        .find(|n| n.has_tag_name("processor"))
        .unwrap_or_else(|| panic!("{}: no <processor>", path.display()));
    let speed = match generation {
        Generation::V2026_01 => processor.attribute("speed"),
        Generation::V2026_04 => processor
            .children()
            .find(|n| n.has_tag_name("x86_64"))
            .and_then(|n| n.attribute("tscFrequency")),
    };
    speed
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{}: no TSC rate in <processor>", path.display()))
}

/// One resource as the page states it, for comparing.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Expected {
    Memory {
        kind: MemoryKind,
        content: SinfoContent,
        pattern: Option<u8>,
        address: u64,
        size: u64,
        writable: bool,
        executable: bool,
    },
    Event(u8),
    Vector(u8),
}

fn content(c: &Content) -> (SinfoContent, Option<u8>) {
    match c {
        Content::Unspecified => (SinfoContent::Uninitialized, None),
        Content::Fill(p) => (SinfoContent::Fill, Some(*p)),
        Content::File { .. } => (SinfoContent::File, None),
    }
}

/// Every resource the subject of `spec` must have, by name, from the specification
/// itself (its provided and required memory, its channels, events and target events),
/// its libraries' channels and the toolchain's three pages.
fn declared(spec: &ComponentSpec) -> Vec<(String, Expected)> {
    let mut out = Vec::new();
    let memory =
        |kind, (content, pattern), region: muen_abi::layout::Region, w, x| Expected::Memory {
            kind,
            content,
            pattern,
            address: region.address.as_u64(),
            size: region.size,
            writable: w,
            executable: x,
        };
    for m in &spec.provides {
        out.push((
            m.logical.clone(),
            memory(
                m.kind,
                content(&m.content),
                m.region,
                m.writable,
                m.executable,
            ),
        ));
    }
    for m in &spec.memory {
        out.push((
            m.logical.clone(),
            memory(
                MemoryKind::Subject,
                (SinfoContent::Uninitialized, None),
                m.region,
                m.writable,
                m.executable,
            ),
        ));
    }
    let mut channels = spec.channels.clone();
    for name in &spec.depends {
        let library = Library::from_policy_name(name).unwrap();
        channels.push(library.channel());
    }
    for c in &channels {
        let writer = matches!(c.end, ChannelEnd::Writer { .. });
        // Muen fills every physical channel with zeroes.
        out.push((
            c.logical.clone(),
            memory(
                MemoryKind::SubjectChannel,
                (SinfoContent::Fill, Some(0)),
                c.region,
                writer,
                false,
            ),
        ));
        match c.end {
            ChannelEnd::Writer { event: Some(e) } => {
                out.push((c.logical.clone(), Expected::Event(e)))
            }
            ChannelEnd::Reader { vector: Some(v) } => {
                out.push((c.logical.clone(), Expected::Vector(v)))
            }
            _ => {}
        }
    }
    for m in muen_spec::view::toolchain_mappings(&spec.name) {
        out.push((
            m.name.clone(),
            memory(m.kind, content(&m.content), m.region, m.writable, false),
        ));
    }
    for e in &spec.events.source {
        out.push((e.logical.clone(), Expected::Event(e.id)));
    }
    for t in &spec.events.target {
        if let Some(muen_spec::model::TargetAction::InjectInterrupt { vector }) = t.action {
            out.push((t.logical.clone(), Expected::Vector(vector)));
        }
    }
    out
}

/// Decodes `page` (mugensinfo's) and checks it against `spec`: format 4, the subject's
/// name, `tsc`, and exactly the declared resources. With `hashed`, memory with content
/// (fill or file) other than the sinfo page itself must carry a hash, and nothing else.
fn check_against_spec(page: &[u8], spec: &ComponentSpec, tsc: u32, hashed: bool, what: &str) {
    let info = SubjectInfo::new_checked(page).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(info.version(), Version::V4, "{what}");
    assert_eq!(info.name().as_bytes(), spec.name.as_bytes(), "{what}");
    assert_eq!(info.tsc_khz(), tsc, "{what}");
    let mut expected = declared(spec);
    let mut found = Vec::new();
    for r in info.resources() {
        let name = r.name.to_string();
        let got = match r.data {
            ResourceData::Memory(m) => {
                let should_hash =
                    hashed && m.content != SinfoContent::Uninitialized && name != names::SINFO;
                assert_eq!(m.hash.is_some(), should_hash, "{what}: hash of `{name}`");
                Expected::Memory {
                    kind: m.kind,
                    content: m.content,
                    pattern: m.pattern,
                    address: m.address,
                    size: m.size,
                    writable: m.writable(),
                    executable: m.executable(),
                }
            }
            ResourceData::Event(n) => Expected::Event(n),
            ResourceData::Vector(n) => Expected::Vector(n),
            other => panic!("{what}: unexpected resource `{name}`: {other:?}"),
        };
        found.push((name, got));
    }
    let key = |(n, e): &(String, Expected)| {
        let kind = match e {
            Expected::Memory { .. } => 0,
            Expected::Event(_) => 1,
            Expected::Vector(_) => 2,
        };
        (kind, n.clone())
    };
    expected.sort_by_key(key);
    found.sort_by_key(key);
    assert_eq!(
        found, expected,
        "{what}: mugensinfo's resources (left) differ from the specification's (right)"
    );
}

/// Asserts that the testbed's page `ours` is `muens` byte for byte, naming the first
/// resource that differs if not.
fn assert_same_page(ours: &[u8], muens: &[u8], what: &str) {
    if ours == muens {
        return;
    }
    let (a, b) = (
        SubjectInfo::new_checked(ours).unwrap(),
        SubjectInfo::new_checked(muens).unwrap(),
    );
    let header = (a.version(), a.tsc_khz(), a.resource_count());
    let theirs = (b.version(), b.tsc_khz(), b.resource_count());
    assert_eq!(header, theirs, "{what}: header (version, tsc_khz, count)");
    for (x, y) in a.resources().zip(b.resources()) {
        assert_eq!(
            (x.name.to_string(), x.data),
            (y.name.to_string(), y.data),
            "{what}: record {} (testbed left, mugensinfo right)",
            x.index
        );
    }
    let at = ours.iter().zip(muens).position(|(x, y)| x != y).unwrap();
    panic!("{what}: the pages differ at byte {at}");
}

/// The testbed's page for `app` as a user makes it: `muen-testbed sinfo build APP
/// --tsc-khz KHZ --sinfo-format 4`.
fn testbed_page(app: &str, tsc: u32, dir: &Path) -> Vec<u8> {
    let path = dir.join(format!("{app}_testbed_sinfo"));
    let out = testbed()
        .args(["sinfo", "build"])
        .arg(example(app))
        .args(["--tsc-khz", &tsc.to_string(), "--sinfo-format", "4", "-o"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    std::fs::read(path).unwrap()
}

fn examples_pass_muens_tool_chain(generation: Generation) {
    let kit = Kit::beside(&repo_root());
    let dir = folder(generation.name());

    // 1. The specifications without ELF.
    let outcome = kit.run(&inputs(&dir, generation, None, "plain"));
    outcome.print();
    outcome.assert_passed();
    let tsc = tsc_khz(&outcome, generation);
    for app in APPS {
        let muens = std::fs::read(outcome.file(&format!("sinfo/{app}_sinfo"))).unwrap();
        let text = std::fs::read_to_string(dir.join(format!("specs-plain/{app}.xml"))).unwrap();
        let spec = muen_spec::parse(&text, Path::new(app)).unwrap();
        let what = format!("{generation} {app}");
        check_against_spec(&muens, &spec, tsc, false, &what);
        assert_same_page(&testbed_page(app, tsc, &dir), &muens, &what);
        println!("{what}: mugensinfo's page matches the specification and is the testbed's page byte for byte");
    }

    // 2. With the ELFs: the image regions, and hashes after mucfgmemhashes.
    let outcome = kit.run(&inputs(&dir, generation, Some(elves()), "elf"));
    outcome.print();
    outcome.assert_passed();
    assert!(
        outcome.console.contains("ok   memhashes"),
        "{}",
        outcome.console
    );
    for app in APPS {
        let spec_path = dir.join(format!("specs-elf/{app}.xml"));
        let text = std::fs::read_to_string(&spec_path).unwrap();
        let spec = muen_spec::parse(&text, &spec_path).unwrap();
        let what = format!("{generation} {app} with ELF");
        let muens = std::fs::read(outcome.file(&format!("sinfo/{app}_sinfo"))).unwrap();
        let hashed = std::fs::read(outcome.file(&format!("sinfo_hashed/{app}_sinfo"))).unwrap();
        check_against_spec(&muens, &spec, tsc, false, &what);
        check_against_spec(&hashed, &spec, tsc, true, &format!("{what}, hashed"));
        assert!(
            spec.provides
                .iter()
                .any(|m| m.kind == MemoryKind::SubjectBinary),
            "{what}: no image regions"
        );
        // The page QEMU mode gives: with the image regions.
        let mut world = policy::parse(&text, &spec_path, Image::Include).unwrap();
        let tsc_rate = TscRate::from_khz(tsc).unwrap();
        let ours = muen_testbed::sinfo::page(&world.view, tsc_rate, Version::V4).unwrap();
        assert_same_page(&ours, &muens, &what);
        // After mucfgmemhashes the pages differ in the hashes only: with Muen's hashes
        // the testbed's page is Muen's.
        let info = SubjectInfo::new_checked(&hashed).unwrap();
        for m in &mut world.view.mappings {
            m.hash = info.memory(&m.name).unwrap().hash;
        }
        let ours = muen_testbed::sinfo::page(&world.view, tsc_rate, Version::V4).unwrap();
        assert_same_page(&ours, &hashed, &format!("{what}, hashed"));
        println!(
            "{what}: mugensinfo's pages (before and after mucfgmemhashes) match the \
             specification; the testbed's QEMU-mode page is the first byte for byte, and \
             the second but for the hashes"
        );
    }
}

#[test]
fn the_examples_pass_muens_tool_chain_2026_01() {
    examples_pass_muens_tool_chain(Generation::V2026_01);
}

#[test]
fn the_examples_pass_muens_tool_chain_2026_04() {
    examples_pass_muens_tool_chain(Generation::V2026_04);
}

/// A specification Muen's tools reject fails the run with the tool's own message: the
/// 2026-01 format given to the 2026-04 tools stops at `mucfgcvresalloc`, and the
/// failure the tests report (`Outcome::assert_passed` panics with it) quotes it.
#[test]
fn a_specification_muens_tool_chain_rejects_fails_with_its_messages() {
    let kit = Kit::beside(&repo_root());
    let dir = folder("rejected");
    let spec = dir.join("hello.xml");
    let xml = policy_gen::generate(&manifest("hello"), None, None, Generation::V2026_01).unwrap();
    std::fs::write(&spec, xml).unwrap();
    let outcome = kit.run(&Run {
        generation: "2026-04",
        out: dir.join("out"),
        additions: None,
        files: None,
        specs: vec![spec],
    });
    outcome.print();
    assert_eq!(outcome.status, Some(3), "{}", outcome.console);
    let message = outcome.failure().expect("a rejected run passes");
    for part in [
        "Muen's tool chain rejects it",
        "FAIL cvresalloc-hello",
        "Unexpected element \"vmx\": expecting \"x86_64|arm64|close parent|doc\"",
        "### pipeline FAILED at step 3 (component hello)",
    ] {
        assert!(message.contains(part), "`{part}` missing in:\n{message}");
    }
}

/// Without the kit, or with a part of it missing or not executable, the tests fail
/// naming what is missing.
#[test]
fn a_missing_kit_is_named() {
    let dir = folder("no-kit");
    let e = Kit::check(&dir.join("muen")).unwrap_err();
    assert_eq!(
        e,
        format!("{} is not a directory", dir.join("muen").display())
    );
    let fake = dir.join("kit");
    std::fs::create_dir_all(&fake).unwrap();
    let e = Kit::check(&fake).unwrap_err();
    assert!(
        e.starts_with(&format!(
            "{} is missing",
            fake.join("pipeline.sh").display()
        )),
        "{e}"
    );
    std::fs::write(fake.join("pipeline.sh"), "#!/bin/sh\n").unwrap();
    let e = Kit::check(&fake).unwrap_err();
    assert_eq!(
        e,
        format!(
            "{} is not an executable file",
            fake.join("pipeline.sh").display()
        )
    );
    let message = Kit::find(&dir.join("repo")).expect_err("a missing kit is accepted");
    assert!(
        message.starts_with("Muen's policy tool chain is not usable: ")
            && message.contains("../shared/muen"),
        "{message}"
    );
    // The real kit has everything.
    Kit::check(Kit::beside(&repo_root()).root()).unwrap();
}
