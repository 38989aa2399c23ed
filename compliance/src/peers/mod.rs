//! In-test peers for the runtime's drivers, on channels in ordinary memory (see
//! `muen_sim`): a muennet peer for [`MuenNet`](muen_subject::net::MuenNet) and an
//! in-memory muenblock server for [`MuenBlock`](muen_subject::block::MuenBlock),
//! plus the server harness that drives any muenblock server through its channels.

pub mod muenblock;
pub mod muennet;
