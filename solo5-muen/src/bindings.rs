//! Solo5's API on the runtime: devices by manifest handle, clocks, `solo5_yield`, exit.
//!
//! [`Bindings`] is what the C functions of `solo5.h` call (module `abi` turns C
//! pointers into slices and back); it is ordinary Rust over the runtime's
//! [`Runtime`], so the unit tests run it on muen-sim's simulated kernel and peers.
//!
//! | C | here | on the runtime |
//! |---|---|---|
//! | `solo5_net_acquire` | [`Bindings::net_acquire`] | manifest lookup, then [`Runtime::net`] (muennet: `<dev>\|in`, `<dev>\|out`) |
//! | `solo5_net_read` | [`Bindings::net_read`] | `NetDevice::receive` into the caller's `size` bytes only |
//! | `solo5_net_write` | [`Bindings::net_write`] | `NetDevice::transmit` |
//! | `solo5_block_acquire` | [`Bindings::block_acquire`] | manifest lookup, then [`Runtime::block`] (muenblock: `<dev>\|req`, `\|resp`, `\|data`) |
//! | `solo5_block_read`/`_write` | [`Bindings::block_read`], [`Bindings::block_write`] | `BlockDevice::read`/`write`, one block per call |
//! | `solo5_yield` | [`Bindings::yield_until`] | [`Runtime::poll`]: timed event and `sti; hlt` (PAUSE without a timer) |
//! | `solo5_clock_monotonic` | [`Bindings::monotonic`] | [`Runtime::now`] |
//! | `solo5_clock_wall` | [`Bindings::wall`] | [`Runtime::wall_clock`] (`time_info`) |
//! | `solo5_exit`, `solo5_abort` | [`Bindings::exit`], [`Bindings::abort`] | event `solo5_exit`, then the platform's exit |
//!
//! Results follow `solo5.h`:
//!
//! - a handle that is not an acquired device of that type, a name the manifest does
//!   not declare with that type, and a second acquisition of a device:
//!   `SOLO5_R_EINVAL`;
//! - a device the manifest declares but whose channels the subject info page lacks
//!   (or whose block server fails at acquisition): `SOLO5_R_EUNSPEC`, and an error
//!   line naming the device and the reason. Acquisition can be tried again;
//! - net: `solo5_net_read` needs a buffer of at least 1514 bytes (MTU 1500 plus the
//!   Ethernet header) and otherwise is `SOLO5_R_EINVAL`; it writes one whole frame and
//!   never more than the caller's size, whatever the peer's length field says (the
//!   driver drops an element whose length is 0 or above 1514); no frame waiting is
//!   `SOLO5_R_AGAIN`. `solo5_net_write` of 0 or more than 1514 bytes is
//!   `SOLO5_R_EINVAL`;
//! - block: the offset must be a multiple of the block size and the size exactly one
//!   block (as every Solo5 target does today; `solo5.h` allows multiples, but a
//!   single-block call is what keeps "written in its entirety or not at all"), and
//!   the block inside the device: otherwise `SOLO5_R_EINVAL`. A failing device
//!   (timeout, error status, server restart): `SOLO5_R_EUNSPEC` and an error line.

use core::cell::RefCell;

use muen_channel::Event;
use muen_device::{BlockDevice, BlockError, NetDevice, NetError, Pollable, FRAME_MAX};
use muen_subject::block::MuenBlock;
use muen_subject::net::MuenNet;
use muen_subject::platform::Platform;
use muen_subject::{Duration, Instant, Runtime};
use solo5_abi::{
    DeviceType, Manifest, Solo5BlockInfo, Solo5Handle, Solo5HandleSet, Solo5NetInfo, Solo5Offset,
    Solo5Result, Solo5Time, MFT_MAX_ENTRIES, SOLO5_EXIT_ABORT, SOLO5_NET_ALEN,
};

use crate::console::{log, Console};

/// The event the bindings trigger when the unikernel ends, as Solo5's C bindings do (in
/// Muen's templates it resets the subject when it is resettable).
pub use muen_abi::solo5::EXIT_EVENT;

/// Number of device slots: one per manifest entry (the handle is the entry index).
const SLOTS: usize = MFT_MAX_ENTRIES as usize;

/// An acquired network device and the frame `solo5_yield` took out of it to be sure
/// it has one (see [`Bindings::yield_until`]).
struct NetSlot<'rt, P: Platform> {
    device: MuenNet<'rt, Runtime<P>>,
    /// Length of the frame in `frame`; 0: none.
    len: usize,
    frame: [u8; FRAME_MAX],
}

/// An acquired device.
// The slots are one fixed table (Solo5's 64 manifest entries, no heap), so every slot
// has the size of the largest variant whatever the variants are.
#[allow(clippy::large_enum_variant)]
enum Slot<'rt, P: Platform> {
    /// Not acquired (or not a device).
    Free,
    /// A network device.
    Net(NetSlot<'rt, P>),
    /// A block device.
    Block(MuenBlock<'rt, Runtime<P>>),
}

/// A `Pollable` that never has data: the filler of `yield_until`'s list.
struct Never;

impl Pollable for Never {
    fn has_data(&self) -> bool {
        false
    }
}

/// Solo5's API for one unikernel, on `rt`.
pub struct Bindings<'rt, P: Platform> {
    rt: &'rt Runtime<P>,
    console: &'rt Console<'rt>,
    manifest: Manifest<'rt>,
    slots: RefCell<[Slot<'rt, P>; SLOTS]>,
    exit_event: Option<Event>,
}

impl<'rt, P: Platform> Bindings<'rt, P> {
    /// The bindings of the unikernel whose validated manifest is `manifest`, on `rt`,
    /// logging to `console`.
    pub fn new(rt: &'rt Runtime<P>, console: &'rt Console<'rt>, manifest: Manifest<'rt>) -> Self {
        Bindings {
            rt,
            console,
            manifest,
            slots: RefCell::new(core::array::from_fn(|_| Slot::Free)),
            exit_event: exit_event(rt),
        }
    }

    /// The runtime.
    pub fn runtime(&self) -> &'rt Runtime<P> {
        self.rt
    }

    /// The console.
    pub fn console(&self) -> &'rt Console<'rt> {
        self.console
    }

    /// The manifest entry `name` of `device_type` as a free slot: its handle and name.
    fn lookup(
        &self,
        name: &[u8],
        device_type: DeviceType,
    ) -> Result<(Solo5Handle, &'rt str), Solo5Result> {
        let handle = self
            .manifest
            .lookup(name, device_type)
            .ok_or(Solo5Result::Einval)?;
        let what = match device_type {
            DeviceType::NetBasic => "Net",
            DeviceType::BlockBasic => "Block",
        };
        // The manifest's own bytes, so the name lives as long as the bindings.
        let Some(name) = self
            .manifest
            .name(handle.0 as u32)
            .and_then(|n| core::str::from_utf8(n).ok())
        else {
            log!(
                self.console,
                Error,
                "{what}: a device name that is not UTF-8"
            );
            return Err(Solo5Result::Eunspec);
        };
        let free = self
            .slots
            .try_borrow()
            .is_ok_and(|s| matches!(s.get(handle.0 as usize), Some(Slot::Free)));
        if !free {
            log!(
                self.console,
                Warn,
                "{what}: Device '{name}' already acquired"
            );
            return Err(Solo5Result::Einval);
        }
        Ok((handle, name))
    }

    fn store(&self, handle: Solo5Handle, slot: Slot<'rt, P>) -> Result<(), Solo5Result> {
        let mut slots = self
            .slots
            .try_borrow_mut()
            .map_err(|_| Solo5Result::Eunspec)?;
        let place = slots
            .get_mut(handle.0 as usize)
            .ok_or(Solo5Result::Einval)?;
        *place = slot;
        Ok(())
    }

    /// `solo5_net_acquire`: the network device the manifest declares as `name`.
    pub fn net_acquire(&self, name: &[u8]) -> Result<(Solo5Handle, Solo5NetInfo), Solo5Result> {
        let (handle, name) = self.lookup(name, DeviceType::NetBasic)?;
        let net = self.rt.net(name).map_err(|e| {
            log!(self.console, Error, "Net: '{name}': not acquired: {e}");
            Solo5Result::Eunspec
        })?;
        let info = net.info();
        let mut mac_address = [0; SOLO5_NET_ALEN];
        mac_address.copy_from_slice(&info.mac);
        let m = info.mac;
        log!(
            self.console,
            Info,
            "Net: '{name}': muennet, MAC {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}, MTU {}",
            m[0],
            m[1],
            m[2],
            m[3],
            m[4],
            m[5],
            info.mtu
        );
        self.store(
            handle,
            Slot::Net(NetSlot {
                device: net,
                len: 0,
                frame: [0; FRAME_MAX],
            }),
        )?;
        log!(
            self.console,
            Info,
            "Application acquired '{name}' as network device"
        );
        Ok((
            handle,
            Solo5NetInfo {
                mac_address,
                mtu: info.mtu,
            },
        ))
    }

    /// `solo5_net_read`: one whole frame into `buf`, which must hold 1514 bytes.
    pub fn net_read(&self, handle: Solo5Handle, buf: &mut [u8]) -> Result<usize, Solo5Result> {
        let mut slots = self
            .slots
            .try_borrow_mut()
            .map_err(|_| Solo5Result::Eunspec)?;
        let Some(Slot::Net(net)) = slots.get_mut(handle.0 as usize) else {
            return Err(Solo5Result::Einval);
        };
        if buf.len() < FRAME_MAX {
            return Err(Solo5Result::Einval);
        }
        if net.len > 0 {
            // The frame solo5_yield took out first: frames stay in order.
            let len = core::mem::take(&mut net.len);
            buf[..len].copy_from_slice(&net.frame[..len]);
            return Ok(len);
        }
        net.device.receive(buf).map_err(|e| match e {
            NetError::Again => Solo5Result::Again,
            _ => Solo5Result::Einval,
        })
    }

    /// `solo5_net_write`: one frame of 1 to 1514 bytes.
    pub fn net_write(&self, handle: Solo5Handle, frame: &[u8]) -> Result<(), Solo5Result> {
        let mut slots = self
            .slots
            .try_borrow_mut()
            .map_err(|_| Solo5Result::Eunspec)?;
        let Some(Slot::Net(net)) = slots.get_mut(handle.0 as usize) else {
            return Err(Solo5Result::Einval);
        };
        net.device.transmit(frame).map_err(|_| Solo5Result::Einval)
    }

    /// `solo5_block_acquire`: the block device the manifest declares as `name`; asks
    /// the server for its geometry.
    pub fn block_acquire(&self, name: &[u8]) -> Result<(Solo5Handle, Solo5BlockInfo), Solo5Result> {
        let (handle, name) = self.lookup(name, DeviceType::BlockBasic)?;
        let block = self.rt.block(name).map_err(|e| {
            log!(self.console, Error, "Block: '{name}': not acquired: {e}");
            Solo5Result::Eunspec
        })?;
        let info = block.info();
        log!(
            self.console,
            Info,
            "Block: '{name}': muenblock, {} blocks of {} bytes",
            info.capacity / info.block_size,
            info.block_size
        );
        self.store(handle, Slot::Block(block))?;
        log!(
            self.console,
            Info,
            "Application acquired '{name}' as block device"
        );
        Ok((
            handle,
            Solo5BlockInfo {
                capacity: Solo5Offset(info.capacity),
                block_size: Solo5Offset(info.block_size),
            },
        ))
    }

    /// Runs `op` on block device `handle` after Solo5's argument rules for one block at
    /// `offset` of `len` bytes.
    fn with_block(
        &self,
        handle: Solo5Handle,
        offset: Solo5Offset,
        len: usize,
        what: &str,
        op: impl FnOnce(&mut MuenBlock<'rt, Runtime<P>>) -> Result<(), BlockError>,
    ) -> Result<(), Solo5Result> {
        let mut slots = self
            .slots
            .try_borrow_mut()
            .map_err(|_| Solo5Result::Eunspec)?;
        let Some(Slot::Block(block)) = slots.get_mut(handle.0 as usize) else {
            return Err(Solo5Result::Einval);
        };
        let block_size = block.info().block_size;
        if offset.0 % block_size != 0 || len as u64 != block_size {
            return Err(Solo5Result::Einval);
        }
        op(block).map_err(|e| match e {
            BlockError::BadLength { .. }
            | BlockError::BadOffset { .. }
            | BlockError::OutOfRange { .. } => Solo5Result::Einval,
            e => {
                log!(
                    self.console,
                    Error,
                    "Block: handle {handle}: {what} at {:#x}: {e}",
                    offset.0
                );
                Solo5Result::Eunspec
            }
        })
    }

    /// `solo5_block_read`: one block at `offset` into `buf`.
    pub fn block_read(
        &self,
        handle: Solo5Handle,
        offset: Solo5Offset,
        buf: &mut [u8],
    ) -> Result<(), Solo5Result> {
        let len = buf.len();
        self.with_block(handle, offset, len, "read", |b| b.read(offset.0, buf))
    }

    /// `solo5_block_write`: one block from `data` at `offset`.
    pub fn block_write(
        &self,
        handle: Solo5Handle,
        offset: Solo5Offset,
        data: &[u8],
    ) -> Result<(), Solo5Result> {
        self.with_block(handle, offset, data.len(), "write", |b| {
            b.write(offset.0, data)
        })
    }

    /// `solo5_yield`: waits until a network device has input or monotonic time reaches
    /// `deadline`, and returns the handles with input (empty: the deadline passed). A
    /// deadline in the past checks the devices once.
    ///
    /// A handle in the set has a frame: the next `solo5_net_read` on it returns one
    /// (Solo5's programs treat `SOLO5_R_AGAIN` after a wake-up as an error). The
    /// runtime's idle loop wakes for any change of a channel, also one that holds no
    /// frame for the reader (a new epoch of the peer, elements the driver drops), so
    /// for each device it reports the bindings take the next frame out of the
    /// channel and keep it for `solo5_net_read`; a device that yields none is not
    /// ready, and the wait goes on.
    pub fn yield_until(&self, deadline: Solo5Time) -> Solo5HandleSet {
        let deadline = Instant::from_nanos(deadline.0);
        loop {
            let (waiting, woken) = self.poll_devices(deadline);
            if !waiting.is_empty() {
                return waiting;
            }
            let Ok(mut slots) = self.slots.try_borrow_mut() else {
                return Solo5HandleSet::EMPTY;
            };
            let mut ready = Solo5HandleSet::EMPTY;
            for handle in woken.iter() {
                if let Some(Slot::Net(net)) = slots.get_mut(handle.0 as usize) {
                    if let Ok(len) = net.device.receive(&mut net.frame) {
                        net.len = len;
                        ready.insert(handle);
                    }
                }
            }
            if !ready.is_empty() || woken.is_empty() || self.rt.now() >= deadline {
                return ready;
            }
        }
    }

    /// The devices holding a frame already (if any, at once), else the runtime's poll
    /// of all network devices until `deadline`: which of them woke it.
    fn poll_devices(&self, deadline: Instant) -> (Solo5HandleSet, Solo5HandleSet) {
        let Ok(slots) = self.slots.try_borrow() else {
            return (Solo5HandleSet::EMPTY, Solo5HandleSet::EMPTY);
        };
        let mut waiting = Solo5HandleSet::EMPTY;
        let mut devices: [&dyn Pollable; SLOTS] = [&Never; SLOTS];
        let mut handles = [0u64; SLOTS];
        let mut count = 0;
        for (handle, slot) in (0u64..).zip(slots.iter()) {
            if let Slot::Net(net) = slot {
                if net.len > 0 {
                    waiting.insert(Solo5Handle(handle));
                }
                devices[count] = &net.device;
                handles[count] = handle;
                count += 1;
            }
        }
        if !waiting.is_empty() {
            return (waiting, Solo5HandleSet::EMPTY);
        }
        let mut woken = Solo5HandleSet::EMPTY;
        for i in self.rt.poll(deadline, &devices[..count]).iter() {
            woken.insert(Solo5Handle(handles[i]));
        }
        (Solo5HandleSet::EMPTY, woken)
    }

    /// `solo5_clock_monotonic`: nanoseconds since the TSC was 0.
    pub fn monotonic(&self) -> Solo5Time {
        Solo5Time(self.rt.now().as_nanos())
    }

    /// `solo5_clock_wall`: nanoseconds since the Unix epoch from the `time_info` page;
    /// without a published time (no `libmutime`), the monotonic time (so 1970 plus the
    /// uptime; the start logs why).
    pub fn wall(&self) -> Solo5Time {
        match self.rt.wall_clock(Duration::ZERO) {
            Ok(since_epoch) => Solo5Time(u64::try_from(since_epoch.as_nanos()).unwrap_or(u64::MAX)),
            Err(_) => self.monotonic(),
        }
    }

    /// `solo5_exit`: ends the unikernel with `status`.
    pub fn exit(&self, status: i32) -> ! {
        log!(self.console, Info, "solo5_exit({status}) called");
        halt(self.console, self.rt.platform(), self.exit_event, status)
    }

    /// `solo5_abort`: ends the unikernel with [`SOLO5_EXIT_ABORT`].
    pub fn abort(&self) -> ! {
        log!(self.console, Info, "solo5_abort() called");
        halt(
            self.console,
            self.rt.platform(),
            self.exit_event,
            SOLO5_EXIT_ABORT,
        )
    }
}

/// The `solo5_exit` event of `rt`'s subject, if its page has a usable one.
pub fn exit_event<P: Platform>(rt: &Runtime<P>) -> Option<Event> {
    rt.info().event(EXIT_EVENT).and_then(Event::new)
}

/// The end of every path out of the unikernel: `Solo5: Halted`, the console flushed,
/// the `solo5_exit` event (if any), then the platform's exit with `status` (on Muen
/// `cli; hlt` forever; the testbed's QEMU mode reads the status from EDI).
pub fn halt<P: Platform + ?Sized>(
    console: &Console<'_>,
    platform: &P,
    exit_event: Option<Event>,
    status: i32,
) -> ! {
    log!(console, Info, "Halted");
    console.flush();
    if let Some(event) = exit_event {
        platform.trigger(event);
    }
    platform.exit(status)
}

#[cfg(test)]
mod tests;
