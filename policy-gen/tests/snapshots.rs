//! The specifications of the example manifests, compared byte for byte with the files
//! in `tests/snapshots/`. After an intended change, regenerate them with
//! `UPDATE_SNAPSHOTS=1 cargo test -p policy-gen --test snapshots` and review the diff.

mod common;

use std::path::Path;

use common::*;

/// Compares `xml` with the snapshot `name` (or rewrites it), and validates it, so that
/// reviewing a snapshot reviews valid output.
fn check(name: &str, xml: &str) {
    xmllint(xml, &component_schema(), name);
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
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

fn example(name: &str) -> String {
    let manifest = repo_root().join("examples").join(name).join("app.toml");
    generate(&repo_root(), &[manifest.to_str().unwrap()])
}

#[test]
fn hello() {
    check("hello", &example("hello"));
}

#[test]
fn echo() {
    check("echo", &example("echo"));
}

#[test]
fn blockstore() {
    check("blockstore", &example("blockstore"));
}

/// The echo example with a generated, deterministic ELF image (see
/// `common::typical_elf`): `text`, `rodata`, `data` with its zero-filled tail, `bss`.
#[test]
fn echo_with_elf() {
    let dir = TempDir::new("snapshot-elf");
    let elf = typical_elf().write(&dir, "echo");
    let manifest = repo_root().join("examples/echo/app.toml");
    let xml = generate(
        dir.path(),
        &["--elf", elf.to_str().unwrap(), manifest.to_str().unwrap()],
    );
    check("echo-with-elf", &xml);
}
