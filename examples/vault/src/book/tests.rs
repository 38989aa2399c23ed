use super::*;
use muen_device_compliance::reference::MemBlock;
use zerocopy::{FromZeros, IntoBytes};

use crate::wire::{Entry, Refusal, Request, Response, RECENT_MAX};

/// A vault on a fresh in-memory disk of `blocks` 512-byte blocks.
fn vault(blocks: u64) -> Vault<MemBlock> {
    let (book, opened) = Book::open(MemBlock::new(blocks, 512)).unwrap();
    assert_eq!(opened.records, 0);
    Vault::new(book)
}

/// The responses to `request` (tag 42).
fn ask(v: &mut Vault<MemBlock>, request: &RequestElement) -> Vec<Response> {
    let mut out = [ResponseElement::new_zeroed(); ANSWER_MAX];
    let answer = v.answer(request, &mut out);
    out[..answer.responses]
        .iter()
        .map(|e| {
            assert_eq!(e.tag(), request.tag());
            e.decode().expect("vault's own responses decode")
        })
        .collect()
}

fn append(name: &str, text: &str) -> RequestElement {
    Request::Append(Entry::new(name, text).unwrap()).encode(42)
}

fn entry(sequence: u64, total: u64, last: bool, name: &str, text: &str) -> Response {
    Response::Entry {
        sequence,
        total,
        last,
        entry: Entry::new(name, text).unwrap(),
    }
}

#[test]
fn appends_reads_and_recent_entries() {
    let mut v = vault(64);
    assert_eq!(
        ask(&mut v, &Request::Recent { count: 5 }.encode(1)),
        [Response::Missing {
            sequence: 0,
            total: 0
        }]
    );
    for (n, name) in ["ann", "ben", "cy"].into_iter().enumerate() {
        assert_eq!(
            ask(&mut v, &append(name, &format!("entry of {name}"))),
            [Response::Appended {
                sequence: n as u64 + 1,
                total: n as u64 + 1
            }]
        );
    }
    assert_eq!(
        ask(&mut v, &Request::Read { sequence: 2 }.encode(7)),
        [entry(2, 3, true, "ben", "entry of ben")]
    );
    assert_eq!(
        ask(&mut v, &Request::Read { sequence: 4 }.encode(7)),
        [Response::Missing {
            sequence: 4,
            total: 3
        }]
    );
    assert_eq!(
        ask(&mut v, &Request::Recent { count: 2 }.encode(8)),
        [
            entry(2, 3, false, "ben", "entry of ben"),
            entry(3, 3, true, "cy", "entry of cy")
        ]
    );
    assert_eq!(
        ask(&mut v, &Request::Recent { count: RECENT_MAX }.encode(8)).len(),
        3
    );
    let s = v.stats();
    assert_eq!(
        (s.requests, s.appended, s.read, s.malformed, s.refused),
        (8, 3, 6, 0, 0)
    );
}

#[test]
fn entries_survive_a_restart_of_the_vault() {
    let mut v = vault(64);
    ask(&mut v, &append("ann", "before the restart"));
    let disk = v.book().device().clone();
    // A new vault on the same disk: the entry is verified and served.
    let (book, opened) = Book::open(disk).unwrap();
    assert_eq!((opened.records, opened.boot_count), (1, 2));
    let mut v = Vault::new(book);
    assert_eq!(
        ask(&mut v, &Request::Read { sequence: 1 }.encode(1)),
        [entry(1, 1, true, "ann", "before the restart")]
    );
    assert_eq!(
        ask(&mut v, &append("ben", "after")),
        [Response::Appended {
            sequence: 2,
            total: 2
        }]
    );
}

#[test]
fn malformed_requests_are_refused_and_change_nothing() {
    let mut v = vault(64);
    ask(&mut v, &append("ann", "the only entry"));
    let before = v.book().device().clone();
    let mut bad = append("eve", "sneaky");
    bad.as_mut_bytes()[60] = b'\n'; // a control character in the text
    let mut unknown = RequestElement::new_zeroed();
    unknown.as_mut_bytes()[8] = 0xee;
    let mut out = [ResponseElement::new_zeroed(); ANSWER_MAX];
    for request in [bad, unknown, Request::Read { sequence: 0 }.encode(3)] {
        let answer = v.answer(&request, &mut out);
        assert_eq!(answer.responses, 1);
        assert!(answer.malformed.is_some());
        assert_eq!(out[0].decode(), Ok(Response::Refused(Refusal::Malformed)));
    }
    assert_eq!(v.stats().malformed, 3);
    let after = v.book().device();
    assert_eq!(after.durable, before.durable, "the disk is as it was");
    assert!(after.cache.is_empty());
    assert_eq!(v.book().entries(), 1);
}

#[test]
fn a_full_book_a_damaged_entry_and_a_failing_disk_are_refusals() {
    // 2 superblocks + 2 slots.
    let mut v = vault(4);
    ask(&mut v, &append("a", "1"));
    ask(&mut v, &append("b", "2"));
    assert_eq!(
        ask(&mut v, &append("c", "3")),
        [Response::Refused(Refusal::Full)]
    );
    // Record 1's payload damaged on the disk (the checksum catches it).
    v.book().device().durable[2 * 512 + 30] ^= 0x40;
    assert_eq!(
        ask(&mut v, &Request::Read { sequence: 1 }.encode(1)),
        [Response::Refused(Refusal::Damaged)]
    );
    assert_eq!(
        ask(&mut v, &Request::Recent { count: 2 }.encode(1)),
        [Response::Refused(Refusal::Damaged)]
    );
    v.book().device().error_status = true;
    assert_eq!(
        ask(&mut v, &Request::Read { sequence: 2 }.encode(1)),
        [Response::Refused(Refusal::Storage)]
    );
    assert_eq!(v.stats().refused, 4);
}

#[test]
fn a_record_that_is_no_entry_is_damaged_not_a_panic() {
    // A blockstore disk (records of another payload) given to vault.
    let mut disk = MemBlock::new(64, 512);
    blockstore::boot(&mut disk, |_, buf| {
        buf[..6].copy_from_slice(b"boot 1");
        6
    })
    .unwrap();
    let (book, opened) = Book::open(disk).unwrap();
    assert_eq!(opened.records, 1);
    let mut v = Vault::new(book);
    assert_eq!(
        ask(&mut v, &Request::Read { sequence: 1 }.encode(1)),
        [Response::Refused(Refusal::Damaged)]
    );
}
