//! A `smoltcp` [`phy::Device`] for any [`NetDevice`]
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::{NetError, NetInfo, Pollable};
    use ::smoltcp::iface::{Config, Interface, SocketSet};
    use ::smoltcp::phy::Device as _;
    use ::smoltcp::wire::{
        ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
        EthernetRepr, HardwareAddress, IpCidr, Ipv4Address,
    };
    use std::collections::VecDeque;

    /// A device whose wire is two queues.
    #[derive(Default)]
    struct Wire {
        inbound: VecDeque<Vec<u8>>,
        outbound: Vec<Vec<u8>>,
    }

    impl Pollable for Wire {
        fn has_data(&self) -> bool {
            !self.inbound.is_empty()
        }
    }

    impl NetDevice for Wire {
        fn info(&self) -> NetInfo {
            NetInfo {
                mac: [2, 0, 0, 0, 0, 1],
                mtu: MTU,
            }
        }
        fn receive(&mut self, buf: &mut [u8]) -> Result<usize, NetError> {
            let f = self.inbound.pop_front().ok_or(NetError::Again)?;
            buf[..f.len()].copy_from_slice(&f);
            Ok(f.len())
        }
        fn transmit(&mut self, frame: &[u8]) -> Result<(), NetError> {
            if frame.len() > FRAME_MAX {
                return Err(NetError::FrameTooLarge { len: frame.len() });
            }
            self.outbound.push(frame.to_vec());
            Ok(())
        }
    }

    #[test]
    fn capabilities_and_tokens() {
        let mut a = Adapter::new(Wire::default());
        let caps = a.capabilities();
        assert_eq!(caps.medium, Medium::Ethernet);
        assert_eq!(caps.max_transmission_unit, 1514);
        assert!(a.receive(Instant::ZERO).is_none());
        a.device().inbound.push_back(vec![9; 60]);
        let (rx, _tx) = a.receive(Instant::ZERO).unwrap();
        assert_eq!(phy::RxToken::consume(rx, |f| f.to_vec()), vec![9; 60]);
        let tx = a.transmit(Instant::ZERO).unwrap();
        phy::TxToken::consume(tx, 42, |b| b.fill(7));
        let tx = a.transmit(Instant::ZERO).unwrap();
        phy::TxToken::consume(tx, 2000, |b| assert_eq!(b.len(), FRAME_MAX));
        assert_eq!(a.tx_refused, 1);
        assert_eq!(a.into_inner().outbound, [vec![7; 42]]);
    }

    #[test]
    fn smoltcp_answers_an_arp_request_through_the_adapter() {
        let mac = EthernetAddress([2, 0, 0, 0, 0, 1]);
        let peer = EthernetAddress([2, 0, 0, 0, 0, 2]);
        let mut dev = Adapter::new(Wire::default());
        let mut iface = Interface::new(
            Config::new(HardwareAddress::Ethernet(mac)),
            &mut dev,
            Instant::ZERO,
        );
        iface.update_ip_addrs(|a| {
            a.push(IpCidr::new(Ipv4Address::new(10, 0, 0, 1).into(), 24))
                .unwrap();
        });
        let arp = ArpRepr::EthernetIpv4 {
            operation: ArpOperation::Request,
            source_hardware_addr: peer,
            source_protocol_addr: Ipv4Address::new(10, 0, 0, 2),
            target_hardware_addr: EthernetAddress([0; 6]),
            target_protocol_addr: Ipv4Address::new(10, 0, 0, 1),
        };
        let eth = EthernetRepr {
            src_addr: peer,
            dst_addr: EthernetAddress::BROADCAST,
            ethertype: EthernetProtocol::Arp,
        };
        let mut frame = vec![0u8; eth.buffer_len() + arp.buffer_len()];
        let mut f = EthernetFrame::new_unchecked(&mut frame[..]);
        eth.emit(&mut f);
        arp.emit(&mut ArpPacket::new_unchecked(f.payload_mut()));
        dev.device().inbound.push_back(frame);
        let mut sockets = SocketSet::new(&mut [][..]);
        iface.poll(Instant::from_millis(1), &mut dev, &mut sockets);
        let out = &dev.device().outbound;
        assert_eq!(out.len(), 1);
        let reply = EthernetFrame::new_checked(&out[0][..]).unwrap();
        assert_eq!(reply.dst_addr(), peer);
        let arp = ArpRepr::parse(&ArpPacket::new_checked(reply.payload()).unwrap()).unwrap();
        assert!(
            matches!(arp, ArpRepr::EthernetIpv4 { operation: ArpOperation::Reply, source_hardware_addr, .. } if source_hardware_addr == mac)
        );
    }
}
