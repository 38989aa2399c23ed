//! `policy-gen`: the Muen component specification of a Muen app.
//!
//! Input: the app manifest (`app.toml`, or a Solo5 manifest JSON with a given name) and
//! optionally the app's ELF image. Output: one `<component>` document that Muen's
//! `component.xsd` accepts, with every address, event id and vector resolved by
//! [`muen_manifest::Plan`], the rule the runtime and the testbed share.
//!
//! - [`elf`]: the ELF's loadable segments as named, page-aligned regions.
//! - [`spec`]: the XML document.
//! - [`hex`]: Muen's `16#…#` number format.
//!
//! Usage and the manifest reference are in `docs/policy-gen.md`.

#![deny(unsafe_code)]

pub mod elf;
pub mod hex;
pub mod spec;

use std::fmt;
use std::path::{Path, PathBuf};

use muen_manifest::{App, ManifestError, Plan, PlanError};

use crate::elf::ElfError;
use crate::spec::SpecError;

/// Where the ELF file was named.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ElfOrigin {
    /// The manifest's `elf` key (in this manifest file).
    Manifest(PathBuf),
    /// The command line (`--elf`).
    CommandLine,
}

/// Why no specification was written.
#[derive(Debug)]
pub enum Error {
    /// The manifest is invalid.
    Manifest(ManifestError),
    /// The manifest is valid but its resources do not fit the conventions' limits.
    Plan {
        /// The manifest file.
        file: PathBuf,
        /// What does not fit.
        error: PlanError,
    },
    /// The ELF image cannot be used.
    Elf {
        /// Where it was named.
        origin: ElfOrigin,
        /// What is wrong.
        error: ElfError,
    },
    /// The specification cannot be written.
    Spec {
        /// The manifest file.
        file: PathBuf,
        /// What is wrong.
        error: SpecError,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Manifest(e) => e.fmt(f),
            Error::Plan { file, error } => write!(f, "{}: {error}", file.display()),
            Error::Elf {
                origin: ElfOrigin::Manifest(file),
                error,
            } => write!(f, "{}: `elf`: {error}", file.display()),
            Error::Elf {
                origin: ElfOrigin::CommandLine,
                error,
            } => write!(f, "--elf: {error}"),
            Error::Spec { file, error } => write!(f, "{}: {error}", file.display()),
        }
    }
}

impl std::error::Error for Error {}

impl From<ManifestError> for Error {
    fn from(e: ManifestError) -> Self {
        Error::Manifest(e)
    }
}

/// Reads the manifest at `manifest` (a `.json` file is a Solo5 manifest and needs
/// `name`; `name` otherwise replaces the manifest's name), loads the ELF (`elf`, else
/// the manifest's `elf`, else none) and returns the component specification.
pub fn generate(manifest: &Path, name: Option<&str>, elf: Option<&Path>) -> Result<String, Error> {
    let app = App::load(manifest, name)?;
    let plan = Plan::new(&app).map_err(|error| Error::Plan {
        file: manifest.to_path_buf(),
        error,
    })?;
    let (elf, origin) = match (elf, &app.elf) {
        (Some(path), _) => (Some(path), ElfOrigin::CommandLine),
        (None, Some(path)) => (
            Some(path.as_path()),
            ElfOrigin::Manifest(manifest.to_path_buf()),
        ),
        (None, None) => (None, ElfOrigin::CommandLine),
    };
    let image = elf
        .map(elf::load)
        .transpose()
        .map_err(|error| Error::Elf { origin, error })?;
    spec::component(&plan, image.as_ref()).map_err(|error| Error::Spec {
        file: manifest.to_path_buf(),
        error,
    })
}
