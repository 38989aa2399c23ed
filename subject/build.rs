//! Ships the linker script of Muen images.
//!
//! The script is copied to `OUT_DIR` under the name `muen-subject.ld`, and `OUT_DIR` is
//! added to the linker's search path of every binary that depends on this crate
//! (`rustc-link-search` propagates to dependents). A Muen app then only needs
//! `-Tmuen-subject.ld` when it is linked for `x86_64-unknown-none`; see
//! `docs/runtime.md` for the app's three-line `build.rs`. This crate's own test
//! subjects (`tests/fixture/`) get the same arguments here.

use std::env;
use std::fs;
use std::path::PathBuf;

const SCRIPT: &str = "muen-subject.ld";

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let source = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"))
        .join("link")
        .join(SCRIPT);
    fs::copy(&source, out.join(SCRIPT))
        .unwrap_or_else(|e| panic!("cannot copy {}: {e}", source.display()));
    println!("cargo:rerun-if-changed=link/{SCRIPT}");
    println!("cargo:rustc-link-search={}", out.display());
    // Dependents' build scripts see it as DEP_MUEN_SUBJECT_LINKER_SCRIPT.
    println!("cargo:linker_script={}", out.join(SCRIPT).display());
    if env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none") {
        for arg in link_args() {
            println!("cargo:rustc-link-arg-bins={arg}");
        }
    }
}

/// The linker arguments of a Muen image (keep in sync with docs/runtime.md).
fn link_args() -> [&'static str; 2] {
    // A fixed-address executable (ET_EXEC): x86_64-unknown-none links
    // position-independent executables by default, which policy-gen refuses.
    [concat!("-T", "muen-subject.ld"), "--no-pie"]
}
