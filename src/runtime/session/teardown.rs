//! Attaching many events and detaching them: the open-file limit raised
//! first, and many slow links closed by a background child so ktap exits
//! at once.

use super::*;

/// What attaching made: the links, and how many of them are slow to close.
pub(super) struct Links {
    pub(super) links: Vec<Link>,
    /// Classic tracepoint and perf-event uprobe links.
    pub(super) slow: usize,
}

/// Raises the open-file limit to its hard maximum (every link holds a
/// descriptor: `probe:libc:*` or `*:*` are thousands); done once, before
/// anything is attached.
pub(super) fn raise_fd_limit() {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: lim is a valid rlimit to fill and then to set.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// From how many slow links (classic tracepoints, perf-event uprobes)
/// detaching moves to the background.
pub(super) const BACKGROUND_TEARDOWN_FROM: usize = 1;
/// From how many the background detach takes long enough to mention.
const NOTICEABLE_TEARDOWN: usize = 64;

/// Detaches everything. Closing a classic tracepoint or perf-event uprobe
/// link waits for an RCU grace period, one after another (tens of ms
/// each), so with many of them a forked child holds the last references
/// and closes them while ktap itself exits at once. The programs already
/// deliver nothing (the stop flag is set).
pub(super) fn teardown(links: Links, out: &mut dyn Output) {
    let Links { links, slow: slow_links } = links;
    if slow_links < BACKGROUND_TEARDOWN_FROM {
        drop(links);
        return;
    }
    // Nothing buffered may be left for the child to inherit.
    let _ = out.flush();
    // The child closes its references after ours are gone (it waits for
    // end of file on a pipe whose write end only ktap holds), so the last
    // close, the slow one, is the child's whatever the scheduling.
    let mut pipe = [-1; 2];
    // SAFETY: `pipe` is a valid array for pipe2 to fill.
    let piped = unsafe { libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC) } == 0;
    // SAFETY: the child only calls async-signal-safe functions (setsid,
    // open, dup2, close, read, _exit) before exiting.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        unsafe {
            libc::setsid();
            let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
            if null >= 0 {
                for fd in 0..3 {
                    libc::dup2(null, fd);
                }
            }
            if piped {
                libc::close(pipe[1]);
                let mut byte = 0u8;
                loop {
                    let n = libc::read(pipe[0], (&mut byte as *mut u8).cast(), 1);
                    if n == 0 || (n < 0 && *libc::__errno_location() != libc::EINTR) {
                        break;
                    }
                }
            }
            // Exiting closes every descriptor: the slow detach happens here.
            libc::_exit(0);
        }
    }
    if piped {
        // SAFETY: our read end; the write end stays open until we exit.
        unsafe { libc::close(pipe[0]) };
    }
    if pid > 0 {
        if slow_links >= NOTICEABLE_TEARDOWN {
            out.notice(&Notice::BackgroundDetach { probes: slow_links, pid });
        }
        // Our references go with the process; the child's are the last.
        std::mem::forget(links);
    } else {
        drop(links);
    }
}
