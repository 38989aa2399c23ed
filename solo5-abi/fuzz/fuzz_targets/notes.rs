//! Fuzzes Solo5's note readers with arbitrary bytes: as a `PT_NOTE` segment, as a note
//! read in place, as a manifest, as several segments, as an ELF image holding them and
//! as an ELF image of its own. Whatever is accepted is rebuilt from its decoded values
//! and must read back the same (`tests/support/exercise.rs`). Any panic is a finding.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/support/exercise.rs"]
mod exercise;

fuzz_target!(|data: &[u8]| {
    exercise::exercise(data);
});
