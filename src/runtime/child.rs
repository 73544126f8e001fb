//! The traced process: the command of `ktap ... -- CMD ARGS`, forked
//! before anything is attached and held at a start gate (a pipe it reads
//! before exec), so the probes see it from its first instruction, released
//! once attached; or the process of `-p PID`, watched through a pidfd so
//! tracing ends when it exits. Signals only its own child.

use std::ffi::CString;
use std::fmt;

pub struct Child {
    pid: libc::pid_t,
    /// Write end of the start gate; closed once released.
    gate: Option<libc::c_int>,
    status: Option<i32>,
}

impl fmt::Debug for Child {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Child({})", self.pid)
    }
}

impl Child {
    /// Forks `argv`, which waits at the gate until [`Child::release`].
    pub fn spawn(argv: &[String]) -> Result<Child, String> {
        let Some(program) = argv.first() else { return Err("no command after `--`".into()) };
        let cargs: Vec<CString> = argv
            .iter()
            .map(|a| CString::new(a.as_bytes()).map_err(|_| format!("argument {a:?} contains a NUL byte")))
            .collect::<Result<_, _>>()?;
        let mut ptrs: Vec<*const libc::c_char> = cargs.iter().map(|c| c.as_ptr()).collect();
        ptrs.push(std::ptr::null());
        let msg = format!("ktap: cannot run {program}\n");
        let mut fds = [0; 2];
        // SAFETY: fds has room for two descriptors.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(format!("cannot create a pipe: {}", std::io::Error::last_os_error()));
        }
        // SAFETY: after fork the child only calls async-signal-safe
        // functions (read, close, execvp, write, _exit) on memory prepared
        // before the fork.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(format!("cannot fork: {}", std::io::Error::last_os_error()));
        }
        if pid == 0 {
            unsafe {
                libc::close(fds[1]);
                let mut b = 0u8;
                let n = libc::read(fds[0], (&raw mut b).cast(), 1);
                if n == 1 {
                    libc::execvp(ptrs[0], ptrs.as_ptr());
                    libc::write(2, msg.as_ptr().cast(), msg.len());
                }
                libc::_exit(127);
            }
        }
        // SAFETY: closing our copy of the read end.
        unsafe { libc::close(fds[0]) };
        Ok(Child { pid, gate: Some(fds[1]), status: None })
    }

    pub fn pid(&self) -> u32 {
        self.pid as u32
    }

    /// Lets the command run.
    pub fn release(&mut self) {
        if let Some(fd) = self.gate.take() {
            // SAFETY: fd is our open write end of the gate.
            unsafe {
                libc::write(fd, [1u8].as_ptr().cast(), 1);
                libc::close(fd);
            }
        }
    }

    /// The exit status once the command has ended.
    pub fn try_wait(&mut self) -> Option<i32> {
        if self.status.is_none() {
            let mut status = 0;
            // SAFETY: waiting for our own child.
            if unsafe { libc::waitpid(self.pid, &mut status, libc::WNOHANG) } == self.pid {
                self.status = Some(if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { 128 + libc::WTERMSIG(status) });
            }
        }
        self.status
    }
}

/// A process ktap did not start (`-p PID`), watched for its exit.
#[derive(Debug)]
pub struct Watched {
    fd: std::os::fd::OwnedFd,
}

impl Watched {
    /// Starts watching `pid`; an error when there is no such process.
    pub fn open(pid: u32) -> Result<Watched, String> {
        let raw = libc::pid_t::try_from(pid).map_err(|_| format!("no process with pid {pid}"))?;
        // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, raw, 0) };
        if fd < 0 {
            let e = std::io::Error::last_os_error();
            return Err(match e.raw_os_error() {
                Some(libc::ESRCH) => format!("no process with pid {pid}"),
                _ => format!("cannot watch process {pid}: {e}"),
            });
        }
        // SAFETY: a descriptor the kernel just gave us, owned from here on.
        Ok(Watched { fd: unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as libc::c_int) } })
    }

    /// Whether the process has exited (a pidfd turns readable then,
    /// kernel/pid.c, pidfd_poll).
    pub fn exited(&self) -> bool {
        let mut p = libc::pollfd { fd: std::os::fd::AsRawFd::as_raw_fd(&self.fd), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd, no waiting.
        let n = unsafe { libc::poll(&mut p, 1, 0) };
        n > 0 && p.revents & (libc::POLLIN | libc::POLLHUP) != 0
    }
}

impl Drop for Child {
    /// A command never released is killed; one still running when ktap
    /// ends gets SIGTERM, like any child of a tracer that stops.
    fn drop(&mut self) {
        if self.try_wait().is_some() {
            return;
        }
        let sig = if self.gate.is_some() { libc::SIGKILL } else { libc::SIGTERM };
        self.release();
        // SAFETY: signalling and reaping our own child by its pid.
        unsafe {
            libc::kill(self.pid, sig);
            let mut status = 0;
            libc::waitpid(self.pid, &mut status, 0);
        }
    }
}
