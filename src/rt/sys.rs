//! Small system helpers shared by the engine's connection code (each `unsafe` block here says
//! why it is sound).
//!
//! Must not: grow into a second runtime: only what monoio does not offer.

use monoio::io::OwnedReadHalf;
use monoio::net::TcpStream;
use std::os::fd::{AsRawFd, RawFd};

/// One non-blocking `recv` (MSG_DONTWAIT, whatever the fd's flags, plus `flags`) into `buf`.
pub fn recv_now(
    fd: RawFd,
    buf: &mut [std::mem::MaybeUninit<u8>],
    flags: libc::c_int,
) -> std::io::Result<usize> {
    // SAFETY: `buf` is writable memory of `buf.len()` bytes; recv writes at most that many
    // and keeps no pointer.
    let n = unsafe {
        libc::recv(
            fd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            flags | libc::MSG_DONTWAIT,
        )
    };
    if n < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Shuts a socket down (both directions) so that its reader sees EOF; -1 is ignored.
pub fn shutdown_fd(fd: RawFd) {
    if fd >= 0 {
        // SAFETY: a plain syscall on a descriptor number; errors (a closed fd) are irrelevant.
        unsafe {
            libc::shutdown(fd, libc::SHUT_RDWR);
        }
    }
}

/// The stream behind the read half of a split `TcpStream`.
///
/// The one audited place that reaches into monoio's `OwnedReadHalf` (its field is public but
/// undocumented): readiness waits and the fd are all a reader needs from it.
pub fn read_half_stream(r: &OwnedReadHalf<TcpStream>) -> &TcpStream {
    // SAFETY: monoio's split shares the stream between the halves as an
    // `Rc<UnsafeCell<TcpStream>>`, aliased the same way by monoio's own read and write ops.
    // The shared reference is used only to wait for readiness (which clones the fd into a poll
    // operation) and to read the fd number; nothing mutates the stream through it.
    unsafe { &*r.0.get() }
}

/// The fd of the read half of a split `TcpStream`.
pub fn read_half_fd(r: &OwnedReadHalf<TcpStream>) -> RawFd {
    read_half_stream(r).as_raw_fd()
}

/// Which I/O driver the current thread's runtime uses.
pub fn driver_name() -> &'static str {
    if monoio::utils::is_legacy() {
        "epoll"
    } else {
        "io_uring"
    }
}
