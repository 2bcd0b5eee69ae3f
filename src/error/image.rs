//! The ELF, the app image and its checks (exit 4; 2 for a chip name or a
//! partition table the user gave that cannot be used).

use std::fmt;
use std::path::PathBuf;

use espflash::target::Chip;

use super::exit;
use crate::image::{Arch, CHIP_NAMES};

/// The image cannot be made, or must not be sent.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    // --- the ELF and the chip (image.rs) ---
    /// The firmware file is not a 32-bit little-endian RISC-V or Xtensa ELF.
    #[error("`{}` is not an ESP app ELF: {found}", path.display())]
    NotEspElf {
        /// The file read as the ELF.
        path: PathBuf,
        /// What it turned out to be.
        found: ElfFound,
    },

    /// `--chip` or `chip` names no chip; `origin` says where it came from.
    #[error("unknown chip `{name}` ({origin})")]
    UnknownChip {
        /// The chip name as given.
        name: String,
        /// Where it was given: `--chip`, or `chip` in a manifest.
        origin: String,
    },

    /// `origin`: where the chip choice came from (`--chip`, "`chip` in Cargo.toml").
    #[error("the ELF was built for {elf_chip}, but {origin} says {chip}")]
    ChipMismatch {
        /// The chip the ELF's metadata names.
        elf_chip: Chip,
        /// The chip the user chose.
        chip: Chip,
        /// Where the user's choice came from.
        origin: String,
    },

    /// No chip was chosen, the ELF names none, and the target triple fits none.
    #[error(
        "cannot tell which chip this ELF is for{}",
        triple.as_ref().map(|t| format!(" (target `{t}`)")).unwrap_or_default()
    )]
    CannotTellChip {
        /// The build's target triple; `None` when none is known.
        triple: Option<String>,
    },

    /// No chip was chosen, the ELF names none, and the target triple fits several.
    #[error(
        "target `{triple}` fits several chips ({}) and the ELF does not say which",
        chip_list(chips)
    )]
    AmbiguousChip {
        /// The build's target triple.
        triple: String,
        /// The chips it fits.
        chips: Vec<Chip>,
    },

    /// The ELF's instruction set is not the chip's.
    #[error(
        "the ELF is {} code but {chip} is {}",
        match arch { Arch::Xtensa => "Xtensa", Arch::RiscV => "RISC-V" },
        match arch { Arch::Xtensa => "a RISC-V chip", Arch::RiscV => "an Xtensa chip" }
    )]
    ArchMismatch {
        /// The ELF's instruction set.
        arch: Arch,
        /// The chip settled on (chosen, from the ELF, or from the target triple).
        chip: Chip,
    },

    /// The ELF has no ESP-IDF app descriptor (checked unless
    /// `--ignore-app-descriptor`).
    #[error("`{}` has no app descriptor: {detail}", path.display())]
    NoAppDescriptor {
        /// The ELF file.
        path: PathBuf,
        /// espflash's words on what is missing.
        detail: String,
    },

    /// espflash could not make an app image of the ELF.
    #[error("cannot convert `{}` into an app image: {detail}", path.display())]
    Convert {
        /// The ELF file.
        path: PathBuf,
        /// espflash's error.
        detail: String,
    },

    /// espflash's image has no app segment to send.
    #[error("espflash produced no app segment")]
    NoAppSegment,

    // --- the partition table ---
    /// esp-idf-part could not read it; `detail` is its error.
    #[error(
        "cannot read the partition table `{}`: {}",
        path.display(),
        describe_table_error(detail)
    )]
    PartitionTable {
        /// The partition table file (`--partition-table`, `partition-table`).
        path: PathBuf,
        /// esp-idf-part's error, as it words it.
        detail: String,
    },

    /// `target-app-partition` names no app partition of the table.
    #[error(
        "the partition table `{}` has no app partition `{name}` (target-app-partition)",
        path.display()
    )]
    NoSuchAppPartition {
        /// The partition table file.
        path: PathBuf,
        /// The partition name asked for.
        name: String,
        /// The table's app partitions, to choose from.
        apps: Vec<String>,
    },

    /// The table has only factory or test app partitions: no OTA slot.
    #[error(
        "the partition table `{}` has no OTA slot (app partitions: {}): a device flashed with it cannot take an OTA update",
        path.display(),
        apps.join(", ")
    )]
    NoOtaSlot {
        /// The partition table file.
        path: PathBuf,
        /// The table's app partitions.
        apps: Vec<String>,
    },

    /// The converted image is larger than the slot (`slot`: its name, when a
    /// partition table named it).
    #[error(
        "the {}app image is {app} bytes but {} holds {part} bytes ({} bytes too many)",
        if *signed { "signed " } else { "" },
        match (slot, given) {
            (Some(s), false) => format!("OTA slot `{s}`"),
            (Some(s), true) => format!("OTA slot `{s}` (--partition-size)"),
            (None, true) => "the OTA slot (--partition-size)".to_string(),
            (None, false) => "the app partition".to_string(),
        },
        app.saturating_sub(*part)
    )]
    TooBig {
        /// The app image's size, in bytes.
        app: u32,
        /// The slot's size, in bytes.
        part: u32,
        /// The slot's name; `None` when no partition table named it.
        slot: Option<String>,
        /// The size came from `--partition-size`.
        given: bool,
        /// `app` is the signed image's size (the image, its padding and the
        /// signature sector).
        signed: bool,
    },

    // --- before uploading (guard.rs, `cargo ota upload`) ---
    /// The OTA lock-out guard: `what` (a file name) carries no OTA responder.
    #[error(
        "`{what}` shows no OTA responder: after this update the device could no longer be updated over the air"
    )]
    NoOtaResponder {
        /// The file name of the ELF or image checked.
        what: String,
    },

    /// `cargo ota upload`: a file larger than the device's slot (`from`: where
    /// the slot size came from).
    #[error(
        "`{what}` is {size} bytes{} but the device's OTA slot holds {slot} bytes ({from}): the device would accept the update and never connect back",
        if *signed { " signed" } else { "" }
    )]
    TooBigForSlot {
        /// The file name of the image to send.
        what: String,
        /// The image's size, in bytes.
        size: u64,
        /// The slot's size, in bytes.
        slot: u32,
        /// Where the slot size came from: `--partition-size`, or a slot of the
        /// configured partition table.
        from: String,
        /// `size` is the signed image's.
        signed: bool,
    },

    // --- signing (encode.rs) ---
    /// A signing key applies to an ESP8266 image, which cannot carry a Secure
    /// Boot V2 signature.
    #[error(
        "`{what}` is an ESP8266 image, and {device} would get it signed: an ESP8266 checks its own signature format, not Secure Boot V2 signature blocks"
    )]
    SignEsp8266 {
        /// The file name of the image.
        what: String,
        /// Which device has a key: "device `NAME` (key from ORIGIN)".
        device: String,
    },

    /// The image just signed does not verify against its own key: a bug.
    #[error(
        "the image signed with `{source_name}` does not verify against that key's digest ({detail})"
    )]
    SignatureSelfCheck {
        /// The key's source (its path or `env:VAR`).
        source_name: String,
        /// Why the check failed.
        detail: String,
    },

    /// `cargo ota upload`: the file to send is empty.
    #[error("`{}` is empty", path.display())]
    EmptyFile {
        /// The file given.
        path: PathBuf,
    },

    /// `cargo ota upload`: the file is larger than 4 GiB, more than any flash.
    #[error("`{}` is larger than 4 GiB", path.display())]
    FileTooLarge {
        /// The file given.
        path: PathBuf,
    },

    /// `cargo ota upload`: the file is an ELF; the device takes an app image.
    #[error("`{}` is an ELF file, not an app image", path.display())]
    ElfNotImage {
        /// The file given.
        path: PathBuf,
    },

    /// `cargo ota upload`: the file starts with neither an app image's magic
    /// byte nor gzip's.
    #[error(
        "`{}` is not an ESP app image (first byte 0x{first_byte:02x}, expected 0xe9)",
        path.display()
    )]
    NotAppImage {
        /// The file given.
        path: PathBuf,
        /// The file's first byte.
        first_byte: u8,
    },

    // --- cargo ota demo: the emulated device's verdict ---
    /// `cargo ota demo`: what the emulated device stored is not the image sent.
    #[error("the device's copy differs from the image sent")]
    DemoCopyDiffers,

    /// `cargo ota demo`: the emulated device ended the update with an error.
    #[error("the emulated device reports: {detail}")]
    DemoDevice {
        /// The emulated device's event, in words.
        detail: String,
    },

    /// `cargo ota demo`: the emulated device stopped without reporting the update.
    #[error("the emulated device did not report the update")]
    DemoNoVerdict,
}

/// What a file that is not an ESP app ELF turned out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElfFound {
    /// No ELF magic, or too short.
    NotElf,
    /// An ELF, but not 32-bit little-endian (`class`: 1 = 32-bit, 2 = 64-bit;
    /// `machine`: `e_machine`).
    Layout {
        /// The ELF class byte: 1 = 32-bit, 2 = 64-bit.
        class: u8,
        /// The ELF's `e_machine`.
        machine: u16,
    },
    /// A 32-bit little-endian ELF for another architecture.
    Machine {
        /// The ELF's `e_machine`.
        machine: u16,
    },
}

/// An ELF `e_machine` in words.
fn machine_name(machine: u16) -> &'static str {
    match machine {
        243 => "RISC-V",
        94 => "Xtensa",
        62 => "x86-64",
        3 => "x86",
        183 => "AArch64",
        40 => "ARM",
        _ => "an unknown architecture",
    }
}

impl fmt::Display for ElfFound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ElfFound::NotElf => f.write_str("it is not an ELF file"),
            ElfFound::Layout { class, machine } => write!(
                f,
                "it is a {}-bit {} ELF (ESP chips take 32-bit little-endian RISC-V or Xtensa); was it built for the host?",
                if *class == 2 { 64 } else { 32 },
                machine_name(*machine)
            ),
            ElfFound::Machine { machine } => write!(
                f,
                "it is built for {}; was it built for the host?",
                machine_name(*machine)
            ),
        }
    }
}

fn chip_list(chips: &[Chip]) -> String {
    chips
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// esp-idf-part's CSV errors, in words: `line N: what is wrong` (it speaks of
/// "records" and internal struct names).
fn describe_table_error(e: &str) -> String {
    let e = e.strip_prefix("CSV deserialize error: ").unwrap_or(e);
    let line = e
        .split_once("line: ")
        .and_then(|(_, rest)| rest.split(|c: char| !c.is_ascii_digit()).next())
        .filter(|n| !n.is_empty());
    let reason = e.rsplit_once("): ").map_or(e, |(_, r)| r);
    let reason = if reason.contains("expected struct") {
        let fields = reason
            .split_once("invalid length ")
            .and_then(|(_, r)| r.split(',').next())
            .unwrap_or("?");
        format!("{fields} field(s) where a partition needs name, type, subtype, offset and size")
    } else {
        reason.to_string()
    };
    match line {
        Some(n) => format!("line {n}: {reason}"),
        None => reason,
    }
}

const READ_IMAGE_HINT: &str =
    "convert an ELF with `cargo ota image --elf FILE`, or pass --fs to send a filesystem image";

impl ImageError {
    /// The process's exit code for it (4; 2 for a chip name or partition table
    /// the user gave).
    pub fn exit_code(&self) -> i32 {
        match self {
            ImageError::UnknownChip { .. }
            | ImageError::PartitionTable { .. }
            | ImageError::NoSuchAppPartition { .. }
            | ImageError::SignEsp8266 { .. } => exit::USAGE,
            _ => exit::IMAGE,
        }
    }

    /// A stable kebab-case name (JSON).
    pub fn kind(&self) -> &'static str {
        match self {
            ImageError::NotEspElf { .. } => "not-esp-elf",
            ImageError::UnknownChip { .. } => "unknown-chip",
            ImageError::ChipMismatch { .. } => "chip-mismatch",
            ImageError::CannotTellChip { .. } => "cannot-tell-chip",
            ImageError::AmbiguousChip { .. } => "ambiguous-chip",
            ImageError::ArchMismatch { .. } => "arch-mismatch",
            ImageError::NoAppDescriptor { .. } => "no-app-descriptor",
            ImageError::Convert { .. } => "convert",
            ImageError::NoAppSegment => "no-app-segment",
            ImageError::PartitionTable { .. } => "partition-table",
            ImageError::NoSuchAppPartition { .. } => "no-such-app-partition",
            ImageError::NoOtaSlot { .. } => "no-ota-slot",
            ImageError::NoOtaResponder { .. } => "no-ota-responder",
            ImageError::TooBig { .. } | ImageError::TooBigForSlot { .. } => "too-big-for-slot",
            ImageError::SignEsp8266 { .. } => "sign-esp8266",
            ImageError::SignatureSelfCheck { .. } => "signature-self-check",
            ImageError::EmptyFile { .. } => "empty-file",
            ImageError::FileTooLarge { .. } => "file-too-large",
            ImageError::ElfNotImage { .. } => "elf-not-image",
            ImageError::NotAppImage { .. } => "not-app-image",
            ImageError::DemoCopyDiffers => "demo-copy-differs",
            ImageError::DemoDevice { .. } => "demo-device",
            ImageError::DemoNoVerdict => "demo-no-verdict",
        }
    }

    /// What to do about it.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            ImageError::NotEspElf { .. } => {
                "build for an ESP target (e.g. --target riscv32imc-unknown-none-elf, or build.target in .cargo/config.toml)".into()
            }
            ImageError::UnknownChip { .. } => format!("use one of: {}", CHIP_NAMES.join(", ")),
            ImageError::ChipMismatch {
                elf_chip,
                chip,
                origin,
            } => format!("build for {chip}, or fix {origin} to {elf_chip}"),
            ImageError::CannotTellChip { .. } => format!(
                "pass --chip or set `chip` in [package.metadata.ota]; chips: {}",
                CHIP_NAMES.join(", ")
            ),
            ImageError::AmbiguousChip { chips, .. } => format!(
                "pass --chip or set `chip = \"{}\"` in [package.metadata.ota]",
                chips.first().map(ToString::to_string).unwrap_or_default()
            ),
            ImageError::ArchMismatch { .. } => {
                "check --chip (or `chip` in [package.metadata.ota]) and the build target".into()
            }
            ImageError::NoAppDescriptor { .. } => {
                "add `esp_bootloader_esp_idf::esp_app_desc!();` to the firmware, or pass --ignore-app-descriptor".into()
            }
            ImageError::Convert { .. } | ImageError::NoAppSegment => return None,
            ImageError::PartitionTable { .. } => {
                "give an ESP-IDF partition table: CSV lines `name, type, subtype, offset, size[, flags]` (e.g. `ota_0, app, ota_0, 0x10000, 0x180000`), or its binary form".into()
            }
            ImageError::NoSuchAppPartition { apps, .. } => {
                format!("app partitions: {}", apps.join(", "))
            }
            ImageError::NoOtaSlot { .. } => {
                "add ota_0 and ota_1 app partitions and an otadata partition, and flash the table once over serial".into()
            }
            ImageError::TooBig { .. } => {
                "make the firmware smaller (opt-level = \"s\", fewer features), or give the OTA slots more room in the partition table".into()
            }
            ImageError::NoOtaResponder { .. } => {
                "keep the OTA responder in the firmware (ArduinoOTA carries the literal \"Authentication Failed\"; a Rust responder embeds the marker `cargo-ota:ota-responder`, see the README), or pass --allow-no-ota (config: ota-guard = false) to upload anyway".into()
            }
            ImageError::TooBigForSlot { .. } => {
                "upload an image that fits, or check the partition table the device was flashed with".into()
            }
            ImageError::SignEsp8266 { .. } => {
                "sign nothing for that device: pass --no-sign, or remove `signing-key` from its entry (or from [package.metadata.ota] when it comes from there)".into()
            }
            ImageError::SignatureSelfCheck { .. } => {
                "this is a cargo-ota bug (nothing was sent or written): please report it with the key's scheme and the output of -v (never the key)".into()
            }
            ImageError::EmptyFile { .. } => "build or export the image again".into(),
            ImageError::FileTooLarge { .. } => {
                "check the path: an app image fits in a device's flash".into()
            }
            ImageError::ElfNotImage { .. } | ImageError::NotAppImage { .. } => {
                READ_IMAGE_HINT.into()
            }
            ImageError::DemoCopyDiffers
            | ImageError::DemoDevice { .. }
            | ImageError::DemoNoVerdict => {
                "the demo runs on this host alone, so this is a cargo-ota bug: please report it with the output of `cargo ota demo -v`".into()
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{check, row};

    #[test]
    fn catalogue() {
        let p = |s: &str| PathBuf::from(s);
        check(&[
            row(
                ImageError::NotEspElf {
                    path: p("fw"),
                    found: ElfFound::NotElf,
                },
                4,
                "not-esp-elf",
                Some("build for an ESP target"),
                "`fw` is not an ESP app ELF: it is not an ELF file",
            ),
            row(
                ImageError::NotEspElf {
                    path: p("fw"),
                    found: ElfFound::Layout {
                        class: 2,
                        machine: 62,
                    },
                },
                4,
                "not-esp-elf",
                Some("--target riscv32imc-unknown-none-elf"),
                "it is a 64-bit x86-64 ELF (ESP chips take 32-bit little-endian RISC-V or Xtensa); was it built for the host?",
            ),
            row(
                ImageError::NotEspElf {
                    path: p("fw"),
                    found: ElfFound::Machine { machine: 40 },
                },
                4,
                "not-esp-elf",
                Some("build for an ESP target"),
                "it is built for ARM; was it built for the host?",
            ),
            row(
                ImageError::UnknownChip {
                    name: "esp99".into(),
                    origin: "--chip".into(),
                },
                2,
                "unknown-chip",
                Some("use one of: esp32, esp32c2"),
                "unknown chip `esp99` (--chip)",
            ),
            row(
                ImageError::ChipMismatch {
                    elf_chip: Chip::Esp32c3,
                    chip: Chip::Esp32c6,
                    origin: "--chip".into(),
                },
                4,
                "chip-mismatch",
                Some("build for esp32c6, or fix --chip to esp32c3"),
                "the ELF was built for esp32c3, but --chip says esp32c6",
            ),
            row(
                ImageError::CannotTellChip { triple: None },
                4,
                "cannot-tell-chip",
                Some("pass --chip"),
                "cannot tell which chip this ELF is for",
            ),
            row(
                ImageError::CannotTellChip {
                    triple: Some("riscv32i-unknown-none-elf".into()),
                },
                4,
                "cannot-tell-chip",
                Some("chips: esp32,"),
                "cannot tell which chip this ELF is for (target `riscv32i-unknown-none-elf`)",
            ),
            row(
                ImageError::AmbiguousChip {
                    triple: "riscv32imc-unknown-none-elf".into(),
                    chips: vec![Chip::Esp32c2, Chip::Esp32c3],
                },
                4,
                "ambiguous-chip",
                Some("set `chip = \"esp32c2\"`"),
                "target `riscv32imc-unknown-none-elf` fits several chips (esp32c2, esp32c3) and the ELF does not say which",
            ),
            row(
                ImageError::ArchMismatch {
                    arch: Arch::Xtensa,
                    chip: Chip::Esp32c3,
                },
                4,
                "arch-mismatch",
                Some("check --chip"),
                "the ELF is Xtensa code but esp32c3 is a RISC-V chip",
            ),
            row(
                ImageError::ArchMismatch {
                    arch: Arch::RiscV,
                    chip: Chip::Esp32s3,
                },
                4,
                "arch-mismatch",
                Some("the build target"),
                "the ELF is RISC-V code but esp32s3 is an Xtensa chip",
            ),
            row(
                ImageError::NoAppDescriptor {
                    path: p("fw"),
                    detail: "missing".into(),
                },
                4,
                "no-app-descriptor",
                Some("--ignore-app-descriptor"),
                "`fw` has no app descriptor: missing",
            ),
            row(
                ImageError::Convert {
                    path: p("fw"),
                    detail: "bad segment".into(),
                },
                4,
                "convert",
                None,
                "cannot convert `fw` into an app image: bad segment",
            ),
            row(
                ImageError::NoAppSegment,
                4,
                "no-app-segment",
                None,
                "espflash produced no app segment",
            ),
            row(
                ImageError::PartitionTable {
                    path: p("parts.csv"),
                    detail: "CSV deserialize error: record 1 (line: 2, byte: 8): found record with 2 fields, but the previous record has 5 fields".into(),
                },
                2,
                "partition-table",
                Some("CSV lines `name, type, subtype, offset, size[, flags]`"),
                "cannot read the partition table `parts.csv`: line 2: found record with 2 fields",
            ),
            row(
                ImageError::NoSuchAppPartition {
                    path: p("parts.csv"),
                    name: "ota_9".into(),
                    apps: vec!["ota_0".into(), "ota_1".into()],
                },
                2,
                "no-such-app-partition",
                Some("app partitions: ota_0, ota_1"),
                "has no app partition `ota_9` (target-app-partition)",
            ),
            row(
                ImageError::NoOtaSlot {
                    path: p("parts.csv"),
                    apps: vec!["factory".into()],
                },
                4,
                "no-ota-slot",
                Some("add ota_0 and ota_1"),
                "has no OTA slot (app partitions: factory)",
            ),
            row(
                ImageError::TooBig {
                    app: 2000,
                    part: 1000,
                    slot: Some("ota_0".into()),
                    given: false,
                    signed: false,
                },
                4,
                "too-big-for-slot",
                Some("make the firmware smaller"),
                "the app image is 2000 bytes but OTA slot `ota_0` holds 1000 bytes (1000 bytes too many)",
            ),
            row(
                ImageError::TooBig {
                    app: 2000,
                    part: 1000,
                    slot: None,
                    given: false,
                    signed: false,
                },
                4,
                "too-big-for-slot",
                Some("more room"),
                "but the app partition holds 1000 bytes",
            ),
            row(
                ImageError::TooBig {
                    app: 2000,
                    part: 1000,
                    slot: Some("ota_0".into()),
                    given: true,
                    signed: false,
                },
                4,
                "too-big-for-slot",
                Some("make the firmware smaller"),
                "but OTA slot `ota_0` (--partition-size) holds 1000 bytes",
            ),
            row(
                ImageError::TooBig {
                    app: 2000,
                    part: 1000,
                    slot: None,
                    given: true,
                    signed: false,
                },
                4,
                "too-big-for-slot",
                Some("make the firmware smaller"),
                "but the OTA slot (--partition-size) holds 1000 bytes",
            ),
            row(
                ImageError::NoOtaResponder {
                    what: "fw.bin".into(),
                },
                4,
                "no-ota-responder",
                Some("--allow-no-ota"),
                "`fw.bin` shows no OTA responder",
            ),
            row(
                ImageError::TooBigForSlot {
                    what: "fw.bin".into(),
                    size: 3000,
                    slot: 2000,
                    from: "--partition-size".into(),
                    signed: false,
                },
                4,
                "too-big-for-slot",
                Some("upload an image that fits"),
                "`fw.bin` is 3000 bytes but the device's OTA slot holds 2000 bytes (--partition-size)",
            ),
            row(
                ImageError::TooBigForSlot {
                    what: "fw.bin".into(),
                    size: 8192,
                    slot: 4096,
                    from: "--partition-size".into(),
                    signed: true,
                },
                4,
                "too-big-for-slot",
                Some("upload an image that fits"),
                "`fw.bin` is 8192 bytes signed but the device's OTA slot holds 4096 bytes",
            ),
            row(
                ImageError::TooBig {
                    app: 8192,
                    part: 4096,
                    slot: Some("ota_0".into()),
                    given: false,
                    signed: true,
                },
                4,
                "too-big-for-slot",
                Some("make the firmware smaller"),
                "the signed app image is 8192 bytes but OTA slot `ota_0` holds 4096 bytes",
            ),
            row(
                ImageError::SignEsp8266 {
                    what: "app.bin".into(),
                    device: "device `shelf` (key from --sign)".into(),
                },
                2,
                "sign-esp8266",
                Some("pass --no-sign, or remove `signing-key`"),
                "`app.bin` is an ESP8266 image, and device `shelf` (key from --sign) would get it signed: an ESP8266 checks its own signature format",
            ),
            row(
                ImageError::SignatureSelfCheck {
                    source_name: "keys/ota.pem".into(),
                    detail: "the signature does not verify".into(),
                },
                4,
                "signature-self-check",
                Some("this is a cargo-ota bug"),
                "the image signed with `keys/ota.pem` does not verify against that key's digest (the signature does not verify)",
            ),
            row(
                ImageError::EmptyFile { path: p("fw.bin") },
                4,
                "empty-file",
                Some("build or export the image again"),
                "`fw.bin` is empty",
            ),
            row(
                ImageError::FileTooLarge { path: p("fw.bin") },
                4,
                "file-too-large",
                Some("check the path"),
                "`fw.bin` is larger than 4 GiB",
            ),
            row(
                ImageError::ElfNotImage { path: p("fw") },
                4,
                "elf-not-image",
                Some("cargo ota image --elf FILE"),
                "`fw` is an ELF file, not an app image",
            ),
            row(
                ImageError::NotAppImage {
                    path: p("fw.bin"),
                    first_byte: 0x1f,
                },
                4,
                "not-app-image",
                Some("--fs"),
                "`fw.bin` is not an ESP app image (first byte 0x1f, expected 0xe9)",
            ),
            row(
                ImageError::DemoCopyDiffers,
                4,
                "demo-copy-differs",
                Some("report it"),
                "differs from the image sent",
            ),
            row(
                ImageError::DemoDevice {
                    detail: "MD5 Check Failed".into(),
                },
                4,
                "demo-device",
                Some("report it"),
                "the emulated device reports: MD5 Check Failed",
            ),
            row(
                ImageError::DemoNoVerdict,
                4,
                "demo-no-verdict",
                Some("report it"),
                "did not report the update",
            ),
        ]);
    }
}
