use super::*;
use muen_sim::peers::{muenblock_device, MuenblockServer};
use muen_sim::{page, SimSys};
use std::cell::RefCell;
use std::rc::Rc;

const BS: u64 = 512;

/// A muenblock device `disk` of subject `blockstore`, served by muen-sim's in-memory
/// server whenever the client waits.
struct Setup {
    sys: &'static SimSys,
    server: Rc<RefCell<MuenblockServer>>,
    info: SubjectInfo<'static>,
}

/// A server of `blocks` blocks of `block_size` bytes that records every request and
/// fails the test at the first one a correct client never sends (`strict`);
/// `configure` adjusts it before the client starts.
fn setup_with(blocks: u64, block_size: u64, configure: impl FnOnce(&mut MuenblockServer)) -> Setup {
    let sys = SimSys::leaked();
    let (info, server) = muenblock_device("blockstore", "disk", blocks, block_size, sys);
    {
        let mut s = server.borrow_mut();
        s.strict = true;
        s.record = true;
        configure(&mut s);
    }
    Setup { sys, server, info }
}

fn acquire(s: &Setup) -> Result<MuenBlock<'static, SimSys>, AcquireError> {
    // SAFETY: the page points at leaked buffers.
    unsafe { MuenBlock::acquire(s.sys, &s.info, "disk") }
}

fn setup(configure: impl FnOnce(&mut MuenblockServer)) -> (Setup, MuenBlock<'static, SimSys>) {
    let s = setup_with(2048, BS, configure);
    let dev = acquire(&s).unwrap();
    (s, dev)
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[test]
fn acquisition_resets_then_asks_for_the_geometry() {
    let (s, dev) = setup(|_| {});
    let g = dev.geometry();
    assert_eq!(
        (g.devices, g.blocks, g.block_size, g.max_blocks),
        (1, 2048, 512, 16)
    );
    assert!(!g.max_requests_answered);
    assert_eq!(g.max_requests, DEFAULT_MAX_REQUESTS);
    assert_eq!(
        dev.info(),
        BlockInfo {
            block_size: 512,
            capacity: 2048 * 512
        }
    );
    // 8 KiB per request, 8 of them fit the 64 KiB buffer.
    assert_eq!(dev.io_window(), (16 * 512, 8));
    let server = s.server.borrow();
    let kinds: Vec<_> = server
        .requests_seen
        .iter()
        .map(|r| r.kind().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            RequestKind::Reset,
            RequestKind::MaxRequests,
            RequestKind::MaxDevices,
            RequestKind::MediaBlocks,
            RequestKind::BlockLength,
            RequestKind::MaxBlocksCount
        ]
    );
    let mut tags: Vec<_> = server.requests_seen.iter().map(|r| r.tag()).collect();
    tags.dedup();
    assert_eq!(tags.len(), 6, "every request has its own tag");
    // The request event was triggered (once per batch).
    assert_eq!(s.sys.events(), [3, 3]);
}

#[test]
fn an_answer_to_max_requests_limits_the_requests_in_flight() {
    let (s, mut dev) = setup(|srv| srv.max_requests = Some(2));
    assert!(dev.geometry().max_requests_answered);
    assert_eq!(dev.io_window(), (8192, 2));
    let mut buf = vec![0; 64 * 1024];
    dev.read(0, &mut buf).unwrap();
    assert_eq!(s.server.borrow().largest_batch, 2);
    assert_eq!(dev.stats().max_in_flight, 2);
}

#[test]
fn reads_and_writes_of_many_sizes_reach_the_right_sectors() {
    let (s, mut dev) = setup(|_| {});
    let cases: [(u64, usize); 9] = [
        (0, 512),
        (512, 1024),
        (7 * 512, 4096),
        (100 * 512, 8192),
        (200 * 512, 8704),
        (300 * 512, 65536),
        (500 * 512, 65536 + 512),
        (700 * 512, 300 * 1024),
        (2047 * 512, 512),
    ];
    for (i, &(offset, len)) in cases.iter().enumerate() {
        let data = pattern(len, i as u8);
        let first = s.server.borrow().requests_seen.len();
        dev.write(offset, &data).unwrap();
        {
            let server = s.server.borrow();
            assert_eq!(
                &server.image()[offset as usize..offset as usize + len],
                &data[..]
            );
            // The chunks are consecutive sector ranges covering exactly the transfer.
            let mut chunks: Vec<_> = server.requests_seen[first..]
                .iter()
                .map(|r| (r.device_offset(), r.length()))
                .collect();
            chunks.sort();
            let mut sector = offset / BS;
            for (start, length) in chunks {
                assert_eq!(start, sector);
                sector += length / BS;
            }
            assert_eq!(sector, (offset + len as u64) / BS);
        }
        let mut back = vec![0u8; len];
        dev.read(offset, &mut back).unwrap();
        assert_eq!(back, data, "{offset} {len}");
    }
    // Blocks nobody wrote still hold the server's initial contents.
    let mut one = vec![0u8; 512];
    dev.read(1500 * 512, &mut one).unwrap();
    assert!(one.iter().all(|&b| b == (1500u64 as u8) ^ 0x5a));
    assert_eq!(dev.stats().stray_responses, 0);
}

#[test]
fn many_requests_in_flight_with_out_of_order_answers() {
    let (s, mut dev) = setup(|srv| {
        srv.reverse = true;
        srv.stray = true;
    });
    let data = pattern(200 * 1024, 3);
    dev.write(4096, &data).unwrap();
    let mut back = vec![0u8; data.len()];
    dev.read(4096, &mut back).unwrap();
    assert_eq!(back, data);
    assert_eq!(s.server.borrow().largest_batch, 8);
    assert_eq!(dev.stats().max_in_flight, 8);
    assert!(dev.stats().stray_responses > 0, "unknown tags are ignored");
}

#[test]
fn alignment_length_and_range_are_checked_before_sending() {
    let (s, mut dev) = setup(|_| {});
    let before = s.server.borrow().requests_seen.len();
    let mut buf = vec![0u8; 1024];
    assert_eq!(
        dev.read(0, &mut buf[..0]),
        Err(BlockError::BadLength { len: 0 })
    );
    assert_eq!(
        dev.read(0, &mut buf[..100]),
        Err(BlockError::BadLength { len: 100 })
    );
    assert_eq!(
        dev.write(100, &buf[..512]),
        Err(BlockError::BadOffset { offset: 100 })
    );
    let capacity = 2048 * 512;
    assert_eq!(
        dev.read(capacity - 512, &mut buf),
        Err(BlockError::OutOfRange {
            offset: capacity - 512,
            len: 1024,
            capacity
        })
    );
    assert_eq!(
        dev.write(u64::MAX - 511, &buf[..512]),
        Err(BlockError::OutOfRange {
            offset: u64::MAX - 511,
            len: 512,
            capacity
        })
    );
    assert_eq!(
        dev.discard(capacity, 512),
        Err(BlockError::OutOfRange {
            offset: capacity,
            len: 512,
            capacity
        })
    );
    assert_eq!(dev.discard(0, 0), Err(BlockError::BadLength { len: 0 }));
    assert!(!BlockError::BadLength { len: 0 }.is_retryable());
    assert_eq!(
        s.server.borrow().requests_seen.len(),
        before,
        "nothing was sent"
    );
}

#[test]
fn server_error_status_is_an_error_value_and_the_device_stays_usable() {
    let (s, mut dev) = setup(|srv| srv.fail_sector = Some(40));
    // Sectors 16..48 in chunks of 16: the chunk starting at sector 32 fails.
    let data = pattern(32 * 512, 1);
    assert_eq!(
        dev.write(16 * 512, &data),
        Err(BlockError::Device {
            status: status::EIO,
            offset: 32 * 512
        })
    );
    // The other chunk was written.
    assert_eq!(
        &s.server.borrow().image()[16 * 512..32 * 512],
        &data[..16 * 512]
    );
    let mut buf = vec![0u8; 512];
    dev.read(0, &mut buf).unwrap();
    s.server.borrow_mut().sync_status = status::SYNC_FAILED;
    assert_eq!(
        dev.sync(),
        Err(BlockError::Device {
            status: 1,
            offset: 0
        })
    );
    s.server.borrow_mut().sync_status = 0;
    dev.sync().unwrap();
    assert_eq!(
        s.server.borrow().requests_seen.last().unwrap().kind(),
        Ok(RequestKind::Sync)
    );
}

#[test]
fn a_silent_server_times_out_and_the_device_resets_before_the_next_request() {
    let (s, mut dev) = setup(|_| {});
    dev.set_timeout(Duration::from_millis(50));
    s.sys.set_step(100_000);
    s.server.borrow_mut().silent = true;
    let start = s.sys.tsc();
    let mut buf = vec![0u8; 4096];
    assert_eq!(dev.read(0, &mut buf), Err(BlockError::Timeout));
    let waited = s.sys.tsc().saturating_ticks_since(start);
    assert!((50_000_000..50_200_000).contains(&waited), "{waited}");
    assert!(s.sys.waits() > 10, "it waited, it did not give up at once");
    assert_eq!(dev.stats().timeouts, 1);
    s.server.borrow_mut().silent = false;
    let seen = s.server.borrow().requests_seen.len();
    dev.read(0, &mut buf).unwrap();
    let server = s.server.borrow();
    assert_eq!(server.requests_seen[seen].kind(), Ok(RequestKind::Reset));
    assert_eq!(dev.stats().resets, 1);
    // The late answers to the timed-out read were ignored (the server never sent them
    // here: it was silent), and the new read got the right data.
    assert_eq!(&buf[..], &server.image()[..4096]);
}

#[test]
fn a_server_that_restarts_with_the_same_epoch_is_followed_after_one_error() {
    let (s, mut dev) = setup(|_| {});
    let mut buf = vec![0u8; 8 * 1024];
    // Enough traffic that the server's write counter is well ahead of zero.
    for _ in 0..4 {
        dev.read(0, &mut buf).unwrap();
    }
    s.server.borrow_mut().restart_same_epoch();
    // The first operation after the restart sees the counter go back: a retryable
    // error, and the device resets before the next one.
    let err = dev.read(0, &mut buf).unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    let resets = dev.stats().resets;
    dev.read(4096, &mut buf).unwrap();
    assert_eq!(dev.stats().resets, resets + 1, "one reset, then it works");
    assert_eq!(&buf[..], &s.server.borrow().image()[4096..4096 + 8 * 1024]);
    let data = pattern(4096, 7);
    dev.write(8192, &data).unwrap();
    dev.read(8192, &mut buf[..4096]).unwrap();
    assert_eq!(&buf[..4096], &data[..]);
}

#[test]
fn discard_clears_in_chunks_of_max_blocks() {
    let (s, mut dev) = setup(|_| {});
    dev.discard(64 * 512, 40 * 512).unwrap();
    let server = s.server.borrow();
    assert!(server.image()[64 * 512..104 * 512].iter().all(|&b| b == 0));
    assert_ne!(server.image()[104 * 512], 0);
    let discards: Vec<_> = server
        .requests_seen
        .iter()
        .filter(|r| r.kind() == Ok(RequestKind::Discard))
        .map(|r| (r.device_offset(), r.length()))
        .collect();
    assert_eq!(discards, [(64, 8192), (80, 8192), (96, 4096)]);
}

#[test]
fn acquisition_fails_cleanly() {
    let s = setup_with(2048, BS, |srv| srv.silent = true);
    // Ten seconds (the default timeout) in steps of 10 ms.
    s.sys.set_step(10_000_000);
    let e = acquire(&s).err().unwrap();
    assert_eq!(
        e,
        AcquireError::Server {
            device: "disk".try_into().unwrap(),
            error: BlockError::Timeout
        }
    );
    let s = setup_with(2048, 1000, |_| {});
    let e = acquire(&s).err().unwrap();
    assert_eq!(
        e.to_string(),
        "block device `disk`: the server answered Block_Length with 1000, which is unusable"
    );
    let s = setup_with(2048, BS, |srv| srv.max_blocks = 0);
    assert!(matches!(
        acquire(&s),
        Err(AcquireError::BadGeometry {
            field: "Max_Blocks_Count",
            ..
        })
    ));
    let info = page("blockstore", |_| {});
    let sys = SimSys::new();
    // SAFETY: the page names no regions.
    let e = unsafe { MuenBlock::acquire(&sys, &info, "disk") }
        .err()
        .unwrap();
    assert_eq!(
        e.to_string(),
        "region `disk|req`: not in the subject info page"
    );
}
