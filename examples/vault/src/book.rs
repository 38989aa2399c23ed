//! The guestbook on its disk, and the answers to web's requests.
//!
//! [`Book`] keeps the entries as records of blockstore's log ([`Log`]): entry *n* is
//! record *n*, its payload the stored entry ([`Entry::to_payload`]); the log's rules
//! hold (every record checksummed and verified on open and on every read, none ever
//! overwritten). [`Vault::answer`] turns one request element into its response
//! elements: it decodes the element (a malformed one is refused, nothing else
//! happens), and appends or reads.

use muen_subject::device::BlockDevice;

use blockstore::{Appended, Log, Opened, StoreError};

use crate::wire::{
    Entry, Refusal, Request, RequestElement, Response, ResponseElement, WireError, PAYLOAD_LEN,
    RECENT_MAX,
};

/// The most response elements one request is answered with.
pub const ANSWER_MAX: usize = RECENT_MAX as usize;

/// The guestbook on a block device.
pub struct Book<D: BlockDevice> {
    dev: D,
    log: Log,
}

impl<D: BlockDevice> Book<D> {
    /// Opens the book on `dev` (blockstore's [`Log::open`]: it verifies every record
    /// and counts the boot).
    pub fn open(mut dev: D) -> Result<(Self, Opened), StoreError> {
        let (log, opened) = Log::open(&mut dev)?;
        Ok((Book { dev, log }, opened))
    }

    /// The number of entries.
    pub fn entries(&self) -> u64 {
        self.log.records()
    }

    /// How many entries the disk holds at most.
    pub fn capacity(&self) -> u64 {
        self.log.slots()
    }

    /// Appends `entry`; returns its number.
    pub fn append(&mut self, entry: &Entry) -> Result<u64, Refusal> {
        let mut payload = [0u8; PAYLOAD_LEN];
        let len = entry.to_payload(&mut payload);
        match self.log.append(&mut self.dev, &payload[..len]) {
            Ok(Appended::Yes { sequence }) => Ok(sequence),
            Ok(Appended::Full) => Err(Refusal::Full),
            Ok(Appended::Hole) => Err(Refusal::NeedsRepair),
            Err(_) => Err(Refusal::Storage),
        }
    }

    /// Reads entry `sequence` (1 to [`Book::entries`]).
    pub fn read(&mut self, sequence: u64) -> Result<Entry, Refusal> {
        match self.log.read(&mut self.dev, sequence) {
            Ok(record) => Entry::from_payload(record.payload()).map_err(|_| Refusal::Damaged),
            Err(blockstore::ReadError::Io(_)) => Err(Refusal::Storage),
            Err(_) => Err(Refusal::Damaged),
        }
    }

    /// The device.
    pub fn device(&mut self) -> &mut D {
        &mut self.dev
    }
}

/// What [`Vault::answer`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Answer {
    /// How many response elements it wrote.
    pub responses: usize,
    /// The request, refused as malformed, and why.
    pub malformed: Option<WireError>,
}

/// What the vault counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VaultStats {
    /// Requests answered.
    pub requests: u64,
    /// Entries appended.
    pub appended: u64,
    /// Entries read.
    pub read: u64,
    /// Requests refused as malformed.
    pub malformed: u64,
    /// Requests refused for another reason (full, damaged, disk).
    pub refused: u64,
}

/// The vault: the book and its counters.
pub struct Vault<D: BlockDevice> {
    book: Book<D>,
    stats: VaultStats,
}

impl<D: BlockDevice> Vault<D> {
    /// A vault serving `book`.
    pub fn new(book: Book<D>) -> Self {
        Vault {
            book,
            stats: VaultStats::default(),
        }
    }

    /// The book.
    pub fn book(&mut self) -> &mut Book<D> {
        &mut self.book
    }

    /// The counters.
    pub fn stats(&self) -> VaultStats {
        self.stats
    }

    /// Answers the request `element` (whatever its bytes): writes the response
    /// elements into `out`, each with the request's tag, and says how many.
    ///
    /// - append: the entry is appended; `Appended` with its number, or `Refused`;
    /// - read: `Entry` (the last of its answer), `Missing` if the book has no such
    ///   entry, or `Refused` if its record is damaged;
    /// - recent: the newest `count` entries oldest first (the last one marked), or
    ///   `Missing` for an empty book, or one `Refused`;
    /// - anything that does not decode: `Refused(Malformed)`, and nothing else
    ///   happens.
    pub fn answer(
        &mut self,
        element: &RequestElement,
        out: &mut [ResponseElement; ANSWER_MAX],
    ) -> Answer {
        self.stats.requests += 1;
        let tag = element.tag();
        let mut answer = Answer {
            responses: 1,
            malformed: None,
        };
        let response = match element.decode() {
            Err(e) => {
                self.stats.malformed += 1;
                answer.malformed = Some(e);
                Response::Refused(Refusal::Malformed)
            }
            Ok(Request::Append(entry)) => match self.book.append(&entry) {
                Ok(sequence) => {
                    self.stats.appended += 1;
                    Response::Appended {
                        sequence,
                        total: self.book.entries(),
                    }
                }
                Err(r) => Response::Refused(r),
            },
            Ok(Request::Read { sequence }) => {
                let total = self.book.entries();
                if sequence > total {
                    Response::Missing { sequence, total }
                } else {
                    match self.book.read(sequence) {
                        Ok(entry) => {
                            self.stats.read += 1;
                            Response::Entry {
                                sequence,
                                total,
                                last: true,
                                entry,
                            }
                        }
                        Err(r) => Response::Refused(r),
                    }
                }
            }
            Ok(Request::Recent { count }) => {
                let total = self.book.entries();
                if total == 0 {
                    Response::Missing { sequence: 0, total }
                } else {
                    let first = total.saturating_sub(u64::from(count)) + 1;
                    let mut n = 0;
                    let mut refused = None;
                    for sequence in first..=total {
                        match self.book.read(sequence) {
                            Ok(entry) => {
                                out[n] = Response::Entry {
                                    sequence,
                                    total,
                                    last: sequence == total,
                                    entry,
                                }
                                .encode(tag);
                                n += 1;
                            }
                            Err(r) => {
                                refused = Some(r);
                                break;
                            }
                        }
                    }
                    match refused {
                        None => {
                            self.stats.read += n as u64;
                            answer.responses = n;
                            return answer;
                        }
                        Some(r) => Response::Refused(r),
                    }
                }
            }
        };
        if matches!(response, Response::Refused(r) if r != Refusal::Malformed) {
            self.stats.refused += 1;
        }
        out[0] = response.encode(tag);
        answer
    }
}

#[cfg(test)]
mod tests;
