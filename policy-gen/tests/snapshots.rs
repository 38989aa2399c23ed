//! The specifications of the example manifests, compared byte for byte with the files
//! in `tests/snapshots/<generation>/`, for each generation of Muen's tools. After an
//! intended change, regenerate them with
//! `UPDATE_SNAPSHOTS=1 cargo test -p policy-gen --test snapshots` and review the diff.

mod common;

use std::path::Path;

use common::*;

/// Compares `xml` with the snapshot `name` of `generation` (or rewrites it), and
/// validates it with that generation's schema, so that reviewing a snapshot reviews
/// valid output.
fn check(name: &str, generation: Generation, xml: &str) {
    xmllint(xml, &component_schema(generation), name);
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(generation.name())
        .join(format!("{name}.xml"));
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some_and(|v| v == "1") {
        std::fs::write(&path, xml).unwrap();
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
        "{name}: the output differs from {}; if the change is intended, regenerate with \
         UPDATE_SNAPSHOTS=1.\n--- expected ---\n{expected}\n--- got ---\n{xml}",
        path.display()
    );
}

fn example(name: &str, generation: Generation) -> String {
    let manifest = repo_root().join("examples").join(name).join("app.toml");
    let mut args = tools(generation).to_vec();
    args.push(manifest.to_str().unwrap());
    generate(&repo_root(), &args)
}

#[test]
fn hello_2026_01() {
    check(
        "hello",
        Generation::V2026_01,
        &example("hello", Generation::V2026_01),
    );
}

#[test]
fn hello_2026_04() {
    check(
        "hello",
        Generation::V2026_04,
        &example("hello", Generation::V2026_04),
    );
}

#[test]
fn echo_2026_01() {
    check(
        "echo",
        Generation::V2026_01,
        &example("echo", Generation::V2026_01),
    );
}

#[test]
fn echo_2026_04() {
    check(
        "echo",
        Generation::V2026_04,
        &example("echo", Generation::V2026_04),
    );
}

#[test]
fn blockstore_2026_01() {
    let g = Generation::V2026_01;
    check("blockstore", g, &example("blockstore", g));
}

#[test]
fn blockstore_2026_04() {
    let g = Generation::V2026_04;
    check("blockstore", g, &example("blockstore", g));
}

/// The echo example with a generated, deterministic ELF image (see
/// `common::typical_elf`): `text`, `rodata`, `data` with its zero-filled tail, `bss`.
fn echo_with_elf(generation: Generation) {
    let dir = TempDir::new("snapshot-elf");
    let elf = typical_elf().write(&dir, "echo");
    let manifest = repo_root().join("examples/echo/app.toml");
    let mut args = tools(generation).to_vec();
    args.extend(["--elf", elf.to_str().unwrap(), manifest.to_str().unwrap()]);
    let xml = generate(dir.path(), &args);
    check("echo-with-elf", generation, &xml);
}

#[test]
fn echo_with_elf_2026_01() {
    echo_with_elf(Generation::V2026_01);
}

#[test]
fn echo_with_elf_2026_04() {
    echo_with_elf(Generation::V2026_04);
}

/// Without `--muen-tools`, policy-gen writes for the newest tools.
#[test]
fn the_default_generation_is_2026_04() {
    let manifest = repo_root().join("examples/echo/app.toml");
    let default = generate(&repo_root(), &[manifest.to_str().unwrap()]);
    assert_eq!(default, example("echo", Generation::V2026_04));
    assert_ne!(default, example("echo", Generation::V2026_01));
}

/// Every snapshot, read with `muen_spec::parse` and written again, is the same bytes:
/// the reader keeps everything policy-gen writes.
#[test]
fn snapshots_read_back_to_the_same_bytes() {
    let mut checked = 0;
    for generation in Generation::ALL {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/snapshots")
            .join(generation.name());
        for name in ["hello", "echo", "blockstore", "echo-with-elf"] {
            let path = dir.join(format!("{name}.xml"));
            let text = std::fs::read_to_string(&path).unwrap();
            let spec = muen_spec::parse(&text, &path).unwrap();
            assert_eq!(
                policy_gen::document(&spec, generation),
                text,
                "{}",
                path.display()
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 8);
}
