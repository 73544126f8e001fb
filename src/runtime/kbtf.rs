//! The running kernel's BTF (`/sys/kernel/btf/vmlinux`): maps the file
//! (or, where the kernel does not let it be mapped, reads it whole) and
//! hands the bytes to the lazy [`BtfReader`], which walks only as far as a
//! question needs. Reads the file only; parses nothing itself.

use super::mapped::Mapped;
use crate::btf::read::BtfReader;

pub const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";

pub struct KernelBtf {
    bytes: Mapped,
    /// The reader's walk so far, kept across questions.
    starts: std::cell::RefCell<Vec<usize>>,
}

impl KernelBtf {
    pub fn open() -> Result<KernelBtf, String> {
        KernelBtf::open_path(std::path::Path::new(VMLINUX_BTF))
    }

    /// A BTF file other than the running kernel's (`--btf`).
    pub fn open_path(path: &std::path::Path) -> Result<KernelBtf, String> {
        Ok(KernelBtf { bytes: Mapped::open(path)?, starts: Default::default() })
    }

    pub fn reader(&self) -> Result<BtfReader<'_>, String> {
        BtfReader::with_memory(self.bytes.data(), &self.starts).map_err(|e| format!("kernel BTF: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_running_kernel_has_both_facts() {
        let Ok(btf) = KernelBtf::open() else {
            eprintln!("skipped: {VMLINUX_BTF} not readable");
            return;
        };
        let r = btf.reader().expect("vmlinux BTF parses");
        let comm = r.task_comm_offset().expect("task_struct.comm");
        assert!(comm > 0 && comm % 8 == 0, "comm at {comm}");
        if cfg!(target_arch = "x86_64") {
            let a = r.percpu_access("__preempt_count").expect("__preempt_count");
            assert_eq!((a.chain.len(), a.size), (2, 4));
        }
    }
}
