//! ktap's text output: script output on the output stream (stdout or `-o
//! FILE`), `-T` times as a line prefix, terminal control only where the
//! output is a terminal, the tables probes wrote, the banner, and
//! warnings, notes, errors and the attach progress line on stderr. Renders with `runtime::format`; decides nothing about
//! when to print.

use std::io::{self, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use super::{Dump, Failure, Level, Notice, Origin, Output, Progress};
use crate::frontend::diag::{self, Diagnostic};
use crate::runtime::format;
use crate::runtime::interp::{Table, Value};

/// Printed once everything is attached.
const BANNER: &str = "Tracing... Hit Ctrl-C to end.";

/// How many events that could not be attached are named.
const NOT_ATTACHED_SHOWN: usize = 5;

/// Choices the command line makes for text output.
#[derive(Clone, Debug, Default)]
pub struct TextOptions {
    /// The banner goes to stderr: the output stream is a file (`-o`),
    /// which should hold only what the script prints.
    pub banner_to_stderr: bool,
    /// Errors are rendered with terminal colors.
    pub color: bool,
    /// The script's (and its tapsets') names and texts, to show where a
    /// run-time error is.
    pub script: Option<diag::Sources>,
    /// What terminal control (`ansi.*`) reaches the output stream.
    pub terminal: Terminal,
}

/// What `ansi.*` may write to the output stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Terminal {
    /// Not a terminal (a pipe, a file): no escape sequences at all.
    #[default]
    None,
    /// A terminal, but `NO_COLOR` is set: cursor control, no colours.
    NoColor,
    /// A terminal: everything.
    Color,
}

/// The bytes of `text` this terminal takes: escape sequences (`ESC [
/// params final`) dropped when it is not a terminal, colour ones (final
/// `m`) without colours; other bytes (a new line) always kept.
fn for_terminal(text: &[u8], terminal: Terminal) -> Vec<u8> {
    if terminal == Terminal::Color {
        return text.to_vec();
    }
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        if text[i] == 0x1b && text.get(i + 1) == Some(&b'[') {
            let mut end = i + 2;
            while end < text.len() && !(0x40..=0x7e).contains(&text[end]) {
                end += 1;
            }
            let seq = &text[i..(end + 1).min(text.len())];
            if terminal == Terminal::NoColor && seq.last() != Some(&b'm') {
                out.extend_from_slice(seq);
            }
            i = end + 1;
        } else {
            out.push(text[i]);
            i += 1;
        }
    }
    out
}

/// Text output to a stream and an error stream.
pub struct TextOutput {
    out: Box<dyn Write>,
    err: Box<dyn Write>,
    opts: TextOptions,
}

impl TextOutput {
    /// Script output to `out`; messages to the process's stderr.
    pub fn new(out: Box<dyn Write>, opts: TextOptions) -> TextOutput {
        TextOutput { out, err: Box::new(io::stderr()), opts }
    }

    /// Messages to `err` instead of stderr.
    pub fn with_errors_to(mut self, err: Box<dyn Write>) -> TextOutput {
        self.err = err;
        self
    }

    /// Writes the `-T` prefix of a record.
    fn prefix(&mut self, origin: &Origin) -> io::Result<()> {
        match origin.time {
            Some(t) => write!(self.out, "{} ", time_of_day(t)),
            None => Ok(()),
        }
    }

    /// One line (or more) on the error stream; failures dropped, as there
    /// is nowhere left to report them.
    fn message(&mut self, text: std::fmt::Arguments<'_>) {
        let _ = self.err.write_fmt(text);
        let _ = self.err.flush();
    }
}

impl Output for TextOutput {
    fn print(&mut self, origin: &Origin, values: &[Value]) -> io::Result<()> {
        self.prefix(origin)?;
        self.out.write_all(&format::print_line(values))
    }

    fn printf(&mut self, origin: &Origin, text: &[u8]) -> io::Result<()> {
        self.prefix(origin)?;
        self.out.write_all(text)
    }

    fn hist(&mut self, origin: &Origin, table: &Table, rows: usize) -> io::Result<()> {
        self.prefix(origin)?;
        self.out.write_all(&format::print_hist(table, rows))
    }

    fn dump(&mut self, dump: &Dump) -> io::Result<()> {
        self.out.write_all(&format::dump(dump))
    }

    fn terminal(&mut self, text: &[u8]) -> io::Result<()> {
        self.out.write_all(&for_terminal(text, self.opts.terminal))
    }

    fn attach_progress(&mut self, total: usize) -> Progress {
        Progress::on_stderr(total)
    }

    fn attached(&mut self) {
        // Wrappers wait for this line to know that ktap is attached.
        if self.opts.banner_to_stderr {
            self.message(format_args!("{BANNER}\n"));
        } else {
            let _ = writeln!(self.out, "{BANNER}");
            let _ = self.out.flush();
        }
    }

    fn loaded_only(&mut self, programs: usize) {
        // A status line: stdout holds only what the script prints.
        self.message(format_args!("Loaded {programs} program(s); not attaching (-d).\n"));
    }

    fn notice(&mut self, notice: &Notice<'_>) {
        let prefix = match notice.level() {
            Level::Warning => "ktap: warning: ",
            Level::Note => "ktap: note: ",
            Level::Info => "ktap: ",
        };
        self.message(format_args!("{prefix}{}\n", notice.message()));
        if let Notice::NotAttached(events) = notice {
            for e in events.iter().take(NOT_ATTACHED_SHOWN) {
                self.message(format_args!("  {e}\n"));
            }
        }
    }

    fn libbpf_log(&mut self, text: &str) {
        self.message(format_args!("{text}"));
    }

    fn error(&mut self, failure: &Failure<'_>) {
        // What the script printed before failing comes first.
        let _ = self.out.flush();
        if let (Some(span), Some(sources)) = (failure.span, &self.opts.script) {
            let mut d = Diagnostic::error(span, failure.message);
            for n in failure.notes {
                d = d.with_note(n.clone());
            }
            let text = diag::render_sources(sources, &[d], self.opts.color);
            self.message(format_args!("{text}"));
            return;
        }
        self.message(format_args!("ktap: error: {}\n", failure.message));
        for n in failure.notes {
            self.message(format_args!("  note: {n}\n"));
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// `HH:MM:SS.micros` of a wall-clock time (UTC).
fn time_of_day(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let s = since.as_secs();
    format!("{:02}:{:02}:{:02}.{:06}", s / 3600 % 24, s / 60 % 60, s % 60, since.subsec_micros())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use super::super::test_sink::Sink;

    impl Sink {
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.borrow()).into_owned()
        }
    }

    fn text_output(opts: TextOptions) -> (TextOutput, Sink, Sink) {
        let (out, err) = (Sink::default(), Sink::default());
        (TextOutput::new(Box::new(out.clone()), opts).with_errors_to(Box::new(err.clone())), out, err)
    }

    #[test]
    fn script_output_and_time_prefix() {
        let (mut o, out, err) = text_output(TextOptions { terminal: Terminal::Color, ..TextOptions::default() });
        let at = UNIX_EPOCH + Duration::from_micros(((13 * 60 + 4) * 60 + 5) * 1_000_000 + 42);
        o.print(&Origin::default(), &[Value::Int(1), Value::str("a"), Value::Nil]).expect("a line written");
        o.printf(&Origin { site: None, time: Some(at) }, b"x=1\n").expect("a line written");
        o.terminal(b"\x1b[0;0m").expect("terminal");
        assert_eq!(out.text(), "1\ta\tnil\n13:04:05.000042 x=1\n\x1b[0;0m");
        assert_eq!(err.text(), "");
    }

    #[test]
    fn terminal_control_only_on_a_terminal() {
        let codes: &[u8] = b"\x1b[1;1H\x1b[J\x1b[31;40m\x1b[0;0mred\n";
        for (terminal, expected) in [
            (Terminal::Color, "\x1b[1;1H\x1b[J\x1b[31;40m\x1b[0;0mred\n"),
            (Terminal::NoColor, "\x1b[1;1H\x1b[Jred\n"),
            (Terminal::None, "red\n"),
        ] {
            let (mut o, out, _) = text_output(TextOptions { terminal, ..TextOptions::default() });
            o.terminal(codes).expect("terminal");
            assert_eq!(out.text(), expected, "{terminal:?}");
        }
        // A cut-off sequence is dropped, not half-written.
        assert_eq!(for_terminal(b"a\x1b[3", Terminal::None), b"a");
    }

    #[test]
    fn banner_goes_where_asked() {
        let (mut o, out, err) = text_output(TextOptions::default());
        o.attached();
        assert_eq!((out.text(), err.text()), (format!("{BANNER}\n"), String::new()));
        let (mut o, out, err) = text_output(TextOptions { banner_to_stderr: true, ..TextOptions::default() });
        o.attached();
        assert_eq!((out.text(), err.text()), (String::new(), format!("{BANNER}\n")));
    }

    #[test]
    fn notices_and_errors_on_the_error_stream() {
        let (mut o, out, err) = text_output(TextOptions::default());
        let events: Vec<String> = (0..7).map(|i| format!("e{i}: no")).collect();
        o.notice(&Notice::NotAttached(&events));
        o.notice(&Notice::LostEvents(3));
        o.error(&Failure { message: "boom", span: None, notes: &["why".to_string()] });
        assert_eq!(out.text(), "");
        let text = err.text();
        assert!(text.starts_with("ktap: warning: 7 events could not be attached and are not traced:\n  e0: no\n"), "{text}");
        assert!(!text.contains("e5"), "{text}");
        assert!(text.ends_with("ktap: warning: 3 events lost (the ring buffer was full)\nktap: error: boom\n  note: why\n"), "{text}");
    }

    #[test]
    fn failed_updates_name_the_full_tables() {
        let (mut o, _, err) = text_output(TextOptions::default());
        o.notice(&Notice::MapFailures { count: 2, full: &[] });
        o.notice(&Notice::MapFailures { count: 5, full: &[("t".into(), 100)] });
        o.notice(&Notice::MapFailures { count: 9, full: &[("s".into(), 8), ("t".into(), 100)] });
        assert_eq!(
            err.text(),
            "ktap: warning: 2 table updates failed (a table was full: size it with table.new(narr, nrec))\n\
             ktap: warning: 5 table updates failed: table `t` is full (100 entries): size it with table.new(narr, nrec)\n\
             ktap: warning: 9 table updates failed: tables `s` (8 entries), `t` (100 entries) are full: size them with table.new(narr, nrec)\n"
        );
    }
}
