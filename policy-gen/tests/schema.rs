//! Every generated specification validates against the `component.xsd` of the
//! generation of Muen's tools it was written for (`--muen-tools`, both generations):
//! manifests without devices, with several of each kind, at the limits, from a Solo5
//! manifest, each with and without ELF images of several shapes.

mod common;

use common::*;

/// (description, app.toml)
fn manifests() -> Vec<(String, String)> {
    let mut out = vec![
        ("no devices".into(), "name = \"hello\"\n".into()),
        (
            "one net device".into(),
            "name = \"echo\"\n[net.service0]\n".into(),
        ),
        (
            "several net devices".into(),
            "name = \"router\"\nram = \"256M\"\n\
             [net.uplink]\nchannel_size = \"4M\"\n\
             [net.lan0]\nchannel_size = 4096\n\
             [net.lan1]\n"
                .into(),
        ),
        (
            "one block device".into(),
            "name = \"blockstore\"\n[block.storage]\n".into(),
        ),
        (
            "several block devices".into(),
            "name = \"db\"\n[block.wal]\nbuffer_size = \"1M\"\n[block.data]\n\
             buffer_size = \"1G\"\n[block.tmp]\nbuffer_size = 8192\n"
                .into(),
        ),
        (
            "mixed devices".into(),
            "name = \"gateway-2\"\nram = \"1G\"\n[net.a]\n[net.b]\n[net.c]\n[net.d]\n\
             [block.e]\n[block.f]\n[block.g]\n[block.h]\n"
                .into(),
        ),
        (
            "largest RAM".into(),
            format!("name = \"big\"\nram = {}\n", muen_abi::layout::RAM_MAX),
        ),
        (
            "longest names".into(),
            format!(
                "name = \"{}\"\n[net.{}]\n[block.{}]\n",
                "c".repeat(59),
                "n".repeat(58),
                "b".repeat(58)
            ),
        ),
    ];
    // 62 devices: every event id up to 63 is used.
    let mut most = String::from("name = \"many\"\n");
    for i in 0..31 {
        most.push_str(&format!(
            "[net.n{i}]\nchannel_size = \"4K\"\n[block.b{i}]\nbuffer_size = \"4K\"\n"
        ));
    }
    out.push(("62 devices".into(), most));
    out
}

fn elves() -> Vec<(&'static str, Elf)> {
    vec![
        (
            "one segment",
            Elf::new(IMAGE).load(PF_R | PF_X, IMAGE, 0x10, 0x10),
        ),
        ("typical", typical_elf()),
        (
            "many segments",
            Elf::new(IMAGE + 0x5000)
                .load(PF_R, IMAGE, 0x100, 0x100)
                .load(PF_R | PF_X, IMAGE + 0x1000, 0x1000, 0x1000)
                .load(PF_R | PF_X, IMAGE + 0x5000, 0x10, 0x10)
                .load(PF_R, IMAGE + 0x6000, 0x10, 0x10)
                .load(PF_R | PF_W, IMAGE + 0x7000, 0x1000, 0x2000)
                .load(PF_R | PF_W, IMAGE + 0x9000, 0x2000, 0x2000)
                .load(PF_R | PF_W, IMAGE + 0xb000, 0, 0x1000)
                .load(PF_R | PF_W, IMAGE + 0xc000, 0, 0x1000),
        ),
        (
            "image at the top of its window",
            Elf::new(0x3fff_f000).load(PF_R | PF_X | PF_W, 0x3fff_f000, 0x1000, 0x1000),
        ),
    ]
}

/// `policy-gen --muen-tools GENERATION ARGS...`.
fn generate_for(dir: &std::path::Path, generation: Generation, args: &[&str]) -> String {
    let mut all = tools(generation).to_vec();
    all.extend_from_slice(args);
    generate(dir, &all)
}

#[test]
fn app_toml_outputs_validate() {
    let dir = TempDir::new("schema");
    let mut elf_paths = Vec::new();
    for (i, (what, elf)) in elves().into_iter().enumerate() {
        elf_paths.push((what, elf.write(&dir, &format!("image{i}"))));
    }
    let mut checked = 0;
    for generation in Generation::ALL {
        let schema = component_schema(generation);
        for (what, manifest) in manifests() {
            let what = format!("{generation}: {what}");
            let path = dir.write("app.toml", &manifest);
            let path = path.to_str().unwrap();
            let xml = generate_for(dir.path(), generation, &[path]);
            xmllint(&xml, &schema, &what);
            checked += 1;
            // Long component names leave no room for image region names.
            if what.ends_with("longest names") {
                continue;
            }
            for (elf_what, elf) in &elf_paths {
                let xml = generate_for(
                    dir.path(),
                    generation,
                    &["--elf", elf.to_str().unwrap(), path],
                );
                assert!(xml.contains("type=\"subject_binary\""));
                xmllint(&xml, &schema, &format!("{what} with ELF \"{elf_what}\""));
                checked += 1;
            }
        }
    }
    assert_eq!(
        checked,
        Generation::ALL.len() * (manifests().len() * (1 + elf_paths.len()) - elf_paths.len())
    );
}

/// The check above can fail: each generation's schema rejects the other's `<vcpu>`.
#[test]
fn each_generation_is_rejected_by_the_other_schema() {
    let dir = TempDir::new("schema-cross");
    let path = dir.write("app.toml", "name = \"echo\"\n[net.service0]\n");
    let path = path.to_str().unwrap();
    let old = generate_for(dir.path(), Generation::V2026_01, &[path]);
    let new = generate_for(dir.path(), Generation::V2026_04, &[path]);
    for (xml, schema) in [(&old, Generation::V2026_04), (&new, Generation::V2026_01)] {
        let schema = component_schema(schema);
        let rejected = std::panic::catch_unwind(|| xmllint(xml, &schema, "cross")).is_err();
        assert!(rejected, "{} accepted:\n{xml}", schema.display());
    }
}

#[test]
fn elf_named_in_the_manifest_validates() {
    let dir = TempDir::new("schema-elf-key");
    std::fs::create_dir_all(dir.path().join("app/target")).unwrap();
    typical_elf().write(&dir, "app/target/echo");
    dir.write(
        "app/app.toml",
        "name = \"echo\"\nelf = \"target/echo\"\n[net.service0]\n",
    );
    for generation in Generation::ALL {
        // Run from elsewhere: the path is relative to the manifest, not to the cwd.
        let xml = generate_for(dir.path(), generation, &["app/app.toml"]);
        assert!(xml.contains("<file filename=\"echo\""));
        xmllint(
            &xml,
            &component_schema(generation),
            &format!("{generation}: elf from the manifest"),
        );
    }
}

#[test]
fn solo5_manifest_outputs_validate() {
    let dir = TempDir::new("schema-solo5");
    let manifest = dir.write(
        "manifest.json",
        r#"{
  "type": "solo5.manifest",
  "version": 1,
  "devices": [
    { "name": "service", "type": "NET_BASIC" },
    { "name": "storage", "type": "BLOCK_BASIC" },
    { "name": "admin", "type": "NET_BASIC" }
  ]
}
"#,
    );
    let elf = typical_elf().write(&dir, "unikernel.elf");
    let manifest = manifest.to_str().unwrap();
    for generation in Generation::ALL {
        let schema = component_schema(generation);
        let xml = generate_for(dir.path(), generation, &["--name", "unikernel", manifest]);
        assert!(xml.contains("<component name=\"unikernel\" profile=\"native\">"));
        xmllint(&xml, &schema, &format!("{generation}: Solo5 manifest"));
        let xml = generate_for(
            dir.path(),
            generation,
            &[
                "--name",
                "unikernel",
                "--elf",
                elf.to_str().unwrap(),
                manifest,
            ],
        );
        xmllint(
            &xml,
            &schema,
            &format!("{generation}: Solo5 manifest with ELF"),
        );
    }
}

/// The check above can fail: documents the schema forbids are rejected.
#[test]
fn xmllint_rejects_what_muen_rejects() {
    for generation in Generation::ALL {
        rejects_what_muen_rejects(generation);
    }
}

fn rejects_what_muen_rejects(generation: Generation) {
    let schema = component_schema(generation);
    let dir = TempDir::new("schema-negative");
    let path = dir.write("app.toml", "name = \"echo\"\n[net.service0]\n");
    let good = generate_for(dir.path(), generation, &[path.to_str().unwrap()]);
    xmllint(&good, &schema, "unchanged");
    let broken = [
        // Muen's Python helper writes zero as `16##`.
        good.replace("16#0010_0000_0000#", "16##"),
        // Six digits are not groups of four.
        good.replace("16#0020_0000#", "16#200000#"),
        // Events come after channels.
        {
            let events =
                &good[good.find("  <events>").unwrap()..good.find(" </requires>").unwrap()];
            good.replace(events, "")
                .replace("  <channels>", &format!("{events}  <channels>"))
        },
        // MachineCheck cannot be cleared by a component.
        good.replace(
            "<SIMDFloatingPointException>",
            "<MachineCheck>0</MachineCheck><SIMDFloatingPointException>",
        ),
    ];
    for (i, xml) in broken.iter().enumerate() {
        assert_ne!(xml, &good, "case {i} changed nothing");
        let rejected = std::panic::catch_unwind(|| xmllint(xml, &schema, "broken")).is_err();
        assert!(rejected, "case {i} was accepted:\n{xml}");
    }
}

/// Text from outside (here the ELF's file name) is escaped in attributes.
#[test]
fn file_names_are_escaped() {
    let dir = TempDir::new("schema-escape");
    let elf = typical_elf().write(&dir, "a&b\"<c>'.elf");
    let path = dir.write("app.toml", "name = \"echo\"\n");
    for generation in Generation::ALL {
        let xml = generate_for(
            dir.path(),
            generation,
            &["--elf", elf.to_str().unwrap(), path.to_str().unwrap()],
        );
        assert!(
            xml.contains("filename=\"a&amp;b&quot;&lt;c&gt;&apos;.elf\""),
            "{xml}"
        );
        xmllint(&xml, &component_schema(generation), "escaped file name");
    }
}
