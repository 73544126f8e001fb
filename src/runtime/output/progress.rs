//! The "Attaching N probes..." line on stderr: shown only when attaching
//! takes more than half a second, its count moving on a terminal, cleared
//! when attaching ends. Runs on a thread of its own, so one long attach
//! call (a uprobe.multi link over thousands of functions) still shows it;
//! the thread ends when the [`Progress`] is dropped. Writes nothing else.

use std::io::{self, IsTerminal, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// How long attaching may take before the line appears.
const DELAY: Duration = Duration::from_millis(500);
/// How often the count moves.
const TICK: Duration = Duration::from_millis(100);

/// Counts attached probes; dropping it ends (and clears) the line.
pub struct Progress {
    done: Arc<AtomicUsize>,
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Progress {
    /// A progress that shows nothing.
    pub fn silent() -> Progress {
        Progress { done: Arc::default(), stop: None, thread: None }
    }

    /// The line on the process's stderr.
    pub fn on_stderr(total: usize) -> Progress {
        let tty = io::stderr().is_terminal();
        Progress::start(total, Box::new(io::stderr()), tty, DELAY)
    }

    /// The line on `err` after `delay`: on a terminal (`tty`) rewritten with
    /// the count every tick and cleared at the end; elsewhere one line.
    fn start(total: usize, mut err: Box<dyn Write + Send>, tty: bool, delay: Duration) -> Progress {
        let done = Arc::new(AtomicUsize::new(0));
        let (stop, stopped) = mpsc::channel::<()>();
        let count = done.clone();
        let spawned = std::thread::Builder::new().name("ktap-progress".into()).spawn(move || {
            if stopped.recv_timeout(delay) != Err(mpsc::RecvTimeoutError::Timeout) {
                return;
            }
            if !tty {
                let _ = writeln!(err, "Attaching {total} probes...");
                return;
            }
            loop {
                let _ = write!(err, "\rAttaching {total} probes... {}", count.load(Ordering::Relaxed).min(total));
                let _ = err.flush();
                if stopped.recv_timeout(TICK) != Err(mpsc::RecvTimeoutError::Timeout) {
                    let _ = write!(err, "\r\x1b[K");
                    let _ = err.flush();
                    return;
                }
            }
        });
        // No thread (out of resources): attaching goes on without the line.
        Progress { done, stop: Some(stop), thread: spawned.ok() }
    }

    /// `n` more probes are attached.
    pub fn advance(&self, n: usize) {
        self.done.fetch_add(n, Ordering::Relaxed);
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().map_err(|_| io::Error::other("poisoned"))?.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Sink {
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().expect("not poisoned")).into_owned()
        }
    }

    #[test]
    fn quick_attaches_say_nothing() {
        let sink = Sink::default();
        let p = Progress::start(10, Box::new(sink.clone()), true, Duration::from_secs(60));
        p.advance(10);
        drop(p);
        assert_eq!(sink.text(), "");
    }

    #[test]
    fn slow_attaches_show_a_count_then_clear_it() {
        let sink = Sink::default();
        let p = Progress::start(10, Box::new(sink.clone()), true, Duration::ZERO);
        p.advance(3);
        // Wait (without timing anything) until the line shows the count.
        while !sink.text().contains("... 3") {
            std::thread::sleep(Duration::from_millis(5));
        }
        p.advance(4);
        while !sink.text().contains("... 7") {
            std::thread::sleep(Duration::from_millis(5));
        }
        drop(p);
        let text = sink.text();
        assert!(text.starts_with("\rAttaching 10 probes... "), "{text:?}");
        assert!(text.ends_with("\r\x1b[K"), "{text:?}");
    }

    #[test]
    fn not_a_terminal_gets_one_line() {
        let sink = Sink::default();
        let p = Progress::start(5, Box::new(sink.clone()), false, Duration::ZERO);
        while sink.text().is_empty() {
            std::thread::sleep(Duration::from_millis(5));
        }
        drop(p);
        assert_eq!(sink.text(), "Attaching 5 probes...\n");
    }
}
