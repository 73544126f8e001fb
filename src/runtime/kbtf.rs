//! The running kernel's BTF (`/sys/kernel/btf/vmlinux`): maps the file
//! (or, where the kernel does not let it be mapped, reads it whole) and
//! hands the bytes to the lazy [`BtfReader`], which walks only as far as a
//! question needs. The modules' BTF beside it (`/sys/kernel/btf/MODULE`)
//! is read only when the reader first needs it: when vmlinux lacks a name.
//! Reads the files only; parses nothing itself.

use super::mapped::Mapped;
use crate::btf::read::{BtfReader, ModuleBtf, SplitSource};
use std::cell::OnceCell;
use std::path::{Path, PathBuf};

pub const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";

pub struct KernelBtf {
    bytes: Mapped,
    /// The reader's walk so far, kept across questions.
    starts: std::cell::RefCell<Vec<usize>>,
    /// The directory of the modules' BTF (None for a BTF file of
    /// `--btf`, which stands for the whole kernel).
    modules_dir: Option<PathBuf>,
    modules: OnceCell<Vec<ModuleBtf>>,
}

impl KernelBtf {
    pub fn open() -> Result<KernelBtf, String> {
        KernelBtf::open_dir(Path::new(VMLINUX_BTF).parent().unwrap_or(Path::new("/")))
    }

    /// `DIR/vmlinux` and the modules' BTF beside it.
    pub fn open_dir(dir: &Path) -> Result<KernelBtf, String> {
        let mut btf = KernelBtf::open_path(&dir.join("vmlinux"))?;
        btf.modules_dir = Some(dir.to_path_buf());
        Ok(btf)
    }

    /// A BTF file other than the running kernel's (`--btf`), without
    /// modules.
    pub fn open_path(path: &Path) -> Result<KernelBtf, String> {
        Ok(KernelBtf { bytes: Mapped::open(path)?, starts: Default::default(), modules_dir: None, modules: OnceCell::new() })
    }

    pub fn reader(&self) -> Result<BtfReader<'_>, String> {
        let r = BtfReader::with_memory(self.bytes.data(), &self.starts).map_err(|e| format!("kernel BTF: {e}"))?;
        Ok(match self.modules_dir {
            Some(_) => r.with_modules(self),
            None => r,
        })
    }
}

impl SplitSource for KernelBtf {
    /// Every file beside vmlinux, by name. A file that cannot be read (a
    /// module unloaded meanwhile) is left out.
    fn modules(&self) -> &[ModuleBtf] {
        self.modules.get_or_init(|| {
            let Some(dir) = &self.modules_dir else { return Vec::new() };
            let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
            let mut names: Vec<String> = entries.flatten().filter_map(|e| e.file_name().into_string().ok()).filter(|n| n != "vmlinux").collect();
            names.sort();
            names.into_iter().filter_map(|n| Some(ModuleBtf::new(n.clone(), std::fs::read(dir.join(&n)).ok()?))).collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::btf::read::ModuleBtf;

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

    /// A directory laid out as /sys/kernel/btf: vmlinux and one module.
    #[test]
    fn modules_beside_vmlinux_are_read_when_vmlinux_lacks_a_name() {
        use crate::btf::write::{BtfBuilder, BtfMember};
        use crate::btf::{Kind, TypeId};
        let mut b = BtfBuilder::new();
        let int = b.add_int("int", 4, true);
        b.add_struct("task_struct", 8, &[BtfMember { name: "flags".to_string(), ty: int, bit_offset: 0 }]);
        let vmlinux = b.to_bytes();
        let mark = b.split_mark();
        b.add_struct("nf_conn", 16, &[BtfMember { name: "mark".to_string(), ty: int, bit_offset: 64 }]);
        let dir = std::env::temp_dir().join(format!("ktap-kbtf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("vmlinux"), &vmlinux).unwrap();
        std::fs::write(dir.join("nf_conntrack"), b.split_bytes(mark)).unwrap();

        let btf = KernelBtf::open_dir(&dir).unwrap();
        let r = btf.reader().unwrap();
        assert_eq!(r.find(Kind::STRUCT, "task_struct"), Ok(Some(TypeId(2))));
        assert!(btf.modules.get().is_none(), "vmlinux answered alone");
        let conn = r.find(Kind::STRUCT, "nf_conn").unwrap().expect("the module's struct");
        assert_eq!((conn, r.module_of(conn)), (TypeId(3), Some("nf_conntrack")));
        // A BTF file of --btf stands alone.
        let alone = KernelBtf::open_path(&dir.join("vmlinux")).unwrap();
        assert_eq!(alone.reader().unwrap().find(Kind::STRUCT, "nf_conn"), Ok(None));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// libbpf reads the split BTF the tests build as the kernel's module
    /// BTF, and numbers its types as the reader does.
    #[test]
    fn libbpf_agrees_on_the_split_btf_of_the_sample_module() {
        use crate::btf::Kind;
        use crate::facts::{sample_btf, sample_module_btf};
        use libbpf_rs::libbpf_sys;
        let (vmlinux, module) = (sample_btf(), sample_module_btf());
        let modules = vec![ModuleBtf::new("fakenet", module.clone())];
        let r = BtfReader::new(&vmlinux).unwrap().with_modules(&modules);
        // SAFETY: libbpf copies both blobs; each handle is freed once,
        // the split one before its base.
        unsafe {
            let base = libbpf_sys::btf__new(vmlinux.as_ptr().cast(), vmlinux.len() as u32);
            assert!(!base.is_null() && libbpf_sys::libbpf_get_error(base.cast()) == 0, "libbpf refuses the base");
            let split = libbpf_sys::btf__new_split(module.as_ptr().cast(), module.len() as u32, base);
            assert!(!split.is_null() && libbpf_sys::libbpf_get_error(split.cast()) == 0, "libbpf refuses the split BTF");
            for (kind, name, libbpf_kind) in [(Kind::STRUCT, "fakenet_dev", libbpf_sys::BTF_KIND_STRUCT), (Kind::FUNC, "fakenet_open", libbpf_sys::BTF_KIND_FUNC), (Kind::STRUCT, "task_struct", libbpf_sys::BTF_KIND_STRUCT)] {
                let c = std::ffi::CString::new(name).unwrap();
                let theirs = libbpf_sys::btf__find_by_name_kind(split, c.as_ptr(), libbpf_kind);
                let ours = r.find(kind, name).unwrap().map(|t| t.0 as i32);
                assert_eq!(Some(theirs), ours, "{name}");
            }
            assert_eq!(libbpf_sys::btf__type_cnt(split) as usize, 1 + vmlinux_types(&r) + module_types(&r));
            libbpf_sys::btf__free(split);
            libbpf_sys::btf__free(base);
        }
    }

    fn vmlinux_types(r: &BtfReader<'_>) -> usize {
        (1..).take_while(|&i| r.module_of(crate::btf::TypeId(i)).is_none() && r.type_name(crate::btf::TypeId(i)) != "?").count()
    }

    fn module_types(r: &BtfReader<'_>) -> usize {
        let first = vmlinux_types(r) as u32 + 1;
        (first..).take_while(|&i| r.type_name(crate::btf::TypeId(i)) != "?").count()
    }
}
