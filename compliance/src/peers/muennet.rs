//! [`MuennetPeer`] as the suite's [`NetPeer`]: it can restart and misbehave in every
//! way of [`NetFault`].

use muen_sim::peers::MuennetPeer;

use crate::net::{NetFault, NetPeer};

/// A protocol identifier that is not muennet's, for [`NetFault::Incompatible`].
const OTHER_PROTOCOL: u64 = 0x0bad_0bad_0bad_0bad;

impl<D: ?Sized> NetPeer<D> for MuennetPeer {
    fn send(&mut self, _dev: &mut D, frame: &[u8]) {
        MuennetPeer::send(self, frame);
    }

    fn collect(&mut self, _dev: &mut D) -> Vec<Vec<u8>> {
        MuennetPeer::collect(self)
    }

    fn capacity(&self) -> (usize, usize) {
        MuennetPeer::capacity(self)
    }

    fn restart(&mut self, _dev: &mut D) -> bool {
        MuennetPeer::restart(self);
        true
    }

    fn misbehave(&mut self, _dev: &mut D, fault: NetFault) -> bool {
        match fault {
            NetFault::ZeroLength => self.send_length_field(0),
            NetFault::OversizeLength => {
                self.send_length_field(muen_device::FRAME_MAX as u16 + 1);
            }
            NetFault::CounterRewind => {
                // Publish one more element, then move the counter back behind it.
                MuennetPeer::send(self, &[0xcc; 64]);
                self.rewind_write_counter();
            }
            NetFault::Incompatible => self.restart_with_protocol(OTHER_PROTOCOL),
        }
        true
    }
}
