//! Atomic file and directory writes: everything is written under a temporary name in
//! the destination's directory and renamed into place, so an interrupted write never
//! destroys or half-replaces what was there before.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::{Error, Result};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A unique sibling path `.<name>.partial-<pid>-<n>` of `path`.
pub fn partial_path(path: &Path) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = path
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    path.with_file_name(format!(".{name}.partial-{}-{n}", std::process::id()))
}

/// Refuses to replace an existing `path` unless `overwrite` (the `--force` flag) is set.
pub fn refuse_to_replace(path: &Path, overwrite: bool) -> Result<()> {
    if path.exists() && !overwrite {
        return Err(Error::Other(format!(
            "{} already exists (use --force to replace it)",
            path.display()
        )));
    }
    Ok(())
}

/// A file being written under a temporary name; removed on drop unless persisted.
pub struct TempFile {
    tmp: PathBuf,
    final_path: PathBuf,
    persisted: bool,
}

impl TempFile {
    pub fn new(final_path: &Path) -> Result<Self> {
        if let Some(parent) = final_path.parent() {
            if !parent.as_os_str().is_empty() {
                fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
            }
        }
        Ok(TempFile {
            tmp: partial_path(final_path),
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

/// Writes `bytes` to `path` atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = TempFile::new(path)?;
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
    pub fn new(final_path: &Path) -> Result<Self> {
        if let Some(parent) = final_path.parent() {
            if !parent.as_os_str().is_empty() {
                fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
            }
        }
        let tmp = partial_path(final_path);
        fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
        Ok(TempDir {
            tmp,
            final_path: final_path.to_path_buf(),
            persisted: false,
        })
    }

    pub fn path(&self) -> &Path {
        &self.tmp
    }

    /// Moves the finished directory into place. An existing destination is replaced
    /// only when `overwrite` is set, and only after the new one is complete.
    pub fn persist(mut self, overwrite: bool) -> Result<()> {
        if self.final_path.exists() {
            refuse_to_replace(&self.final_path, overwrite)?;
            let old = partial_path(&self.final_path);
            fs::rename(&self.final_path, &old).map_err(|e| Error::io(&self.final_path, e))?;
            fs::rename(&self.tmp, &self.final_path).map_err(|e| Error::io(&self.final_path, e))?;
            let _ = fs::remove_dir_all(&old);
        } else {
            fs::rename(&self.tmp, &self.final_path).map_err(|e| Error::io(&self.final_path, e))?;
        }
        self.persisted = true;
        Ok(())
    }
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
