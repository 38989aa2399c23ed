//! Compiles Solo5's C channel (`bindings/muen/{channel,reader,writer}.c` of
//! `../shared/solo5`, relative to the workspace root) with the flags Solo5 builds its
//! Muen bindings with, against this crate's stand-in `include/bindings.h`.
//!
//! The sources are read where they are; nothing of Solo5 is copied into the project.
//! Without them this crate still builds (so that the tests of `muen-channel`, which
//! build it as a dev-dependency, do not need `../shared`), and
//! `Solo5::get` (src/lib.rs) returns an error naming the missing directory: the
//! benchmark fails with that message.

use std::path::{Path, PathBuf};

/// Solo5's flags for its bindings (`Makefile.common`, `bindings/GNUmakefile`, and the
/// compile mode of `toolchain/cc.in`), less `-Werror` (a newer compiler's new warning
/// must not stop the benchmark) and `-nostdinc` (the stand-in header takes the C
/// library's `stddef.h`/`stdint.h`, as Solo5 takes its own). `memcpy` and `memset`
/// resolve to the benchmark process's C library, which is faster than Solo5's own
/// byte loop: the comparison favours the C code there.
pub const SOLO5_FLAGS: &[&str] = &[
    "-std=c11",
    "-O2",
    "-ffreestanding",
    "-fstack-protector-strong",
    "-mno-sse",
    "-mno-mmx",
    "-mno-aes",
    "-mno-avx",
    "-mno-red-zone",
    "-D__SOLO5_BINDINGS__",
    "-Wall",
    "-Wextra",
];

const SOURCES: [&str; 3] = ["channel.c", "reader.c", "writer.c"];

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap());
    // channels/solo5-c -> workspace root -> ../shared/solo5
    let solo5 = manifest.join("../../../shared/solo5");
    let muen = solo5.join("bindings/muen");
    println!("cargo:rustc-check-cfg=cfg(solo5_missing)");
    println!("cargo:rerun-if-changed=include");
    for s in SOURCES {
        println!("cargo:rerun-if-changed={}", muen.join(s).display());
    }
    println!("cargo:rerun-if-env-changed=CARGO_CFG_MIRI");
    let missing: Vec<PathBuf> = SOURCES
        .iter()
        .map(|s| muen.join(s))
        .filter(|p| !p.is_file())
        .collect();
    // Miri interprets Rust only; the C code is never called in tests.
    if !missing.is_empty() || std::env::var_os("CARGO_CFG_MIRI").is_some() {
        println!("cargo:rustc-cfg=solo5_missing");
        let what = if missing.is_empty() {
            "not compiled under Miri".to_string()
        } else {
            format!("missing: {}", display(&missing))
        };
        println!("cargo:rustc-env=SOLO5_CHANNEL_C_MISSING={what}");
        return;
    }
    let mut build = cc::Build::new();
    build
        .compiler("gcc")
        .no_default_flags(true)
        .cargo_warnings(true)
        .include(manifest.join("include"))
        .include(&muen)
        .flag("-include")
        .flag(manifest.join("include/bindings.h").to_str().unwrap());
    for f in SOLO5_FLAGS {
        build.flag(f);
    }
    for s in SOURCES {
        build.file(muen.join(s));
    }
    // Our compile-time checks of the Rust declarations against Solo5's headers.
    build.file(manifest.join("include/layout.c"));
    build.compile("solo5_channel");
    println!(
        "cargo:rustc-env=SOLO5_CHANNEL_C_FLAGS={}",
        SOLO5_FLAGS.join(" ")
    );
    println!("cargo:rustc-env=SOLO5_CHANNEL_C_DIR={}", display(&[muen]));
}

fn display(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| normalise(p).display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `a/b/../c` -> `a/c` without touching the file system (the path may not exist).
fn normalise(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}
