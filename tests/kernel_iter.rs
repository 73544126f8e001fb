//! BPF iterators in the live kernel (`iter:TARGET[(PID)]`), checked
//! against ground truth the test makes or reads itself: processes it
//! started and their names in /proc, the files a workload opened
//! (/proc/PID/fd), a socket it bound, a mapping /proc/PID/maps shows; a
//! filter running in the kernel; a pinned iterator answering after ktap
//! exited; `--unpin`; and the clear errors. Compile halves run without
//! root against the fake kernel's BTF; the rest needs root and says why
//! it skips.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use support::{compiles, ktap, need_root, PinDir};

/// Processes the test started, killed when dropped.
struct Workload(Vec<Child>);

impl Workload {
    fn pids(&self) -> Vec<u32> {
        self.0.iter().map(Child::id).collect()
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `n` copies of `sleep` named `name` (a copy of the binary, so the
/// kernel's task name is `name`).
fn sleepers(name: &str, n: usize) -> Workload {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("iter-{name}"));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let bin = dir.join(name);
    if !bin.exists() {
        std::fs::copy("/bin/sleep", &bin).expect("copy sleep");
    }
    let work = Workload((0..n).map(|_| support::spawn_copied(Command::new(&bin).arg("60").stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()))).collect());
    // Until each has exec'ed: a forked child has its parent's name before.
    for pid in work.pids() {
        for _ in 0..200 {
            if std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim_end() == name) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
    work
}

fn have_btf() -> bool {
    if Path::new("/sys/kernel/btf/vmlinux").exists() {
        return true;
    }
    eprintln!("skipped: /sys/kernel/btf/vmlinux is missing");
    false
}

/// Process ids in /proc now.
fn proc_pids() -> BTreeSet<u32> {
    std::fs::read_dir("/proc").expect("/proc").filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect()
}

fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).expect("comm").trim_end().to_string()
}

#[test]
fn iter_task_lists_processes_as_proc_shows_them() {
    let script = "trace iter:task /args.task.pid == args.task.tgid/ { printf(\"%d %s\\n\", args.task.pid, args.task.comm) }";
    compiles(script);
    if !need_root() || !have_btf() {
        return;
    }
    let work = sleepers("ktapitask", 3);
    let before = proc_pids();
    let run = ktap(&["-q", "-e", script]);
    let after = proc_pids();
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    let listed: Vec<(u32, String)> = run
        .stdout
        .lines()
        .map(|l| {
            let (pid, name) = l.split_once(' ').expect("`pid comm`");
            (pid.parse().expect("a pid"), name.to_string())
        })
        .collect();
    for pid in work.pids() {
        let want = (pid, comm(pid));
        assert_eq!(want.1, "ktapitask");
        assert!(listed.contains(&want), "{want:?} missing from:\n{}", run.stdout);
    }
    // Every process that lived through the run is listed, once, with its
    // name (pid 1 aside: this kernel's task iterator starts after it).
    let pids: BTreeSet<u32> = listed.iter().map(|(p, _)| *p).collect();
    assert_eq!(pids.len(), listed.len(), "a process listed twice:\n{}", run.stdout);
    let stable: Vec<u32> = before.intersection(&after).copied().filter(|&p| p != 1).collect();
    let missing: Vec<&u32> = stable.iter().filter(|p| !pids.contains(p)).collect();
    assert!(missing.is_empty(), "processes in /proc not listed: {missing:?}");
    // What /proc never showed is ktap itself and what lived only during
    // the run: a few, on this machine shared with builds.
    let strays: Vec<&(u32, String)> = listed.iter().filter(|(p, _)| !before.contains(p) && !after.contains(p)).collect();
    assert!(strays.iter().any(|(_, c)| c == "ktap"), "ktap itself is not listed: {strays:?}");
    assert!(strays.len() <= 20, "pids never in /proc: {strays:?}");
}

#[test]
fn a_filter_keeps_only_matching_tasks_in_the_kernel() {
    // The body prints every task it runs for; only the filter, in the
    // kernel, keeps the others out: the output holds exactly the workload.
    let script = "trace iter:task /args.task.comm == \"ktapifilt\"/ { printf(\"%d %s\\n\", args.task.pid, args.task.comm) }";
    compiles(script);
    if !need_root() || !have_btf() {
        return;
    }
    let work = sleepers("ktapifilt", 2);
    let run = ktap(&["-q", "-e", script]);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    let mut got: Vec<&str> = run.stdout.lines().collect();
    got.sort_unstable();
    let mut want: Vec<String> = work.pids().iter().map(|p| format!("{p} ktapifilt")).collect();
    want.sort_unstable();
    assert_eq!(got, want);
    // `iter_end` keeps the last, object-less run: one more line.
    let end = "trace iter:task /iter_end || args.task.comm == \"ktapifilt\"/ { print(iter_end, args.task.pid) }";
    let run = ktap(&["-q", "-e", end]);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", run.stdout);
    assert_eq!(lines.last(), Some(&"1\t0"));
}

#[test]
fn iter_task_file_shows_exactly_the_files_a_process_opened() {
    let script = "trace iter:task_file({PID}) { printf(\"%d %s\\n\", args.fd, args.file.f_path.dentry.d_name.name) }";
    if !need_root() || !have_btf() {
        return;
    }
    // Only its own files: what the test process leaves open is closed.
    let child = Command::new("bash")
        .args(["-c", "exec 3</etc/hostname 5</etc/passwd; for fd in $(ls /proc/$$/fd); do [ $fd -gt 5 ] && eval \"exec $fd>&-\"; done; exec sleep 60"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let work = Workload(vec![child]);
    let pid = work.pids()[0];
    // Until the shell has exec'ed sleep with its files.
    for _ in 0..100 {
        if comm(pid) == "sleep" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let run = ktap(&["-q", "-e", &script.replace("{PID}", &pid.to_string())]);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    let mut want: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("fds")
        .map(|e| {
            let e = e.expect("fd");
            let target = std::fs::read_link(e.path()).expect("link");
            format!("{} {}", e.file_name().to_string_lossy(), target.file_name().expect("a file").to_string_lossy())
        })
        .collect();
    want.sort_unstable();
    assert_eq!(want, ["0 null", "1 null", "2 null", "3 hostname", "5 passwd"]);
    let mut got: Vec<&str> = run.stdout.lines().collect();
    got.sort_unstable();
    assert_eq!(got, want);
}

#[test]
fn iter_task_compiles_against_the_fake_kernel() {
    // The fake kernel's BTF has the task and task_file targets: the
    // compiler's side without root or a kernel.
    let c = compiles("trace iter:task_file(7) { printf(\"%d %s\\n\", args.fd, args.task.comm) }");
    let text = ktap::ir::print::module(&c.module);
    assert!(text.contains("seq_printf(\"%lld %s\\n\""), "{text}");
    assert!(text.contains("iter task_file(7)"), "{text}");
    // The end call is skipped: `file` is the object.
    assert!(text.contains("if (ctx.arg3 +0:u64 == 0)"), "{text}");
}

#[test]
fn iter_tcp_shows_a_listening_socket() {
    if !need_root() || !have_btf() {
        return;
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    // TCP_LISTEN is 10 (include/net/tcp_states.h).
    let script = format!("trace iter:tcp /args.sk_common.skc_num == {port}/ {{ printf(\"%d %d %x\\n\", args.sk_common.skc_num, args.sk_common.skc_state, args.sk_common.skc_rcv_saddr) }}");
    let run = ktap(&["-q", "-e", &script]);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    // 127.0.0.1 in network order, read as a little-endian u32.
    assert_eq!(run.stdout, format!("{port} 10 100007f\n"));
    drop(listener);
}

#[test]
fn iter_task_vma_shows_a_file_mapping() {
    if !need_root() || !have_btf() {
        return;
    }
    let work = sleepers("ktapivma", 1);
    let pid = work.pids()[0];
    std::thread::sleep(std::time::Duration::from_millis(50));
    let script = format!("trace iter:task_vma({pid}) /args.vma.vm_file != 0/ {{ printf(\"%x %s\\n\", args.vma.vm_start, args.vma.vm_file.f_path.dentry.d_name.name) }}");
    let run = ktap(&["-q", "-e", &script]);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).expect("maps");
    let mapped: Vec<String> = maps
        .lines()
        .filter(|l| l.ends_with("/ktapivma"))
        .map(|l| format!("{} ktapivma", l.split('-').next().expect("start")))
        .collect();
    assert!(!mapped.is_empty(), "{maps}");
    for m in &mapped {
        assert!(run.stdout.lines().any(|l| l == m), "{m} missing from:\n{}", run.stdout);
    }
}

#[test]
fn a_pinned_iterator_answers_after_ktap_exits() {
    let script = "trace iter:task /args.task.pid == args.task.tgid/ { printf(\"%d %s\\n\", args.task.pid, args.task.comm) }";
    if !need_root() || !have_btf() {
        return;
    }
    let pinned = PinDir(format!("/sys/fs/bpf/ktap-test-{}", std::process::id()).into());
    let dir = pinned.0.to_string_lossy().into_owned();
    let run = ktap(&["-q", "--pin", &dir, "-e", script]);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert!(run.stdout.is_empty(), "a pinned iterator is not run: {}", run.stdout);
    let file = format!("{dir}/task");
    assert!(run.stderr.contains(&file), "{}", run.stderr);
    // Pinning over it is refused.
    let again = ktap(&["-q", "--pin", &dir, "-e", script]);
    assert_eq!(again.code, Some(1));
    assert!(again.stderr.contains("the file exists"), "{}", again.stderr);
    // A process started after ktap exited shows up in a fresh read.
    let work = sleepers("ktapipin", 1);
    let text = std::fs::read_to_string(&file).expect("read the pinned iterator");
    let line = format!("{} ktapipin", work.pids()[0]);
    assert!(text.lines().any(|l| l == line), "{line} missing from:\n{text}");
    let un = ktap(&["--unpin", &dir]);
    assert_eq!(un.code, Some(0), "stderr: {}", un.stderr);
    assert_eq!(un.stdout, format!("unpinned {file}\n"));
    assert!(!Path::new(&dir).exists(), "--unpin leaves {dir}");
}

#[test]
fn pinning_refuses_what_needs_ktap_and_places_off_bpffs() {
    if !need_root() || !have_btf() {
        return;
    }
    let run = ktap(&["-q", "--pin", "/tmp/ktap-not-bpffs", "-e", "trace iter:task { print(args.task.pid) }"]);
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains("not on a BPF filesystem"), "{}", run.stderr);
    assert!(!Path::new("/tmp/ktap-not-bpffs").exists());
    let pinned = PinDir(format!("/sys/fs/bpf/ktap-test-refuse-{}", std::process::id()).into());
    let run = ktap(&["-q", "--pin", &pinned.0.to_string_lossy(), "-e", "var t = {}\ntrace iter:task { print_hist(t) }"]);
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains("a pinned iterator runs without ktap"), "{}", run.stderr);
    assert!(run.stderr.contains("<command line>:2:19"), "{}", run.stderr);
}

#[test]
fn bad_iterators_are_clear_errors_at_their_spans() {
    if !have_btf() {
        return;
    }
    let cases: &[(&str, &str)] = &[
        ("trace iter:taks { print(1) }", "1:12: no iterator target `taks` in this kernel"),
        ("trace iter:tcp(12) { print(1) }", "1:16: `iter:tcp` takes no parameter"),
        ("trace iter:task(me) { print(1) }", "1:17: `iter:task` takes a process id, not `me`"),
        (
            "trace iter:task { printf(\"%d %d %d %d %d %d %d %d %d %d %d %d %d\", pid, pid, pid, pid, pid, pid, pid, pid, pid, pid, pid, pid, pid) }",
            "1:19: printf() in an iterator prints at most 12 values, not 13",
        ),
        ("trace iter:task { printf(\"%o\", args.task.pid) }", "1:26: the kernel's seq_printf has no `%o`"),
    ];
    for (script, want) in cases {
        let run = ktap(&["-e", script]);
        assert_eq!(run.code, Some(1), "{script}: {}", run.stderr);
        let (at, msg) = want.split_once(": ").expect("at: message");
        assert!(run.stderr.contains(msg), "{script}: {}", run.stderr);
        assert!(run.stderr.contains(&format!("<command line>:{at}")), "{script}: {}", run.stderr);
    }
    let run = ktap(&["-e", "trace iter:taks { print(1) }"]);
    assert!(run.stderr.contains("did you mean `iter:task`"), "{}", run.stderr);
    if !need_root() {
        return;
    }
    let run = ktap(&["-e", "trace iter:task_file(999999999) { print(1) }"]);
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains("no process 999999999"), "{}", run.stderr);
}

#[test]
fn iterators_are_listed_with_their_fields() {
    if !have_btf() {
        return;
    }
    let run = ktap(&["-le", "iter:*"]);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    for t in ["iter:task", "iter:task_file", "iter:task_vma", "iter:tcp", "iter:bpf_map"] {
        assert!(lines.contains(&t), "{t} missing:\n{}", run.stdout);
    }
    assert!(!lines.contains(&"iter:get_info") && !lines.iter().any(|l| l.contains("_new")), "{}", run.stdout);
    let run = ktap(&["-le", "iter:task_file", "-v"]);
    assert_eq!(run.stdout.lines().collect::<Vec<_>>()[..4], ["iter:task_file", "    args.task        struct task_struct *", "    args.fd          u32", "    args.file        struct file *"]);
}

#[test]
fn iterator_output_follows_output_options() {
    let script = "trace iter:task /args.task.comm == \"ktapiout\"/ { printf(\"%d\\n\", args.task.pid) }\ntrace_end { print(\"end\") }";
    if !need_root() || !have_btf() {
        return;
    }
    let work = sleepers("ktapiout", 1);
    let pid = work.pids()[0];
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("iter-out.txt");
    let run = ktap(&["-q", "-o", out.to_str().expect("utf-8"), "-e", script]);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert_eq!(run.stdout, "");
    assert_eq!(std::fs::read_to_string(&out).expect("-o file"), format!("{pid}\nend\n"));
    let run = ktap(&["-q", "-f", "json", "-e", script]);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    let first: serde_json::Value = serde_json::from_str(run.stdout.lines().next().expect("a line")).expect("json");
    assert!(first.to_string().contains(&format!("{pid}\\n")), "{}", run.stdout);
}

#[test]
fn tables_globals_and_twelve_strings_work_in_an_iterator() {
    // Aggregates and globals the iterator writes are seen by trace_end;
    // twelve strings (the most bpf_seq_printf takes) pass the verifier
    // through scratch space.
    let c = "args.task.comm";
    let twelve = format!("trace iter:task /args.task.comm == \"ktapitwelve\"/ {{ printf(\"{}\\n\", {}) }}", ["%s"; 12].join(" "), [c; 12].join(", "));
    let counts = "var n = 0\nvar by = {}\ntrace iter:task { n += 1 by[args.task.comm] += 1 }\ntrace_end { print(n > 3, by[\"ktapitwelve\"]) }";
    compiles(&twelve);
    compiles(counts);
    if !need_root() || !have_btf() {
        return;
    }
    let _work = sleepers("ktapitwelve", 3);
    let run = ktap(&["-q", "-e", &twelve]);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert_eq!(run.stdout, format!("{}\n", ["ktapitwelve"; 12].join(" ")).repeat(3));
    let run = ktap(&["-q", "-e", counts]);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert_eq!(run.stdout, "true\t3\n");
}

#[test]
fn iter_cgroup_walks_a_cgroup_and_those_under_it() {
    if !need_root() || !have_btf() {
        return;
    }
    // A cgroup hierarchy of this machine (v2 at /sys/fs/cgroup, or a v1
    // controller's), with two cgroups the test makes under it.
    let root = ["/sys/fs/cgroup/cgroup.procs", "/sys/fs/cgroup/pids/cgroup.procs", "/sys/fs/cgroup/cpu/cgroup.procs"]
        .iter()
        .map(|p| Path::new(p).parent().expect("dir").to_path_buf())
        .find(|d| d.join("cgroup.procs").exists());
    let Some(root) = root else {
        eprintln!("skipped: no cgroup hierarchy found");
        return;
    };
    let top = root.join(format!("ktap-iter-{}", std::process::id()));
    let inner = top.join("inner");
    std::fs::create_dir_all(&inner).expect("mkdir cgroups");
    let script = format!("trace iter:cgroup({}) {{ printf(\"%d %s\\n\", args.cgroup.level, args.cgroup.kn.name) }}", top.display());
    let run = ktap(&["-q", "-e", &script]);
    let _ = std::fs::remove_dir(&inner);
    let _ = std::fs::remove_dir(&top);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    let base: i64 = run.stdout.lines().next().and_then(|l| l.split(' ').next()?.parse().ok()).expect("a level");
    assert_eq!(run.stdout, format!("{base} {}\n{} inner\n", top.file_name().expect("name").to_string_lossy(), base + 1));
}

#[test]
fn iter_cgroup_without_a_path_starts_at_the_unified_root() {
    // Wherever this machine mounts cgroup v2 (/sys/fs/cgroup, or
    // /sys/fs/cgroup/unified beside v1 controllers), the walk starts at
    // its root: one cgroup of level 0, visited first.
    if !need_root() || !have_btf() {
        return;
    }
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    if !mounts.lines().any(|l| l.split_whitespace().nth(2) == Some("cgroup2")) {
        eprintln!("skipped: no cgroup2 hierarchy mounted");
        return;
    }
    let script = "var roots = 0\nvar first = -1\n\
        trace iter:cgroup { if (first < 0) { first = args.cgroup.level } if (args.cgroup.level == 0) { roots += 1 } }\n\
        trace_end { print(first, roots) }";
    let run = ktap(&["-q", "-e", script]);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert_eq!(run.stdout, "0\t1\n", "stderr: {}", run.stderr);
}

#[test]
fn every_target_of_the_kernel_loads_or_is_refused_clearly() {
    // The verifier accepts what the compiler accepts: each target listed
    // loads (`-d`: load, attach nothing), or is refused at its span before
    // that (the map-element targets).
    if !need_root() || !have_btf() {
        return;
    }
    let list = ktap(&["-le", "iter:*"]);
    let targets: Vec<&str> = list.stdout.lines().filter_map(|l| l.strip_prefix("iter:")).collect();
    assert!(targets.len() >= 10, "{}", list.stdout);
    let mut refused = Vec::new();
    for t in &targets {
        let script = format!("var n = 0\ntrace iter:{t} {{ n += 1 print(n) }}");
        let run = ktap(&["-d", "-q", "-e", &script]);
        if run.code == Some(0) {
            continue;
        }
        let named = run.stderr.contains("ktap cannot name yet") || run.stderr.contains("walks one BPF map: name it");
        assert!(named && run.stderr.contains("<command line>:2:12"), "iter:{t}: {}", run.stderr);
        refused.push(*t);
    }
    for t in &refused {
        assert!(["bpf_map_elem", "sockmap", "bpf_sk_storage_map"].contains(t), "iter:{t} refused");
    }
}

/// A BPF map the test made and pinned under /sys/fs/bpf, unpinned (and
/// closed) when dropped.
struct TestMap {
    map: libbpf_rs::MapHandle,
    path: String,
    id: u32,
}

impl Drop for TestMap {
    fn drop(&mut self) {
        let _ = self.map.unpin(&self.path);
    }
}

/// A hash map of `u32` keys and `u64` values holding `entries`, pinned
/// at /sys/fs/bpf/ktap-test-NAME-PID; with `btf`, typed by a BTF the
/// test loads (a `__u32` key, a `struct pair { __u32 a; __u32 b; u64 c; }`
/// of 16 bytes as the value, `c` holding the u64).
fn test_map(name: &str, entries: &[(u32, u64)], btf: bool) -> TestMap {
    use libbpf_rs::libbpf_sys;
    use libbpf_rs::MapCore;
    let mut opts = libbpf_sys::bpf_map_create_opts { sz: size_of::<libbpf_sys::bpf_map_create_opts>() as _, ..Default::default() };
    let mut value_size = 8;
    if btf {
        use ktap::btf::write::{BtfBuilder, BtfMember};
        let mut b = BtfBuilder::new();
        let u32_ = b.add_int("unsigned int", 4, false);
        let u64_ = b.add_int("long long unsigned int", 8, false);
        let key = b.add_typedef("__u32", u32_);
        let m = |name: &str, ty, byte: u32| BtfMember { name: name.to_string(), ty, bit_offset: byte * 8 };
        let value = b.add_struct("pair", 16, &[m("a", key, 0), m("b", u32_, 4), m("c", u64_, 8)]);
        let blob = b.to_bytes();
        // SAFETY: a BTF blob and its length; a descriptor or -1.
        let fd = unsafe { libbpf_sys::bpf_btf_load(blob.as_ptr().cast(), blob.len() as _, std::ptr::null_mut()) };
        assert!(fd >= 0, "load BTF: {}", std::io::Error::last_os_error());
        opts.btf_fd = fd as u32;
        opts.btf_key_type_id = key.0;
        opts.btf_value_type_id = value.0;
        value_size = 16;
    }
    let map = libbpf_rs::MapHandle::create(libbpf_rs::MapType::Hash, Some(name), 4, value_size, 64, &opts).expect("create the map");
    if btf {
        // SAFETY: the BTF descriptor the map holds its own reference to.
        unsafe { libc::close(opts.btf_fd as i32) };
    }
    for (k, v) in entries {
        let value: Vec<u8> = if btf { [&k.wrapping_mul(3).to_le_bytes()[..], &[0; 4], &v.to_le_bytes()].concat() } else { v.to_le_bytes().to_vec() };
        map.update(&k.to_le_bytes(), &value, libbpf_rs::MapFlags::ANY).expect("update");
    }
    let id = map.info().expect("info").info.id;
    let path = format!("/sys/fs/bpf/ktap-test-{name}-{}", std::process::id());
    let mut map = map;
    map.pin(&path).expect("pin");
    TestMap { map, path, id }
}

#[test]
fn iter_bpf_map_elem_walks_a_map_by_id_and_by_path() {
    // The compiler's side without root: the fake kernel's maps.
    let c = compiles("trace iter:bpf_map_elem(13) { printf(\"%d %d\\n\", args.key, args.value.b) }");
    let text = ktap::ir::print::module(&c.module);
    assert!(text.contains("ctx.arg2->+0 +0:u32, ctx.arg3->+0 +8:u64"), "{text}");
    if !need_root() || !have_btf() {
        return;
    }
    let entries: Vec<(u32, u64)> = vec![(1, 100), (7, 700), (42, 1 << 40), (u32::MAX, u64::MAX)];
    let plain = test_map("plain", &entries, false);
    let typed = test_map("typed", &entries, true);
    let scripts = [
        (format!("trace iter:bpf_map_elem({}) {{ printf(\"%u %u\\n\", args.key, args.value) }}", plain.id), "ctx.arg2->+0 +0:u32, ctx.arg3->+0 +0:u64"),
        (format!("trace iter:bpf_map_elem({}) {{ printf(\"%u %u\\n\", args.key, args.value) }}", plain.path), "ctx.arg2->+0 +0:u32, ctx.arg3->+0 +0:u64"),
        (format!("trace iter:bpf_map_elem({}) {{ printf(\"%u %u\\n\", args.key, args.value.c) }}", typed.id), "ctx.arg2->+0 +0:u32, ctx.arg3->+0 +8:u64"),
        (format!("trace iter:bpf_map_elem({}) {{ printf(\"%u %u\\n\", args.key, args.value.c) }}", typed.path), "ctx.arg2->+0 +0:u32, ctx.arg3->+0 +8:u64"),
    ];
    let mut want: Vec<String> = entries.iter().map(|(k, v)| format!("{k} {v}")).collect();
    want.sort_unstable();
    for (script, loads) in &scripts {
        // Typed by the live map's sizes and BTF.
        let ir = ktap(&["--emit", "ir", "-e", script]);
        assert_eq!(ir.code, Some(0), "{script}: {}", ir.stderr);
        assert!(ir.stdout.contains(loads), "{script}:\n{}", ir.stdout);
        let run = ktap(&["-q", "-e", script]);
        if run.code == Some(1) && run.stderr.contains("this kernel refuses `iter:bpf_map_elem` programs") {
            // This development kernel refuses every program of the
            // target (EPERM before verifying, even an empty one): the
            // clear error is what there is to check.
            assert!(run.stderr.contains("<command line>:1:1"), "{}", run.stderr);
            eprintln!("skipped walking: this kernel refuses `iter:bpf_map_elem` programs");
            continue;
        }
        assert_eq!(run.code, Some(0), "{script}: {}", run.stderr);
        let mut got: Vec<&str> = run.stdout.lines().collect();
        got.sort_unstable();
        assert_eq!(got, want, "{script}");
    }
    // The struct's other members, by BTF: `a` is the key times 3.
    let script = format!("trace iter:bpf_map_elem({}) {{ print(args.value.a == args.key * 3, args.value.bb) }}", typed.id);
    let run = ktap(&["-e", &script]);
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains("`struct pair` has no member `bb`") && run.stderr.contains("did you mean `b`?"), "{}", run.stderr);
    // A path that is no map, an id that is none.
    let run = ktap(&["-e", "trace iter:bpf_map_elem(/sys/fs/bpf/ktap-test-none) { print(1) }"]);
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains("/sys/fs/bpf/ktap-test-none is not a pinned BPF map") && run.stderr.contains("<command line>:1:25"), "{}", run.stderr);
    let run = ktap(&["-e", "trace iter:bpf_map_elem(4000000000) { print(1) }"]);
    assert!(run.stderr.contains("no BPF map has id 4000000000"), "{}", run.stderr);
    let run = ktap(&["-le", "iter:bpf_map_elem", "-v"]);
    assert!(run.stdout.contains("args.key         the map's key type (its BTF, or an unsigned integer of its size)"), "{}", run.stdout);
}
