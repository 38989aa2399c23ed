//! `policy-gen --elf UNIKERNEL`: Solo5's own test programs built for Muen (by
//! `scripts/solo5-build.sh` from the pinned tree beside the repository) and broken
//! copies of them.
//!
//! Each real image gives a specification that both generations of Muen's schema accept
//! and that says what Solo5's Muen bindings need (checked against the ELF's symbols and
//! `solo5-elftool`'s reading of the manifest, not against policy-gen's own reading);
//! Muen's tool chain (`../shared/muen/pipeline.sh`, both generations; the
//! `muens_tool_chain` tests, which `scripts/test.sh` runs with their output shown)
//! accepts them, including `solo5-check.py` and `mugensolo5`. Every broken note is a one-line error,
//! status 1, nothing on stdout.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::muen_kit::{Kit, Run};
use common::solo5::{self as s5, Image, ABI1, MFT1};
use common::*;
use muen_spec::model::{ChannelEnd, Gpr, MsrMode};
use muen_spec::ComponentSpec;
use xmas_elf::sections::SectionData;
use xmas_elf::symbol_table::Entry;
use xmas_elf::ElfFile;

/// The value of symbol `name` in the ELF at `path`.
fn symbol(path: &Path, name: &str) -> u64 {
    let bytes = std::fs::read(path).unwrap();
    let mut aligned = vec![0u64; bytes.len().div_ceil(8)];
    zerocopy::IntoBytes::as_mut_bytes(aligned.as_mut_slice())[..bytes.len()]
        .copy_from_slice(&bytes);
    let bytes = &zerocopy::IntoBytes::as_bytes(aligned.as_slice())[..bytes.len()];
    let elf = ElfFile::new(bytes).unwrap();
    for section in elf.section_iter() {
        if let Ok(SectionData::SymbolTable64(symbols)) = section.get_data(&elf) {
            for s in symbols {
                if s.get_name(&elf) == Ok(name) {
                    return s.value();
                }
            }
        }
    }
    panic!("{}: no symbol {name}", path.display())
}

/// The network devices `solo5-elftool query-manifest` lists for `image`.
fn elftool_net_devices(image: &Path) -> Vec<String> {
    let elftool = s5::solo5_tests().join("../elftool/solo5-elftool");
    let out = Command::new(&elftool)
        .arg("query-manifest")
        .arg(image)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", elftool.display()));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // One device per line: `{ "name": "service0", "type": "NET_BASIC" }`.
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| l.contains("\"NET_BASIC\""))
        .map(|l| l.split('"').nth(3).unwrap().to_string())
        .collect()
}

fn page_up(address: u64) -> u64 {
    address.next_multiple_of(0x1000)
}

fn spec_of(xml: &str) -> ComponentSpec {
    muen_spec::parse(xml, Path::new("spec.xml")).unwrap()
}

#[test]
fn every_solo5_test_program_gets_the_spec_its_muen_bindings_expect() {
    let names = s5::muen_images();
    assert!(names.len() >= 20, "only {names:?} built for muen");
    for name in names {
        let image = s5::muen_image(&name);
        let dir = image.parent().unwrap();
        let file = image.file_name().unwrap().to_str().unwrap();
        for generation in Generation::ALL {
            let xml = generate(dir, &["--muen-tools", generation.name(), "--elf", file]);
            xmllint(&xml, &component_schema(generation), &name);
            let spec = spec_of(&xml);
            assert_eq!(spec.name, format!("test_{name}"));
            muen_spec::expand(&spec).unwrap();

            let regs = &spec.vcpu.registers;
            assert_eq!(regs.rip.unwrap().as_u64(), symbol(&image, "_start"));
            assert_eq!(regs.others.get(&Gpr::Rdi), Some(&0x1000));
            let ram = spec.provides.iter().find(|m| m.logical == "ram").unwrap();
            assert_eq!(ram.region.address.as_u64(), page_up(symbol(&image, "_end")));
            assert_eq!(ram.region.size, 512 << 20);
            let ram_end = ram.region.end().unwrap().as_u64();
            assert_eq!(regs.rsp.unwrap().as_u64(), ram_end - 8);
            let msr = &spec.vcpu.msrs[..];
            assert_eq!(msr.len(), 1);
            assert_eq!((msr[0].start, msr[0].end), (0xc000_0100, 0xc000_0100));
            assert_eq!(msr[0].mode, MsrMode::ReadWrite);
            let bi = spec
                .provides
                .iter()
                .find(|m| m.logical == "boot_info")
                .unwrap();
            assert_eq!(
                (bi.region.address.as_u64(), bi.region.size, bi.writable),
                (0x1000, 0x1000, false)
            );
            assert_eq!(bi.kind, muen_sinfo::MemoryKind::SubjectSolo5BootInfo);
            // Nothing is mapped at page 0 (test_zeropage and test_notls fault there).
            assert!(spec
                .provides
                .iter()
                .all(|m| m.region.address.as_u64() >= 0x1000));

            // Two polled channels per NET_BASIC device, right after RAM, 1 MiB each.
            let devices = elftool_net_devices(&image);
            let mut expected = Vec::new();
            for d in &devices {
                expected.push((format!("{d}|in"), true));
                expected.push((format!("{d}|out"), false));
            }
            let got: Vec<(String, bool)> = spec
                .channels
                .iter()
                .map(|c| {
                    let reader = match c.end {
                        ChannelEnd::Reader { vector } => {
                            assert_eq!(vector, None);
                            true
                        }
                        ChannelEnd::Writer { event } => {
                            assert_eq!(event, None);
                            false
                        }
                    };
                    (c.logical.clone(), reader)
                })
                .collect();
            assert_eq!(got, expected, "{name}");
            for (i, c) in spec.channels.iter().enumerate() {
                assert_eq!(
                    (c.region.address.as_u64(), c.region.size),
                    (ram_end + i as u64 * 0x10_0000, 0x10_0000)
                );
            }
            assert!(spec.events.source.is_empty() && spec.events.target.is_empty());
            assert_eq!(spec.depends, ["libmudebuglog", "libmutime"]);
            let strings = &spec.config.strings;
            assert_eq!(
                (strings[0].name.as_str(), strings[0].value.as_str()),
                ("bootparams", "")
            );
        }
    }
}

#[test]
fn names_sizes_and_the_command_line_can_be_given() {
    let image = s5::muen_image("net_2if");
    let dir = image.parent().unwrap();
    let xml = generate(
        dir,
        &[
            "--elf",
            "test_net_2if.muen",
            "--name",
            "mirage",
            "--ram",
            "32M",
            "--channel-size",
            "64K",
            "--bootparams",
            "--solo5:quiet limit",
        ],
    );
    assert!(
        xml.contains("Solo5 ABI muen version 4") && xml.contains("subject info format 5"),
        "{xml}"
    );
    let spec = spec_of(&xml);
    assert_eq!(spec.name, "mirage");
    let ram = spec.provides.iter().find(|m| m.logical == "ram").unwrap();
    assert_eq!(ram.region.size, 32 << 20);
    let ram_end = ram.region.end().unwrap().as_u64();
    let addresses: Vec<(u64, u64)> = spec
        .channels
        .iter()
        .map(|c| (c.region.address.as_u64(), c.region.size))
        .collect();
    assert_eq!(
        addresses,
        (0..4)
            .map(|i| (ram_end + i * 0x1_0000, 0x1_0000))
            .collect::<Vec<_>>()
    );
    assert_eq!(spec.config.strings[0].value, "--solo5:quiet limit");
    let bi = spec.provides.iter().find(|m| m.logical == "boot_info");
    assert_eq!(
        bi.unwrap().content,
        muen_spec::Content::File {
            filename: "mirage_bi".into(),
            offset: None
        }
    );
    // Block devices get nothing, but the comment names them.
    let xml = generate(
        dir,
        &["--elf", &s5::muen_image("mft_maxdevices").to_string_lossy()],
    );
    assert!(
        xml.contains("SOLO5_R_EUNSPEC): storage0, storage1,"),
        "{xml}"
    );
    assert!(spec_of(&xml).channels.is_empty());
}

/// Runs policy-gen with `args` and checks the failure contract; returns the message.
fn fails(args: &[&str]) -> String {
    let dir = TempDir::new("solo5");
    let out = run(dir.path(), args);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1), "policy-gen {args:?}: {stderr}");
    assert!(out.stdout.is_empty(), "policy-gen {args:?} wrote to stdout");
    let message = stderr
        .strip_prefix("policy-gen: error: ")
        .and_then(|m| m.strip_suffix('\n'))
        .unwrap_or_else(|| panic!("not one error line: {stderr:?}"));
    assert!(!message.contains('\n'), "more than one line: {stderr:?}");
    message.to_string()
}

/// A copy of Solo5's `test_<real>.muen`, broken by `edit`, fails with a message that
/// names the file and contains every part of `expected`.
fn broken(real: &str, edit: impl FnOnce(&mut Image), expected: &[&str]) {
    let mut image = Image::real(real);
    edit(&mut image);
    let dir = TempDir::new("solo5-broken");
    let path = dir.path().join("broken.muen");
    image.write(&path);
    let message = fails(&["--elf", path.to_str().unwrap()]);
    assert!(
        message.starts_with(&format!("--elf: {}: ", path.display())),
        "{message}"
    );
    for part in expected {
        assert!(message.contains(part), "`{part}` not in: {message}");
    }
}

#[test]
fn broken_notes_are_clear_errors() {
    // A manifest note cut short by its segment.
    broken(
        "net",
        |i| {
            i.set_segment_size(MFT1, 100);
        },
        &["Solo5 MFT1 (manifest) note truncated", "only 100 present"],
    );
    // The manifest's version.
    broken(
        "hello",
        |i| {
            i.set_u32(MFT1, s5::MANIFEST_VERSION, 2);
        },
        &["Solo5 manifest: wrong version 2, expected 1"],
    );
    // More entries than Solo5 allows (the 64 of test_mft_maxdevices, then 65).
    broken(
        "mft_maxdevices",
        |i| {
            i.set_u32(MFT1, s5::MANIFEST_ENTRY_COUNT, 65);
        },
        &["too many entries: 65, at most 64"],
    );
    // Two devices with one name.
    broken(
        "net_2if",
        |i| {
            i.set_entry_name(2, "service0");
        },
        &["duplicate device name: entries 1 and 2"],
    );
    // A device type Solo5 does not know.
    broken(
        "net",
        |i| {
            i.set_u32(
                MFT1,
                s5::MANIFEST_ENTRIES + s5::ENTRY_SIZE + s5::ENTRY_TYPE,
                3,
            );
        },
        &["entry 1: unknown device type 0x3"],
    );
    // The ABI note gone (its segment no longer PT_NOTE), the manifest still there.
    broken(
        "hello",
        |i| {
            i.set_segment_type(ABI1, 0);
        },
        &["missing note: no PT_NOTE segment starts with a Solo5 ABI1 note"],
    );
    // Another ABI version, another target: both named, and what is supported.
    for (offset, value, found) in [
        (s5::ABI_VERSION, 5, "target muen version 5"),
        (s5::ABI_VERSION, 2, "target muen version 2"),
        (s5::ABI_TARGET, 1, "target hvt version 4"),
    ] {
        broken(
            "hello",
            |i| {
                i.set_u32(ABI1, offset, value);
            },
            &[
                found,
                "supported are target muen version 4 (Solo5 v0.12.1 and later, Muen sinfo \
                 format 5) and target muen version 3 (Solo5 v0.11.0 to v0.12.0, sinfo format 4)",
            ],
        );
    }
    broken(
        "hello",
        |i| {
            i.set_u32(ABI1, s5::ABI_TARGET, 9);
        },
        &["unknown ABI target 9"],
    );
    // No Solo5 note at all: not a unikernel, and the way out.
    broken(
        "hello",
        |i| {
            i.set_segment_type(ABI1, 0).set_segment_type(MFT1, 0);
        },
        &["not a Solo5 unikernel", "give its manifest (app.toml)"],
    );
    // Solo5's image for another target.
    let hvt = s5::solo5_tests().join("test_hello/test_hello.hvt");
    let message = fails(&["--elf", hvt.to_str().unwrap()]);
    assert!(
        message.contains("target hvt version 2 (not a Muen unikernel)"),
        "{message}"
    );
}

#[test]
fn an_abi_3_image_gets_the_same_spec_and_names_sinfo_format_4() {
    // Solo5 v0.11.0 to v0.12.0 declare ABI muen version 3 (no such image is built
    // here: the ABI note of a real one is changed).
    let mut image = Image::real("net");
    image.set_u32(ABI1, s5::ABI_VERSION, 3);
    let dir = TempDir::new("solo5-abi3");
    image.write(&dir.path().join("test_net.muen"));
    let old = generate(dir.path(), &["--elf", "test_net.muen"]);
    assert!(
        old.contains("Solo5 ABI muen version 3, Solo5 v0.11.0 to v0.12.0")
            && old.contains("subject info format 4"),
        "{old}"
    );
    let real = s5::muen_image("net");
    let new = generate(real.parent().unwrap(), &["--elf", "test_net.muen"]);
    assert!(new.contains("subject info format 5"), "{new}");
    assert_eq!(spec_of(&old), spec_of(&new));
}

#[test]
fn bad_values_for_a_unikernel_are_clear_errors() {
    let hello = s5::muen_image("hello");
    let hello = hello.to_str().unwrap();
    let dir = TempDir::new("solo5-names");
    let odd = dir.path().join("test.hello.muen");
    std::fs::copy(hello, &odd).unwrap();
    let message = fails(&["--elf", odd.to_str().unwrap()]);
    assert!(
        message.contains("component name \"test.hello\" has the character '.'")
            && message.contains("made from the file name without `.muen`; give one with --name"),
        "{message}"
    );
    let long = "x".repeat(54);
    let message = fails(&["--elf", hello, "--name", &long]);
    assert!(
        message.contains("the region `boot_info` becomes"),
        "{message}"
    );
    let message = fails(&["--elf", hello, "--ram", "3000"]);
    assert!(message.starts_with("--ram: size 3000"), "{message}");
    let message = fails(&["--elf", hello, "--ram", "60G"]);
    assert!(message.contains("beyond 0xe00000000"), "{message}");
    let message = fails(&["--elf", hello, "--bootparams", &"a".repeat(4056)]);
    assert!(message.contains("4056 bytes"), "{message}");
    let toml = repo_root().join("examples/hello/app.toml");
    let message = fails(&["--ram", "4M", toml.to_str().unwrap()]);
    assert!(
        message.starts_with("--ram is for a Solo5 unikernel"),
        "{message}"
    );
}

#[test]
fn mutated_notes_never_panic() {
    // Random bytes written over both notes of real images: policy-gen's reader returns
    // a spec or an error, never panics. (The note parser has its own fuzz target in
    // solo5-abi/fuzz.)
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let (mut accepted, mut refused) = (0, 0);
    for real in ["hello", "net_2if", "mft_maxdevices"] {
        let image = Image::real(real);
        let notes = [image.note(MFT1), image.note(ABI1)];
        for _ in 0..700 {
            let mut bytes = image.bytes.clone();
            for _ in 0..1 + next() % 4 {
                let base = notes[(next() % 2) as usize];
                let at = base + (next() % 64) as usize;
                bytes[at] = next() as u8;
            }
            match policy_gen::solo5::parse(&bytes, "x.muen") {
                Ok(_) => accepted += 1,
                Err(e) => {
                    assert!(!e.to_string().is_empty());
                    refused += 1;
                }
            }
        }
    }
    assert!(
        accepted > 0 && refused > 0,
        "{accepted} accepted, {refused} refused"
    );
}

/// Solo5's test_net_2if made to look linked with solo5-muen, written to `dir` as
/// `test_duo.muen`: its second device turned into the block device `storage`, and
/// solo5-muen's bindings note (`muen_abi::solo5`) written after the ABI note in that
/// note's segment (over the OpenBSD note that follows it, which nothing here reads).
fn solo5_muen_like(dir: &Path) -> PathBuf {
    let mut image = Image::real("net_2if");
    let entry_type = s5::MANIFEST_ENTRIES + 2 * s5::ENTRY_SIZE + s5::ENTRY_TYPE;
    image.set_entry_name(2, "storage").set_u32(
        MFT1,
        entry_type,
        solo5_abi::mft::MFT_DEV_BLOCK_BASIC,
    );
    let abi = image.note(ABI1);
    let note = muen_abi::solo5::note_bytes();
    image.bytes[abi + 36..abi + 36 + note.len()].copy_from_slice(&note);
    image.set_segment_size(ABI1, (36 + note.len()) as u64);
    let path = dir.join("test_duo.muen");
    image.write(&path);
    path
}

#[test]
fn solo5_muen_images_get_the_runtimes_resources_in_both_generations() {
    let dir = TempDir::new("solo5-muen-spec");
    let image = solo5_muen_like(dir.path());
    for generation in Generation::ALL {
        let xml = generate(
            dir.path(),
            &[
                "--muen-tools",
                generation.name(),
                "--buffer-size",
                "64K",
                "--elf",
                image.to_str().unwrap(),
            ],
        );
        xmllint(&xml, &component_schema(generation), "test_duo");
        assert!(xml.contains("Linked with solo5-muen"), "{xml}");
        let spec = spec_of(&xml);
        let ends: Vec<(&str, ChannelEnd)> = spec
            .channels
            .iter()
            .map(|c| (c.logical.as_str(), c.end))
            .collect();
        assert_eq!(
            ends,
            [
                ("service0|in", ChannelEnd::Reader { vector: Some(33) }),
                ("service0|out", ChannelEnd::Writer { event: Some(2) }),
                ("storage|req", ChannelEnd::Writer { event: Some(3) }),
                ("storage|resp", ChannelEnd::Reader { vector: Some(34) }),
            ]
        );
        assert_eq!(spec.memory.len(), 1);
        assert_eq!(spec.memory[0].logical, "storage|data");
        assert_eq!(spec.memory[0].region.size, 0x1_0000);
        assert_eq!(spec.events.source.len(), 1);
        assert_eq!(spec.events.source[0].logical, "timer");
        muen_spec::expand(&spec).unwrap();
    }
    // Without the note, the same devices are Solo5's C bindings': no block channels.
    let plain = dir.path().join("test_plain.muen");
    let mut image = Image::real("net_2if");
    let entry_type = s5::MANIFEST_ENTRIES + 2 * s5::ENTRY_SIZE + s5::ENTRY_TYPE;
    image.set_entry_name(2, "storage").set_u32(
        MFT1,
        entry_type,
        solo5_abi::mft::MFT_DEV_BLOCK_BASIC,
    );
    image.write(&plain);
    let xml = generate(dir.path(), &["--elf", plain.to_str().unwrap()]);
    let spec = spec_of(&xml);
    assert_eq!(spec.channels.len(), 2);
    assert!(spec.memory.is_empty() && spec.events.source.is_empty());
    assert!(xml.contains("SOLO5_R_EUNSPEC): storage."), "{xml}");
}

/// Muen's tool chain on the specs of three unikernels at once, hello (no devices),
/// net_2if (two network devices), each with a command line, and one linked with
/// solo5-muen (a network and a block device, [`solo5_muen_like`]), and with their images for `mucfgmemhashes`; `solo5-check.py` has nothing to
/// say but that the kit writes sinfo format 4 where these images read format 5, and
/// `mugensolo5` writes each boot info.
fn pipeline_accepts_solo5_specs(generation: Generation) {
    let kit = Kit::beside(&repo_root());
    let dir = TempDir::new("solo5-pipeline");
    let files = dir.path().join("files");
    std::fs::create_dir(&files).unwrap();
    let mut specs: Vec<PathBuf> = Vec::new();
    // And one linked with solo5-muen: the runtime's timer, channel events and
    // vectors, muenblock channels.
    let duo = solo5_muen_like(&files);
    let xml = generate(
        &files,
        &[
            "--muen-tools",
            generation.name(),
            "--ram",
            "32M",
            "--buffer-size",
            "1M",
            "--elf",
            duo.file_name().unwrap().to_str().unwrap(),
        ],
    );
    specs.push(dir.write("duo.xml", xml));
    for (name, bootparams) in [("hello", "Hello_Solo5"), ("net_2if", "limit")] {
        let image = s5::muen_image(name);
        std::fs::copy(&image, files.join(image.file_name().unwrap())).unwrap();
        let xml = generate(
            &files,
            &[
                "--muen-tools",
                generation.name(),
                "--bootparams",
                bootparams,
                "--elf",
                image.file_name().unwrap().to_str().unwrap(),
            ],
        );
        specs.push(dir.write(&format!("{name}.xml"), xml));
    }
    let outcome = kit.run(&Run {
        generation: generation.name(),
        out: dir.path().join("out"),
        additions: None,
        files: Some(files),
        specs,
    });
    outcome.print();
    outcome.assert_passed();
    let warnings: Vec<&str> = outcome
        .console
        .lines()
        .filter(|l| l.contains("solo5-check: warning:"))
        .collect();
    assert_eq!(warnings.len(), 3, "{}", outcome.console);
    for w in warnings {
        assert!(
            w.contains("Solo5 ABI muen version 4; its Muen bindings expect sinfo format 5, the kit writes format 4"),
            "{w}"
        );
    }
    for (name, cmdline) in [("test_hello", "Hello_Solo5"), ("test_net_2if", "limit")] {
        let bi = std::fs::read(outcome.file(&format!("solo5/{name}_bi"))).unwrap();
        assert_eq!(bi.len(), 41 + cmdline.len());
        assert_eq!(&bi[40..bi.len() - 1], cmdline.as_bytes());
    }
}

#[test]
fn muens_tool_chain_2026_01_accepts_solo5_specs() {
    pipeline_accepts_solo5_specs(Generation::V2026_01);
}

#[test]
fn muens_tool_chain_2026_04_accepts_solo5_specs() {
    pipeline_accepts_solo5_specs(Generation::V2026_04);
}
