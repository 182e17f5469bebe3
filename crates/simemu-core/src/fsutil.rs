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
