//! Listening sockets: one `SO_REUSEPORT` socket per shard, created up front so that a port
//! already held by another process is refused (with `SO_REUSEPORT` alone, a second server on
//! the same port would silently share its traffic).
//!
//! Must not: accept connections (the engine does).

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::FromRawFd;

fn check(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn sockaddr(addr: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain data; zeroed is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_in fits in sockaddr_storage.
            unsafe { std::ptr::write(&mut storage as *mut _ as *mut libc::sockaddr_in, sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_in6 fits in sockaddr_storage.
            unsafe { std::ptr::write(&mut storage as *mut _ as *mut libc::sockaddr_in6, sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

fn bind_one(addr: &SocketAddr, reuse_port: bool) -> io::Result<TcpListener> {
    let family = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: plain socket syscalls on a descriptor owned here; wrapped in TcpListener at once.
    unsafe {
        let fd = check(libc::socket(
            family,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
            0,
        ))?;
        let listener = TcpListener::from_raw_fd(fd);
        let one: libc::c_int = 1;
        let optlen = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        check(libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_REUSEADDR,
            &one as *const _ as *const _,
            optlen,
        ))?;
        if reuse_port {
            check(libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_REUSEPORT,
                &one as *const _ as *const _,
                optlen,
            ))?;
        }
        let (sa, len) = sockaddr(addr);
        check(libc::bind(
            fd,
            &sa as *const _ as *const libc::sockaddr,
            len,
        ))?;
        check(libc::listen(fd, 4096))?;
        listener.set_nonblocking(true)?;
        Ok(listener)
    }
}

/// Binds `n` listeners sharing `addr` with `SO_REUSEPORT`; fails with `AddrInUse` when another
/// socket already holds the port.
pub(crate) fn bind_shards(addr: SocketAddr, n: usize) -> io::Result<Vec<TcpListener>> {
    // The first socket probes without SO_REUSEPORT semantics towards others: if any socket
    // (ours from before, or another process's, with or without SO_REUSEPORT) holds the port,
    // a bind without SO_REUSEPORT fails.
    let probe = bind_one(&addr, false)?;
    let addr = probe.local_addr()?;
    drop(probe);
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(bind_one(&addr, true)?);
    }
    Ok(out)
}
