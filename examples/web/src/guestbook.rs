//! The guestbook's HTTP side: routes, the requests to vault, the pages.
//!
//! | request | vault is asked | answer |
//! |---------|----------------|--------|
//! | `GET /` (or `HEAD`) | the newest [`SHOWN`] entries | 200, `guestbook: N entries` and one line per entry, `#<n> <name>: <text>`, oldest first |
//! | `GET /entries/<n>` | entry `n` | 200 with its line, or 404 |
//! | `POST /entries` with a form `name=...&text=...` ([`form`]) | to append it | 201 `entry <n>`, `Location: /entries/<n>` |
//!
//! A form that is no entry is 400 (with the reason) and never reaches vault. Vault's
//! refusals: a full book is 507, one that needs repair, a damaged entry or a failed
//! disk 503, a request vault calls malformed 500 (web's own bug). No answer within
//! [`VAULT_TIMEOUT`] (vault is restarting, say) is 504; an answer that does not decode
//! is 502. Other paths are 404, other methods 405; every response closes its
//! connection.
//!
//! Each HTTP connection waiting for vault has a pending request with its own tag;
//! [`Guestbook::collect`] reads vault's responses and gives each to the connection
//! with its tag. Responses with a tag nobody waits for (late ones, or from before a
//! restart of web) are counted and dropped.

use core::fmt::Write as _;

use echo::host::{Context, Handler, Reply};
use echo::http::{self, Cursor, Head, Method, Request, RequestError, Status};
use muen_subject::channel::{ChannelError, Receiver, Sender};
use muen_subject::{Duration, Instant};
use vault::wire::{
    Entry, Refusal, Request as VaultRequest, RequestElement, Response, ResponseElement,
};
use zerocopy::FromZeros;

use crate::form;

/// How many entries the front page shows: the newest.
pub const SHOWN: u32 = 10;
/// How long a connection waits for vault's answer.
pub const VAULT_TIMEOUT: Duration = Duration::from_secs(2);
/// The largest response (head and body): ten entries of the longest kind fit.
pub const RESPONSE_MAX: usize = 8192;
/// The service's name in the `Server` field.
const SERVER: &str = "muen-web";

/// What a connection asked vault for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Asked {
    Append,
    Read,
    Recent,
}

/// What vault answered, once the answer is whole.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Answer {
    Appended(u64),
    Entries {
        total: u64,
    },
    Missing,
    Refused(Refusal),
    /// Vault's response did not decode.
    Garbled,
}

/// A connection's request to vault.
#[derive(Clone, Debug)]
struct Pending {
    tag: u64,
    asked: Asked,
    head_only: bool,
    deadline: Instant,
    /// The entries received so far (`Read`, `Recent`).
    entries: heapless::Vec<(u64, Entry), { SHOWN as usize }>,
    answer: Option<Answer>,
}

/// What the guestbook counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GuestbookStats {
    /// Requests sent to vault.
    pub asked: u64,
    /// Answers that came in time.
    pub answered: u64,
    /// Connections that waited [`VAULT_TIMEOUT`] in vain.
    pub timeouts: u64,
    /// Responses with a tag nobody waits for.
    pub stray: u64,
    /// Responses that did not decode.
    pub garbled: u64,
    /// Reports of the response channel (vault restarted, overran, misbehaved).
    pub channel: u64,
}

/// The guestbook: the HTTP [`Handler`] of web's host, with the channel ends to vault.
pub struct Guestbook<W: Sender<RequestElement>, R: Receiver<ResponseElement>, const N: usize> {
    requests: W,
    responses: R,
    pending: [Option<Pending>; N],
    next_tag: u64,
    stats: GuestbookStats,
}

impl<W: Sender<RequestElement>, R: Receiver<ResponseElement>, const N: usize> Guestbook<W, R, N> {
    /// A guestbook for `N` HTTP connections, talking to vault through `requests` and
    /// `responses`; its tags start at `first_tag` (differing per start of web, so
    /// that answers to a previous start's requests are not taken for this one's).
    pub fn new(requests: W, responses: R, first_tag: u64) -> Self {
        Guestbook {
            requests,
            responses,
            pending: core::array::from_fn(|_| None),
            next_tag: first_tag,
            stats: GuestbookStats::default(),
        }
    }

    /// The response channel, e.g. to wait for it with `Runtime::poll`.
    pub fn responses(&self) -> &R {
        &self.responses
    }

    /// The counters.
    pub fn stats(&self) -> GuestbookStats {
        self.stats
    }

    /// When a connection's wait for vault ends ([`Instant::MAX`]: none waits).
    pub fn next_deadline(&self) -> Instant {
        self.pending
            .iter()
            .flatten()
            .filter(|p| p.answer.is_none())
            .map(|p| p.deadline)
            .min()
            .unwrap_or(Instant::MAX)
    }

    /// Reads every response vault wrote and gives each to the connection it answers.
    pub fn collect(&mut self) {
        let mut batch = [ResponseElement::new_zeroed(); 8];
        // Bounded: vault cannot keep web in here.
        for _ in 0..64 {
            match self.responses.receive_batch(&mut batch) {
                Ok(n) => {
                    for element in &batch[..n] {
                        self.take(element);
                    }
                }
                Err(ChannelError::Again) => return,
                // Restarts and losses: waiting connections time out.
                Err(_) => self.stats.channel += 1,
            }
        }
    }

    /// Gives `element` to the connection waiting for its tag.
    fn take(&mut self, element: &ResponseElement) {
        let tag = element.tag();
        let Some(p) = self
            .pending
            .iter_mut()
            .flatten()
            .find(|p| p.tag == tag && p.answer.is_none())
        else {
            self.stats.stray += 1;
            return;
        };
        let response = match element.decode() {
            Ok(r) => r,
            Err(_) => {
                self.stats.garbled += 1;
                p.answer = Some(Answer::Garbled);
                return;
            }
        };
        let answer = match (p.asked, response) {
            (Asked::Append, Response::Appended { sequence, .. }) => Answer::Appended(sequence),
            (
                Asked::Read | Asked::Recent,
                Response::Entry {
                    sequence,
                    total,
                    last,
                    entry,
                },
            ) => {
                if p.entries.push((sequence, entry)).is_err() {
                    // More entries than asked for: not vault's answer to this.
                    Answer::Garbled
                } else if last {
                    Answer::Entries { total }
                } else {
                    return;
                }
            }
            (Asked::Read | Asked::Recent, Response::Missing { total, .. }) => {
                if p.asked == Asked::Recent && total == 0 {
                    Answer::Entries { total: 0 }
                } else {
                    Answer::Missing
                }
            }
            (_, Response::Refused(r)) => Answer::Refused(r),
            _ => Answer::Garbled,
        };
        if answer == Answer::Garbled {
            self.stats.garbled += 1;
        } else {
            self.stats.answered += 1;
        }
        p.answer = Some(answer);
    }

    /// Sends `request` to vault for connection `slot`.
    fn ask(
        &mut self,
        slot: usize,
        request: VaultRequest,
        asked: Asked,
        head_only: bool,
        now: Instant,
    ) {
        let tag = self.next_tag;
        self.next_tag = self.next_tag.wrapping_add(1);
        self.requests.send(&request.encode(tag));
        self.stats.asked += 1;
        self.pending[slot] = Some(Pending {
            tag,
            asked,
            head_only,
            deadline: now + VAULT_TIMEOUT,
            entries: heapless::Vec::new(),
            answer: None,
        });
    }
}

/// Writes a response with `body` (text) into `reply`.
fn send(
    reply: &mut Reply<'_, '_>,
    status: Status,
    location: Option<&str>,
    body: &[u8],
    head_only: bool,
) {
    let mut out = [0u8; RESPONSE_MAX];
    let mut cursor = Cursor::new(&mut out);
    let head = Head {
        status,
        server: SERVER,
        content_type: "text/plain; charset=utf-8",
        allow: "GET, HEAD, POST",
        location,
    };
    if http::write(&mut cursor, &head, body, head_only).is_ok() {
        let len = cursor.len();
        reply.send(&out[..len]);
    } else {
        // Cannot happen with these sizes; the connection is reset rather than cut.
        reply.send(&[]);
    }
}

/// A plain-text answer with one line.
fn line(
    reply: &mut Reply<'_, '_>,
    status: Status,
    text: core::fmt::Arguments<'_>,
    head_only: bool,
) {
    let mut body = [0u8; 256];
    let mut c = Cursor::new(&mut body);
    let _ = writeln!(c, "{text}");
    let len = c.len();
    send(reply, status, None, &body[..len], head_only);
}

impl<W: Sender<RequestElement>, R: Receiver<ResponseElement>, const N: usize> Handler
    for Guestbook<W, R, N>
{
    fn request(
        &mut self,
        slot: usize,
        request: Result<Request<'_>, RequestError>,
        body: &[u8],
        context: &Context,
        reply: &mut Reply<'_, '_>,
    ) {
        let request = match request {
            Ok(r) => r,
            Err(e) => {
                return line(
                    reply,
                    e.status(),
                    format_args!("{}", e.status().reason()),
                    false,
                )
            }
        };
        let head_only = request.method == Method::Head;
        let now = context.now;
        match (request.method, request.path) {
            (Method::Get | Method::Head, "/") => self.ask(
                slot,
                VaultRequest::Recent { count: SHOWN },
                Asked::Recent,
                head_only,
                now,
            ),
            (Method::Get | Method::Head, path) if path.starts_with("/entries/") => {
                match path["/entries/".len()..].parse::<u64>() {
                    Ok(sequence) if sequence > 0 => self.ask(
                        slot,
                        VaultRequest::Read { sequence },
                        Asked::Read,
                        head_only,
                        now,
                    ),
                    _ => line(
                        reply,
                        Status::NotFound,
                        format_args!("no such entry"),
                        head_only,
                    ),
                }
            }
            (Method::Post, "/entries") => match form::entry(body) {
                Ok(entry) => self.ask(slot, VaultRequest::Append(entry), Asked::Append, false, now),
                Err(e) => line(reply, Status::BadRequest, format_args!("{e}"), false),
            },
            (_, "/" | "/entries") => line(
                reply,
                Status::MethodNotAllowed,
                format_args!("{}", Status::MethodNotAllowed.reason()),
                false,
            ),
            (_, path) if path.starts_with("/entries/") => line(
                reply,
                Status::MethodNotAllowed,
                format_args!("{}", Status::MethodNotAllowed.reason()),
                false,
            ),
            _ => line(
                reply,
                Status::NotFound,
                format_args!("not found; the guestbook is /"),
                head_only,
            ),
        }
    }

    fn pending(&mut self, slot: usize, context: &Context, reply: &mut Reply<'_, '_>) {
        let Some(p) = &self.pending[slot] else {
            // The handler forgot nothing it promised: cannot happen; answer anyway.
            return line(
                reply,
                Status::InternalError,
                format_args!("lost request"),
                false,
            );
        };
        let head_only = p.head_only;
        let Some(answer) = &p.answer else {
            if context.now >= p.deadline {
                self.stats.timeouts += 1;
                self.pending[slot] = None;
                return line(
                    reply,
                    Status::GatewayTimeout,
                    format_args!("vault did not answer in time"),
                    head_only,
                );
            }
            return;
        };
        let mut body = [0u8; RESPONSE_MAX - 512];
        let mut text = Cursor::new(&mut body);
        let (status, location) = match answer {
            Answer::Appended(sequence) => {
                let _ = writeln!(text, "entry {sequence}");
                (Status::Created, Some(*sequence))
            }
            Answer::Entries { total } if p.asked == Asked::Recent => {
                let _ = writeln!(text, "guestbook: {total} entries");
                if !p.entries.is_empty() {
                    let _ = writeln!(text);
                }
                for (sequence, e) in &p.entries {
                    let _ = writeln!(text, "#{sequence} {}: {}", e.name(), e.text());
                }
                (Status::Ok, None)
            }
            Answer::Entries { .. } => {
                for (sequence, e) in &p.entries {
                    let _ = writeln!(text, "#{sequence} {}: {}", e.name(), e.text());
                }
                (Status::Ok, None)
            }
            Answer::Missing => {
                let _ = writeln!(text, "no such entry");
                (Status::NotFound, None)
            }
            Answer::Refused(r) => {
                let _ = writeln!(text, "vault: {r}");
                let status = match r {
                    Refusal::Full => Status::InsufficientStorage,
                    Refusal::Malformed => Status::InternalError,
                    _ => Status::Unavailable,
                };
                (status, None)
            }
            Answer::Garbled => {
                let _ = writeln!(text, "vault's answer did not decode");
                (Status::BadGateway, None)
            }
        };
        let mut where_ = heapless::String::<32>::new();
        let location = location.map(|n| {
            let _ = write!(where_, "/entries/{n}");
            where_.as_str()
        });
        let len = text.len();
        send(reply, status, location, &body[..len], head_only);
        self.pending[slot] = None;
    }

    fn abandoned(&mut self, slot: usize) {
        self.pending[slot] = None;
    }
}

#[cfg(test)]
mod tests;
