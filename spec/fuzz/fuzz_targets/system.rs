//! Fuzzes `muen_spec::system::read` with arbitrary text.
//!
//! Every input is read; for an accepted system policy, every subject's view, wiring
//! and schedule is built (a view may be refused, but nothing may panic). Any panic (a
//! failed assertion, an overflow, an out-of-bounds index) is a finding.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use muen_spec::system;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(sys) = system::read(text, Path::new("fuzz.xml")) else {
        return;
    };
    for i in 0..sys.subjects.len() {
        if let Ok(view) = sys.view(i) {
            assert_eq!(view.mappings.len(), sys.subjects[i].mappings.len());
            assert_eq!(view.events.len(), sys.subjects[i].vmcalls.len());
        }
        let wiring = sys.wiring(i);
        assert_eq!(wiring.events.len(), sys.subjects[i].vmcalls.len());
    }
});
