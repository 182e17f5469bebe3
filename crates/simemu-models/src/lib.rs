//! The checkpoints shipped inside simemu, named `builtin:NAME` wherever a
//! checkpoint is expected (a run config's `generator.checkpoint`, `simemu
//! generate --checkpoint`). Their files are compiled in from `models/`, whose
//! README says how each was produced.

use std::path::Path;

use simemu_core::fsutil::{write_atomic, TempDir};
use simemu_core::{Error, Result};

pub use tempfile::TempDir as TemporaryDir;

/// The prefix that names a shipped checkpoint.
pub const PREFIX: &str = "builtin:";

/// One shipped checkpoint: its name and its files (name, content).
pub struct Builtin {
    pub name: &'static str,
    pub files: &'static [(&'static str, &'static [u8])],
}

/// A shipped `dcgan` checkpoint: the files of `models/NAME/`.
macro_rules! dcgan_checkpoint {
    ($name:literal) => {
        Builtin {
            name: $name,
            files: &[
                (
                    "generator.json",
                    include_bytes!(concat!("../../../models/", $name, "/generator.json")),
                ),
                (
                    "state.json",
                    include_bytes!(concat!("../../../models/", $name, "/state.json")),
                ),
                (
                    "generator.safetensors",
                    include_bytes!(concat!("../../../models/", $name, "/generator.safetensors")),
                ),
                (
                    "generator_ema.safetensors",
                    include_bytes!(concat!(
                        "../../../models/",
                        $name,
                        "/generator_ema.safetensors"
                    )),
                ),
                (
                    "discriminator.safetensors",
                    include_bytes!(concat!(
                        "../../../models/",
                        $name,
                        "/discriminator.safetensors"
                    )),
                ),
            ],
        }
    };
}

/// Every shipped checkpoint: the unconditional 64² emulator of the default run,
/// and the conditional one over (Ω_m, σ_8).
pub const BUILTIN: &[Builtin] = &[
    dcgan_checkpoint!("convergence-64"),
    dcgan_checkpoint!("convergence-64-conditional"),
];

/// The NAME of a `builtin:NAME` checkpoint reference (None: not one).
pub fn builtin_name(reference: &str) -> Option<&str> {
    reference.strip_prefix(PREFIX)
}

/// The shipped checkpoint `name`, or an error listing those there are.
pub fn find(name: &str) -> Result<&'static Builtin> {
    BUILTIN.iter().find(|b| b.name == name).ok_or_else(|| {
        let known: Vec<&str> = BUILTIN.iter().map(|b| b.name).collect();
        Error::Option(format!(
            "no builtin checkpoint '{name}' (builtin: {})",
            known.join(", ")
        ))
    })
}

impl Builtin {
    /// FNV-1a over the file names and contents, so that a binary with another
    /// shipped model redoes the pipeline stages that used this one.
    pub fn fingerprint(&self) -> String {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for (file, bytes) in self.files {
            for b in file.bytes().chain(bytes.iter().copied()) {
                h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
            }
        }
        format!("{h:016x}")
    }

    /// Writes the checkpoint into the directory `out` (atomically; an existing
    /// one is replaced only with `force`).
    pub fn unpack(&self, out: &Path, force: bool) -> Result<()> {
        let dir = TempDir::new(out)?;
        for (file, bytes) in self.files {
            write_atomic(&dir.path().join(file), bytes)?;
        }
        dir.persist(force)
    }

    /// The checkpoint in a private temporary directory, removed when the
    /// returned value is dropped.
    pub fn unpack_temporary(&self) -> Result<TemporaryDir> {
        let dir = tempfile::Builder::new()
            .prefix("simemu-builtin-")
            .tempdir()
            .map_err(|e| Error::io(std::env::temp_dir(), e))?;
        self.unpack(&dir.path().join(self.name), false)?;
        Ok(dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every shipped checkpoint unpacks into its files, byte for byte, and is
    /// named by its fingerprint; an unknown name lists the known ones.
    #[test]
    fn shipped_checkpoints_unpack_byte_for_byte() {
        for b in BUILTIN {
            let dir = b.unpack_temporary().unwrap();
            for (file, bytes) in b.files {
                let got = std::fs::read(dir.path().join(b.name).join(file)).unwrap();
                assert!(got == *bytes, "{}/{file}", b.name);
            }
            assert_eq!(b.fingerprint().len(), 16);
        }
        let e = find("nothing").err().unwrap().to_string();
        assert!(e.contains("convergence-64"), "{e}");
        assert_eq!(
            builtin_name("builtin:convergence-64"),
            Some("convergence-64")
        );
        assert_eq!(builtin_name("runs/x"), None);
    }
}
