//! SIGPIPE in a host that did not ask for it. A Rust program ignores SIGPIPE from its first
//! line, but libetcdrs runs inside C programs, which keep the default action: terminate.
//! std sends with MSG_NOSIGNAL, yet vectored writes (hyper's, rustls's) are writev, which
//! raises SIGPIPE when the other end has gone. The signal goes to the thread that wrote, so
//! etcdrs blocks it in every thread where it does network I/O: its runtimes' threads for good,
//! a host's thread only while a call runs on it. A blocked SIGPIPE leaves the write to fail
//! with EPIPE, which the code already handles. The host's own disposition is never touched.

/// Block SIGPIPE in the calling thread for the rest of its life: for threads etcdrs owns.
pub fn block_in_this_thread() {
    #[cfg(unix)]
    let _ = mask(libc::SIG_BLOCK);
}

/// SIGPIPE blocked in a host's thread while it runs a call; the thread's mask is as it was
/// again on drop.
pub struct Blocked {
    #[cfg(unix)]
    before: Option<libc::sigset_t>,
}

impl Blocked {
    pub fn new() -> Blocked {
        Blocked {
            #[cfg(unix)]
            before: mask(libc::SIG_BLOCK),
        }
    }
}

impl Default for Blocked {
    fn default() -> Self {
        Blocked::new()
    }
}

#[cfg(unix)]
impl Drop for Blocked {
    fn drop(&mut self) {
        let Some(before) = self.before else { return };
        // SAFETY: sigset_t values made by sigemptyset/sigaddset or filled in by the kernel;
        // all calls are async-signal-safe and only touch this thread's mask.
        unsafe {
            if libc::sigismember(&before, libc::SIGPIPE) == 1 {
                return; // the host blocks it itself: its pending signals are its own
            }
            // A write during the call raised one: take it, or unblocking would deliver it.
            let mut pending: libc::sigset_t = std::mem::zeroed();
            if libc::sigpending(&mut pending) == 0
                && libc::sigismember(&pending, libc::SIGPIPE) == 1
            {
                let only = sigpipe_set();
                let now = libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                };
                libc::sigtimedwait(&only, std::ptr::null_mut(), &now);
            }
            libc::pthread_sigmask(libc::SIG_SETMASK, &before, std::ptr::null_mut());
        }
    }
}

#[cfg(unix)]
fn sigpipe_set() -> libc::sigset_t {
    // SAFETY: sigemptyset initialises the set before sigaddset reads it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGPIPE);
        set
    }
}

/// Apply `how` with SIGPIPE to this thread's mask; the mask before, if the call succeeded.
#[cfg(unix)]
fn mask(how: libc::c_int) -> Option<libc::sigset_t> {
    let set = sigpipe_set();
    // SAFETY: valid set pointers; pthread_sigmask changes only the calling thread.
    unsafe {
        let mut before: libc::sigset_t = std::mem::zeroed();
        (libc::pthread_sigmask(how, &set, &mut before) == 0).then_some(before)
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::process::Command;

    /// A connection whose other end has reset it, with the reset already seen by a read:
    /// the next writev raises SIGPIPE.
    fn broken_connection() -> TcpStream {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut ours = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (theirs, _) = listener.accept().unwrap();
        // SO_LINGER 0: close() sends RST.
        socket_linger_zero(&theirs);
        drop(theirs);
        let mut buf = [0u8; 1];
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match ours.read(&mut buf) {
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
                Ok(0) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(5))
                }
                other => panic!("expected a reset, got {other:?}"),
            }
        }
        ours
    }

    fn socket_linger_zero(s: &TcpStream) {
        use std::os::fd::AsRawFd;
        let linger = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        // SAFETY: a valid socket and a linger struct of the size given.
        let rc = unsafe {
            libc::setsockopt(
                s.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                &linger as *const libc::linger as *const libc::c_void,
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            )
        };
        assert_eq!(rc, 0);
    }

    fn writev_fails(mut s: TcpStream) {
        let bufs = [std::io::IoSlice::new(b"a"), std::io::IoSlice::new(b"b")];
        let e = s.write_vectored(&bufs).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
    }

    /// Run in a child process as a C host would be: SIGPIPE at its default action.
    #[test]
    fn writes_to_a_gone_peer_fail_instead_of_killing_a_c_host() {
        if std::env::var_os("ETCDRS_SIGPIPE_CHILD").is_some() {
            // SAFETY: restoring the default disposition, as a C program starts with.
            unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
            // Threads of the client runtime and of a member's.
            let client = crate::blocking::runtime();
            let member = crate::node::member_runtime("sigpipe").unwrap();
            for rt in [&*client, &member] {
                rt.block_on(rt.spawn(async { writev_fails(broken_connection()) }))
                    .unwrap();
            }
            // A host's thread inside a call, then the same thread after it: the mask is back.
            crate::blocking::block_on(async { writev_fails(broken_connection()) });
            // SAFETY: reading this thread's mask only.
            let blocked = unsafe {
                let mut now: libc::sigset_t = std::mem::zeroed();
                libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut now);
                libc::sigismember(&now, libc::SIGPIPE)
            };
            assert_eq!(blocked, 0, "the host's thread keeps SIGPIPE unblocked");
            return;
        }
        let out = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "sigpipe::tests::writes_to_a_gone_peer_fail_instead_of_killing_a_c_host",
                "--nocapture",
            ])
            .env("ETCDRS_SIGPIPE_CHILD", "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "the child ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // The child really ran the test (a filter matching nothing also succeeds).
        assert!(String::from_utf8_lossy(&out.stdout).contains("1 passed"));
    }
}
