//! The app manifest and its resolution into concrete addresses and numbers.
//!
//! A Muen app is described by `app.toml` ([`App::from_toml_file`]) or, for Solo5
//! unikernels, by the JSON that `solo5-elftool query-manifest` prints
//! ([`App::from_solo5_file`]). Either way the result is a validated [`App`]; [`Plan::new`]
//! then applies the rules of [`muen_abi::layout`], [`muen_abi::names`] and [`muen_abi::numbers`]
//! to give every resource its address, size, event id or vector. `policy-gen` turns the
//! plan into the component specification (`muen_spec::ComponentSpec`), which it writes
//! and the testbed runs, so the two cannot disagree.
//!
//! ```toml
//! name = "echo"          # required: the component name
//! ram = "64M"            # optional, default 64M: bytes or a K/M/G suffix (powers of 1024)
//! elf = "target/x86_64-unknown-none/release/echo"   # optional, relative to app.toml
//!
//! [net.service0]         # zero or more network devices, keyed by device name
//! channel_size = "1M"    # optional, default 1M, each direction
//!
//! [block.storage]        # zero or more block devices
//! buffer_size = "16M"    # optional, default 16M: the shared data buffer
//!
//! [channel.requests]     # zero or more channels to other apps (`docs/policy-gen.md`)
//! direction = "out"      # required: "out" (this app writes it) or "in" (it reads it)
//! element_size = 512     # required: bytes per element
//! protocol = "0x6775_6573_7462_6f6f"  # required: the protocol id, non-zero
//! size = "64K"           # optional, default 1M
//! event = true           # optional, default true: the writer signals, the reader
//!                        # gets a vector
//! ```
//!
//! Every error names the file, the field (as a TOML path such as
//! `net.service0.channel_size`), the line and column where known, and the problem.

mod app_toml;
mod error;
mod plan;
mod size;
mod solo5;
mod suggest;

use std::path::{Path, PathBuf};
use std::string::String;
use std::vec::Vec;

pub use error::{Format, ManifestError, NameKind, Position, Problem, SizeError};
pub use plan::{ChannelRegion, DeviceRegion, Plan, PlanError};
pub use size::RawSize;

/// RAM size when the manifest gives none: 64 MiB.
pub const DEFAULT_RAM: u64 = 64 << 20;
/// Size of each of a network device's two channels when the manifest gives none: 1 MiB.
pub const DEFAULT_CHANNEL_SIZE: u64 = 1 << 20;
/// Size of a block device's data buffer when the manifest gives none: 16 MiB (the size
/// Muen's AHCI driver uses per client).
pub const DEFAULT_BUFFER_SIZE: u64 = 16 << 20;

/// A validated app manifest.
///
/// Names satisfy [`muen_abi::names`], sizes are non-zero multiples of the page size, device
/// and channel names are unique across kinds and each list is sorted by name (byte
/// order), which is the allocation order. [`Plan::new`] checks again, so an `App` built by hand cannot
/// produce a bad plan either.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct App {
    /// The component name.
    pub name: String,
    /// Size of the `ram` region in bytes.
    pub ram: u64,
    /// The ELF image, resolved relative to the manifest's directory.
    pub elf: Option<PathBuf>,
    /// Network devices, sorted by name.
    pub net: Vec<NetDevice>,
    /// Block devices, sorted by name.
    pub block: Vec<BlockDevice>,
    /// Channels to and from other apps, sorted by name.
    pub channel: Vec<Channel>,
}

/// A network device: a reader channel `<name>|in` and a writer channel `<name>|out`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetDevice {
    /// The device name.
    pub name: String,
    /// Size of each channel in bytes.
    pub channel_size: u64,
}

/// A block device: a request writer `<name>|req`, a response reader `<name>|resp` and a
/// shared data buffer `<name>|data`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockDevice {
    /// The device name.
    pub name: String,
    /// Size of the data buffer in bytes.
    pub buffer_size: u64,
}

/// A channel between this app and another one (`[channel.NAME]`): a region of its
/// own, named `NAME`, that one app writes and others read. The system policy joins the
/// `out` channel `NAME` of one app with the `in` channels `NAME` of others
/// (`policy-gen --system-additions`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Channel {
    /// The channel name (also its logical name in the policy and in sinfo).
    pub name: String,
    /// Whether this app writes or reads it.
    pub direction: Direction,
    /// Size of the channel in bytes (the 64-byte header and the ring of elements).
    pub size: u64,
    /// Bytes per element: the size of the element type both ends use.
    pub element_size: u64,
    /// The protocol id in the channel's header, non-zero: both ends agree on it.
    pub protocol: u64,
    /// Whether the writer signals: it triggers an event after writing, which reaches
    /// the readers as a vector (Muen's `hasEvent`).
    pub event: bool,
}

/// Which end of a [`Channel`] an app is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// `"in"`: the app reads the channel.
    In,
    /// `"out"`: the app writes the channel.
    Out,
}

impl Direction {
    /// The word in `app.toml`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
        }
    }

    /// How the app maps the channel: `in` is a reader, `out` a writer.
    pub const fn role(self) -> muen_abi::names::Role {
        match self {
            Direction::In => muen_abi::names::Role::Reader,
            Direction::Out => muen_abi::names::Role::Writer,
        }
    }
}

/// Size of an app channel when the manifest gives none: 1 MiB, as for network
/// devices.
pub const DEFAULT_APP_CHANNEL_SIZE: u64 = DEFAULT_CHANNEL_SIZE;

impl App {
    /// Reads and validates an `app.toml`. A relative `elf` path is taken relative to the
    /// directory of `path`.
    pub fn from_toml_file(path: &Path) -> Result<App, ManifestError> {
        let text = read(path)?;
        App::from_toml_str(&text, path)
    }

    /// Validates the text of an `app.toml`; `path` names it in errors and anchors a
    /// relative `elf` path.
    pub fn from_toml_str(text: &str, path: &Path) -> Result<App, ManifestError> {
        app_toml::parse(text, path)
    }

    /// Reads and validates a Solo5 manifest (JSON) for a component called `name`, with
    /// the default sizes and no ELF.
    pub fn from_solo5_file(path: &Path, name: &str) -> Result<App, ManifestError> {
        let text = read(path)?;
        App::from_solo5_str(&text, path, name)
    }

    /// Validates the text of a Solo5 manifest; `path` names it in errors.
    pub fn from_solo5_str(text: &str, path: &Path, name: &str) -> Result<App, ManifestError> {
        solo5::parse(text, path, name)
    }

    /// Reads a manifest of either format: a `.json` file is a Solo5 manifest and needs
    /// `name`; anything else is an `app.toml`, whose own name `name` replaces if given.
    pub fn load(path: &Path, name: Option<&str>) -> Result<App, ManifestError> {
        if path.extension().is_some_and(|e| e == "json") {
            let name = name.ok_or_else(|| ManifestError::new(path, Problem::NameRequired))?;
            App::from_solo5_file(path, name)
        } else {
            let mut app = App::from_toml_file(path)?;
            if let Some(name) = name {
                muen_abi::names::check_component_name(name).map_err(|error| {
                    ManifestError::new(
                        path,
                        Problem::Name {
                            name: name.into(),
                            error,
                            kind: NameKind::Component,
                        },
                    )
                })?;
                app.name = name.into();
            }
            Ok(app)
        }
    }
}

fn read(path: &Path) -> Result<String, ManifestError> {
    std::fs::read_to_string(path).map_err(|e| ManifestError::new(path, Problem::Read(e)))
}

#[cfg(test)]
mod tests;
