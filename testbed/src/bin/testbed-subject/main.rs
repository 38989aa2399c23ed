//! `testbed-subject`: the testbed's own test subject.
//!
//! A hosted subject written directly against `docs/hosted.md` (libc, muen-channel,
//! muen-sinfo; not the runtime), so that the testbed can be tested on its own. The
//! first argument picks what it does; the integration tests and the benchmark run it
//! with `muen-testbed run --exec PATH --policy FILE -- MODE ARGS...`.
//!
//! | mode | does |
//! |------|------|
//! | `log [CODE]` | logs three lines (one longer than a message) and exits with CODE |
//! | `world` | checks its world: every sinfo region mapped, time published, frames advancing, a timed event |
//! | `idle SECS` | sleeps SECS seconds on its timed event, then exits 0 |
//! | `echo [SPIN_US]` | returns every frame with swapped MACs (spinning SPIN_US per frame); answers `STATS`, exits on `QUIT` |
//! | `net-peer TO FROM` | the other end of examples/echo's network device as a subject: ARP, then a UDP echo, through channels `TO` and `FROM` |
//! | `block-write SECTOR COUNT SEED` | writes a pattern, syncs |
//! | `block-write-hang SECTOR COUNT SEED` | writes a pattern, the first half synced, then hangs (logs `synced`, `completed`) |
//! | `block-verify SECTOR COUNT SEED` | reads the pattern back and compares |
//! | `block-discard SECTOR COUNT` | discards, reads back zeros |
//! | `block-bad` | sends invalid requests and checks that each is refused |
//! | `block-bench MIB [IN_FLIGHT]` | writes (then syncs) and reads MIB MiB with up to IN_FLIGHT requests in flight (default: as many as the data buffer holds), logs MB/s |
//! | `bad-control` | sends malformed control messages, exits 0 |
//! | `hang` | spins forever |
//! | `panic` | panics |
//! | `segv` | touches unmapped memory |

mod block;
mod hosted;
mod modes;
mod pattern;

fn main() {
    let mut platform = hosted::start();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args.first().map(String::as_str).unwrap_or("log");
    let rest = args.get(1..).unwrap_or(&[]);
    let code = modes::run(&mut platform, mode, rest);
    platform.exit(code)
}
