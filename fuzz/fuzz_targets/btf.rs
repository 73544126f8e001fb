//! The BTF reader on mutated blobs: every question the compiler and the
//! runtime ask of it, on every type it can reach; an answer or an error,
//! never a panic or a hang. Each blob is read twice: as vmlinux's BTF, and
//! as a module's split BTF on the sample kernel's.
#![no_main]

use ktap::btf::read::{BtfReader, ModuleBtf};
use ktap::btf::{Kind, TypeId};
use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: {
        // scripts/fuzz.sh seeds the corpus with the sample kernel BTF.
        if let Some(dir) = std::env::var_os("KTAP_FUZZ_SEED_DIR") {
            let _ = std::fs::write(std::path::Path::new(&dir).join("sample_btf"), ktap::facts::sample_btf());
            let _ = std::fs::write(std::path::Path::new(&dir).join("sample_module_btf"), ktap::facts::sample_module_btf());
        }
    },
    |data: &[u8]| {
    if let Ok(r) = BtfReader::new(data) {
        ask(&r, 0);
    }
    // As a module's (before the sample module): its types are numbered
    // after the sample kernel's.
    static SAMPLE: std::sync::OnceLock<(Vec<u8>, Vec<u8>, u32)> = std::sync::OnceLock::new();
    let (kernel, module, count) = SAMPLE.get_or_init(|| {
        let kernel = ktap::facts::sample_btf();
        let count = BtfReader::new(&kernel).map_or(0, |r| (1..10_000).take_while(|&i| r.type_name(TypeId(i)) != "?").count() as u32);
        (kernel, ktap::facts::sample_module_btf(), count)
    });
    let modules = vec![ModuleBtf::new("fuzzed", data.to_vec()), ModuleBtf::new("sample", module.clone())];
    let Ok(r) = BtfReader::new(kernel) else { return };
    let r = r.with_modules(&modules);
    let _ = r.find(Kind::STRUCT, "fakenet_dev");
    let _ = r.find(Kind::STRUCT, "no_such_struct");
    ask(&r, count + 1);
}
);

/// Every question, on types `first..first + 64` besides the first 64.
fn ask(r: &BtfReader<'_>, first: u32) {
    let _ = r.task_comm_offset();
    let _ = r.percpu_access("__preempt_count");
    let _ = r.member("task_struct", "pid");
    let _ = r.one_bit_member("task_struct", "in_iowait");
    for kind in [Kind::STRUCT, Kind::FUNC, Kind::TYPEDEF] {
        let _ = r.names_with_prefix(kind, "");
    }
    for name in ["task_struct", "vfs_read", "btf_trace_sched_switch"] {
        for kind in [Kind::STRUCT, Kind::FUNC, Kind::TYPEDEF] {
            let _ = r.find(kind, name);
        }
    }
    for id in (0..64u32).chain(first..first.saturating_add(64)) {
        let id = TypeId(id);
        let _ = r.describe(id);
        let _ = r.type_name(id);
        let _ = r.params(id);
        let _ = r.returns(id);
        let _ = r.module_of(id);
    }
}
