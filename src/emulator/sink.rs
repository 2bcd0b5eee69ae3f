//! The emulator's update sink: keeps the image in memory, checks what the core's
//! updater and the bootloader check, and writes accepted images to `--out`.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::appimage;
use crate::device::{UpdateError, UpdateSink};
use crate::protocol::Command;

use super::Flavor;

pub struct EmulatorSink {
    flavor: Flavor,
    chip: Option<u16>,
    partition_size: Option<u32>,
    out_dir: Option<PathBuf>,
    sequence: u64,
    kind: Command,
    md5: String,
    data: Vec<u8>,
    magic_checked: bool,
    /// Where the last accepted image was written.
    pub written: Option<PathBuf>,
}

/// ESP32's updater checks the magic byte when the first 4 KB sector is flushed.
const SECTOR: usize = 4096;

impl EmulatorSink {
    pub fn new(
        flavor: Flavor,
        chip: Option<u16>,
        partition_size: Option<u32>,
        out_dir: Option<PathBuf>,
        sequence: u64,
    ) -> Self {
        EmulatorSink {
            flavor,
            chip,
            partition_size,
            out_dir,
            sequence,
            kind: Command::Flash,
            md5: String::new(),
            data: Vec::new(),
            magic_checked: false,
            written: None,
        }
    }

    fn esp32_magic_check(&mut self) -> Result<(), UpdateError> {
        if self.flavor.is_esp32() && self.kind == Command::Flash && !self.magic_checked {
            self.magic_checked = true;
            if self.data.first() != Some(&appimage::MAGIC) {
                return Err(UpdateError::WrongMagic);
            }
        }
        Ok(())
    }

    fn write_out(&mut self, dir: &Path) -> Result<(), UpdateError> {
        let kind = match self.kind {
            Command::Flash => "app",
            Command::Filesystem => "fs",
        };
        let name = format!("{:03}-{kind}-{}.bin", self.sequence, self.md5);
        let path = dir.join(name);
        let tmp = dir.join(format!(".{:03}-{kind}.partial", self.sequence));
        let result = fs::File::create(&tmp)
            .and_then(|mut f| f.write_all(&self.data).and_then(|_| f.sync_all()))
            .and_then(|_| fs::rename(&tmp, &path));
        if let Err(e) = result {
            let _ = fs::remove_file(&tmp);
            return Err(UpdateError::Other(format!(
                "Flash Write Failed (emulator could not write {}: {e})",
                path.display()
            )));
        }
        self.written = Some(path);
        Ok(())
    }
}

impl UpdateSink for EmulatorSink {
    fn begin(&mut self, kind: Command, size: u32, md5: &str) -> Result<(), UpdateError> {
        if let Some(limit) = self.partition_size
            && size > limit
        {
            // ESP32's Update.begin says "Bad Size Given"; ESP8266 "Not Enough Space".
            return Err(if self.flavor.is_esp32() {
                UpdateError::BadSize
            } else {
                UpdateError::NotEnoughSpace
            });
        }
        self.kind = kind;
        self.md5 = md5.to_ascii_lowercase();
        self.data = Vec::with_capacity(size as usize);
        self.magic_checked = false;
        self.written = None;
        Ok(())
    }

    fn write(&mut self, data: &[u8]) -> Result<(), UpdateError> {
        self.data.extend_from_slice(data);
        if self.data.len() >= SECTOR {
            self.esp32_magic_check()?;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), UpdateError> {
        self.esp32_magic_check()?;
        if self.kind == Command::Flash {
            if self.flavor.is_esp32() {
                appimage::check(&self.data, self.chip)
                    .map_err(|detail| UpdateError::Activate { detail })?;
            } else if !(self.data.first() == Some(&appimage::MAGIC)
                || self.data.starts_with(&[0x1f, 0x8b]))
            {
                return Err(UpdateError::WrongMagic);
            }
        }
        if let Some(dir) = self.out_dir.clone() {
            self.write_out(&dir)?;
        }
        Ok(())
    }

    fn abort(&mut self) {
        self.data = Vec::new();
    }
}
