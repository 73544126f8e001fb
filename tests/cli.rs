//! The command line as users meet it: the listings (`-le`, `-lf`, `-lm`,
//! with `-v`), `-p PID` and `-- CMD` ending tracing (and the command's
//! exit status), SIGHUP, `ansi.*` in a pipe, `--help`, and the generated
//! man page and completions. Tests that read tracefs or attach need root
//! and say so when they skip.

mod support;

use std::time::Duration;
use support::{finish, ktap, ktap_command, need_root};

#[test]
fn le_lists_events_and_v_their_arguments() {
    if !need_root() {
        return;
    }
    let run = ktap(&["-le", "syscalls:sys_enter_openat"]);
    assert_eq!((run.code, run.stdout.as_str()), (Some(0), "syscalls:sys_enter_openat\n"), "{}", run.stderr);
    // ktap's numbering: arg0 is the syscall number, then the arguments.
    let run = ktap(&["-le", "syscalls:sys_enter_openat", "-v"]);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines[0], "syscalls:sys_enter_openat");
    assert_eq!(lines[1].split_whitespace().collect::<Vec<_>>(), ["arg0", "int", "__syscall_nr"], "{}", run.stdout);
    assert!(lines[3].starts_with("    arg2  ") && lines[3].ends_with("filename"), "{}", run.stdout);
    // `-l` and `--list` are the same listing; a glob without `:` matches
    // event names too.
    let short = ktap(&["-l", "*sched_switch"]);
    assert_eq!(short.stdout, "sched:sched_switch\n");
    assert_eq!(ktap(&["--list", "*sched_switch"]).stdout, short.stdout);
    // Every listed tracepoint compiles when pasted after `trace`.
    let all = ktap(&["-le", "sched:*"]);
    assert!(all.stdout.lines().count() > 5, "{}", all.stdout);
    for spec in all.stdout.lines().take(3) {
        let run = ktap(&["--emit", "ir", "-e", &format!("trace {spec} {{ }}")]);
        assert_eq!(run.code, Some(0), "{spec}: {}", run.stderr);
    }
}

#[test]
fn lf_and_lm_print_ready_to_paste_specs() {
    if !need_root() {
        return;
    }
    let target = support::c_program("target", &["-O1", "-g"]);
    let bin = target.to_str().expect("utf-8 path");
    let run = ktap(&["-lf", bin, "ktap_add*"]);
    assert_eq!(run.stdout, format!("probe:{bin}:ktap_add3\n"), "{}", run.stderr);
    let run = ktap(&["-lf", bin, "ktap_add3", "-v"]);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(lines[1].starts_with("    file offset 0x"), "{}", run.stdout);
    // Built with -g: the parameters from its DWARF, with their types and
    // where they live at the entry (-O1: registers).
    assert_eq!(&lines[2..5], ["    a: long int  at %di", "    b: long int  at %si", "    c: long int  at %dx"], "{}", run.stdout);
    let run = ktap(&["-lm", bin, "-v"]);
    assert!(run.stdout.contains(&format!("sdt:{bin}:ktap_test:plain\n    arg1  ")), "{}", run.stdout);
    assert!(run.stdout.contains(&format!("sdt:{bin}:ktap_test:guarded\n")), "{}", run.stdout);
    assert!(run.stdout.contains("semaphore"), "{}", run.stdout);
    // `-l` lists them too, given a glob that names the binary, as it
    // lists its functions.
    let run = ktap(&["-l", &format!("sdt:{bin}:*")]);
    let mut listed: Vec<&str> = run.stdout.lines().collect();
    listed.sort_unstable();
    assert_eq!(listed, [format!("sdt:{bin}:ktap_test:guarded"), format!("sdt:{bin}:ktap_test:plain")], "{}", run.stderr);
    let run = ktap(&["-l", &format!("sdt:{bin}:*:pl*")]);
    assert_eq!(run.stdout, format!("sdt:{bin}:ktap_test:plain\n"), "{}", run.stderr);
    // A listed spec compiles as it is printed.
    let run = ktap(&["-d", "-e", &format!("trace sdt:{bin}:ktap_test:plain {{ }} trace probe:{bin}:ktap_add3 {{ }}")]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let run = ktap(&["-lf", bin, "no_such_function_*"]);
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains("no function matches `no_such_function_*`"), "{}", run.stderr);
}

#[test]
fn the_command_ends_tracing_and_gives_its_status() {
    let script = "trace syscalls:sys_enter_getppid { }";
    support::compiles(script);
    if !need_root() {
        return;
    }
    let run = ktap(&["-q", "-e", script, "--", "sh", "-c", "exit 7"]);
    assert_eq!(run.code, Some(7), "{}", run.stderr);
    let run = ktap(&["-q", "-e", script, "--", "true"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    // A script that calls exit() decides: ktap's own status.
    let run = ktap(&["-q", "-e", &format!("{script} trace_end {{ exit() }}"), "--", "sh", "-c", "exit 7"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
}

#[test]
fn tracing_ends_when_the_p_process_exits() {
    let script = "trace syscalls:sys_enter_getppid { } trace_end { print(\"ended\") }";
    support::compiles(script);
    if !need_root() {
        return;
    }
    let mut sleeper = std::process::Command::new("sleep").arg("1").spawn().expect("start sleep");
    let pid = sleeper.id().to_string();
    let run = finish(ktap_command(&["-q", "-p", &pid, "-e", script]).spawn().expect("start ktap"), Duration::from_secs(30));
    let _ = sleeper.wait();
    assert_eq!((run.code, run.stdout.as_str()), (Some(0), "ended\n"), "{}", run.stderr);
    let run = ktap(&["-p", "999999999", "-e", script]);
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains("no process with pid 999999999"), "{}", run.stderr);
}

#[test]
fn sighup_stops_tracing_like_sigterm() {
    let script = "trace syscalls:sys_enter_getppid { } trace_end { print(\"ended\") }";
    support::compiles(script);
    if !need_root() {
        return;
    }
    let mut child = ktap_command(&["-e", script]).spawn().expect("start ktap");
    // The banner says it is attached.
    let mut stdout = child.stdout.take().expect("stdout");
    let mut seen = Vec::new();
    let mut byte = [0u8];
    while !seen.ends_with(b"Ctrl-C to end.\n") {
        let n = std::io::Read::read(&mut stdout, &mut byte).expect("read banner");
        assert_eq!(n, 1, "ktap ended before its banner: {}", String::from_utf8_lossy(&seen));
        seen.push(byte[0]);
    }
    // SAFETY: signalling the ktap this test started, by its pid.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGHUP) };
    child.stdout = Some(stdout);
    let run = finish(child, Duration::from_secs(30));
    assert_eq!((run.code, run.stdout.as_str()), (Some(0), "ended\n"), "{}", run.stderr);
}

#[test]
fn ansi_writes_nothing_into_a_pipe() {
    // Userspace only: no root needed. Tests pipe ktap's output.
    let run = ktap(&["-e", "ansi.clear_screen() ansi.set_color(31) print(\"red\") ansi.reset_color() ansi.new_line()"]);
    assert_eq!((run.code, run.stdout.as_str()), (Some(0), "red\n\n"), "{}", run.stderr);
}

#[test]
fn help_man_page_and_completions_come_from_the_flags() {
    let help = ktap(&["--help"]);
    assert!(help.stdout.contains("Examples:") && help.stdout.contains("-le 'sched:*' -v"), "{}", help.stdout);
    let man = ktap(&["--generate", "man"]);
    assert_eq!(man.code, Some(0), "{}", man.stderr);
    assert!(man.stdout.contains(".TH ktap 1") && man.stdout.contains("list\\-events"), "{}", man.stdout);
    assert!(man.stdout.contains("Examples:"), "{}", man.stdout);
    for (shell, mark) in [("bash", "complete -F"), ("zsh", "#compdef ktap"), ("fish", "complete -c ktap")] {
        let run = ktap(&["--generate", shell]);
        assert_eq!(run.code, Some(0), "{shell}: {}", run.stderr);
        assert!(run.stdout.contains(mark) && run.stdout.contains("list-functions"), "{shell}: {}", run.stdout);
    }
}

#[test]
fn install_puts_binary_tapsets_man_page_and_completions_under_the_prefix() {
    let stage = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("install-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&stage);
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/install.sh");
    let out = std::process::Command::new(script)
        .arg("/opt/ktap")
        .env("DESTDIR", &stage)
        .env("KTAP_BIN", support::KTAP)
        .output()
        .expect("run install.sh");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let root = stage.join("opt/ktap");
    for (file, mark) in [
        ("share/man/man1/ktap.1", ".TH ktap 1"),
        ("share/bash-completion/completions/ktap", "complete -F"),
        ("share/zsh/site-functions/_ktap", "#compdef ktap"),
        ("share/fish/vendor_completions.d/ktap.fish", "complete -c ktap"),
    ] {
        let text = std::fs::read_to_string(root.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(text.contains(mark), "{file}: {text}");
    }
    let installed = std::process::Command::new(root.join("bin/ktap")).arg("-V").output().expect("run installed ktap");
    assert!(String::from_utf8_lossy(&installed.stdout).starts_with("ktap "), "{installed:?}");
    // The installed binary finds the installed tapsets (PREFIX/share/ktap/tapsets).
    assert!(root.join("share/ktap/tapsets/errno.kp").is_file());
    let tapset = std::process::Command::new(root.join("bin/ktap"))
        .args(["-e", "print(errno.name(2))"])
        .env_remove("KTAP_PATH")
        .output()
        .expect("run installed ktap");
    assert_eq!(String::from_utf8_lossy(&tapset.stdout), "ENOENT\n", "{tapset:?}");
    let _ = std::fs::remove_dir_all(&stage);
}

/// ktap on a terminal (util-linux `script` gives it one): `ansi.*` and
/// diagnostics in colour, none with `NO_COLOR`.
#[test]
fn colours_on_a_terminal_unless_no_color() {
    if std::process::Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped colours_on_a_terminal_unless_no_color: no `script` command to give ktap a terminal");
        return;
    }
    let on_terminal = |script: &str, no_color: bool| {
        let cmd = format!("{} -e '{script}'", support::KTAP);
        let mut c = std::process::Command::new("script");
        c.args(["-qec", &cmd, "/dev/null"]).env_remove("NO_COLOR");
        if no_color {
            c.env("NO_COLOR", "1");
        }
        String::from_utf8_lossy(&c.output().expect("run script").stdout).into_owned()
    };
    let ansi = "ansi.clear_screen() ansi.set_color(31) print(1) ansi.reset_color()";
    let out = on_terminal(ansi, false);
    assert!(out.contains("\x1b[1;1H\x1b[J\x1b[31m1"), "{out:?}");
    let out = on_terminal(ansi, true);
    assert!(out.contains("\x1b[1;1H\x1b[J1") && !out.contains("\x1b[31m"), "{out:?}");
    // A diagnostic: coloured on a terminal, plain with NO_COLOR.
    let out = on_terminal("print(", false);
    assert!(out.contains("error") && out.contains("\x1b["), "{out:?}");
    let out = on_terminal("print(", true);
    assert!(out.contains("error") && !out.contains("\x1b["), "{out:?}");
}
