//! `vault`: keeps the guestbook on its disk `storage` and answers `web`'s requests on
//! the channel pair `requests` / `responses` (see the library, `src/lib.rs`).
//!
//! It serves until it is stopped; the system policy restarts it when it exits (and
//! then its log, on the disk, is verified again and served on). Requests that `web`
//! wrote while vault was not running are skipped when it starts, so that none is
//! carried out twice.

#![no_std]
#![no_main]

use log::{info, warn};
use muen_subject::channel::{ChannelError, Receiver, Sender};
use muen_subject::{Instant, Pollable, Runtime};
use vault::wire::{RequestElement, ResponseElement};
use vault::{Book, Vault, VaultError, ANSWER_MAX, DEVICE, REQUESTS, RESPONSES};
use zerocopy::FromZeros;

muen_subject::entry!(main);

/// Malformed requests logged one by one; after these, every 1024th.
const MALFORMED_LOGGED: u64 = 16;

fn main(rt: &mut Runtime) -> Result<(), VaultError> {
    let dev = rt.block(DEVICE)?;
    let mut requests = rt.reader::<RequestElement>(REQUESTS)?;
    let mut responses = rt.writer::<ResponseElement>(RESPONSES)?;
    let (book, opened) = Book::open(dev)?;
    // Log lines are cut at 56 characters (Muen's debug log): one fact a line.
    info!("{DEVICE}: boot count {}", opened.boot_count);
    info!("entries: {} verified", opened.records);
    info!("room for {} entries", book.capacity());
    if opened.stranded > 0 {
        warn!("damaged record before {} valid ones", opened.stranded);
        warn!("no new entries until the log is repaired");
    }
    let mut vault = Vault::new(book);
    match requests.drain() {
        Ok(0) => {}
        Ok(n) => info!("{REQUESTS}: skipped {n} requests from before this start"),
        Err(e) => warn!("{REQUESTS}: {e}"),
    }
    info!("ready");

    let mut batch = [RequestElement::new_zeroed(); 8];
    let mut out = [ResponseElement::new_zeroed(); ANSWER_MAX];
    let mut channel_errors = 0u64;
    loop {
        let n = match requests.receive_batch(&mut batch) {
            Ok(n) => n,
            Err(ChannelError::Again) => {
                // Sleeps until web signals (the vector `requests`).
                rt.poll(Instant::MAX, &[&requests]);
                continue;
            }
            Err(e) => {
                channel_errors += 1;
                if channel_errors <= MALFORMED_LOGGED || channel_errors % 1024 == 0 {
                    warn!("{REQUESTS}: {e}");
                }
                // A refused channel (another type, a broken header) stays refused until
                // web starts it anew, and says so at every receive: sleep until web
                // signals instead of spinning on it.
                if !requests.has_data() {
                    rt.poll(Instant::MAX, &[&requests]);
                }
                continue;
            }
        };
        for request in &batch[..n] {
            let answer = vault.answer(request, &mut out);
            responses.send_batch(&out[..answer.responses]);
            if let Some(e) = answer.malformed {
                let count = vault.stats().malformed;
                if count <= MALFORMED_LOGGED || count % 1024 == 0 {
                    warn!("refused request {count}: {e}");
                }
            }
        }
    }
}
