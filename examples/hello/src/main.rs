//! The smallest Muen app: greets, shows both clocks and its resources, exits 0.
//!
//! Build for Muen with `cargo build -p hello --target x86_64-unknown-none --release`
//! (`build.rs` adds muen-subject's linker script), or for the host with
//! `cargo build -p hello` and run it in the testbed.

#![no_std]
#![no_main]

use log::info;
use muen_subject::sinfo::ResourceData;
use muen_subject::{Duration, Runtime};

muen_subject::entry!(main);

/// How long to wait for the time subject to publish the wall clock.
const WALL_CLOCK_WAIT: Duration = Duration::from_millis(100);

fn main(rt: &mut Runtime) {
    info!("hello from {}", rt.name());
    info!("monotonic {}", rt.now());
    match rt.wall_clock(WALL_CLOCK_WAIT) {
        Ok(t) => info!(
            "wall clock {}.{:09} s since 1970",
            t.as_secs(),
            t.subsec_nanos()
        ),
        Err(e) => info!("wall clock not published: {}", e),
    }
    for r in rt.info().resources() {
        match r.data {
            ResourceData::Memory(m) => {
                info!(
                    "memory {} {:#x} {:#x} {}",
                    r.name, m.address, m.size, m.kind
                )
            }
            ResourceData::Event(n) => info!("event {} {}", r.name, n),
            ResourceData::Vector(v) => info!("vector {} {}", r.name, v),
            _ => info!("resource {}", r.name),
        }
    }
}
