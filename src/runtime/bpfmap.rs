//! The BPF maps of the running system, as the compiler asks of them
//! (`KernelFacts::bpf_map`, for `iter:bpf_map_elem(MAP)`): a map named by
//! id or by its pinned path, its sizes from `bpf_map_get_info_by_fd`, and
//! its key and value types from its BTF (`bpf_btf_get_info_by_fd`),
//! converted into a [`TypeTable`]. Reads only; every descriptor it opens
//! is closed before it returns.

use super::attach::iter::map_fd;
use crate::facts::{BpfMap, BtfReader, MapRef, MapTypes, TypeId, TypeTable};
use libbpf_rs::libbpf_sys;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;

/// The map `map` names, or why there is none.
pub fn bpf_map(map: &MapRef) -> Result<BpfMap, String> {
    let fd = map_fd(map).map_err(|e| match map {
        MapRef::Id(id) if e.raw_os_error() == Some(libc::ENOENT) => format!("no BPF map has id {id}"),
        MapRef::Id(id) => format!("cannot open BPF map {id}: {e}"),
        MapRef::Path(p) => format!("{p} is not a pinned BPF map: {e}"),
    })?;
    let mut info = libbpf_sys::bpf_map_info::default();
    let mut len = size_of::<libbpf_sys::bpf_map_info>() as u32;
    // SAFETY: our descriptor and a buffer of the size given.
    if unsafe { libbpf_sys::bpf_map_get_info_by_fd(fd.as_raw_fd(), &mut info, &mut len) } != 0 {
        let e = std::io::Error::last_os_error();
        return Err(match map {
            MapRef::Path(p) if e.raw_os_error() == Some(libc::EINVAL) => format!("{p} is not a pinned BPF map (a pinned program or link?)"),
            _ => format!("cannot read map {map}'s info: {e}"),
        });
    }
    let name: Vec<u8> = info.name.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
    // SAFETY: returns a static string or NULL.
    let kind = unsafe { libbpf_sys::libbpf_bpf_map_type_str(info.type_) };
    let kind = if kind.is_null() {
        format!("type {}", info.type_)
    } else {
        // SAFETY: a NUL-terminated static string.
        unsafe { std::ffi::CStr::from_ptr(kind) }.to_string_lossy().into_owned()
    };
    // A map without BTF, or one whose BTF ktap cannot read alone (split
    // on a module's), is typed by its sizes.
    let types = if info.btf_id != 0 && info.btf_value_type_id != 0 { map_types(info.btf_id, info.btf_key_type_id, info.btf_value_type_id).ok() } else { None };
    Ok(BpfMap { id: info.id, name: String::from_utf8_lossy(&name).into_owned(), kind, key_size: info.key_size, value_size: info.value_size, types })
}

/// The key and value types of a map whose BTF is object `btf_id`.
fn map_types(btf_id: u32, key: u32, value: u32) -> Result<MapTypes, String> {
    // SAFETY: a plain syscall wrapper.
    let raw = unsafe { libbpf_sys::bpf_btf_get_fd_by_id(btf_id) };
    if raw < 0 {
        return Err(std::io::Error::last_os_error().to_string());
    }
    // SAFETY: a descriptor the kernel just gave us.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let mut info = libbpf_sys::bpf_btf_info::default();
    let mut len = size_of::<libbpf_sys::bpf_btf_info>() as u32;
    // SAFETY: our descriptor and a buffer of the size given (no BTF
    // buffer yet: the kernel says its size).
    if unsafe { libbpf_sys::bpf_btf_get_info_by_fd(fd.as_raw_fd(), &mut info, &mut len) } != 0 {
        return Err(std::io::Error::last_os_error().to_string());
    }
    let mut blob = vec![0u8; info.btf_size as usize];
    let mut info = libbpf_sys::bpf_btf_info { btf: blob.as_mut_ptr() as u64, btf_size: blob.len() as u32, ..Default::default() };
    let mut len = size_of::<libbpf_sys::bpf_btf_info>() as u32;
    // SAFETY: the kernel writes at most `btf_size` bytes into `blob`.
    if unsafe { libbpf_sys::bpf_btf_get_info_by_fd(fd.as_raw_fd(), &mut info, &mut len) } != 0 {
        return Err(std::io::Error::last_os_error().to_string());
    }
    let reader = BtfReader::new(&blob).map_err(|e| e.to_string())?;
    let (table, roots) = TypeTable::from_btf(&reader, &[TypeId(key), TypeId(value)])?;
    Ok(MapTypes { key: roots[0], value: roots[1], table: Arc::new(table) })
}
