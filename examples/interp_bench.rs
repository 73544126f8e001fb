//! Runs one ktap script in the userspace interpreter (main, then
//! trace_end) and reports the CPU time it took on stderr (`time: SECONDS`,
//! the same clock as Lua's `os.clock`). Used by scripts/bench/interp.sh;
//! the script's own output goes to stdout. `--dump` prints the compiled
//! code instead of running it.

use ktap::runtime::interp::{run_userspace, Interp, Options};

fn main() {
    let mut argv = std::env::args().skip(1).peekable();
    let dump = argv.next_if_eq("--dump").is_some();
    let Some(path) = argv.next() else {
        eprintln!("usage: interp_bench [--dump] SCRIPT [ARGS...]");
        std::process::exit(2);
    };
    let src = match std::fs::read_to_string(&path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{path}: {e}");
            std::process::exit(2);
        }
    };
    let (program, diags) = ktap::frontend::parse(&src);
    if diags.iter().any(|d| d.is_error()) {
        eprint!(
            "{}",
            ktap::frontend::diag::render(&path, &src, &diags, false)
        );
        std::process::exit(1);
    }
    let opts = Options {
        script_path: path.clone(),
        args: argv.collect(),
        ..Options::default()
    };
    if dump {
        match Interp::new(&program, opts, Box::new(std::io::sink())) {
            Ok(i) => print!("{}", i.disassemble()),
            Err(e) => eprintln!("error: {}", e.message),
        }
        return;
    }
    let start = cpu_seconds();
    let result = run_userspace(&program, opts, Box::new(std::io::stdout()));
    let elapsed = cpu_seconds() - start;
    if let Err(e) = result {
        let at = e
            .span
            .map(|s| ktap::frontend::diag::location(&path, &src, s.start));
        eprintln!("error: {} ({})", e.message, at.unwrap_or_default());
        std::process::exit(1);
    }
    eprintln!("time: {elapsed:.4}");
}

/// CPU time used by this process so far.
fn cpu_seconds() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for the kernel to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}
