//! BPF iterators (`ProgKind::Iter`, `iter:TARGET[(PID)]`): each program
//! was compiled for one target (section `iter/TARGET`, which libbpf
//! resolves to the kernel's `bpf_iter_TARGET` at load) and gets one
//! iterator link, limited to a process by the link's `bpf_iter_link_info`
//! when the spec names one. Unpinned, the iterator is read once right
//! away (the kernel runs the program per object into a seq_file) and its
//! text goes to the output, line by line; with `--pin DIR` the link is
//! pinned as `DIR/TARGET` on bpffs instead, where every `cat` runs it
//! again, with no ktap running. [`unpin`] removes what `--pin` made.
//! Pinning refuses paths outside bpffs and existing files, and bodies
//! that need ktap (records for userspace).

use super::{AttachCx, Attacher};
use crate::ir::{Attach, IterParam, MapRef};
use crate::runtime::output::{Notice, Origin};
use crate::runtime::session::Error;
use libbpf_rs::libbpf_sys;
use libbpf_rs::{AsRawLibbpf, Iter as IterReader, Link, ProgramMut};
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

pub struct Iter;

/// statfs's f_type of a BPF filesystem (include/uapi/linux/magic.h).
const BPF_FS_MAGIC: i64 = 0xcafe_4a11;
/// Where bpffs is mounted by convention.
const BPF_FS: &str = "/sys/fs/bpf";

impl Attacher for Iter {
    fn refused(&self, points: &[&Attach]) -> Option<&'static str> {
        // This development kernel refuses every program of a target whose
        // context has PTR_TO_BUF pointers (bpf_map_elem's key and value),
        // with EPERM before verifying a single instruction.
        points.iter().any(|a| matches!(a, Attach::Iter { param: Some(IterParam::Map { .. }), .. })).then_some(
            "this kernel refuses `iter:bpf_map_elem` programs before verifying them (EPERM, even for an empty body): \
             its map-element iterator is closed to BPF here; `iter:bpf_map` lists the maps themselves",
        )
    }

    fn attach(&self, cx: &mut AttachCx<'_>, prog: &ProgramMut<'_>) -> Result<(), Error> {
        for &i in &cx.info.attach {
            if cx.stopped() {
                break;
            }
            let Attach::Iter { target, param, spec } = &cx.probe().attach[i] else { continue };
            let (target, param, spec) = (target.clone(), param.clone(), *spec);
            let full = cx.probe().attach[i].full_name();
            if let Some(IterParam::Pid { pid, span }) = &param {
                if !Path::new(&format!("/proc/{pid}")).exists() {
                    return Err(Error { message: format!("no process {pid}: `{full}` has nothing to walk"), span: Some(*span), notes: Vec::new() });
                }
            }
            if cx.pin.is_some() {
                refuse_userspace(cx)?;
            }
            let link = link(prog, param.as_ref()).map_err(|e| {
                let refused = match &param {
                    Some(IterParam::Map { map, .. }) => map_refused(map, &e),
                    _ => Vec::new(),
                };
                let mut err = cx.error(full.clone(), e);
                if let Some(IterParam::Cgroup { path, span }) = &param {
                    err.span = Some(*span);
                    let path = path.clone().unwrap_or_else(cgroup_root);
                    err.notes.push(format!("`iter:cgroup` starts at a cgroup directory (here {path}): name one, `iter:cgroup(/sys/fs/cgroup/NAME)`"));
                }
                if let Some(IterParam::Map { span, .. }) = &param {
                    err.span = Some(*span);
                    err.notes.extend(refused);
                }
                err
            })?;
            cx.progress.advance(1);
            match cx.pin {
                Some(dir) => {
                    let name = match &param {
                        Some(IterParam::Pid { pid, .. }) => format!("{target}_{pid}"),
                        Some(IterParam::Cgroup { path, .. }) => format!("{target}{}", path.clone().unwrap_or_else(cgroup_root).replace('/', "_")),
                        Some(IterParam::Map { map, .. }) => format!("{target}_{}", map.to_string().replace('/', "_")),
                        None => target.clone(),
                    };
                    let path = pin(link, dir, &name).map_err(|message| Error { message, span: Some(spec), notes: Vec::new() })?;
                    cx.out.notice(&Notice::Pinned { spec: &full, path: &path.display().to_string() });
                }
                None => {
                    run(&link, cx).map_err(|e| cx.error(full.clone(), e))?;
                    cx.links.push(link);
                }
            }
        }
        Ok(())
    }
}

/// The iterator link, with the process or cgroup it is limited to.
fn link(prog: &ProgramMut<'_>, param: Option<&IterParam>) -> Result<Link, libbpf_rs::Error> {
    let pid = match param {
        None => return prog.attach_iter_with_opts(libbpf_rs::IterOpts::None),
        Some(IterParam::Cgroup { path, .. }) => {
            let dir = std::fs::File::open(path.clone().unwrap_or_else(cgroup_root)).map_err(libbpf_rs::Error::from)?;
            let opts = libbpf_rs::CgroupIterOpts { order: libbpf_rs::CgroupIterOrder::DescendantsPre, ..libbpf_rs::CgroupIterOpts::from_fd(dir.as_fd()) };
            // The link keeps its own reference to the cgroup.
            return prog.attach_iter_with_opts(libbpf_rs::IterOpts::Cgroup(opts));
        }
        Some(IterParam::Pid { pid, .. }) => pid,
        Some(IterParam::Map { map, .. }) => {
            let fd = map_fd(map).map_err(libbpf_rs::Error::from)?;
            let mut info = libbpf_sys::bpf_iter_link_info::default();
            info.map.map_fd = fd.as_raw_fd() as u32;
            // The link holds its own reference to the map: `fd` may close.
            return attach_with(prog, &mut info);
        }
    };
    let mut info = libbpf_sys::bpf_iter_link_info::default();
    info.task.pid = *pid;
    attach_with(prog, &mut info)
}

/// Where the unified (v2) cgroup hierarchy is mounted: /sys/fs/cgroup on
/// most systems, /sys/fs/cgroup/unified beside v1 controllers (the first
/// `cgroup2` mount of /proc/self/mounts); /sys/fs/cgroup when none is.
pub fn cgroup_root() -> String {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    cgroup2_mount(&mounts).unwrap_or_else(|| "/sys/fs/cgroup".into())
}

/// The mount point of the first `cgroup2` line of a mounts table (octal
/// escapes, `\040` for a space, undone).
fn cgroup2_mount(mounts: &str) -> Option<String> {
    let line = mounts.lines().find(|l| l.split_whitespace().nth(2) == Some("cgroup2"))?;
    let at = line.split_whitespace().nth(1)?;
    let mut out = String::new();
    let mut rest = at;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let code = rest.get(i + 1..i + 4).and_then(|o| u8::from_str_radix(o, 8).ok());
        match code {
            Some(c) => {
                out.push(char::from(c));
                rest = &rest[i + 4..];
            }
            None => {
                out.push('\\');
                rest = &rest[i + 1..];
            }
        }
    }
    out.push_str(rest);
    Some(out)
}

/// An iterator link with `info` as its `bpf_iter_link_info`.
fn attach_with(prog: &ProgramMut<'_>, info: &mut libbpf_sys::bpf_iter_link_info) -> Result<Link, libbpf_rs::Error> {
    let opts = libbpf_sys::bpf_iter_attach_opts {
        sz: size_of::<libbpf_sys::bpf_iter_attach_opts>() as _,
        link_info: info,
        link_info_len: size_of::<libbpf_sys::bpf_iter_link_info>() as _,
        ..Default::default()
    };
    // SAFETY: a loaded program and options pointing at live locals; libbpf
    // copies what it needs.
    let ptr = unsafe { libbpf_sys::bpf_program__attach_iter(prog.as_libbpf_object().as_ptr(), &opts) };
    match std::ptr::NonNull::new(ptr) {
        // SAFETY: a link libbpf just made (NULL and errno on failure),
        // owned from here on.
        Some(p) => Ok(unsafe { Link::from_ptr(p) }),
        None => Err(libbpf_rs::Error::from(std::io::Error::last_os_error())),
    }
}

/// A descriptor of the map `map` names (by id, or pinned at a path).
pub fn map_fd(map: &MapRef) -> std::io::Result<OwnedFd> {
    let fd = match map {
        // SAFETY: a plain syscall wrapper; a descriptor or -1 and errno.
        MapRef::Id(id) => unsafe { libbpf_sys::bpf_map_get_fd_by_id(*id) },
        MapRef::Path(path) => {
            let c = std::ffi::CString::new(path.as_bytes()).map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
            // SAFETY: a NUL-terminated path.
            unsafe { libbpf_sys::bpf_obj_get(c.as_ptr()) }
        }
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a descriptor the kernel just gave us, owned from here on.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Why the kernel refused to walk a map (kernel/bpf/map_iter.c,
/// bpf_iter_attach_map: EINVAL for a map type it cannot walk, EACCES for
/// a program reading past the key or value size).
fn map_refused(map: &MapRef, e: &libbpf_rs::Error) -> Vec<String> {
    match e.kind() {
        libbpf_rs::ErrorKind::InvalidInput => vec![format!(
            "the kernel walks the elements of hash, LRU hash and array maps and their per-CPU kinds only; map {map} is another kind (`ktap -e 'trace iter:bpf_map {{ print(args.map.id, args.map.map_type) }}'` lists them)"
        )],
        libbpf_rs::ErrorKind::PermissionDenied => vec![format!("the program reads past the key or value size of map {map}")],
        _ => Vec::new(),
    }
}

/// Reads the iterator to its end and writes its text, a line at a time.
fn run(link: &Link, cx: &mut AttachCx<'_>) -> Result<(), libbpf_rs::Error> {
    let mut reader = IterReader::new(link)?;
    let mut text = Vec::new();
    reader.read_to_end(&mut text).map_err(libbpf_rs::Error::from)?;
    for line in text.split_inclusive(|&b| b == b'\n') {
        // A closed pipe is not the script's fault: the rest is dropped.
        if cx.out.printf(&Origin::default(), line).is_err() {
            break;
        }
    }
    Ok(())
}

/// A pinned iterator runs without ktap: a body sending records to
/// userspace (`exit()`, `print_hist`, `delete`) cannot be pinned.
fn refuse_userspace(cx: &AttachCx<'_>) -> Result<(), Error> {
    let sites = crate::ir::written::sites(cx.probe());
    let Some(&site) = sites.first() else { return Ok(()) };
    Err(Error {
        message: "a pinned iterator runs without ktap, but this needs ktap in userspace".into(),
        span: Some(cx.module.site(site).span),
        notes: vec!["only print/printf (into the iterator's file) and kernel tables and globals work in a pinned iterator".into()],
    })
}

/// Whether `path`'s filesystem is bpffs.
fn on_bpffs(path: &Path) -> bool {
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()) else { return false };
    // SAFETY: a NUL-terminated path and a zeroed struct to fill.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    (unsafe { libc::statfs(c.as_ptr(), &mut st) }) == 0 && st.f_type as i64 == BPF_FS_MAGIC
}

/// Mounts bpffs at its usual place when `dir` is under it and it is not
/// mounted.
fn mount_bpffs(dir: &Path) {
    if !dir.starts_with(BPF_FS) || on_bpffs(Path::new(BPF_FS)) {
        return;
    }
    // SAFETY: constant NUL-terminated strings.
    unsafe { libc::mount(c"bpf".as_ptr(), c"/sys/fs/bpf".as_ptr(), c"bpf".as_ptr(), 0, std::ptr::null()) };
}

/// Checks that `dir` is a directory on bpffs (made when missing, with
/// bpffs mounted at /sys/fs/bpf first when needed).
pub fn pin_dir(dir: &Path) -> Result<(), String> {
    mount_bpffs(dir);
    let parent = dir.ancestors().skip(1).find(|a| a.exists()).unwrap_or(Path::new("/"));
    if !on_bpffs(if dir.exists() { dir } else { parent }) {
        return Err(format!("cannot pin in {}: not on a BPF filesystem (bpffs, mounted at {BPF_FS})", dir.display()));
    }
    if !dir.exists() {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    Ok(())
}

/// Pins `link` as `dir/name`; an existing file is never replaced.
fn pin(mut link: Link, dir: &Path, name: &str) -> Result<PathBuf, String> {
    pin_dir(dir)?;
    let path = dir.join(name);
    if path.exists() {
        return Err(format!("cannot pin at {}: the file exists (`ktap --unpin {}` removes what ktap pinned there)", path.display(), dir.display()));
    }
    link.pin(&path).map_err(|e| format!("cannot pin at {}: {e}", path.display()))?;
    Ok(path)
}

/// `--unpin DIR`: removes the iterator links pinned in `dir` (and `dir`
/// when that empties it); returns what was removed.
pub fn unpin(dir: &Path) -> Result<Vec<PathBuf>, String> {
    if !dir.is_dir() || !on_bpffs(dir) {
        return Err(format!("{} is not a directory on a BPF filesystem", dir.display()));
    }
    let entries = std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if is_iter_link(&path) {
            std::fs::remove_file(&path).map_err(|e| format!("cannot remove {}: {e}", path.display()))?;
            removed.push(path);
        }
    }
    removed.sort();
    let _ = std::fs::remove_dir(dir);
    Ok(removed)
}

/// Whether a pinned object is an iterator link.
fn is_iter_link(path: &Path) -> bool {
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()) else { return false };
    // SAFETY: a NUL-terminated path; the descriptor is closed below.
    let fd = unsafe { libbpf_sys::bpf_obj_get(c.as_ptr()) };
    if fd < 0 {
        return false;
    }
    let mut info = libbpf_sys::bpf_link_info::default();
    let mut len = size_of::<libbpf_sys::bpf_link_info>() as u32;
    // SAFETY: our descriptor and a buffer of the size given.
    let ok = unsafe { libbpf_sys::bpf_link_get_info_by_fd(fd, &mut info, &mut len) } == 0;
    // SAFETY: our own descriptor.
    unsafe { libc::close(fd) };
    ok && info.type_ == libbpf_sys::BPF_LINK_TYPE_ITER
}

#[cfg(test)]
mod tests {
    use super::cgroup2_mount;

    #[test]
    fn the_unified_hierarchy_is_found_where_it_is_mounted() {
        let hybrid = "tmpfs /sys/fs/cgroup tmpfs rw 0 0\ncgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0\ncgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n";
        assert_eq!(cgroup2_mount(hybrid).as_deref(), Some("/sys/fs/cgroup/unified"));
        assert_eq!(cgroup2_mount("cgroup2 /sys/fs/cgroup cgroup2 rw 0 0\n").as_deref(), Some("/sys/fs/cgroup"));
        assert_eq!(cgroup2_mount("none /mnt/my\\040cgroups cgroup2 rw 0 0\n").as_deref(), Some("/mnt/my cgroups"));
        assert_eq!(cgroup2_mount("cgroup /sys/fs/cgroup/cpu cgroup rw 0 0\n"), None);
    }
}
