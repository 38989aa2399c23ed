//! The in-memory peers of `muen-sim` as the suite sees them: the muenblock server
//! passes every server rule (it is the server of the runtime's driver tests, so a
//! client bug cannot hide behind a lenient server).

use muen_device_compliance::peers::muenblock::mem_server_harness;
use muen_device_compliance::server::{server_compliance, ServerRule};
use muen_device_compliance::Rule;

#[test]
fn the_in_memory_server_passes_every_server_rule() {
    let (mut harness, server) = mem_server_harness(64, 0x4000);
    let report = server_compliance("in-memory muenblock server", &mut harness);
    report.assert_ok();
    assert_eq!(report.passed, ServerRule::ALL);
    assert!(
        server.borrow().stats.refused > 30,
        "{:?}",
        server.borrow().stats
    );
}
