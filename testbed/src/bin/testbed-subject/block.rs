//! A synchronous muenblock client: one request, one response.

use muen_channel::protocol::muenblock::{self, Request, RequestKind, Response};
use muen_channel::{epoch_from, ReadError, Reader, RegionMut, Writer};

use crate::hosted::{die, rdtsc, Platform};
pub use crate::pattern::pattern;

/// The client of the first block device in the sinfo page.
pub struct Client {
    requests: Writer<'static>,
    responses: Reader<'static>,
    /// The shared data buffer.
    pub data: RegionMut<'static>,
    request_event: u8,
    response_vector: Option<u8>,
    tag: u32,
    /// Blocks of the device.
    pub blocks: u64,
    /// Block size.
    pub block_len: u64,
    /// Most blocks per request.
    pub max_blocks: u64,
}

impl Client {
    /// Connects to the device and asks for its geometry.
    pub fn connect(p: &mut Platform) -> Client {
        let dev = p.device("|req", "block device");
        let req_name = format!("{dev}|req");
        let resp_name = format!("{dev}|resp");
        let requests = Writer::init(
            p.writable(&req_name),
            muenblock::PROTOCOL,
            muenblock::REQUEST_SIZE,
            epoch_from(rdtsc()),
        )
        .unwrap_or_else(|e| die(&format!("{req_name}: {e}")));
        let mut responses = Reader::new(
            p.readable(&resp_name),
            muenblock::PROTOCOL,
            muenblock::RESPONSE_SIZE,
        )
        .unwrap_or_else(|e| die(&format!("{resp_name}: {e}")));
        let _ = responses.drain();
        let mut c = Client {
            requests,
            responses,
            data: p.writable(&format!("{dev}|data")),
            request_event: p
                .info
                .event(&req_name)
                .unwrap_or_else(|| die("no request event")),
            response_vector: p.info.vector(&resp_name),
            tag: 0,
            blocks: 0,
            block_len: 0,
            max_blocks: 0,
        };
        c.status(p, Request::simple(RequestKind::Reset, 0, 0));
        c.blocks = c.status(p, Request::simple(RequestKind::MediaBlocks, 0, 0));
        c.block_len = c.status(p, Request::simple(RequestKind::BlockLength, 0, 0));
        c.max_blocks = c.status(p, Request::simple(RequestKind::MaxBlocksCount, 0, 0));
        c
    }

    /// Sends `request` (its tag replaced by a fresh one) and waits for the answer.
    pub fn call(&mut self, p: &mut Platform, request: Request) -> Response {
        let mut raw = [0u8; 32];
        raw.copy_from_slice(zerocopy::IntoBytes::as_bytes(&request));
        self.call_raw(p, raw)
    }

    /// Sends the request bytes `raw` (any kind, even an unknown one; the tag is
    /// replaced by a fresh one) and waits for the answer.
    pub fn call_raw(&mut self, p: &mut Platform, raw: [u8; 32]) -> Response {
        let tag = self.submit_raw(raw);
        p.trigger(self.request_event);
        let r = self.next_response(p);
        if r.tag() != tag {
            die("response with a wrong tag");
        }
        r
    }

    /// Writes `request` (its tag replaced by a fresh one) without triggering the
    /// request event ([`Client::notify`] does) or waiting; returns its tag.
    pub fn submit(&mut self, request: Request) -> u32 {
        let mut raw = [0u8; 32];
        raw.copy_from_slice(zerocopy::IntoBytes::as_bytes(&request));
        self.submit_raw(raw)
    }

    fn submit_raw(&mut self, mut raw: [u8; 32]) -> u32 {
        self.tag = self.tag.wrapping_add(1);
        raw[4..8].copy_from_slice(&self.tag.to_le_bytes());
        self.requests
            .write_bytes(&raw)
            .unwrap_or_else(|e| die(&format!("request: {e}")));
        self.tag
    }

    /// Triggers the request event: the server looks at the requests.
    pub fn notify(&self, p: &Platform) {
        p.trigger(self.request_event);
    }

    /// Waits for the next response (sleeping on the response vector).
    pub fn next_response(&mut self, p: &mut Platform) -> Response {
        loop {
            match self.responses.read::<Response>() {
                Ok(r) => return r,
                Err(ReadError::EpochChanged) => continue,
                Err(ReadError::NoData) | Err(ReadError::Inactive) => {
                    p.poll_vectors();
                    if let Some(v) = self.response_vector {
                        if p.take(v) || self.responses.has_pending_data() {
                            continue;
                        }
                    }
                    p.halt();
                }
                Err(e) => die(&format!("responses: {e}")),
            }
        }
    }

    /// The status of `request`.
    pub fn status(&mut self, p: &mut Platform, request: Request) -> u64 {
        self.call(p, request).status()
    }
}
