//! Firmware made in code, for the demo, the tests and the benchmarks: ESP ELF files
//! with the layout esp-hal's linker scripts give (an app descriptor at the start of
//! the flash data segment, code in the flash instruction window, a RAM data
//! section, and the `.espressif.metadata` chip name), and app images as espflash
//! writes them.

/// The reply literal every ArduinoOTA responder carries, which cargo-ota's OTA
/// lock-out guard looks for (`cargo_ota::guard::ARDUINO_OTA_LITERAL`): samples carry
/// it as real firmware does, so the guard lets them through.
pub const ARDUINO_OTA_LITERAL: &[u8] = b"Authentication Failed";

/// A partition table with two 1.5 MiB OTA slots on a 4 MB flash, as most OTA
/// projects have.
pub const OTA_PARTITIONS_CSV: &str = "\
# Name,   Type, SubType, Offset,   Size
nvs,      data, nvs,     0x9000,   0x5000
otadata,  data, ota,     0xe000,   0x2000
ota_0,    app,  ota_0,   0x10000,  0x180000
ota_1,    app,  ota_1,   0x190000, 0x180000
";

/// Address maps of the chips samples can be made for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SampleChip {
    /// RISC-V, DROM 0x3C00_0000, IROM 0x4200_0000.
    Esp32c3,
    /// Xtensa, DROM 0x3F40_0000, IROM 0x400D_0000.
    Esp32,
}

impl SampleChip {
    /// espflash's name of the chip.
    pub fn name(self) -> &'static str {
        match self {
            SampleChip::Esp32c3 => "esp32c3",
            SampleChip::Esp32 => "esp32",
        }
    }

    fn machine(self) -> u16 {
        match self {
            SampleChip::Esp32c3 => 243, // EM_RISCV
            SampleChip::Esp32 => 94,    // EM_XTENSA
        }
    }

    /// (DROM base, IROM base, DRAM base)
    fn map(self) -> (u32, u32, u32) {
        match self {
            SampleChip::Esp32c3 => (0x3C00_0000, 0x4200_0000, 0x3FC8_0000),
            SampleChip::Esp32 => (0x3F40_0000, 0x400D_0000, 0x3FFB_0000),
        }
    }
}

/// What goes into a sample firmware.
#[derive(Clone, Debug)]
pub struct SampleFirmware {
    /// The chip it is built for.
    pub chip: SampleChip,
    /// Bytes of code (the rest of the image is about a third of this).
    pub code_size: usize,
    /// The app descriptor's project name.
    pub project_name: String,
    /// The app descriptor's version.
    pub version: String,
    /// Put the chip name into `.espressif.metadata`, as esp-hal does.
    pub chip_metadata: bool,
    /// Put an ESP-IDF app descriptor first in flash, as `esp_app_desc!()` does.
    pub app_descriptor: bool,
    /// A literal to embed in the read-only data (e.g. an OTA responder's marker).
    pub embed: Option<Vec<u8>>,
    /// Seed of the pseudo-random contents.
    pub seed: u32,
}

impl SampleFirmware {
    /// A firmware for `chip` with `code_size` bytes of code (deterministic filler).
    pub fn new(chip: SampleChip, code_size: usize) -> Self {
        SampleFirmware {
            chip,
            code_size,
            project_name: "ota-sample".into(),
            version: "0.1.0".into(),
            chip_metadata: true,
            app_descriptor: true,
            embed: Some(ARDUINO_OTA_LITERAL.to_vec()),
            seed: 0x2545_f491,
        }
    }
}

/// Deterministic pseudo-random bytes (xorshift32).
pub fn noise(seed: u32, len: usize) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as u8
        })
        .collect()
}

const SHF_WRITE: u32 = 0x1;
const SHF_ALLOC: u32 = 0x2;
const SHF_EXECINSTR: u32 = 0x4;
const SHT_PROGBITS: u32 = 1;
const SHT_SYMTAB: u32 = 2;
const SHT_STRTAB: u32 = 3;

struct Section {
    name: &'static str,
    kind: u32,
    flags: u32,
    addr: u32,
    data: Vec<u8>,
    link: u32,
    info: u32,
    align: u32,
    entsize: u32,
}

impl Section {
    fn progbits(name: &'static str, flags: u32, addr: u32, data: Vec<u8>) -> Self {
        Section {
            name,
            kind: SHT_PROGBITS,
            flags,
            addr,
            data,
            link: 0,
            info: 0,
            align: 4,
            entsize: 0,
        }
    }
}

/// The 256-byte `esp_app_desc_t`.
fn app_descriptor(name: &str, version: &str) -> Vec<u8> {
    fn field(out: &mut Vec<u8>, text: &str, len: usize) {
        let mut b = text.as_bytes().to_vec();
        b.truncate(len - 1);
        b.resize(len, 0);
        out.extend_from_slice(&b);
    }
    let mut d = Vec::with_capacity(256);
    d.extend_from_slice(&0xABCD_5432u32.to_le_bytes());
    d.extend_from_slice(&0u32.to_le_bytes()); // secure_version
    d.extend_from_slice(&[0; 8]); // reserv1
    field(&mut d, version, 32);
    field(&mut d, name, 32);
    field(&mut d, "12:00:00", 16);
    field(&mut d, "Nov 25 2026", 16);
    field(&mut d, "esp-hal", 32);
    d.extend_from_slice(&[0; 32]); // app_elf_sha256, filled in by espflash
    d.extend_from_slice(&0u16.to_le_bytes()); // min_efuse_blk_rev_full
    d.extend_from_slice(&u16::MAX.to_le_bytes()); // max_efuse_blk_rev_full
    d.push(0); // mmu_page_size: inferred from the alignment
    d.extend_from_slice(&[0; 3]);
    d.extend_from_slice(&[0; 72]);
    debug_assert_eq!(d.len(), 256);
    d
}

/// Build the ELF file.
pub fn elf(fw: &SampleFirmware) -> Vec<u8> {
    let (drom, irom, dram) = fw.chip.map();
    let mut sections = Vec::new();
    let mut rodata_at = drom + 0x20;
    if fw.app_descriptor {
        sections.push(Section::progbits(
            ".flash.appdesc",
            SHF_ALLOC,
            rodata_at,
            app_descriptor(&fw.project_name, &fw.version),
        ));
        rodata_at += 256;
    }
    let mut rodata = noise(fw.seed, (fw.code_size / 3).max(64) & !3);
    if let Some(marker) = &fw.embed {
        rodata.extend_from_slice(marker);
        rodata.resize(rodata.len().div_ceil(4) * 4, 0);
    }
    let rodata_end = rodata_at + rodata.len() as u32;
    sections.push(Section::progbits(".rodata", SHF_ALLOC, rodata_at, rodata));
    // Code goes to the next 64 KiB page of the instruction window.
    let text_at = irom + (rodata_end - drom).div_ceil(0x1_0000) * 0x1_0000 + 0x20;
    let text = noise(fw.seed.rotate_left(7), fw.code_size.max(64) & !3);
    sections.push(Section::progbits(
        ".text",
        SHF_ALLOC | SHF_EXECINSTR,
        text_at,
        text,
    ));
    sections.push(Section::progbits(
        ".data",
        SHF_ALLOC | SHF_WRITE,
        dram,
        noise(fw.seed ^ 0x55, 512),
    ));
    let mut symbols: Vec<(String, u32, u32, u16)> = Vec::new();
    if fw.chip_metadata {
        let idx = sections.len() as u16 + 1;
        let chip = fw.chip.name().as_bytes().to_vec();
        symbols.push(("build_info.CHIP_NAME".into(), 0, chip.len() as u32, idx));
        let mut s = Section::progbits(".espressif.metadata", 0, 0, chip);
        s.align = 1;
        sections.push(s);
    }
    // Symbol table: the null symbol, then the metadata symbols (global objects).
    let mut strtab = vec![0u8];
    let mut symtab = vec![0u8; 16];
    for (name, value, size, shndx) in &symbols {
        let off = strtab.len() as u32;
        strtab.extend_from_slice(name.as_bytes());
        strtab.push(0);
        symtab.extend_from_slice(&off.to_le_bytes());
        symtab.extend_from_slice(&value.to_le_bytes());
        symtab.extend_from_slice(&size.to_le_bytes());
        symtab.push(0x11); // STB_GLOBAL, STT_OBJECT
        symtab.push(0);
        symtab.extend_from_slice(&shndx.to_le_bytes());
    }
    let symtab_index = sections.len() as u32 + 1;
    sections.push(Section {
        name: ".symtab",
        kind: SHT_SYMTAB,
        flags: 0,
        addr: 0,
        data: symtab,
        link: symtab_index + 1,
        info: 1,
        align: 4,
        entsize: 16,
    });
    sections.push(Section {
        name: ".strtab",
        kind: SHT_STRTAB,
        flags: 0,
        addr: 0,
        data: strtab,
        link: 0,
        info: 0,
        align: 1,
        entsize: 0,
    });
    let mut shstrtab = vec![0u8];
    let mut name_offsets = Vec::new();
    for s in sections.iter().map(|s| s.name).chain([".shstrtab"]) {
        name_offsets.push(shstrtab.len() as u32);
        shstrtab.extend_from_slice(s.as_bytes());
        shstrtab.push(0);
    }
    sections.push(Section {
        name: ".shstrtab",
        kind: SHT_STRTAB,
        flags: 0,
        addr: 0,
        data: shstrtab,
        link: 0,
        info: 0,
        align: 1,
        entsize: 0,
    });

    // Layout: header, section data, section headers.
    let mut out = vec![0u8; 52];
    let mut offsets = Vec::new();
    for s in &sections {
        out.resize(out.len().div_ceil(4) * 4, 0);
        offsets.push(out.len() as u32);
        out.extend_from_slice(&s.data);
    }
    out.resize(out.len().div_ceil(4) * 4, 0);
    let shoff = out.len() as u32;
    out.extend_from_slice(&[0u8; 40]); // the null section
    for (i, s) in sections.iter().enumerate() {
        for v in [
            name_offsets[i],
            s.kind,
            s.flags,
            s.addr,
            offsets[i],
            s.data.len() as u32,
            s.link,
            s.info,
            s.align,
            s.entsize,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    let entry = text_at;
    let mut h = Vec::with_capacity(52);
    h.extend_from_slice(&[0x7f, b'E', b'L', b'F', 1, 1, 1, 0]);
    h.extend_from_slice(&[0; 8]);
    h.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    h.extend_from_slice(&fw.chip.machine().to_le_bytes());
    h.extend_from_slice(&1u32.to_le_bytes());
    h.extend_from_slice(&entry.to_le_bytes());
    h.extend_from_slice(&0u32.to_le_bytes()); // no program headers
    h.extend_from_slice(&shoff.to_le_bytes());
    h.extend_from_slice(&0u32.to_le_bytes()); // flags
    h.extend_from_slice(&52u16.to_le_bytes());
    h.extend_from_slice(&32u16.to_le_bytes());
    h.extend_from_slice(&0u16.to_le_bytes());
    h.extend_from_slice(&40u16.to_le_bytes());
    h.extend_from_slice(&(sections.len() as u16 + 1).to_le_bytes());
    h.extend_from_slice(&(sections.len() as u16).to_le_bytes()); // .shstrtab is last
    out[..52].copy_from_slice(&h);
    out
}

/// A sample ESP32-C3 app image of about `size` bytes: a flash-mapped data segment
/// (with the ArduinoOTA reply literal in it) and an instruction segment, with
/// deterministic pseudo-random contents.
pub fn sample_esp32c3(size: usize) -> Vec<u8> {
    let body = size.saturating_sub(64).max(64);
    let mut rodata = noise(0x2545_f491, body / 4 * 3);
    // Like real firmware, it carries an OTA responder (see `guard`).
    rodata.extend_from_slice(ARDUINO_OTA_LITERAL);
    let text = noise(0x1234_5678, body / 4);
    arduino_ota::appimage::build(
        5,
        0x4200_0020,
        &[(0x3c00_0020, &rodata), (0x4200_0020 + 0x10000, &text)],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn app_images_pass_the_bootloader_checks_and_carry_a_responder() {
        for size in [1_000, 60 * 1024, 300_000] {
            let img = sample_esp32c3(size);
            let info = arduino_ota::appimage::check(&img, Some(5)).unwrap();
            assert_eq!(info.length, img.len());
            assert_eq!(info.segments, 2);
            assert!(img.len().abs_diff(size) < 512, "{size}: {}", img.len());
            assert!(contains(&img, ARDUINO_OTA_LITERAL));
        }
        assert_eq!(sample_esp32c3(5_000), sample_esp32c3(5_000));
    }

    #[test]
    fn elfs_follow_the_chip_and_the_options() {
        let fw = SampleFirmware::new(SampleChip::Esp32, 20_000);
        let elf = elf(&fw);
        assert_eq!(&elf[..4], b"\x7fELF");
        assert_eq!(u16::from_le_bytes([elf[18], elf[19]]), 94, "EM_XTENSA");
        assert!(contains(&elf, b"build_info.CHIP_NAME"));
        assert!(contains(&elf, b"ota-sample"));
        assert!(contains(&elf, ARDUINO_OTA_LITERAL));
        assert_eq!(elf, super::elf(&fw), "the same firmware, the same bytes");

        let mut bare = SampleFirmware::new(SampleChip::Esp32c3, 20_000);
        bare.embed = None;
        bare.chip_metadata = false;
        bare.app_descriptor = false;
        bare.seed = 1;
        let other = super::elf(&bare);
        assert_eq!(u16::from_le_bytes([other[18], other[19]]), 243, "EM_RISCV");
        assert!(!contains(&other, ARDUINO_OTA_LITERAL));
        assert!(!contains(&other, b"build_info.CHIP_NAME"));
        assert!(!contains(&other, b"ota-sample"));
    }
}
