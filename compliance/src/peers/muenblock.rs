//! The muenblock server of `muen_sim` as the suite's [`BlockPeer`] (every
//! [`BlockFault`]), and [`ChannelHarness`]: any muenblock server driven through its
//! channels for [`server_compliance`](crate::server::server_compliance).

use std::cell::RefCell;
use std::rc::Rc;

use muen_channel::protocol::muenblock::{
    self, Request, Response, REQUEST_REGION_SIZE, REQUEST_SIZE, RESPONSE_REGION_SIZE, RESPONSE_SIZE,
};
use muen_channel::{epoch_from, ReadError, Reader, Region, RegionMut, Writer};
use muen_sim::peers::MuenblockServer;
use muen_sim::shared;

use crate::block::{BlockFault, BlockPeer};
use crate::server::ServerHarness;

/// The server's hooks: every [`BlockFault`]. The server is shared with the simulated
/// kernel that runs it while the device waits.
impl<D: ?Sized> BlockPeer<D> for Rc<RefCell<MuenblockServer>> {
    fn fault(&mut self, _dev: &mut D, fault: BlockFault) -> bool {
        let mut s = self.borrow_mut();
        match fault {
            BlockFault::Silent => s.silent = true,
            BlockFault::ErrorStatus => s.error_status = true,
            BlockFault::StrayResponses => s.stray = true,
            BlockFault::Restart => s.restart(),
            BlockFault::PowerLoss => s.power_loss(),
        }
        true
    }

    fn heal(&mut self, _dev: &mut D) {
        let mut s = self.borrow_mut();
        s.silent = false;
        s.error_status = false;
        s.stray = false;
    }
}

/// A muenblock server driven through its channels: the client's ends of the request
/// and response channels and of the data buffer, a function that lets the server run
/// until it is idle, and one that reads its image.
pub struct ChannelHarness<'a> {
    requests: Writer<'a>,
    responses: Reader<'a>,
    data: RegionMut<'a>,
    step: Box<dyn FnMut() + 'a>,
    image: Box<dyn FnMut() -> Vec<u8> + 'a>,
}

impl<'a> ChannelHarness<'a> {
    /// A harness writing requests into `requests` (initialised here), reading
    /// responses from `responses`, with the data buffer `data`.
    ///
    /// # Panics
    ///
    /// If the regions cannot hold the channels (a test bug).
    pub fn new(
        requests: RegionMut<'a>,
        responses: Region<'a>,
        data: RegionMut<'a>,
        step: impl FnMut() + 'a,
        image: impl FnMut() -> Vec<u8> + 'a,
    ) -> Self {
        ChannelHarness {
            requests: Writer::init(
                requests,
                muenblock::PROTOCOL,
                REQUEST_SIZE,
                epoch_from(0x4841),
            )
            .expect("a request channel"),
            responses: Reader::new(responses, muenblock::PROTOCOL, RESPONSE_SIZE)
                .expect("a response channel"),
            data,
            step: Box::new(step),
            image: Box::new(image),
        }
    }
}

impl ServerHarness for ChannelHarness<'_> {
    fn buffer_size(&self) -> u64 {
        self.data.len() as u64
    }

    fn write_buffer(&mut self, offset: u64, bytes: &[u8]) {
        self.data
            .write_bytes(offset as usize, bytes)
            .expect("the suite writes inside the buffer");
    }

    fn read_buffer(&mut self, offset: u64, len: usize) -> Vec<u8> {
        let mut out = vec![0u8; len];
        self.data
            .read_bytes(offset as usize, &mut out)
            .expect("the suite reads inside the buffer");
        out
    }

    fn exchange(&mut self, requests: &[Request]) -> Vec<Response> {
        for r in requests {
            // A request has the channel's element size: the write cannot fail.
            let _ = self.requests.write(r);
        }
        (self.step)();
        let mut responses = Vec::new();
        loop {
            match self.responses.read::<Response>() {
                Ok(r) => responses.push(r),
                Err(ReadError::EpochChanged) => {}
                Err(_) => break,
            }
        }
        responses
    }

    fn image(&mut self) -> Vec<u8> {
        (self.image)()
    }
}

/// A [`ChannelHarness`] on a fresh [`MuenblockServer`] of `blocks` blocks of 512 bytes
/// (without write cache, as many blocks per request as the buffer holds), with a data
/// buffer of `data_bytes`, and the server.
pub fn mem_server_harness(
    blocks: u64,
    data_bytes: usize,
) -> (ChannelHarness<'static>, Rc<RefCell<MuenblockServer>>) {
    let req = shared(REQUEST_REGION_SIZE);
    let resp = shared(RESPONSE_REGION_SIZE);
    let data = shared(data_bytes);
    let mut server = MuenblockServer::new(req, resp, data, blocks, 512);
    server.write_cache = false;
    server.max_blocks = (data_bytes as u64 / 512).max(1);
    let server = Rc::new(RefCell::new(server));
    let (s1, s2) = (server.clone(), server.clone());
    let harness = ChannelHarness::new(
        RegionMut::from_atomics(req).expect("a request region"),
        Region::from_atomics(resp).expect("a response region"),
        RegionMut::from_atomics(data).expect("a data region"),
        move || s1.borrow_mut().step(),
        move || s2.borrow().image(),
    );
    (harness, server)
}
