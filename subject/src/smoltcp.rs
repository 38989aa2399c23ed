//! A `smoltcp` [`phy::Device`](::smoltcp::phy::Device) for any [`NetDevice`]
//! (feature `smoltcp`).
//!
//! The adapter owns one receive and one transmit buffer of [`FRAME_MAX`] bytes, so it
//! needs no heap: a received frame is copied out of the channel into the receive
//! buffer (the device's single copy), and a transmitted one is built in the transmit
//! buffer and handed to [`NetDevice::transmit`].

use ::smoltcp::phy::{self, DeviceCapabilities, Medium};
use ::smoltcp::time::Instant;

use crate::device::{NetDevice, FRAME_MAX, MTU};

/// A [`NetDevice`] as a smoltcp Ethernet device.
pub struct Adapter<D: NetDevice> {
    device: D,
    rx: [u8; FRAME_MAX],
    tx: [u8; FRAME_MAX],
    /// Frames smoltcp built but the device refused (a frame larger than the MTU).
    pub tx_refused: u64,
}

impl<D: NetDevice> Adapter<D> {
    /// Wraps `device`.
    pub fn new(device: D) -> Self {
        Adapter {
            device,
            rx: [0; FRAME_MAX],
            tx: [0; FRAME_MAX],
            tx_refused: 0,
        }
    }

    /// The device.
    pub fn device(&mut self) -> &mut D {
        &mut self.device
    }

    /// Gives the device back.
    pub fn into_inner(self) -> D {
        self.device
    }
}

/// A received frame.
pub struct RxToken<'a> {
    frame: &'a [u8],
}

/// Room for one frame to send.
pub struct TxToken<'a, D: NetDevice> {
    device: &'a mut D,
    buffer: &'a mut [u8; FRAME_MAX],
    refused: &'a mut u64,
}

impl phy::RxToken for RxToken<'_> {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&[u8]) -> R,
    {
        f(self.frame)
    }
}

impl<D: NetDevice> phy::TxToken for TxToken<'_, D> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        // smoltcp never asks for more than the MTU it was given; a larger request
        // gets the whole buffer and the frame is refused by `transmit`.
        let n = len.min(FRAME_MAX);
        let result = f(&mut self.buffer[..n]);
        if n != len || self.device.transmit(&self.buffer[..n]).is_err() {
            *self.refused += 1;
        }
        result
    }
}

impl<D: NetDevice> phy::Device for Adapter<D> {
    type RxToken<'a>
        = RxToken<'a>
    where
        Self: 'a;
    type TxToken<'a>
        = TxToken<'a, D>
    where
        Self: 'a;

    fn receive(&mut self, _: Instant) -> Option<(RxToken<'_>, TxToken<'_, D>)> {
        let n = self.device.receive(&mut self.rx).ok()?;
        Some((
            RxToken {
                frame: &self.rx[..n],
            },
            TxToken {
                device: &mut self.device,
                buffer: &mut self.tx,
                refused: &mut self.tx_refused,
            },
        ))
    }

    fn transmit(&mut self, _: Instant) -> Option<TxToken<'_, D>> {
        Some(TxToken {
            device: &mut self.device,
            buffer: &mut self.tx,
            refused: &mut self.tx_refused,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        // smoltcp's MTU for Ethernet includes the header.
        caps.max_transmission_unit = MTU + crate::device::ETHERNET_HEADER;
        caps.max_burst_size = Some(1);
        caps
    }
}
