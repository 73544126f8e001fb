//! The BTF reader on mutated blobs: every question the compiler and the
//! runtime ask of it, on every type it can reach; an answer or an error,
//! never a panic or a hang.
#![no_main]

use ktap::btf::read::BtfReader;
use ktap::btf::{Kind, TypeId};
use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: {
        // scripts/fuzz.sh seeds the corpus with the sample kernel BTF.
        if let Some(dir) = std::env::var_os("KTAP_FUZZ_SEED_DIR") {
            let _ = std::fs::write(std::path::Path::new(&dir).join("sample_btf"), ktap::facts::sample_btf());
        }
    },
    |data: &[u8]| {
    let Ok(r) = BtfReader::new(data) else { return };
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
    for id in 0..64u32 {
        let id = TypeId(id);
        let _ = r.describe(id);
        let _ = r.type_name(id);
        let _ = r.params(id);
        let _ = r.returns(id);
    }
}
);
