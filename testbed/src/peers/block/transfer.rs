//! Moving bytes between the image and the shared data buffer: `pread`/`pwrite` loops,
//! and a second thread that reads half of each large read at the same time as the
//! server reads the other half (a controller with two DMA engines; QEMU's thread pool
//! runs a device's requests in parallel for the same reason).
//!
//! Only reads are split: buffered writes to one file are serialised by the file system
//! (ext4 holds the inode lock for each write), and a second writer would only wait.

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::os;

/// Reads of at least this many bytes are split between the server and its helper.
/// Below it the helper's wake-up (tens of microseconds on a virtual machine) would
/// cost more than the half it reads.
pub const SPLIT_MIN: usize = 2 << 20;

/// Which way bytes move.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// From the image into memory (`pread`).
    Read,
    /// From memory into the image (`pwrite`).
    Write,
}

/// Moves `len` bytes between `fd` at byte `offset` and the memory at `at`, retrying
/// short transfers and interruptions; a transfer that makes no progress (the image
/// ended) is `UnexpectedEof`.
///
/// # Safety
///
/// `at .. at + len` is one allocation, valid for writes (`Read`) or reads (`Write`)
/// until the call returns, and no Rust reference to it exists meanwhile (another
/// process changing it only changes the bytes transferred).
pub unsafe fn transfer_all(
    fd: RawFd,
    direction: Direction,
    at: *mut u8,
    len: usize,
    offset: u64,
) -> io::Result<()> {
    let mut done = 0usize;
    while done < len {
        let off = libc::off_t::try_from(offset + done as u64)
            .map_err(|_| io::Error::other("offset beyond the host's file offsets"))?;
        // SAFETY: `at + done .. at + len` lies inside the range the caller vouches for;
        // the kernel copies between the file and that memory.
        let n = unsafe {
            let p = at.add(done).cast();
            match direction {
                Direction::Read => libc::pread(fd, p, len - done, off),
                Direction::Write => libc::pwrite(fd, p, len - done, off),
            }
        };
        match os::cvt_size(n) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

const IDLE: u32 = 0;
const POSTED: u32 = 1;
const DONE: u32 = 2;
const STOP: u32 = 3;

/// A read for the helper: `len` bytes of `fd` at `offset` into `at`.
struct Job {
    fd: RawFd,
    at: *mut u8,
    len: usize,
    offset: u64,
}

// SAFETY: a job's pointer is used by the helper only between `ReadHelper::read`
// posting it and that same call seeing it done; that call's contract keeps the memory
// valid and unaliased for its whole duration.
unsafe impl Send for Job {}

struct Shared {
    state: AtomicU32,
    job: Mutex<Option<Job>>,
    result: Mutex<io::Result<()>>,
}

/// The server's second reader: a thread that sleeps until given half of a read.
pub struct ReadHelper {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl ReadHelper {
    /// Starts the helper thread, named `name`.
    pub fn spawn(name: &str) -> io::Result<ReadHelper> {
        let shared = Arc::new(Shared {
            state: AtomicU32::new(IDLE),
            job: Mutex::new(None),
            result: Mutex::new(Ok(())),
        });
        let s = shared.clone();
        let thread = thread::Builder::new()
            .name(name.to_string())
            .spawn(move || helper(&s))?;
        Ok(ReadHelper {
            shared,
            thread: Some(thread),
        })
    }

    /// Reads `len` bytes of `fd` at `offset` into `at`: the first half (rounded to
    /// whole pages) on this thread, the rest on the helper at the same time. Returns
    /// once both are done; an error of either half is the result.
    ///
    /// # Safety
    ///
    /// As [`transfer_all`] for `Direction::Read`.
    pub unsafe fn read(&self, fd: RawFd, at: *mut u8, len: usize, offset: u64) -> io::Result<()> {
        let half = (len / 2) & !0xfff;
        *lock(&self.shared.job) = Some(Job {
            fd,
            // SAFETY: `half <= len`, inside the caller's range.
            at: unsafe { at.add(half) },
            len: len - half,
            offset: offset + half as u64,
        });
        self.shared.state.store(POSTED, Ordering::Release);
        if let Some(t) = &self.thread {
            t.thread().unpark();
        }
        // SAFETY: the first `half` bytes of the caller's range.
        let mine = unsafe { transfer_all(fd, Direction::Read, at, half, offset) };
        // The helper must be done with the memory before this returns, whatever
        // happened here.
        let done = || self.shared.state.load(Ordering::Acquire) == DONE;
        if !os::spin_until(Duration::from_micros(200), done) {
            while !done() {
                // The helper lost its CPU: let it have this one.
                thread::yield_now();
            }
        }
        let theirs = std::mem::replace(&mut *lock(&self.shared.result), Ok(()));
        self.shared.state.store(IDLE, Ordering::Relaxed);
        mine.and(theirs)
    }
}

impl Drop for ReadHelper {
    fn drop(&mut self) {
        self.shared.state.store(STOP, Ordering::Release);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

/// `m` locked; a panic elsewhere while it was held does not matter to its plain data.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn helper(shared: &Shared) {
    loop {
        match shared.state.load(Ordering::Acquire) {
            POSTED => {
                let job = lock(&shared.job).take();
                let result = match job {
                    // SAFETY: `ReadHelper::read` posted the job and waits for DONE
                    // before it returns; its caller vouched for the range until then.
                    Some(j) => unsafe {
                        transfer_all(j.fd, Direction::Read, j.at, j.len, j.offset)
                    },
                    None => Ok(()),
                };
                *lock(&shared.result) = result;
                shared.state.store(DONE, Ordering::Release);
            }
            STOP => return,
            // A wake-up without a job (park may return spuriously), or the server
            // has not collected the last result yet.
            _ => thread::park(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsRawFd;

    fn image(len: usize) -> (std::fs::File, Vec<u8>) {
        let mut bytes = vec![0u8; len];
        // Every 8 bytes their own offset: a byte read from the wrong place shows.
        for (i, chunk) in bytes.chunks_mut(8).enumerate() {
            chunk.copy_from_slice(&((i * 8) as u64).to_le_bytes()[..chunk.len()]);
        }
        let mut file = tempfile();
        file.write_all(&bytes).unwrap();
        (file, bytes)
    }

    fn tempfile() -> std::fs::File {
        use std::os::fd::FromRawFd;
        // SAFETY: memfd_create with a C string; the result is checked below.
        let fd = unsafe { libc::memfd_create(c"transfer-test".as_ptr(), libc::MFD_CLOEXEC) };
        assert!(fd >= 0, "memfd_create: {}", io::Error::last_os_error());
        // SAFETY: a new descriptor nothing else owns.
        unsafe { std::fs::File::from_raw_fd(fd) }
    }

    #[test]
    fn a_split_read_delivers_every_byte_from_its_place() {
        let helper = ReadHelper::spawn("test-helper").unwrap();
        let (file, bytes) = image(3 * SPLIT_MIN + 4096 + 512);
        for (offset, len) in [
            (0, SPLIT_MIN),
            (512, SPLIT_MIN + 512),
            (4096, 2 * SPLIT_MIN + 1536),
            (0, bytes.len()),
        ] {
            let mut dst = vec![0xeeu8; len + 2];
            // SAFETY: `dst[1..=len]` is ours and no reference to it is used meanwhile.
            let r = unsafe {
                helper.read(
                    file.as_raw_fd(),
                    dst.as_mut_ptr().add(1),
                    len,
                    offset as u64,
                )
            };
            r.unwrap();
            assert_eq!(
                &dst[1..=len],
                &bytes[offset..offset + len],
                "{offset}+{len}"
            );
            // Nothing outside the range was written.
            assert_eq!((dst[0], dst[len + 1]), (0xee, 0xee));
        }
    }

    #[test]
    fn an_error_in_either_half_fails_the_read() {
        let helper = ReadHelper::spawn("test-helper").unwrap();
        let (file, bytes) = image(SPLIT_MIN);
        let mut dst = vec![0u8; SPLIT_MIN];
        // The second half lies beyond the end of the image: the helper's half fails.
        // SAFETY: `dst` is ours.
        let r = unsafe {
            helper.read(
                file.as_raw_fd(),
                dst.as_mut_ptr(),
                SPLIT_MIN,
                (SPLIT_MIN / 2) as u64,
            )
        };
        assert_eq!(r.unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
        // The first half was read all the same.
        assert_eq!(&dst[..SPLIT_MIN / 2], &bytes[SPLIT_MIN / 2..]);
        // A bad descriptor fails both halves; the helper still serves the next read.
        // SAFETY: as above.
        let r = unsafe { helper.read(-1, dst.as_mut_ptr(), SPLIT_MIN, 0) };
        assert_eq!(r.unwrap_err().raw_os_error(), Some(libc::EBADF));
        // SAFETY: as above.
        unsafe { helper.read(file.as_raw_fd(), dst.as_mut_ptr(), SPLIT_MIN, 0) }.unwrap();
        assert_eq!(dst, bytes);
    }

    #[test]
    fn transfer_all_refuses_a_range_past_the_end() {
        let (file, _) = image(4096);
        let mut dst = [0u8; 512];
        // SAFETY: `dst` is ours.
        let r = unsafe {
            transfer_all(
                file.as_raw_fd(),
                Direction::Read,
                dst.as_mut_ptr(),
                512,
                4096,
            )
        };
        assert_eq!(r.unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
    }
}
