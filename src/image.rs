//! ELF → the app image an OTA slot takes, with espflash's image tools; the chip,
//! the flash settings and the partition-size check are settled here, before any
//! network traffic.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use esp_idf_part::{AppType, PartitionTable, SubType, Type};
use espflash::flasher::{FlashData, FlashFrequency, FlashMode, FlashSettings, FlashSize};
use espflash::image_format::Metadata;
use espflash::image_format::idf::{IdfBootloaderFormat, check_idf_bootloader};
use espflash::target::Chip;

use crate::error::{ElfFound, Error, ImageError};
use arduino_ota::md5_hex;

/// Every chip name `--chip` takes.
pub const CHIP_NAMES: &[&str] = &[
    "esp32", "esp32c2", "esp32c3", "esp32c5", "esp32c6", "esp32c61", "esp32h2", "esp32h4",
    "esp32p4", "esp32s2", "esp32s3", "esp32s31",
];

/// Parse a chip name: `esp32c3`, `ESP32-C3`, `esp32_c3`.
pub fn parse_chip(name: &str) -> Option<Chip> {
    let norm = arduino_ota::appimage::normalize_chip_name(name);
    CHIP_NAMES
        .contains(&norm.as_str())
        .then(|| Chip::from_str(&norm).ok())
        .flatten()
}

/// Parse a flash size in espflash's spelling: `4mb`, `16MB`, `256kb`.
pub fn parse_flash_size(s: &str) -> Option<FlashSize> {
    FlashSize::from_str(s.trim()).ok()
}

/// Parse a flash mode: `qio`, `qout`, `dio`, `dout`.
pub fn parse_flash_mode(s: &str) -> Option<FlashMode> {
    match s.trim().to_ascii_lowercase().as_str() {
        "qio" => Some(FlashMode::Qio),
        "qout" => Some(FlashMode::Qout),
        "dio" => Some(FlashMode::Dio),
        "dout" => Some(FlashMode::Dout),
        _ => None,
    }
}

/// Parse a flash frequency: `80mhz`, `40MHz`, `80`.
pub fn parse_flash_freq(s: &str) -> Option<FlashFrequency> {
    let t = s.trim().to_ascii_lowercase();
    let mhz = t.strip_suffix("mhz").or(t.strip_suffix('m')).unwrap_or(&t);
    Some(match mhz.trim() {
        "12" => FlashFrequency::_12Mhz,
        "15" => FlashFrequency::_15Mhz,
        "16" => FlashFrequency::_16Mhz,
        "20" => FlashFrequency::_20Mhz,
        "24" => FlashFrequency::_24Mhz,
        "26" => FlashFrequency::_26Mhz,
        "30" => FlashFrequency::_30Mhz,
        "40" => FlashFrequency::_40Mhz,
        "48" => FlashFrequency::_48Mhz,
        "60" => FlashFrequency::_60Mhz,
        "80" => FlashFrequency::_80Mhz,
        _ => return None,
    })
}

/// Chips a target triple can be for.
pub fn chips_for_target(triple: &str) -> Vec<Chip> {
    let arch = triple.split('-').next().unwrap_or("");
    let names: &[&str] = match arch {
        "xtensa" => {
            if triple.starts_with("xtensa-esp32s2") {
                &["esp32s2"]
            } else if triple.starts_with("xtensa-esp32s3") {
                &["esp32s3"]
            } else if triple.starts_with("xtensa-esp32-") {
                &["esp32"]
            } else {
                &[]
            }
        }
        "riscv32imc" => &["esp32c2", "esp32c3"],
        "riscv32imac" => &["esp32c5", "esp32c6", "esp32c61", "esp32h2"],
        "riscv32imafc" => &["esp32p4"],
        _ => &[],
    };
    names.iter().filter_map(|n| parse_chip(n)).collect()
}

fn is_xtensa(chip: Chip) -> bool {
    matches!(chip, Chip::Esp32 | Chip::Esp32s2 | Chip::Esp32s3)
}

/// The instruction set of an ESP ELF.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    /// RISC-V (`e_machine` 243): the ESP32-C, -H and -P series.
    RiscV,
    /// Xtensa (`e_machine` 94): the ESP32, ESP32-S2 and ESP32-S3.
    Xtensa,
}

/// Check that `elf` is a 32-bit little-endian RISC-V or Xtensa ELF.
pub fn check_esp_elf(path: &Path, elf: &[u8]) -> Result<Arch, ImageError> {
    let not_esp = |found| ImageError::NotEspElf {
        path: path.to_path_buf(),
        found,
    };
    if elf.len() < 52 || &elf[..4] != b"\x7fELF" {
        return Err(not_esp(ElfFound::NotElf));
    }
    let machine = u16::from_le_bytes([elf[18], elf[19]]);
    if elf[4] != 1 || elf[5] != 1 {
        return Err(not_esp(ElfFound::Layout {
            class: elf[4],
            machine,
        }));
    }
    match machine {
        243 => Ok(Arch::RiscV),
        94 => Ok(Arch::Xtensa),
        _ => Err(not_esp(ElfFound::Machine { machine })),
    }
}

/// Where a chip choice came from, for messages.
#[derive(Clone, Debug)]
pub struct ChipChoice {
    /// The chip name as given, not yet checked.
    pub name: String,
    /// e.g. "--chip", "`chip` in Cargo.toml".
    pub source: String,
}

/// Settings for the conversion, already merged from CLI, config and espflash.toml.
#[derive(Clone, Debug, Default)]
pub struct ImageOptions {
    /// The chip the user chose; `None`: the ELF's metadata or the target triple
    /// tells it.
    pub chip: Option<ChipChoice>,
    /// The build's target triple, to tell the chip when nothing else does.
    pub target_triple: Option<String>,
    /// The flash mode in the image header; `None`: espflash's default.
    pub flash_mode: Option<FlashMode>,
    /// The flash size in the image header; `None`: espflash's default (4 MB).
    pub flash_size: Option<FlashSize>,
    /// The flash frequency in the image header; `None`: espflash's default.
    pub flash_freq: Option<FlashFrequency>,
    /// The partition table the device was flashed with; `None`: no slot check.
    pub partition_table: Option<PathBuf>,
    /// The app partition to check against; `None`: the smallest OTA slot.
    pub target_app_partition: Option<String>,
    /// `--partition-size`: the slot size to check against, over the table's.
    pub partition_size: Option<u32>,
    /// The minimum chip revision in the image header (major * 100 + minor).
    pub min_chip_rev: u16,
    /// Require an ESP-IDF app descriptor (off with `--ignore-app-descriptor`).
    pub check_app_descriptor: bool,
    /// The image will be signed: the slot must hold it with its padding and
    /// signature sector.
    pub signed: bool,
}

/// What the app descriptor says.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct AppInfo {
    /// The project name (the package's, with `esp_app_desc!`).
    pub name: String,
    /// The firmware's version string.
    pub version: String,
    /// The build date, as the firmware recorded it (free text).
    pub date: String,
    /// The build time, as the firmware recorded it (free text).
    pub time: String,
}

/// The OTA slot the image was checked against.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SlotCheck {
    /// The slot's partition name (e.g. `ota_0`).
    pub partition: String,
    /// The slot's size, in bytes.
    pub partition_size: u32,
    /// How many OTA slots the table has (with fewer than two, no fallback).
    pub ota_slots: usize,
}

/// A converted app image.
#[derive(Clone, Debug)]
pub struct AppImage {
    /// The image's bytes, as the device receives them.
    pub data: Vec<u8>,
    /// Their MD5, in lowercase hex (the invitation announces it).
    pub md5: String,
    /// The chip the image was made for.
    pub chip: Chip,
    /// What its app descriptor says; `None` when it has none.
    pub app: Option<AppInfo>,
    /// `None` when no partition table is known.
    pub slot: Option<SlotCheck>,
    /// The size the image was checked against: `--partition-size`, else the
    /// slot's; `None`: not checked.
    pub limit: Option<u32>,
}

/// Decide the chip from the options, the ELF's metadata and the target triple.
pub fn resolve_chip(elf: &[u8], arch: Arch, opts: &ImageOptions) -> Result<Chip, ImageError> {
    let explicit = match &opts.chip {
        Some(c) => Some((
            parse_chip(&c.name).ok_or_else(|| ImageError::UnknownChip {
                name: c.name.clone(),
                origin: c.source.clone(),
            })?,
            c,
        )),
        None => None,
    };
    let metadata = Metadata::from_bytes(Some(elf));
    let from_elf = metadata.chip_name().and_then(parse_chip);
    let chip = match (explicit, from_elf) {
        (Some((chip, choice)), Some(elf_chip)) if chip != elf_chip => {
            return Err(ImageError::ChipMismatch {
                elf_chip,
                chip,
                origin: choice.source.clone(),
            });
        }
        (Some((chip, _)), _) => chip,
        (None, Some(elf_chip)) => elf_chip,
        (None, None) => {
            let triple = opts.target_triple.as_deref().unwrap_or("");
            match chips_for_target(triple).as_slice() {
                [one] => *one,
                [] => {
                    return Err(ImageError::CannotTellChip {
                        triple: Some(triple.to_string()).filter(|t| !t.is_empty()),
                    });
                }
                many => {
                    return Err(ImageError::AmbiguousChip {
                        triple: triple.to_string(),
                        chips: many.to_vec(),
                    });
                }
            }
        }
    };
    let chip_arch = if is_xtensa(chip) {
        Arch::Xtensa
    } else {
        Arch::RiscV
    };
    if chip_arch != arch {
        return Err(ImageError::ArchMismatch { arch, chip });
    }
    Ok(chip)
}

/// Read the partition table and pick the slot to check against.
pub fn pick_slot(
    path: &Path,
    target: Option<&str>,
    warn: &mut dyn FnMut(String),
) -> Result<SlotCheck, Error> {
    let data = std::fs::read(path).map_err(|e| Error::read_file(path, &e))?;
    let table = PartitionTable::try_from(data).map_err(|e| ImageError::PartitionTable {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })?;
    let ota: Vec<_> = table
        .partitions()
        .iter()
        .filter(|p| {
            p.ty() == Type::App
                && matches!(p.subtype(), SubType::App(a) if a != AppType::Factory && a != AppType::Test)
        })
        .collect();
    let apps: Vec<String> = table
        .partitions()
        .iter()
        .filter(|p| p.ty() == Type::App)
        .map(|p| p.name())
        .collect();
    let slot = match target {
        Some(name) => table
            .partitions()
            .iter()
            .find(|p| p.name() == name && p.ty() == Type::App)
            .ok_or_else(|| ImageError::NoSuchAppPartition {
                path: path.to_path_buf(),
                name: name.to_string(),
                apps: apps.clone(),
            })?,
        None => *ota
            .iter()
            .min_by_key(|p| p.size())
            .ok_or_else(|| ImageError::NoOtaSlot {
                path: path.to_path_buf(),
                apps: apps.clone(),
            })?,
    };
    if ota.len() < 2 {
        warn(format!(
            "the partition table `{}` has {} OTA slot{}: with fewer than two, a failed update cannot fall back to the running firmware",
            path.display(),
            ota.len(),
            if ota.len() == 1 { "" } else { "s" }
        ));
    }
    Ok(SlotCheck {
        partition: slot.name(),
        partition_size: slot.size(),
        ota_slots: ota.len(),
    })
}

/// Read the ESP-IDF app descriptor from an app image (first in the first segment).
pub fn app_info(image: &[u8]) -> Option<AppInfo> {
    let d = image.get(32..32 + 256)?;
    if u32::from_le_bytes(d[..4].try_into().ok()?) != 0xABCD_5432 {
        return None;
    }
    let text = |r: std::ops::Range<usize>| {
        let b = &d[r];
        let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
        String::from_utf8_lossy(&b[..end]).into_owned()
    };
    Some(AppInfo {
        version: text(16..48),
        name: text(48..80),
        time: text(80..96),
        date: text(96..112),
    })
}

/// Convert `elf` (read from `path`) into an OTA app image.
pub fn convert(
    path: &Path,
    elf: &[u8],
    opts: &ImageOptions,
    warn: &mut dyn FnMut(String),
) -> Result<AppImage, Error> {
    let arch = check_esp_elf(path, elf)?;
    let chip = resolve_chip(elf, arch, opts)?;
    if opts.check_app_descriptor
        && let Err(e) = check_idf_bootloader(&elf.to_vec())
    {
        return Err(ImageError::NoAppDescriptor {
            path: path.to_path_buf(),
            detail: e.to_string(),
        }
        .into());
    }
    let slot = match &opts.partition_table {
        Some(table) => Some(pick_slot(
            table,
            opts.target_app_partition.as_deref(),
            warn,
        )?),
        None => None,
    };
    let flash_size = opts.flash_size.unwrap_or_default();
    let flash_data = FlashData::new(
        FlashSettings::new(opts.flash_mode, Some(flash_size), opts.flash_freq),
        opts.min_chip_rev,
        None,
        chip,
        chip.default_xtal_frequency(),
    );
    // `--partition-size` overrides the table's size: espflash then checks
    // nothing (the table shapes only the merged flash image, not the app image).
    let table_for_espflash = match opts.partition_size {
        Some(_) => None,
        None => opts.partition_table.as_deref(),
    };
    let format = IdfBootloaderFormat::new(
        elf,
        &flash_data,
        table_for_espflash,
        None,
        None,
        slot.as_ref()
            .filter(|_| opts.partition_size.is_none())
            .map(|s| s.partition.as_str()),
    )
    .map_err(|e| match e {
        espflash::Error::ElfTooBig(app, part) => too_big(app, part, slot.as_ref(), false),
        other => ImageError::Convert {
            path: path.to_path_buf(),
            detail: other.to_string(),
        },
    })?;
    let data = format
        .ota_segments()
        .next()
        .map(|s| s.data().to_vec())
        .ok_or(ImageError::NoAppSegment)?;
    let limit = opts
        .partition_size
        .or(slot.as_ref().map(|s| s.partition_size));
    let stored = if opts.signed {
        crate::sign::signed_len(data.len())
    } else {
        data.len()
    };
    if let Some(limit) = limit
        && stored as u64 > u64::from(limit)
    {
        let given = opts.partition_size.is_some();
        let mut e = too_big(stored as u32, limit, slot.as_ref(), given);
        if let ImageError::TooBig { signed, .. } = &mut e {
            *signed = opts.signed;
        }
        return Err(e.into());
    }
    Ok(AppImage {
        md5: md5_hex(&data),
        app: app_info(&data),
        data,
        chip,
        slot,
        limit,
    })
}

fn too_big(app: u32, part: u32, slot: Option<&SlotCheck>, given: bool) -> ImageError {
    ImageError::TooBig {
        app,
        part,
        slot: slot.map(|s| s.partition.clone()),
        given,
        signed: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chip_names_match_espflash_and_the_emulator() {
        for name in CHIP_NAMES {
            let chip = parse_chip(name).unwrap_or_else(|| panic!("{name}"));
            if let Some(id) = arduino_ota::appimage::chip_id(name) {
                assert_eq!(chip.id(), id, "{name}");
            }
        }
        assert_eq!(parse_chip("ESP32-C3"), Some(Chip::Esp32c3));
        assert_eq!(parse_chip("esp8266"), None);
    }

    #[test]
    fn triples() {
        assert_eq!(
            chips_for_target("xtensa-esp32s3-none-elf"),
            vec![Chip::Esp32s3]
        );
        assert_eq!(chips_for_target("xtensa-esp32-espidf"), vec![Chip::Esp32]);
        assert_eq!(chips_for_target("riscv32imc-unknown-none-elf").len(), 2);
        assert!(chips_for_target("x86_64-unknown-linux-gnu").is_empty());
    }

    #[test]
    fn flash_spellings() {
        assert_eq!(parse_flash_size("4mb"), Some(FlashSize::_4Mb));
        assert_eq!(parse_flash_size("16MB"), Some(FlashSize::_16Mb));
        assert_eq!(parse_flash_size("3mb"), None);
        assert_eq!(parse_flash_mode("DIO"), Some(FlashMode::Dio));
        assert_eq!(parse_flash_freq("80mhz"), Some(FlashFrequency::_80Mhz));
        assert_eq!(parse_flash_freq("40MHz"), Some(FlashFrequency::_40Mhz));
        assert_eq!(parse_flash_freq("81mhz"), None);
    }
}
