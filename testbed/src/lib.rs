//! The testbed: runs a Muen native subject as a Linux process, in the world Muen would
//! give it, with real peers.
//!
//! The contract with the subject's runtime is `docs/hosted.md`; the architecture is
//! described in `docs/testbed.md`. One module per part of the emulated system:
//!
//! - [`policy`]: the component specification (`muen_spec::ComponentSpec`, read from XML
//!   or built from an app) expanded into a [`world::World`];
//! - [`world`]: the subject's view (`muen_spec::SubjectView`: regions, events, vectors
//!   in the order Muen's toolchain maps them) and the devices the peers serve in it;
//! - [`memory`]: the shared memory file (`memfd`) with the memory map, and the testbed's
//!   own mapping of it;
//! - [`sinfo`]: the subject info page (format 4, as Muen's tools write it, or 5) naming the view;
//! - [`kernel`]: the control socket, events and vectors, minor frames, timed events and
//!   the time info page;
//! - [`peers`]: the log sink, the network bridge and the block server;
//! - [`pcap`]: frame recording;
//! - [`subject`]: starting the subject process (or QEMU) and collecting its end;
//! - [`qemu`]: QEMU mode, the real image in a QEMU guest (boot stage, doorbell,
//!   monitor);
//! - [`app`]: building an app with cargo and making its specification with `policy-gen`;
//! - [`setup`]: what a run sets up: the physical regions, the subjects with their
//!   worlds and the links between them, from one specification or from a Muen system
//!   policy (`muen_spec::system`);
//! - [`run`]: one run of its subjects, from setup to exit status;
//! - [`clock`], [`os`]: the TSC and the few Linux calls the rest needs.

pub mod app;
pub mod clock;
pub mod kernel;
pub mod memory;
pub mod os;
pub mod pcap;
pub mod peers;
pub mod policy;
pub mod qemu;
pub mod run;
pub mod setup;
pub mod sinfo;
pub mod subject;
pub mod world;
