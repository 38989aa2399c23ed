//! Fuzzes `muen_spec::parse` with arbitrary text.
//!
//! Every input is read; an accepted specification is written for both generations of
//! Muen's tools and must read back to the same specification, and is expanded into
//! the subject's view (which may refuse it, but must not panic). Any panic (a failed
//! assertion, an overflow, an out-of-bounds index) is a finding.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use muen_spec::{expand, parse, write, Generation};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(spec) = parse(text, Path::new("fuzz.xml")) else {
        return;
    };
    for g in Generation::ALL {
        let xml = write(&spec, g);
        let back = parse(&xml, Path::new("written.xml"))
            .unwrap_or_else(|e| panic!("{g}: the written document is refused: {e}\n{xml}"));
        assert_eq!(back, spec, "{g}:\n{xml}");
    }
    let _ = expand(&spec);
});
