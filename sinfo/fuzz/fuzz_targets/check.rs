//! Fuzzes `SubjectInfo::new_checked` with arbitrary bytes.
//!
//! Every input is checked; an accepted page goes through every accessor, lookup and
//! iterator, is rebuilt from its decoded values and must decode to the same values
//! again. The input padded to a page also goes through the unchecked view. Any panic
//! (a failed assertion, an out-of-bounds index, an overflow) is a finding.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/support/exercise.rs"]
mod exercise;

fuzz_target!(|data: &[u8]| {
    exercise::exercise(data);
    exercise::exercise_unchecked(data);
});
