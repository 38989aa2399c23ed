//! `muen-spec`: one typed model of a Muen component specification, and of what Muen's
//! toolchain makes of it for one subject.
//!
//! - [`model`]: [`ComponentSpec`], the `<component>` document of Muen's
//!   `component.xsd` as typed values (addresses are [`muen_abi::VirtAddr`]).
//! - [`write()`](write::write): the XML for one [`Generation`] of Muen's tools
//!   (deterministic, in schema order). `policy-gen` writes its output with it.
//! - [`parse()`](parse::parse): XML of either generation back into the model, with
//!   errors as `FILE:LINE:COLUMN: <element "name">: problem`. The testbed reads
//!   `--policy` files with it. For every specification the writer can write,
//!   `parse(write(spec, g)) == spec`.
//! - [`view`]: [`SubjectView`], the subject's view (its mappings in sinfo order,
//!   events, vectors, registers), and [`expand`], which makes it from a specification
//!   as Muen's toolchain does (adding the libraries' channels and the toolchain's
//!   pages). The testbed runs a subject in this view.
//! - [`system`]: a Muen system policy in format B (`mucfgalloc`'s output) and, for
//!   one of its subjects, the same [`SubjectView`] plus what running it needs (who
//!   shares its regions, where its events go, its scheduling).
//! - [`hex`]: numbers in Muen's `16#…#` form.
//!
//! Usage of the generations and of the model is described in `docs/policy-gen.md` and
//! `docs/testbed.md`.

#![deny(unsafe_code)]

pub mod generation;
pub mod hex;
pub mod model;
pub mod parse;
pub mod system;
pub mod view;
pub mod write;

pub use generation::{Generation, UnknownGeneration};
pub use model::{
    Channel, ChannelEnd, ComponentSpec, Content, Hash, ProvidedMemory, Registers, RequiredMemory,
};
pub use parse::{parse, parse_with_places, Place, Places, SpecError};
pub use view::{expand, Library, Mapping, NamedNumber, Origin, SubjectView, ViewError};
pub use write::{write, write_with_comment};
