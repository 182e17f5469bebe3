//! Safe file-system writes.
//!
//! - Everything is written under a temporary name in the destination's
//!   directory and renamed into place, so an interrupted write never destroys or
//!   half-replaces what was there before ([`TempFile`], [`TempDir`],
//!   [`write_atomic`]).
//! - Temporary names are unique beyond the process id (a random token per
//!   process), created exclusively, and those left by processes that no longer
//!   run are removed when the next write to the same destination starts.
//! - `--force` replaces only what simemu wrote ([`check_output`]): a directory
//!   with one of simemu's marker files, or a file of the format being written.
//! - Names read from manifests are plain file names ([`check_plain_name`]), an
//!   output never overlaps an input ([`refuse_overlap`]), a size is checked
//!   against the free disk before the work starts ([`check_free_space`]), and a
//!   directory in use is locked ([`DirLock`]).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use crate::{Error, Result};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A random token of this process: with the pid, it tells this process's
/// temporary files from those of an earlier process that had the same pid (pids
/// repeat across container starts and job retries).
fn process_token() -> &'static str {
    static TOKEN: OnceLock<String> = OnceLock::new();
    TOKEN.get_or_init(|| {
        use std::hash::{BuildHasher, Hasher};
        // std's RandomState is keyed from the operating system's random source.
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        format!("{:016x}", h.finish())
    })
}

/// The prefix of every temporary sibling of `path`: `.<name>.partial-`.
fn partial_prefix(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    format!(".{name}.partial-")
}

/// A unique sibling path `.<name>.partial-<pid>-<token>-<n>` of `path`.
pub fn partial_path(path: &Path) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    path.with_file_name(format!(
        "{}{}-{}-{n}",
        partial_prefix(path),
        std::process::id(),
        process_token()
    ))
}

/// Removes the temporary siblings of `path` that no live process is writing:
/// those of a process that no longer runs, and those with this process's pid
/// but another token (an earlier process that had the same pid).
fn remove_stale_partials(path: &Path) {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let prefix = partial_prefix(path);
    remove_stale(parent, |name| name.strip_prefix(&prefix));
}

/// Removes every temporary entry in `dir` that no live process is writing
/// (for directories whose entries come and go, such as checkpoints).
pub fn remove_stale_partials_in(dir: &Path) {
    remove_stale(dir, |name| {
        name.strip_prefix('.')
            .and_then(|n| n.split_once(".partial-"))
            .map(|(_, rest)| rest)
    });
}

/// Removes the entries of `dir` whose name `suffix` maps to a stale writer's
/// `<pid>-<token>-<n>`.
fn remove_stale(dir: &Path, suffix: impl Fn(&str) -> Option<&str>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_str().and_then(&suffix).is_some_and(is_stale) {
            continue;
        }
        let stale = entry.path();
        let removed = match entry.file_type() {
            Ok(t) if t.is_dir() => fs::remove_dir_all(&stale),
            _ => fs::remove_file(&stale),
        };
        match removed {
            Ok(()) => tracing::info!(
                "removed {}, left by an interrupted simemu process",
                stale.display()
            ),
            Err(e) => tracing::warn!("cannot remove stale {}: {e}", stale.display()),
        }
    }
}

/// Whether the suffix `<pid>-<token>-<n>` (or an older `<pid>-<n>`) of a
/// temporary name belongs to no live writer.
fn is_stale(suffix: &str) -> bool {
    let parts: Vec<&str> = suffix.split('-').collect();
    let Some(pid) = parts.first().and_then(|p| p.parse::<u32>().ok()) else {
        return false;
    };
    let token = (parts.len() == 3).then(|| parts[1]);
    if pid == std::process::id() {
        token != Some(process_token())
    } else {
        !process_alive(pid)
    }
}

#[cfg(unix)]
fn process_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return true;
    };
    // SAFETY: signal 0 only checks that the process exists.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(not(unix))]
fn process_alive(_pid: u32) -> bool {
    true
}

/// What kind of output a command writes, to recognise one that simemu wrote
/// before: only such an output is replaced by `--force`.
#[derive(Clone, Copy, Debug)]
pub enum OutputKind {
    /// A directory with one of simemu's marker files ([`MARKER_FILES`]).
    Directory,
    /// A file of the format `format`, known by its first bytes.
    File {
        format: &'static str,
        magic: &'static [u8],
    },
    /// A JSON file holding an object with the key `key`.
    Json { key: &'static str },
}

/// The marker files of the directories simemu writes (datasets, training runs,
/// `simemu run` directories, reports, leaderboards, exports): each holds a JSON
/// object whose `format` names a simemu format (`simemu-…`).
pub const MARKER_FILES: &[&str] = &[
    "manifest.json",
    "generator.json",
    "run.json",
    "report.json",
    "leaderboard.json",
    EXPORT_MARKER,
];

/// The marker an export directory carries (its files are another tool's format).
pub const EXPORT_MARKER: &str = ".simemu-export.json";

/// Refuses an output that exists unless `overwrite` (the `--force` flag) is set,
/// and even then unless simemu wrote it: a directory with a marker file, a file
/// of the format being written. A symbolic link at the output is refused, except
/// for a JSON file, which is written through the link; a device or a pipe
/// (`/dev/stdout`) is written into, not replaced, and needs no `--force`.
pub fn check_output(path: &Path, overwrite: bool, kind: OutputKind) -> Result<()> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(path, e)),
    };
    let (meta, shown) = if meta.file_type().is_symlink() {
        if !matches!(kind, OutputKind::Json { .. }) {
            return Err(Error::Refused(format!(
                "{} is a symbolic link; simemu does not replace links: remove it or give the path it points to",
                path.display()
            )));
        }
        match fs::metadata(path) {
            Ok(m) => (m, resolve_links(path)),
            Err(_) => return Ok(()), // a dangling link: written through, nothing replaced
        }
    } else {
        (meta, path.to_path_buf())
    };
    if !meta.is_file() && !meta.is_dir() {
        return if matches!(kind, OutputKind::Json { .. }) {
            Ok(())
        } else {
            Err(Error::Refused(format!(
                "{} is neither a file nor a directory",
                path.display()
            )))
        };
    }
    if !overwrite {
        return Err(Error::Refused(format!(
            "{} already exists (use --force to replace it)",
            path.display()
        )));
    }
    let (ours, wanted) = match kind {
        OutputKind::Directory => (
            meta.is_dir() && is_simemu_directory(&shown),
            "a dataset, run, report or export that simemu wrote".to_string(),
        ),
        OutputKind::File { format, magic } => (
            meta.is_file() && starts_with(&shown, magic),
            format!("a {format} file"),
        ),
        OutputKind::Json { key } => (
            meta.is_file() && json_object_with(&shown, key),
            format!("a JSON file that simemu wrote (with \"{key}\")"),
        ),
    };
    if ours {
        Ok(())
    } else {
        Err(Error::Refused(format!(
            "{} is not {wanted}; --force replaces only that: remove it yourself or choose another output",
            path.display()
        )))
    }
}

/// Whether `dir` holds one of simemu's marker files.
pub fn is_simemu_directory(dir: &Path) -> bool {
    MARKER_FILES.iter().any(|file| {
        read_json(&dir.join(file))
            .and_then(|v| v.get("format").and_then(|f| f.as_str()).map(String::from))
            .is_some_and(|f| f.starts_with("simemu-"))
    })
}

fn read_json(path: &Path) -> Option<serde_json::Value> {
    let meta = fs::metadata(path).ok()?;
    // Marker files are small; a large file is not one.
    if !meta.is_file() || meta.len() > 256 << 20 {
        return None;
    }
    serde_json::from_slice(&fs::read(path).ok()?).ok()
}

fn json_object_with(path: &Path, key: &str) -> bool {
    read_json(path).is_some_and(|v| v.get(key).is_some())
}

fn starts_with(path: &Path, magic: &[u8]) -> bool {
    use std::io::Read;
    let mut head = vec![0u8; magic.len()];
    fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && head == magic
}

/// `path` with its symbolic links followed (as far as they lead).
fn resolve_links(path: &Path) -> PathBuf {
    let mut p = path.to_path_buf();
    for _ in 0..40 {
        match fs::read_link(&p) {
            Ok(target) => {
                p = match p.parent() {
                    Some(parent) => parent.join(target),
                    None => target,
                }
            }
            Err(_) => break,
        }
    }
    p
}

/// Refuses an output that is, lies inside, or contains one of the inputs: its
/// replacement would destroy the input, or its writing would change it.
pub fn refuse_overlap(output: &Path, inputs: &[&Path]) -> Result<()> {
    let out = resolved(output);
    for input in inputs {
        let inp = resolved(input);
        let relation = if out == inp {
            "is"
        } else if out.starts_with(&inp) {
            "lies inside"
        } else if inp.starts_with(&out) {
            "contains"
        } else {
            continue;
        };
        return Err(Error::Refused(format!(
            "the output {} {relation} the input {}: choose another output",
            output.display(),
            input.display()
        )));
    }
    Ok(())
}

/// Refuses a file or directory name read from a manifest, config or checkpoint
/// that is not a plain name inside its directory: empty, `.` or `..`, a path
/// separator, or a NUL. Every reader and writer of names checks them here.
pub fn check_plain_name(name: &str) -> std::result::Result<(), String> {
    let why = if name.is_empty() {
        "is empty"
    } else if name == "." || name == ".." {
        "is a directory reference"
    } else if name.contains(['/', '\\']) {
        "contains a path separator"
    } else if name.contains('\0') {
        "contains a NUL"
    } else {
        return Ok(());
    };
    Err(format!(
        "'{}' {why}: names must stay inside their directory",
        name.escape_debug()
    ))
}

/// Bytes free for an unprivileged writer on the file system that holds `path`
/// (or its nearest existing ancestor); `None` where that cannot be known.
pub fn free_space(path: &Path) -> Option<u64> {
    let dir = resolved(path);
    let mut existing = dir.as_path();
    while !existing.exists() {
        existing = existing.parent()?;
    }
    statvfs_free(existing)
}

#[cfg(unix)]
fn statvfs_free(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: statvfs writes the struct when it returns 0.
    let r = unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) };
    if r != 0 {
        return None;
    }
    // SAFETY: r == 0.
    let st = unsafe { st.assume_init() };
    #[allow(clippy::unnecessary_cast)] // the field types differ between platforms
    Some(st.f_bavail as u64 * st.f_frsize as u64)
}

#[cfg(not(unix))]
fn statvfs_free(_path: &Path) -> Option<u64> {
    None
}

/// Refuses, before any work, an output of `bytes` (`None`: more than 2⁶⁴) that
/// the free disk at `out` cannot hold; `what` names the output in the message.
pub fn check_free_space(out: &Path, bytes: Option<u64>, what: &str) -> Result<()> {
    let free = free_space(out);
    match (bytes, free) {
        (Some(b), Some(f)) if b <= f => Ok(()),
        (Some(_), None) => Ok(()),
        (b, f) => Err(Error::Refused(format!(
            "{what} would take {}, but {} {} free at {}",
            b.map(human_bytes)
                .unwrap_or_else(|| "more than 16 EiB".into()),
            f.map(human_bytes).unwrap_or_else(|| "less".into()),
            if f.is_some() { "are" } else { "is" },
            out.display()
        ))),
    }
}

/// `bytes` for people: `1.6 TB`.
pub fn human_bytes(bytes: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < units.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", units[u])
    }
}

/// An advisory, exclusive lock on a directory (a `.lock` file inside it), held
/// until dropped or the process ends: two processes never work in one run
/// directory at once.
pub struct DirLock {
    _file: fs::File,
}

impl DirLock {
    pub fn acquire(dir: &Path) -> Result<DirLock> {
        let path = dir.join(".lock");
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        lock_exclusive(&file).map_err(|e| {
            if e.kind() == std::io::ErrorKind::WouldBlock {
                Error::Other(format!(
                    "{} is in use by another simemu process (it holds {}); wait for it to finish",
                    dir.display(),
                    path.display()
                ))
            } else {
                Error::io(&path, e)
            }
        })?;
        Ok(DirLock { _file: file })
    }
}

#[cfg(unix)]
fn lock_exclusive(file: &fs::File) -> std::io::Result<()> {
    use std::os::unix::io::AsRawFd;
    // SAFETY: flock on a descriptor this process owns.
    let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(unix))]
fn lock_exclusive(_file: &fs::File) -> std::io::Result<()> {
    Ok(())
}

/// A file being written under a temporary name; removed on drop unless persisted.
pub struct TempFile {
    tmp: PathBuf,
    final_path: PathBuf,
    persisted: bool,
}

impl TempFile {
    /// Reserves the temporary name (created empty, exclusively) beside
    /// `final_path`, after removing stale ones of dead processes.
    pub fn new(final_path: &Path) -> Result<Self> {
        if let Some(parent) = final_path.parent() {
            if !parent.as_os_str().is_empty() {
                fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
            }
        }
        remove_stale_partials(final_path);
        let tmp = partial_path(final_path);
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| Error::io(&tmp, e))?;
        Ok(TempFile {
            tmp,
            final_path: final_path.to_path_buf(),
            persisted: false,
        })
    }

    pub fn path(&self) -> &Path {
        &self.tmp
    }

    pub fn final_path(&self) -> &Path {
        &self.final_path
    }

    /// Renames the temporary file over the final path (atomic on POSIX).
    pub fn persist(mut self) -> Result<()> {
        fs::rename(&self.tmp, &self.final_path).map_err(|e| Error::io(&self.final_path, e))?;
        self.persisted = true;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.persisted {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// `to` relative to the directory `from_dir`, through `..` where the two part,
/// so that the result resolves from `from_dir` wherever the tree they share is
/// moved. Neither needs to exist: each is resolved through its nearest existing
/// ancestor (symbolic links included). Paths that share no root (another drive)
/// give `to` absolute.
pub fn relative_path(from_dir: &Path, to: &Path) -> PathBuf {
    let (from, to) = (resolved(from_dir), resolved(to));
    let from: Vec<_> = from.components().collect();
    let to_parts: Vec<_> = to.components().collect();
    let common = from
        .iter()
        .zip(&to_parts)
        .take_while(|(a, b)| a == b)
        .count();
    if common == 0 {
        return to;
    }
    let mut relative: PathBuf = std::iter::repeat_n("..", from.len() - common).collect();
    relative.extend(&to_parts[common..]);
    if relative.as_os_str().is_empty() {
        relative.push(".");
    }
    relative
}

/// `path` absolute, its longest existing prefix canonical.
fn resolved(path: &Path) -> PathBuf {
    let absolute = std::env::current_dir()
        .map(|d| d.join(path))
        .unwrap_or_else(|_| path.to_path_buf());
    let mut existing = absolute.as_path();
    let mut missing = Vec::new();
    loop {
        if let Ok(canonical) = existing.canonicalize() {
            return canonical.join(missing.iter().rev().collect::<PathBuf>());
        }
        match (existing.file_name(), existing.parent()) {
            (Some(name), Some(parent)) => {
                missing.push(name);
                existing = parent;
            }
            _ => return absolute,
        }
    }
}

/// Writes `bytes` to `path` atomically. A symbolic link is written through (its
/// target replaced, the link kept); a device or a pipe (`/dev/stdout`) is
/// written into.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Ok(meta) = fs::metadata(path) {
        if meta.is_dir() {
            return Err(Error::bad_file(path, "is a directory; give a file name"));
        }
        if !meta.is_file() {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(|e| Error::io(path, e))?;
            return f.write_all(bytes).map_err(|e| Error::io(path, e));
        }
    }
    let target = fs::canonicalize(path).unwrap_or_else(|_| resolve_links(path));
    let tmp = TempFile::new(&target)?;
    {
        let mut f = fs::File::create(tmp.path()).map_err(|e| Error::io(tmp.path(), e))?;
        f.write_all(bytes).map_err(|e| Error::io(tmp.path(), e))?;
        f.sync_all().map_err(|e| Error::io(tmp.path(), e))?;
    }
    tmp.persist()
}

/// Writes `value` as pretty JSON to `path` atomically.
pub fn write_json_atomic<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut text = serde_json::to_vec_pretty(value)
        .map_err(|e| Error::Other(format!("{}: cannot serialise: {e}", path.display())))?;
    text.push(b'\n');
    write_atomic(path, &text)
}

/// A directory being built under a temporary name; removed on drop unless persisted.
pub struct TempDir {
    tmp: PathBuf,
    final_path: PathBuf,
    persisted: bool,
}

impl TempDir {
    /// Creates the temporary directory (exclusively) beside `final_path`, after
    /// removing stale ones of dead processes.
    pub fn new(final_path: &Path) -> Result<Self> {
        if let Some(parent) = final_path.parent() {
            if !parent.as_os_str().is_empty() {
                fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
            }
        }
        remove_stale_partials(final_path);
        let tmp = partial_path(final_path);
        fs::create_dir(&tmp).map_err(|e| Error::io(&tmp, e))?;
        Ok(TempDir {
            tmp,
            final_path: final_path.to_path_buf(),
            persisted: false,
        })
    }

    pub fn path(&self) -> &Path {
        &self.tmp
    }

    /// Moves the finished output into place. An existing destination is replaced
    /// only when `overwrite` is set and simemu wrote it ([`check_output`]), and
    /// only once the new one is complete.
    pub fn persist(self, overwrite: bool) -> Result<()> {
        check_output(&self.final_path, overwrite, OutputKind::Directory)?;
        self.persist_replacing()
    }

    /// Moves the finished directory into place, replacing whatever directory is
    /// there: for directories inside an output simemu owns (a checkpoint's step).
    pub fn persist_replacing(mut self) -> Result<()> {
        if self.final_path.exists() {
            swap(&self.tmp, &self.final_path)?;
            // The old content now sits at the temporary name.
            let _ = fs::remove_dir_all(&self.tmp);
        } else {
            fs::rename(&self.tmp, &self.final_path).map_err(|e| Error::io(&self.final_path, e))?;
        }
        self.persisted = true;
        Ok(())
    }
}

/// Exchanges `a` and `b` atomically where the system can (Linux's
/// `RENAME_EXCHANGE`): at no moment is `b` missing. Elsewhere `b` is moved aside
/// first; an interruption then leaves the old `b` at a temporary name.
fn swap(a: &Path, b: &Path) -> Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::ffi::OsStrExt;
        let ca = std::ffi::CString::new(a.as_os_str().as_bytes());
        let cb = std::ffi::CString::new(b.as_os_str().as_bytes());
        if let (Ok(ca), Ok(cb)) = (ca, cb) {
            // SAFETY: two valid C strings, relative to the working directory.
            let r = unsafe {
                libc::renameat2(
                    libc::AT_FDCWD,
                    ca.as_ptr(),
                    libc::AT_FDCWD,
                    cb.as_ptr(),
                    libc::RENAME_EXCHANGE,
                )
            };
            if r == 0 {
                return Ok(());
            }
        }
    }
    let old = partial_path(b);
    fs::rename(b, &old).map_err(|e| Error::io(b, e))?;
    fs::rename(a, b).map_err(|e| Error::io(b, e))?;
    fs::rename(&old, a).map_err(|e| Error::io(a, e))
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !self.persisted {
            let _ = fs::remove_dir_all(&self.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Relative paths resolve from their directory, also for a directory not
    /// made yet, through `..` where the paths part and through symbolic links.
    #[test]
    fn relative_paths_resolve_from_their_directory() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("run/data/validation")).unwrap();
        let report = root.join("run/report/00-dcgan");
        let data = root.join("run/data/validation");
        let rel = relative_path(&report, &data);
        assert_eq!(rel, Path::new("../../data/validation"));
        std::fs::create_dir_all(&report).unwrap();
        assert_eq!(
            report.join(&rel).canonicalize().unwrap(),
            data.canonicalize().unwrap()
        );
        assert_eq!(relative_path(&data, &data), Path::new("."));
        assert_eq!(
            relative_path(&root.join("run"), &data),
            Path::new("data/validation")
        );
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(root.join("run"), root.join("link")).unwrap();
            assert_eq!(
                relative_path(&root.join("link/report"), &data),
                Path::new("../data/validation")
            );
        }
    }
}
