//! Links the firmware with its own linker script when building for
//! `x86_64-unknown-none`; a host build of the binary needs nothing.

use std::env;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=link/boot.ld");
    if env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none") {
        let dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
        let script = dir.join("link").join("boot.ld");
        println!("cargo:rustc-link-arg-bins=-T{}", script.display());
        // Fixed addresses (the 16- and 32-bit code uses absolute ones).
        println!("cargo:rustc-link-arg-bins=--no-pie");
    }
}
