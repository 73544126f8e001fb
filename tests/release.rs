//! The release binary (`scripts/release.sh`) is self-contained: `ldd` finds
//! nothing but the C library (glibc, libgcc_s) in it, and it runs a
//! one-liner from a directory outside the build tree with an empty
//! `LD_LIBRARY_PATH`. Slow (it builds libbpf, libelf and zlib from source),
//! so it runs only when asked:
//!   KTAP_RELEASE_TEST=1 cargo test --test release     (builds, then checks)
//!   KTAP_RELEASE_BIN=dist/ktap cargo test --test release   (checks a build)
//! and says so when it skips.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

/// The binary to check: given, or built now; `None` when not asked.
fn release_binary() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    if let Some(bin) = std::env::var_os("KTAP_RELEASE_BIN") {
        return Some(root.join(bin));
    }
    std::env::var_os("KTAP_RELEASE_TEST")?;
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("release/ktap");
    let st = Command::new(root.join("scripts/release.sh")).arg(&out).status().expect("run scripts/release.sh");
    assert!(st.success(), "scripts/release.sh failed");
    Some(out)
}

/// Libraries every Linux machine with a C library has.
const BASE_LIBS: &[&str] = &["linux-vdso.so", "libc.so", "libm.so", "libgcc_s.so", "ld-linux-x86-64.so", "libpthread.so", "libdl.so", "librt.so"];

#[test]
fn release_binary_is_self_contained() {
    let Some(bin) = release_binary() else {
        eprintln!("skipped release_binary_is_self_contained: set KTAP_RELEASE_TEST=1 (build and check, minutes) or KTAP_RELEASE_BIN=PATH (check a build)");
        return;
    };
    let ldd = Command::new("ldd").arg(&bin).output().expect("run ldd");
    let text = String::from_utf8_lossy(&ldd.stdout).into_owned() + &String::from_utf8_lossy(&ldd.stderr);
    let foreign: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.contains("statically linked") && !l.contains("not a dynamic executable"))
        .filter(|l| !BASE_LIBS.iter().any(|b| l.starts_with(b) || l.contains(&format!("/{b}"))))
        .collect();
    assert!(foreign.is_empty(), "{} needs more than the C library:\n{}", bin.display(), foreign.join("\n"));
    for lib in ["libbpf", "libelf", "libz"] {
        assert!(!text.contains(lib), "{lib} is linked dynamically:\n{text}");
    }
    // A copy in an empty directory outside the build tree, with no
    // library path and a bare environment.
    let dir = std::env::temp_dir().join(format!("ktap-release-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let copy = dir.join("ktap");
    std::fs::copy(&bin, &copy).expect("copy the binary");
    let run = |args: &[&str]| {
        Command::new(&copy).args(args).current_dir(&dir).env_clear().env("PATH", "/usr/bin:/bin").env("LD_LIBRARY_PATH", "").output().expect("run the copy")
    };
    let out = run(&["-e", "print(\"hello\", 6 * 7)"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello\t42\n", "{}", String::from_utf8_lossy(&out.stderr));
    if support::need_root() {
        // Loads and attaches: libbpf, libelf and zlib at work.
        // The command's exec, once released, is an execve of its own.
        let out = run(&["-q", "-e", "var n = 0 trace syscalls:sys_enter_execve { n += 1 } trace_end { print(n > 0) }", "--", "true"]);
        assert_eq!(String::from_utf8_lossy(&out.stdout), "true\n", "{}", String::from_utf8_lossy(&out.stderr));
    }
    let _ = std::fs::remove_dir_all(&dir);
}
