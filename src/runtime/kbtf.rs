//! The running kernel's BTF (`/sys/kernel/btf/vmlinux`): maps the file
//! (or, where the kernel does not let it be mapped, reads it whole) and
//! hands the bytes to the lazy [`BtfReader`], which walks only as far as a
//! question needs. Reads the file only; parses nothing itself.

use crate::btf::read::BtfReader;
use std::fs::File;
use std::os::fd::AsRawFd;

pub const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";

/// The whole file, mapped (or, where the kernel cannot map it, read).
enum Bytes {
    Mapped { ptr: *mut libc::c_void, len: usize },
    Read(Vec<u8>),
}

pub struct KernelBtf {
    bytes: Bytes,
    /// The reader's walk so far, kept across questions.
    starts: std::cell::RefCell<Vec<usize>>,
}

impl KernelBtf {
    pub fn open() -> Result<KernelBtf, String> {
        KernelBtf::open_path(std::path::Path::new(VMLINUX_BTF))
    }

    /// A BTF file other than the running kernel's (`--btf`).
    pub fn open_path(path: &std::path::Path) -> Result<KernelBtf, String> {
        let shown = path.display();
        let file = File::open(path).map_err(|e| format!("cannot open {shown}: {e}"))?;
        let len = file.metadata().map_err(|e| format!("{shown}: {e}"))?.len() as usize;
        if len > 0 {
            // SAFETY: a read-only private mapping of a file we opened; the
            // pointer is only used through `data` while `self` lives, and
            // unmapped once in `drop`.
            let ptr = unsafe { libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ, libc::MAP_PRIVATE, file.as_raw_fd(), 0) };
            if ptr != libc::MAP_FAILED {
                return Ok(KernelBtf { bytes: Bytes::Mapped { ptr, len }, starts: Default::default() });
            }
        }
        let data = std::fs::read(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
        Ok(KernelBtf { bytes: Bytes::Read(data), starts: Default::default() })
    }

    pub fn reader(&self) -> Result<BtfReader<'_>, String> {
        BtfReader::with_memory(self.data(), &self.starts).map_err(|e| format!("kernel BTF: {e}"))
    }

    fn data(&self) -> &[u8] {
        match &self.bytes {
            // SAFETY: mapped readable for `len` bytes until drop.
            Bytes::Mapped { ptr, len } => unsafe { std::slice::from_raw_parts(*ptr as *const u8, *len) },
            Bytes::Read(v) => v,
        }
    }
}

impl Drop for KernelBtf {
    fn drop(&mut self) {
        if let Bytes::Mapped { ptr, len } = self.bytes {
            // SAFETY: the mapping made in `open`, unmapped once.
            unsafe { libc::munmap(ptr, len) };
        }
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
