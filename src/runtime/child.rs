//! The traced command of `ktap ... -- CMD ARGS`: forked before anything is
//! attached and held at a start gate (a pipe it reads before exec), so the
//! probes see it from its first instruction; released once attached.

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
