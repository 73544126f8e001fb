//! A file's bytes, mapped read-only (or read whole where the file cannot
//! be mapped, as some kernel files cannot): what the BTF and DWARF
//! readers parse in place.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;

/// A file mapped read-only (or read, where it cannot be mapped).
pub struct Mapped {
    ptr: *mut libc::c_void,
    len: usize,
    read: Vec<u8>,
}

impl Mapped {
    pub fn open(path: &Path) -> Result<Mapped, String> {
        let shown = path.display();
        let file = File::open(path).map_err(|e| format!("cannot open {shown}: {e}"))?;
        let len = file.metadata().map_err(|e| format!("{shown}: {e}"))?.len() as usize;
        if len > 0 {
            // SAFETY: a read-only private mapping of a file we opened; the
            // pointer is only used through `data` while `self` lives, and
            // unmapped once in `drop`.
            let ptr = unsafe { libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ, libc::MAP_PRIVATE, file.as_raw_fd(), 0) };
            if ptr != libc::MAP_FAILED {
                return Ok(Mapped { ptr, len, read: Vec::new() });
            }
        }
        let read = std::fs::read(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
        Ok(Mapped { ptr: std::ptr::null_mut(), len: 0, read })
    }

    pub fn data(&self) -> &[u8] {
        if self.ptr.is_null() {
            return &self.read;
        }
        // SAFETY: mapped readable for `len` bytes until drop.
        unsafe { std::slice::from_raw_parts(self.ptr as *const u8, self.len) }
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        if !self.ptr.is_null() {
            // SAFETY: the mapping made in `open`, unmapped once.
            unsafe { libc::munmap(self.ptr, self.len) };
        }
    }
}
