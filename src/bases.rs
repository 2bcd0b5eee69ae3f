//! The image each device was last updated with, kept per device and chip: the
//! base a delta patch is made against (#19). cargo-ota keeps them under the
//! firmware's target directory (`<target>/ota-bases/<device>-<chip>.bin`), so
//! `cargo clean` forgets them, and writes each one atomically: a file there is
//! always a whole image that a device took. A device that refused a patch as no
//! app image (an Arduino core, which takes no patches) is marked beside it
//! (`.no-patches`), so it is tried once.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// The kept images, in one directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bases {
    dir: PathBuf,
}

impl Bases {
    /// The store under a cargo target directory.
    pub fn in_target_dir(target_dir: &Path) -> Bases {
        Bases {
            dir: target_dir.join("ota-bases"),
        }
    }

    /// Where the image of `device` (its configured name, or its host) for
    /// `chip` is kept: one file name, whatever the name holds (no separators,
    /// no `..`: other characters become `_`, and a hash of the name keeps two
    /// names apart that map to the same characters).
    pub fn path(&self, device: &str, chip: &str) -> PathBuf {
        let clean = |s: &str| -> String {
            s.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect()
        };
        let tag = fnv1a(device.as_bytes());
        self.dir.join(format!(
            "{}-{:08x}-{}.bin",
            clean(device),
            tag as u32,
            clean(chip)
        ))
    }

    /// The image `device` was last updated with, if one is kept.
    pub fn get(&self, device: &str, chip: &str) -> Option<Vec<u8>> {
        fs::read(self.path(device, chip)).ok()
    }

    /// Keep `image` as what `device` runs now: written to a temporary file in
    /// the same directory, then renamed over the old one.
    pub fn put(&self, device: &str, chip: &str, image: &[u8]) -> io::Result<PathBuf> {
        fs::create_dir_all(&self.dir)?;
        let path = self.path(device, chip);
        let tmp = path.with_extension(format!("partial-{}", std::process::id()));
        let written = fs::write(&tmp, image).and_then(|()| fs::rename(&tmp, &path));
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        written.map(|()| path)
    }

    /// Forget what `device` runs (it refused a patch against it: it runs
    /// something else).
    pub fn forget(&self, device: &str, chip: &str) {
        let _ = fs::remove_file(self.path(device, chip));
    }

    /// Remember that `device` does not take patches at all (it refused one as
    /// no app image: an Arduino core), so it is not sent another.
    pub fn mark_no_patches(&self, device: &str, chip: &str) -> io::Result<()> {
        fs::create_dir_all(&self.dir)?;
        fs::write(self.path(device, chip).with_extension("no-patches"), b"")
    }

    /// Did `device` refuse patches before?
    pub fn takes_no_patches(&self, device: &str, chip: &str) -> bool {
        self.path(device, chip)
            .with_extension("no-patches")
            .exists()
    }
}

/// FNV-1a, 64 bits: a stable tag of a name (not a security measure).
fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_per_device_and_chip_and_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let bases = Bases::in_target_dir(dir.path());
        assert_eq!(bases.get("desk", "esp32c3"), None);
        let first = bases.put("desk", "esp32c3", b"first image").unwrap();
        assert!(first.starts_with(dir.path().join("ota-bases")));
        bases.put("desk", "esp32c6", b"c6 image").unwrap();
        bases.put("shelf", "esp32c3", b"shelf image").unwrap();
        assert_eq!(bases.get("desk", "esp32c3").unwrap(), b"first image");
        bases.put("desk", "esp32c3", b"second").unwrap();
        assert_eq!(bases.get("desk", "esp32c3").unwrap(), b"second");
        assert_eq!(bases.get("desk", "esp32c6").unwrap(), b"c6 image");
        assert_eq!(bases.get("shelf", "esp32c3").unwrap(), b"shelf image");
        // Only whole images are left: no temporary files.
        let names: Vec<String> = fs::read_dir(dir.path().join("ota-bases"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 3, "{names:?}");
        assert!(names.iter().all(|n| n.ends_with(".bin")), "{names:?}");
        bases.forget("desk", "esp32c3");
        assert_eq!(bases.get("desk", "esp32c3"), None);
        assert_eq!(bases.get("desk", "esp32c6").unwrap(), b"c6 image");
        // A device that takes no patches, remembered apart from its image.
        assert!(!bases.takes_no_patches("shelf", "esp32c3"));
        bases.mark_no_patches("shelf", "esp32c3").unwrap();
        assert!(bases.takes_no_patches("shelf", "esp32c3"));
        assert!(!bases.takes_no_patches("desk", "esp32c6"));
        assert_eq!(bases.get("shelf", "esp32c3").unwrap(), b"shelf image");
    }

    #[test]
    fn any_device_name_is_one_file_in_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let bases = Bases::in_target_dir(dir.path());
        let store = dir.path().join("ota-bases");
        for name in [
            "../../etc/passwd",
            "/abs",
            "fe80::1%wlan0",
            "a b",
            "bench-1.local",
        ] {
            let path = bases.path(name, "esp32c3");
            assert_eq!(path.parent(), Some(store.as_path()), "{name}");
            let file = path.file_name().unwrap().to_str().unwrap();
            assert!(!file.contains(".."), "{name}: {file}");
        }
        // Names that clean to the same characters stay apart.
        assert_ne!(bases.path("a.b", "esp32c3"), bases.path("a_b", "esp32c3"));
        assert_ne!(bases.path("desk", "esp32c3"), bases.path("desk", "esp32c6"));
    }
}
