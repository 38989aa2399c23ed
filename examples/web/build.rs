//! Links the subject with muen-subject's linker script when building for Muen
//! (`x86_64-unknown-none`); the hosted build needs nothing.
fn main() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none") {
        println!("cargo:rustc-link-arg-bins=-Tmuen-subject.ld");
        println!("cargo:rustc-link-arg-bins=--no-pie");
    }
}
