//! Kernel types in the live kernel: `btf:` (tp_btf) probes read their
//! typed arguments and member chains, `curtask` reads the current task,
//! with exact values from workloads whose ids they print. Compile halves
//! run without root; the rest needs root and the kernel's BTF, and says
//! why it skips.

mod support;

use std::path::PathBuf;
use std::process::Command;
use support::{compiles, ktap, need_root, traced};

/// Builds (once per process) the ping-pong workload of tests/btf/.
fn pingpong() -> PathBuf {
    static BUILD: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/btf/pingpong.c");
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ktap-pingpong");
    let st = Command::new("gcc").args(["-O1", "-pthread", "-o"]).arg(&out).arg(&src).status().expect("run gcc");
    assert!(st.success(), "gcc failed on {}", src.display());
    out
}

fn have_btf() -> bool {
    if std::path::Path::new("/sys/kernel/btf/vmlinux").exists() {
        return true;
    }
    eprintln!("skipped: /sys/kernel/btf/vmlinux is missing");
    false
}

/// "pid P ppid Q ping T1 pong T2" as numbers.
fn ids(line: &str) -> Vec<i64> {
    line.split_whitespace().filter_map(|w| w.parse().ok()).collect()
}

#[test]
fn sched_switch_sees_two_threads_handing_the_cpu_over() {
    // Pinned to one CPU, each round switches ping -> pong and back; the
    // probe runs only for the workload (`-- CMD`), where the current task
    // is the one switched out.
    let script = "var by_pid = {}\nvar by_name = {}\nvar parent = 0\nvar odd = 0\n\
        trace btf:sched_switch /(args.prev.comm == \"ping\" || args.prev.comm == \"pong\") && (args.next->comm == \"ping\" || args.next->comm == \"pong\")/ {\n\
          by_pid[args.prev.pid * 10000000 + args.next.pid] += 1\n\
          by_name[args.prev.comm .. \">\" .. args.next.comm] += 1\n\
          parent = curtask.real_parent.tgid\n\
          odd += (curtask.pid != args.prev.pid) + (curtask.tgid != pid) + (curtask.pid != tid) + (arg1 != curtask)\n\
        }\n\
        trace_end { for (k, v in pairs(by_pid)) { print(k, v >= 500, v <= 1003) } for (k, v in pairs(by_name)) { print(k, v >= 500) } print(\"parent\", parent) print(\"odd\", odd) }";
    compiles(script);
    if !need_root() || !have_btf() {
        return;
    }
    let bin = pingpong();
    let bin = bin.to_str().expect("utf-8 path");
    let run = ktap(&["-q", "-e", script, "--", "taskset", "-c", "1", bin, "1000"]);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    let mut lines: Vec<&str> = run.stdout.lines().collect();
    let first = lines.iter().position(|l| l.starts_with("pid ")).expect("the workload's ids");
    let id = ids(lines.remove(first));
    let (ppid, ping, pong) = (id[1], id[2], id[3]);
    lines.sort_unstable();
    let mut want = vec![
        format!("{}\ttrue\ttrue", ping * 10_000_000 + pong),
        format!("{}\ttrue\ttrue", pong * 10_000_000 + ping),
        "ping>pong\ttrue".to_string(),
        "pong>ping\ttrue".to_string(),
        format!("parent\t{ppid}"),
        "odd\t0".to_string(),
    ];
    want.sort_unstable();
    assert_eq!(lines, want, "stdout: {}\nstderr: {}", run.stdout, run.stderr);
}

#[test]
fn curtask_in_a_classic_tracepoint() {
    // The current task of a syscall event: its ids are the helpers', its
    // parent the test process that started the workload, and its name the
    // workload's.
    let script = "var bad = 0\nvar n = 0\nvar parent = 0\nvar name = \"\"\n\
        trace syscalls:sys_enter_getppid /pid == {PID}/ {\n\
          bad += (curtask.tgid != pid) + (curtask->pid != tid)\n\
          n += 1\n\
          parent = curtask.real_parent.tgid\n\
          name = curtask.comm\n\
        }\n\
        trace_end { print(n, bad, parent, name) }";
    compiles(script);
    if !need_root() || !have_btf() {
        return;
    }
    let run = traced(script, 2, 500, true);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert_eq!(run.stdout, format!("1000\t0\t{}\tktap-workload\n", std::process::id()), "stderr: {}", run.stderr);
}

#[test]
fn typing_errors_name_the_members() {
    let run = ktap(&["-e", "trace btf:sched_switch { print(args.prev.pdi) }"]);
    if !have_btf() {
        return;
    }
    assert_eq!(run.code, Some(1), "stderr: {}", run.stderr);
    assert!(run.stderr.contains("`struct task_struct` has no member `pdi`"), "{}", run.stderr);
    assert!(run.stderr.contains("did you mean `pid`"), "{}", run.stderr);
    let run = ktap(&["-e", "trace btf:sched_swich { }"]);
    assert!(run.stderr.contains("no BTF tracepoint named `sched_swich`"), "{}", run.stderr);
    assert!(run.stderr.contains("did you mean `btf:sched_switch`"), "{}", run.stderr);
}

/// A BTF whose `struct task_struct` has only `pid`, `tgid`,
/// `real_parent`, `comm` and the one-bit `in_execve` (bit 41: in the
/// 4-byte word at byte 4, its bit 9), at offsets no kernel uses; in a
/// file of its own per `tag` (each test removes its file).
fn moved_task_btf(tag: &str) -> PathBuf {
    use ktap::btf::write::{BtfBuilder, BtfMember};
    let m = |name: &str, ty, byte: u32| BtfMember { name: name.to_string(), ty, bit_offset: byte * 8 };
    let mut b = BtfBuilder::new();
    let int = b.add_int("int", 4, true);
    let ch = b.add_int("char", 1, true);
    let pid_t = b.add_typedef("pid_t", int);
    let comm = b.add_array(ch, int, 16);
    // The pointer is type 5, the struct type 6.
    let task_ptr = b.add_ptr(ktap::btf::TypeId(6));
    // `in_execve` is an unsigned int, type 7.
    let in_execve = BtfMember { bit_offset: 41, ..m("in_execve", ktap::btf::TypeId(7), 0) };
    let task = b.add_struct("task_struct", 64, &[m("pid", pid_t, 8), m("tgid", pid_t, 12), m("real_parent", task_ptr, 16), m("comm", comm, 24), in_execve]);
    b.set_member_bits(task, 4, 1);
    b.add_int("unsigned int", 4, false);
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("moved-task-{tag}-{}.btf", std::process::id()));
    std::fs::write(&path, b.to_bytes()).expect("write BTF");
    path
}

#[test]
fn core_relocations_fit_a_saved_object_to_this_kernel() {
    // Compiled against a BTF whose task_struct members moved, the object
    // holds offsets no kernel uses; libbpf's CO-RE relocations (the
    // object's .BTF.ext records) move them to the running kernel's
    // layout at load, so the values are right.
    let script = "var bad = 0\nvar n = 0\nvar parent = 0\nvar name = \"\"\nvar task_name = \"\"\nvar second = 0\n\
        trace syscalls:sys_enter_getppid /pid == {PID}/ {\n\
          bad += (curtask.tgid != pid) + (curtask->pid != tid)\n\
          n += 1\n\
          parent = curtask.real_parent.tgid\n\
          name = curtask.comm\n\
          task_name = execname\n\
          second = curtask.comm[1]\n\
        }\n\
        trace_end { print(n, bad, parent, name, task_name, second) }";
    let btf = moved_task_btf("object");
    let btf_arg = btf.to_str().expect("utf-8 path");
    let ir = ktap(&["--btf", btf_arg, "--emit", "ir", "-e", &script.replace("{PID}", "1")]);
    assert_eq!(ir.code, Some(0), "stderr: {}", ir.stderr);
    assert!(ir.stdout.contains("task +12:s32 [core 0: struct task_struct.tgid]"), "{}", ir.stdout);
    assert!(ir.stdout.contains("task->+16 +12:s32"), "{}", ir.stdout);
    // The task name too: a typed read at the moved offset, relocated.
    assert!(ir.stdout.contains("task +24:str16 [core 0: struct task_struct.comm]"), "{}", ir.stdout);
    assert!(ir.stdout.contains("task +25:s8 [core 0: struct task_struct.comm[1]]"), "{}", ir.stdout);
    if !need_root() || !have_btf() {
        return;
    }
    // ("ktap-workload"[1] is 't', 116.)
    let want = format!("1000\t0\t{}\tktap-workload\tktap-workload\t116\n", std::process::id());
    let run = support::traced_with(&["--btf", btf_arg], &[], script, 2, 500, true);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert_eq!(run.stdout, want, "stderr: {}", run.stderr);
    // The same, from a saved object: compiled once against the moved
    // layout, run here with the script's userspace side.
    let obj = btf.with_extension("o");
    let obj_arg = obj.to_str().expect("utf-8 path");
    // The process is chosen at run time (`-p`, a global), not in the code.
    let anywhere = script.replace(" /pid == {PID}/", "");
    let saved = ktap(&["--btf", btf_arg, "--emit", "obj", "-o", obj_arg, "-e", &anywhere]);
    assert_eq!(saved.code, Some(0), "stderr: {}", saved.stderr);
    let run = support::traced_with(&["--object", obj_arg, "-p", "{PID}"], &[], &anywhere, 2, 500, true);
    let _ = std::fs::remove_file(&obj);
    let _ = std::fs::remove_file(&btf);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert_eq!(run.stdout, want, "stderr: {}", run.stderr);
}

#[test]
fn core_relocations_move_a_bitfield_and_both_its_shifts() {
    // Typed against the moved layout, `in_execve` is bits 9..10 of the
    // word at byte 4; the running kernel's lies in another word at
    // another bit, so the load's offset and both shifts must be
    // relocated. It is 1 where sched_process_exec fires and 0 in a
    // syscall. (Unrelocated, the probes would read bit 41 of the task's
    // thread_info flags, which x86-64 leaves unused: 0 both times.)
    let script = "var exec = -1\nvar later = -1\n\
        trace sched:sched_process_exec { exec = curtask.in_execve }\n\
        trace syscalls:sys_enter_getppid { later = curtask.in_execve }\n\
        trace_end { print(exec, later) }";
    let btf = moved_task_btf("bitfield");
    let btf_arg = btf.to_str().expect("utf-8 path");
    let ir = ktap(&["--btf", btf_arg, "--emit", "ir", "-e", script]);
    assert_eq!(ir.code, Some(0), "stderr: {}", ir.stderr);
    assert!(ir.stdout.contains("task +4:u32 bits 9..10 [core 0: struct task_struct.in_execve]"), "{}", ir.stdout);
    if !need_root() || !have_btf() {
        let _ = std::fs::remove_file(&btf);
        return;
    }
    let bin = pingpong();
    let run = ktap(&["--btf", btf_arg, "-q", "-e", script, "--", bin.to_str().expect("utf-8 path"), "10"]);
    let _ = std::fs::remove_file(&btf);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().filter(|l| !l.starts_with("pid ")).collect();
    assert_eq!(lines, ["1\t0"], "stderr: {}", run.stderr);
}

#[test]
fn classic_char_array_fields_read_as_strings() {
    // `char prev_comm[16]` of sched:sched_switch, read from the record.
    let script = "var by_name = {}\n\
        trace sched:sched_switch /(args.prev_comm == \"ping\" || args.prev_comm == \"pong\") && (args.next_comm == \"ping\" || args.next_comm == \"pong\")/ {\n\
          by_name[args.prev_comm .. \">\" .. args.next_comm] += 1\n\
        }\n\
        trace_end { for (k, v in pairs(by_name)) { print(k, v >= 500) } }";
    if !need_root() {
        return;
    }
    let bin = pingpong();
    let run = ktap(&["-q", "-e", script, "--", "taskset", "-c", "1", bin.to_str().expect("utf-8 path"), "1000"]);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    let mut lines: Vec<&str> = run.stdout.lines().filter(|l| !l.starts_with("pid ")).collect();
    lines.sort_unstable();
    assert_eq!(lines, ["ping>pong\ttrue", "pong>ping\ttrue"], "stderr: {}", run.stderr);
}

#[test]
fn lists_btf_tracepoints_and_struct_members() {
    if !have_btf() {
        return;
    }
    let run = ktap(&["-l", "btf:sched_switch", "-v"]);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert_eq!(run.stdout, "btf:sched_switch\n    arg0  bool preempt\n    arg1  struct task_struct *prev\n    arg2  struct task_struct *next\n    arg3  unsigned int prev_state\n");
    let run = ktap(&["-l", "btf:sched_sw*"]);
    assert!(run.stdout.lines().any(|l| l == "btf:sched_switch"), "{}", run.stdout);
    let run = ktap(&["-l", "sched:sched_switch", "-v"]);
    assert!(run.stdout.starts_with("sched:sched_switch\n    arg0  char prev_comm[16]\n"), "{}", run.stdout);
    let run = ktap(&["--struct", "task_struct"]);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert!(run.stdout.starts_with("struct task_struct {\t/* size "), "{}", run.stdout);
    assert!(run.stdout.contains("\tchar comm[16];\t/* "), "{}", run.stdout);
    assert!(run.stdout.contains("\tstruct task_struct *real_parent;\t/* "), "{}", run.stdout);
    let run = ktap(&["--struct", "no_such_struct"]);
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains("no struct or union `no_such_struct`"), "{}", run.stderr);
}

#[test]
fn bitfields_and_states_of_known_tasks() {
    // `in_execve` (a one-bit field) is set while the kernel runs an
    // exec, where sched_process_exec fires, and clear in a syscall; a
    // thread switched out while blocked on a pipe is TASK_INTERRUPTIBLE
    // (`__state` 1, include/linux/sched.h), and the exiting one is
    // TASK_DEAD (0x80) exactly once. (How many of its switches are
    // blocking ones depends on what else runs on CPU 1: a preempted
    // thread is switched out runnable, so only "some" is certain.)
    let script = "var exec = -1\nvar later = -1\nvar sleeping = 0\nvar other = 0\n\
        trace sched:sched_process_exec { exec = curtask.in_execve }\n\
        trace syscalls:sys_enter_getppid { later = curtask.in_execve }\n\
        trace btf:sched_switch /args.prev.comm == \"ping\"/ { if (args.prev.__state == 1) { sleeping += 1 } if (args.prev.__state == 128) { other += 1 } }\n\
        trace_end { print(exec, later, sleeping > 0, other) }";
    if !need_root() || !have_btf() {
        return;
    }
    let bin = pingpong();
    let run = ktap(&["-q", "-e", script, "--", "taskset", "-c", "1", bin.to_str().expect("utf-8 path"), "1000"]);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().filter(|l| !l.starts_with("pid ")).collect();
    assert_eq!(lines, ["1\t0\ttrue\t1"], "stderr: {}", run.stderr);
}

#[test]
fn fentry_loads_or_says_why_the_kernel_refuses_it() {
    // The development kernel refuses fentry programs at load (EPERM):
    // the error must say so, not blame privileges; a kernel with
    // trampolines loads it.
    let script = "var n = 0\ntrace fexit:vfs_read /args.count > 0/ { n += retval }";
    if !need_root() || !have_btf() {
        return;
    }
    let run = ktap(&["-d", "-e", script]);
    if run.code == Some(0) {
        return;
    }
    assert_eq!(run.code, Some(1), "stderr: {}", run.stderr);
    assert!(run.stderr.contains("this kernel refuses fentry/fexit programs"), "{}", run.stderr);
    assert!(!run.stderr.contains("loading BPF needs root"), "{}", run.stderr);
}

#[test]
fn typed_chains_of_every_kind_pass_the_verifier() {
    // Loaded, not attached (-d): direct loads from tp_btf arguments and
    // curtask (arrays by index, bitfields, NULL-checked pointers), and
    // probe reads from a kprobe's registers typed by the function's BTF
    // (this kernel loads kprobe programs though it cannot attach them).
    let scripts = [
        "trace btf:sched_switch { print(args.prev.comm[3], args.next.se.sum_exec_runtime, args.prev.in_execve, curtask.mm.owner.comm, args.next->real_parent->real_parent->pid) }",
        "trace probe:vfs_read /args.count > 10/ { print(args.file->f_path.dentry->d_name.name, args.file.f_pos, args.buf) }",
        "trace sched:sched_switch { print(args.prev_comm, curtask.real_parent.comm, curtask.se.sum_exec_runtime) }",
    ];
    if !need_root() || !have_btf() {
        return;
    }
    for script in scripts {
        let run = ktap(&["-d", "-e", script]);
        assert_eq!(run.code, Some(0), "{script}\nstderr: {}", run.stderr);
        assert!(run.stderr.contains("Loaded 1 program(s); not attaching (-d).\n"), "{script}\nstderr: {}", run.stderr);
    }
}

#[test]
fn data_loc_fields_read_as_strings() {
    // `__data_loc char[] filename` of sched:sched_process_exec: where the
    // string lies in the record is in the field's low 16 bits.
    let script = "trace sched:sched_process_exec { print(args.filename, args.filename == \"/bin/true\", execname) }";
    if !need_root() {
        return;
    }
    let run = ktap(&["-q", "-e", script, "--", "/bin/true"]);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert_eq!(run.stdout, "/bin/true\t1\ttrue\n", "stderr: {}", run.stderr);
}

#[test]
fn an_object_reading_module_types_carries_them_by_name_for_core() {
    // Against a kernel with a module's BTF (split on vmlinux's), a probe
    // reading a module struct and, through it, vmlinux's task_struct
    // leaves each struct in the object's local BTF with only the members
    // read, and one CO-RE record per member: the loader finds the
    // module's type by name, as it finds vmlinux's.
    use ktap::btf::{read::BtfReader, read::TypeDesc, Kind};
    use object::{Object, ObjectSection};
    let script = "trace btf:fakenet_xmit { print(args.dev.ifindex, args.dev.owner.pid, args.dev.ring->tail) }";
    let c = ktap::compile(script, support::fake_kernel()).unwrap_or_else(|e| panic!("{e:?}"));
    let elf = object::File::parse(&c.object[..]).expect("an ELF object");
    let btf = elf.section_by_name(".BTF").expect(".BTF").data().expect("data");
    let r = BtfReader::new(btf).expect("the object's BTF");
    let members = |name: &str| -> Vec<(String, u32)> {
        let id = r.find(Kind::STRUCT, name).expect("walk").unwrap_or_else(|| panic!("no struct {name} in the object"));
        let Ok(TypeDesc::Composite { members, .. }) = r.describe(id) else { panic!("{name} is not a struct") };
        members.into_iter().map(|m| (m.name, m.bit_offset / 8)).collect()
    };
    assert_eq!(members("fakenet_dev"), [("ifindex".to_string(), 0), ("owner".to_string(), 8), ("ring".to_string(), 32)]);
    assert_eq!(members("task_struct"), [("pid".to_string(), 1264)]);
    assert_eq!(members("fakenet_ring"), [("tail".to_string(), 4)]);
    // .BTF.ext: 5 field-offset records (ifindex; owner, pid; ring, tail).
    assert_eq!(core_record_kinds(&c.object), [(0, 5)]);
}

/// The kinds of an object's CO-RE records (`.BTF.ext`), counted: (kind,
/// how many), by kind.
fn core_record_kinds(object: &[u8]) -> Vec<(u32, usize)> {
    use object::{Object, ObjectSection};
    let elf = object::File::parse(object).expect("an ELF object");
    let ext = elf.section_by_name(".BTF.ext").expect(".BTF.ext").data().expect("data");
    let word = |at: usize| u32::from_le_bytes(ext[at..at + 4].try_into().unwrap()) as usize;
    let (hdr_len, core_off, core_len) = (word(4), word(24), word(28));
    let core = &ext[hdr_len + core_off..hdr_len + core_off + core_len];
    let mut kinds = std::collections::BTreeMap::new();
    // rec_size, then per section: name, count, records.
    let mut at = 4;
    while at + 8 <= core.len() {
        let n = u32::from_le_bytes(core[at + 4..at + 8].try_into().unwrap()) as usize;
        for r in 0..n {
            let rec = at + 8 + r * 16;
            *kinds.entry(u32::from_le_bytes(core[rec + 12..rec + 16].try_into().unwrap())).or_insert(0) += 1;
        }
        at += 8 + n * 16;
    }
    kinds.into_iter().collect()
}

#[test]
fn a_bitfield_read_carries_its_word_size_offset_and_shifts() {
    // Loaded directly: the word's size (an immediate, BYTE_SIZE = 1) picks
    // one of four loads (BYTE_OFFSET = 0 each), then the two shifts
    // (LSHIFT_U64 = 4, RSHIFT_U64 = 5). Read with a helper (a kprobe's
    // pointer): the size is the helper's length, one offset.
    let direct = ktap::compile("trace btf:fakenet_xmit { print(args.dev.prio) }", support::fake_kernel()).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(core_record_kinds(&direct.object), [(0, 4), (1, 1), (4, 1), (5, 1)]);
    let read = ktap::compile("trace probe:fakenet_open { print(args.dev.prio) }", support::fake_kernel()).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(core_record_kinds(&read.object), [(0, 1), (1, 1), (4, 1), (5, 1)]);
}

#[test]
fn an_event_of_anothers_class_names_its_arguments() {
    // sched_wakeup_new is defined from sched_wakeup's class: no
    // `__bpf_trace_sched_wakeup_new`, but its probe stub names `p`, the
    // new task, woken by the shell that forked it.
    if !need_root() || !have_btf() {
        return;
    }
    let list = ktap(&["-l", "btf:sched_wakeup_new", "-v"]);
    assert_eq!(list.stdout, "btf:sched_wakeup_new\n    arg0  struct task_struct *p\n", "{}", list.stderr);
    let script = "trace btf:sched_wakeup_new { printf(\"%d %d\\n\", args.p.real_parent.tgid == pid, args.p.pid != pid) }";
    let run = ktap(&["-q", "-e", script, "--", "sh", "-c", "/bin/true & wait"]);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert_eq!(run.stdout, "1 1\n", "stderr: {}", run.stderr);
}

#[test]
fn an_argument_the_verifier_holds_as_a_number_is_read_through_probe_reads() {
    // The kernel marks some tracepoint arguments as numbers (`info` of
    // signal_generate may be SEND_SIG_PRIV): ktap asks the verifier and
    // follows those with bpf_probe_read_kernel, the others directly.
    let k = ktap::facts::FakeKernel::new().btf(ktap::facts::sample_btf()).btf_number_arg("sched_wakeup", 0);
    let c = ktap::compile("trace btf:sched_wakeup { print(args.p.pid) } trace btf:sched_switch { print(args.prev.pid) }", &k).unwrap_or_else(|e| panic!("{e:?}"));
    let ir = ktap::ir::print::module(&c.module);
    assert!(ir.contains("ctx.arg0->+0 +1264:s32 (probe read) [core 1: struct task_struct.pid]"), "{ir}");
    assert!(ir.contains("ctx.arg1->+0 +1264:s32 [core 1: struct task_struct.pid]"), "{ir}");
    if !need_root() || !have_btf() {
        return;
    }
    // This kernel holds `info` so: its si_signo is the signal's, as the
    // shell sends itself SIGUSR1 (10), which it ignores.
    let script = "trace btf:signal_generate { printf(\"%d %d %d\\n\", args.sig, args.info.si_signo, args.task.pid == pid) }";
    let run = ktap(&["-q", "-e", script, "--", "sh", "-c", "trap '' USR1; kill -USR1 $$"]);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert!(run.stdout.lines().any(|l| l == "10 10 1"), "stderr: {}\n{}", run.stderr, run.stdout);
}

#[test]
fn a_saved_object_runs_only_with_the_script_it_came_from() {
    // `--emit obj` writes a digest of the script (and ktap's version);
    // `--object` with another script is refused before anything loads, as
    // is an object ktap did not save.
    if !have_btf() {
        return;
    }
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let obj = dir.join(format!("saved-{}.o", std::process::id()));
    let obj_arg = obj.to_str().expect("utf-8 path");
    let script = "trace btf:sched_switch { print(args.prev.pid) }";
    let saved = ktap(&["--emit", "obj", "-o", obj_arg, "-e", script]);
    assert_eq!(saved.code, Some(0), "stderr: {}", saved.stderr);
    let other = ktap(&["--object", obj_arg, "-e", "trace btf:sched_switch { print(args.next.pid) }"]);
    assert_eq!(other.code, Some(1), "stderr: {}", other.stderr);
    assert!(other.stderr.contains("was compiled from another script"), "{}", other.stderr);
    // The same script loads it (-d: without attaching), where root may.
    if need_root() {
        let same = ktap(&["-d", "--object", obj_arg, "-e", script]);
        assert_eq!(same.code, Some(0), "stderr: {}", same.stderr);
    }
    std::fs::write(&obj, b"\x7fELF not one").expect("write");
    let foreign = ktap(&["--object", obj_arg, "-e", script]);
    let _ = std::fs::remove_file(&obj);
    assert_eq!(foreign.code, Some(1));
    assert!(foreign.stderr.contains("is not an object ktap saved with --emit obj"), "{}", foreign.stderr);
}
