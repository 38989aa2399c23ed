//! Solo5's C implementation of Muen channels (SHMStream v2), linked for comparison.
//!
//! `build.rs` compiles `bindings/muen/{channel,reader,writer}.c` from `../shared/solo5`
//! with Solo5's compiler flags; this crate declares those functions and wraps them in
//! [`Writer`] and [`Reader`] for `muen-channel`'s benchmark (`benches/versus_solo5.rs`).
//! It is a dev-dependency only: no product links C code.
//!
//! The C code accesses the channel with plain loads and stores, trusts the header and
//! copies `size` bytes taken from it: the constructors are `unsafe` and their callers
//! promise an honest peer and memory that no Rust code touches meanwhile.

// Without the C code (sources missing, or Miri) the wrappers are an empty shell whose
// methods cannot be reached (`Solo5` cannot be constructed).
#![cfg_attr(solo5_missing, allow(unused))]

use core::ffi::c_int;
use core::marker::PhantomData;
use core::ptr::NonNull;

/// Proof that the C code is linked. Uninhabited when it is not (sources missing, or
/// under Miri), which makes the code paths that would call it unreachable.
#[derive(Clone, Copy, Debug)]
pub struct Solo5 {
    _linked: Linked,
}

#[cfg(not(solo5_missing))]
type Linked = ();
#[cfg(solo5_missing)]
type Linked = core::convert::Infallible;

/// The Solo5 sources were not found (or this is a Miri build).
#[derive(Clone, Copy, Debug)]
pub struct Missing(pub &'static str);

impl core::fmt::Display for Missing {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "Solo5's C channel was not compiled ({}); it is read from ../shared/solo5 \
             beside the workspace (rebuild once it is there)",
            self.0
        )
    }
}

impl std::error::Error for Missing {}

impl Solo5 {
    /// The linked C code, or why it is not there.
    pub fn get() -> Result<Solo5, Missing> {
        #[cfg(not(solo5_missing))]
        return Ok(Solo5 { _linked: () });
        #[cfg(solo5_missing)]
        return Err(Missing(env!("SOLO5_CHANNEL_C_MISSING")));
    }

    /// The compiler flags the C code was built with.
    pub fn flags(self) -> &'static str {
        #[cfg(not(solo5_missing))]
        return env!("SOLO5_CHANNEL_C_FLAGS");
        #[cfg(solo5_missing)]
        match self._linked {}
    }

    /// The directory the C sources were compiled from.
    pub fn sources(self) -> &'static str {
        #[cfg(not(solo5_missing))]
        return env!("SOLO5_CHANNEL_C_DIR");
        #[cfg(solo5_missing)]
        match self._linked {}
    }
}

/// `enum muchannel_reader_result` (`reader.h`; values checked by `include/layout.c`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadResult {
    /// `MUCHANNEL_INACTIVE`
    Inactive,
    /// `MUCHANNEL_INCOMPATIBLE_INTERFACE`
    IncompatibleInterface,
    /// `MUCHANNEL_EPOCH_CHANGED`
    EpochChanged,
    /// `MUCHANNEL_NO_DATA`
    NoData,
    /// `MUCHANNEL_OVERRUN_DETECTED`
    OverrunDetected,
    /// `MUCHANNEL_SUCCESS`
    Success,
}

impl ReadResult {
    #[inline]
    fn from_c(value: c_int) -> ReadResult {
        match value {
            0 => ReadResult::Inactive,
            1 => ReadResult::IncompatibleInterface,
            2 => ReadResult::EpochChanged,
            3 => ReadResult::NoData,
            4 => ReadResult::OverrunDetected,
            5 => ReadResult::Success,
            other => panic!("Solo5 reader returned {other}, not a muchannel_reader_result"),
        }
    }
}

/// `struct muchannel_reader` (`reader.h`; layout checked by `include/layout.c`).
#[repr(C)]
#[derive(Debug, Default)]
struct ReaderState {
    epoch: u64,
    protocol: u64,
    size: u64,
    elements: u64,
    rc: u64,
}

#[cfg(not(solo5_missing))]
mod ffi {
    use super::ReaderState;
    use core::ffi::{c_int, c_void};

    // `struct muchannel *` is passed as a byte pointer to the channel's header.
    extern "C" {
        pub fn muen_channel_init_writer(
            channel: *mut u8,
            protocol: u64,
            element_size: u64,
            channel_size: u64,
            epoch: u64,
        );
        pub fn muen_channel_write(channel: *mut u8, element: *const c_void);
        pub fn muen_channel_init_reader(reader: *mut ReaderState, protocol: u64);
        pub fn muen_channel_read(
            channel: *const u8,
            reader: *mut ReaderState,
            element: *mut c_void,
        ) -> c_int;
        pub fn muen_channel_drain(channel: *const u8, reader: *mut ReaderState);
        pub fn muen_channel_has_pending_data(channel: *const u8, reader: *mut ReaderState) -> bool;
    }
}

/// Solo5's channel writer on a region.
#[derive(Debug)]
pub struct Writer<'a> {
    solo5: Solo5,
    channel: NonNull<u8>,
    size: usize,
    _region: PhantomData<&'a mut [u8]>,
}

// SAFETY: the writer is a pointer into memory its constructor's caller dedicated to
// the channel; moving it to another thread moves the only writer.
unsafe impl Send for Writer<'_> {}

impl<'a> Writer<'a> {
    /// `muen_channel_init_writer` on `len` bytes at `channel`.
    ///
    /// # Safety
    ///
    /// For `'a`, `channel..channel + len` is valid, 8-byte aligned memory used only by
    /// this writer and Solo5 [`Reader`]s (no Rust code reads or writes it otherwise);
    /// `len >= 64 + element_size` and `element_size > 0`.
    pub unsafe fn init(
        solo5: Solo5,
        channel: NonNull<u8>,
        len: usize,
        protocol: u64,
        element_size: usize,
        epoch: u64,
    ) -> Writer<'a> {
        #[cfg(not(solo5_missing))]
        // SAFETY: the caller's contract is the C function's precondition.
        unsafe {
            ffi::muen_channel_init_writer(
                channel.as_ptr(),
                protocol,
                element_size as u64,
                len as u64,
                epoch,
            )
        };
        Writer {
            solo5,
            channel,
            size: element_size,
            _region: PhantomData,
        }
    }

    /// `muen_channel_write` of one element (`element.len()` must be the element size).
    #[inline]
    pub fn write(&mut self, element: &[u8]) {
        assert_eq!(element.len(), self.size, "one element");
        #[cfg(solo5_missing)]
        match self.solo5._linked {}
        #[cfg(not(solo5_missing))]
        {
            let _ = self.solo5;
            // SAFETY: `init` made the channel valid with this element size; the C code
            // copies `size` bytes from `element`.
            unsafe { ffi::muen_channel_write(self.channel.as_ptr(), element.as_ptr().cast()) }
        }
    }
}

/// Solo5's channel reader on a region.
#[derive(Debug)]
pub struct Reader<'a> {
    solo5: Solo5,
    channel: NonNull<u8>,
    state: ReaderState,
    size: usize,
    _region: PhantomData<&'a [u8]>,
}

// SAFETY: as for `Writer`: a pointer into dedicated memory plus private state.
unsafe impl Send for Reader<'_> {}

impl<'a> Reader<'a> {
    /// `muen_channel_init_reader` for a channel at `channel`.
    ///
    /// # Safety
    ///
    /// For `'a`, `channel` points to a channel initialised (or about to be) by a Solo5
    /// [`Writer`] with `element_size`-byte elements, in memory no Rust code accesses
    /// otherwise. (The C reader copies the header's `size` bytes per element and reads
    /// wherever the header's geometry says.)
    pub unsafe fn new(
        solo5: Solo5,
        channel: NonNull<u8>,
        protocol: u64,
        element_size: usize,
    ) -> Reader<'a> {
        let mut state = ReaderState::default();
        #[cfg(not(solo5_missing))]
        // SAFETY: `state` is a valid `struct muchannel_reader`.
        unsafe {
            ffi::muen_channel_init_reader(&mut state, protocol)
        };
        #[cfg(solo5_missing)]
        let _ = protocol;
        Reader {
            solo5,
            channel,
            state,
            size: element_size,
            _region: PhantomData,
        }
    }

    /// `muen_channel_read` into `element` (one element long).
    #[inline]
    pub fn read(&mut self, element: &mut [u8]) -> ReadResult {
        assert_eq!(element.len(), self.size, "one element");
        #[cfg(solo5_missing)]
        match self.solo5._linked {}
        #[cfg(not(solo5_missing))]
        {
            let _ = self.solo5;
            // SAFETY: `new`'s contract: an honest writer with this element size, so
            // the C code copies `element.len()` bytes from inside the channel.
            ReadResult::from_c(unsafe {
                ffi::muen_channel_read(
                    self.channel.as_ptr(),
                    &mut self.state,
                    element.as_mut_ptr().cast(),
                )
            })
        }
    }

    /// `muen_channel_drain`.
    pub fn drain(&mut self) {
        #[cfg(solo5_missing)]
        match self.solo5._linked {}
        #[cfg(not(solo5_missing))]
        // SAFETY: as for `read`; only the write counter is read.
        unsafe {
            let _ = self.solo5;
            ffi::muen_channel_drain(self.channel.as_ptr(), &mut self.state)
        }
    }

    /// `muen_channel_has_pending_data` (which synchronises, as Solo5's does).
    pub fn has_pending_data(&mut self) -> bool {
        #[cfg(solo5_missing)]
        match self.solo5._linked {}
        #[cfg(not(solo5_missing))]
        // SAFETY: as for `read`; header fields only.
        unsafe {
            let _ = self.solo5;
            ffi::muen_channel_has_pending_data(self.channel.as_ptr(), &mut self.state)
        }
    }

    /// The read counter (`struct muchannel_reader`'s `rc`).
    pub fn read_count(&self) -> u64 {
        self.state.rc
    }
}
