//! The flash sink of esp-hal firmware: writes the next OTA slot through
//! esp-bootloader-esp-idf (and esp-storage under it) and selects it for the next
//! boot only once the whole stream arrived, its MD5 matched, it decoded whole
//! (a zlib stream is inflated as it arrives: [`crate::decode`]), the app image
//! passed the bootloader's checks and the flash reads back the same bytes (the
//! stages of [`crate::pipeline`]). Any failure or interruption leaves the
//! running slot selected.
//!
//! Where the running image is known (the booted slot, else the one otadata
//! selects) and carries its appended SHA-256, the sink also takes an
//! esp_delta_ota patch against it ([`crate::delta`]): it reads the running slot
//! and writes the other one, never the running one.
//!
//! RAM during an update: a 4 KiB sector buffer, and for a compressed stream the
//! inflater's ~15 KiB (`decode`), for a delta patch under 1 KiB (`delta`), on
//! the heap.
//!
//! ```ignore
//! let mut flash = esp_storage::FlashStorage::new(peripherals.FLASH);
//! let mut sink = arduino_ota::esp::OtaSink::new(&mut flash).expect("a partition table with otadata and two OTA slots");
//! // The responder is up: this image works, cancel a pending rollback.
//! let _ = sink.confirm_running_app();
//! ```

use alloc::vec;
use alloc::vec::Vec;
use core::cell::RefCell;

use esp_bootloader_esp_idf::ota::{Ota, OtaImageState};
use esp_bootloader_esp_idf::partitions::{
    self, AppPartitionSubType, DataPartitionSubType, Error, FlashStorage, PartitionEntry,
    PartitionType,
};
use md5::Digest;

use crate::delta::Base;
use crate::pipeline::Stages;
use crate::{Command, UpdateError, UpdateSink};

/// The flash sector: what is written at once.
const SECTOR: usize = 4096;

/// One update in progress.
struct Update {
    entry: PartitionEntry,
    /// The OTA slot being written (`None` for a filesystem image).
    slot: Option<AppPartitionSubType>,
    /// The decoder and the checks between the stream and the flash.
    stages: Option<Stages>,
    /// The running slot, the base of a delta patch (`None`: patches are refused).
    base: Option<PartitionEntry>,
    /// Bytes already in flash.
    flushed: u32,
    sector: Vec<u8>,
}

/// Writes app images to the next OTA slot (and filesystem images to the first
/// SPIFFS, LittleFS or FAT partition).
pub struct OtaSink<'f, 'd> {
    flash: &'f mut FlashStorage<'d>,
    ota_data: PartitionEntry,
    slots: Vec<(AppPartitionSubType, PartitionEntry)>,
    filesystem: Option<PartitionEntry>,
    /// Offset of the app that is running, when it can be known.
    booted: Option<u32>,
    /// The running slot, when its image carries a validation hash: the base a
    /// delta patch applies to.
    running: Option<PartitionEntry>,
    /// The chip id app images must carry (`None`: any ESP32-family chip).
    chip: Option<u16>,
    /// The digests of the keys an image must be signed by (`None`: not checked).
    #[cfg(feature = "signature")]
    trusted_keys: Option<Vec<[u8; 32]>>,
    update: Option<Update>,
}

impl<'f, 'd> OtaSink<'f, 'd> {
    /// Read the partition table. It needs an `otadata` partition and at least two
    /// OTA app slots (`Error::Invalid` otherwise).
    pub fn new(flash: &'f mut FlashStorage<'d>) -> Result<Self, Error> {
        let mut buf = vec![0u8; partitions::PARTITION_TABLE_MAX_LEN];
        let table = partitions::read_partition_table(flash, &mut buf)?;
        let mut ota_data = None;
        let mut slots = Vec::new();
        let mut filesystem = None;
        for entry in table.iter() {
            match entry.partition_type() {
                PartitionType::App(sub)
                    if sub != AppPartitionSubType::Factory && sub != AppPartitionSubType::Test =>
                {
                    slots.push((sub, entry));
                }
                PartitionType::Data(DataPartitionSubType::Ota) => ota_data = Some(entry),
                PartitionType::Data(
                    DataPartitionSubType::Spiffs
                    | DataPartitionSubType::LittleFs
                    | DataPartitionSubType::Fat,
                ) if filesystem.is_none() => filesystem = Some(entry),
                _ => {}
            }
        }
        let booted = table.booted_partition().ok().flatten().map(|e| e.offset());
        let ota_data = ota_data.ok_or(Error::Invalid)?;
        if slots.len() < 2 {
            return Err(Error::Invalid);
        }
        let mut sink = OtaSink {
            flash,
            ota_data,
            slots,
            filesystem,
            booted,
            running: None,
            chip: None,
            #[cfg(feature = "signature")]
            trusted_keys: None,
            update: None,
        };
        sink.running = sink.delta_base();
        Ok(sink)
    }

    /// The validation hash of the running image (the SHA-256 esptool appends
    /// to it, by which an esp_delta_ota patch names its base): what the
    /// firmware announces as its `ota_sha256` mDNS TXT record, so that
    /// `cargo ota` knows which image it runs. `None` when the running slot is
    /// not known or its image carries no hash (patches are then refused).
    pub fn running_validation_hash(&mut self) -> Option<[u8; 32]> {
        let entry = self.running?;
        self.validation_hash(entry)
    }

    /// The running slot if its image has a validation hash (the SHA-256 an
    /// esp_delta_ota patch names its base by).
    fn delta_base(&mut self) -> Option<PartitionEntry> {
        let entry = self.running_entry().ok()?;
        self.validation_hash(entry)?;
        Some(entry)
    }

    /// The validation hash of the app image in `entry`, if it carries one.
    fn validation_hash(&mut self, entry: PartitionEntry) -> Option<[u8; 32]> {
        let flash = RefCell::new(&mut *self.flash);
        SlotReader {
            flash: &flash,
            entry,
        }
        .validation_hash()
        .ok()
    }

    /// Refuse app images for another chip (an id of
    /// [`appimage::CHIPS`](crate::appimage::CHIPS), e.g. 5 for the ESP32-C3).
    pub fn with_chip(mut self, chip: u16) -> Self {
        self.chip = Some(chip);
        self
    }

    /// Accept only images signed by a key whose digest is in `trusted` (ESP-IDF
    /// Secure Boot V2 signature sectors, [`crate::signature`]): an unsigned,
    /// foreign or changed image is refused ("Signature verification failed:
    /// ...") and the running slot stays selected. The digest of a key is what
    /// `cargo ota keygen` prints (`OTA_TRUSTED_KEY`) or `espsecure
    /// digest-sbv2-public-key` writes. Filesystem images must be signed too.
    #[cfg(feature = "signature")]
    pub fn with_trusted_keys(mut self, trusted: &[[u8; 32]]) -> Self {
        self.trusted_keys = Some(trusted.to_vec());
        self
    }

    /// Also trust the key(s) that signed the running image, as ESP-IDF does when
    /// no key digest is built in: after a first serial flash of a signed image
    /// (`cargo ota image`), later updates must be signed with the same key.
    /// Reads the running image's length from its header and segment headers,
    /// and the signature sector after it. Returns how many keys that adds;
    /// `Error::Invalid` when the running image carries no valid signature block
    /// (then nothing is added, and without other trusted keys every update is
    /// refused: call it only where the running image is signed).
    #[cfg(feature = "signature")]
    pub fn trust_running_image_keys(&mut self) -> Result<usize, Error> {
        use crate::signature::{SECTOR as SIGNATURE_SECTOR, key_digests};
        let entry = self.running_entry()?;
        let size = entry.len();
        let mut region = entry.as_flash_region(self.flash);
        let mut read =
            |at: u32, buf: &mut [u8]| region.read(at, buf).map_err(|_| Error::StorageError);
        let mut header = [0u8; 24];
        read(0, &mut header)?;
        if header[0] != crate::appimage::MAGIC {
            return Err(Error::Invalid);
        }
        let mut end = 24u32;
        for _ in 0..header[1] {
            let mut segment = [0u8; 8];
            read(end, &mut segment)?;
            let len = u32::from_le_bytes([segment[4], segment[5], segment[6], segment[7]]);
            end = end
                .checked_add(8)
                .and_then(|e| e.checked_add(len))
                .filter(|e| *e < size)
                .ok_or(Error::Invalid)?;
        }
        // The checksum byte ends a 16-byte block; the SHA-256 follows if appended.
        end = (end | 15) + 1 + if header[23] == 1 { 32 } else { 0 };
        let at = end.next_multiple_of(SIGNATURE_SECTOR as u32);
        if at + SIGNATURE_SECTOR as u32 > size {
            return Err(Error::Invalid);
        }
        let mut sector = vec![0u8; SIGNATURE_SECTOR];
        read(at, &mut sector)?;
        let found: Vec<[u8; 32]> = key_digests(&sector).into_iter().flatten().collect();
        if found.is_empty() {
            return Err(Error::Invalid);
        }
        let trusted = self.trusted_keys.get_or_insert_with(Vec::new);
        let before = trusted.len();
        for key in found {
            if !trusted.contains(&key) {
                trusted.push(key);
            }
        }
        Ok(trusted.len() - before)
    }

    /// The slot the running image is in: the booted one when known, else the
    /// one otadata selects (`Error::Invalid` for a factory app).
    fn running_entry(&mut self) -> Result<PartitionEntry, Error> {
        if let Some(booted) = self.booted
            && let Some((_, entry)) = self.slots.iter().find(|(_, e)| e.offset() == booted)
        {
            return Ok(*entry);
        }
        match self.selected_slot()? {
            AppPartitionSubType::Factory => Err(Error::Invalid),
            s => Ok(self
                .slot_entry(s as u8 - AppPartitionSubType::Ota0 as u8)?
                .1),
        }
    }

    fn ota(&mut self) -> Result<Ota<'_, 'd>, Error> {
        let count = self.slots.len();
        Ota::new(self.ota_data.as_flash_region(self.flash), count)
    }

    /// The slot the bootloader selects next (the running one, unless an update
    /// was just activated). `Factory` when otadata is blank.
    pub fn selected_slot(&mut self) -> Result<AppPartitionSubType, Error> {
        self.ota()?.current_app_partition()
    }

    /// The state of the selected slot (`New` right after an update, then
    /// `PendingVerify` on its first boot under a bootloader with rollback).
    pub fn selected_state(&mut self) -> Result<OtaImageState, Error> {
        self.ota()?.current_ota_state()
    }

    /// The slot an update writes: the one after the selected slot, never the
    /// running one.
    pub fn next_slot(&mut self) -> Result<AppPartitionSubType, Error> {
        let count = self.slots.len() as u8;
        let number = |s: AppPartitionSubType| s as u8 - AppPartitionSubType::Ota0 as u8;
        let current = self.selected_slot()?;
        let next = match current {
            AppPartitionSubType::Factory => 0,
            s => (number(s) + 1) % count,
        };
        let mut pick = self.slot_entry(next)?;
        if self.booted == Some(pick.1.offset()) {
            pick = self.slot_entry((next + 1) % count)?;
        }
        Ok(pick.0)
    }

    fn slot_entry(&self, number: u8) -> Result<(AppPartitionSubType, PartitionEntry), Error> {
        let sub = AppPartitionSubType::try_from(AppPartitionSubType::Ota0 as u8 + number)?;
        self.slots
            .iter()
            .find(|(s, _)| *s == sub)
            .copied()
            .ok_or(Error::Invalid)
    }

    /// Rollback confirmation: call once the new firmware is up and its responder
    /// answers. If the running image is still on probation (`New`, or
    /// `PendingVerify` under a bootloader with rollback), it is marked `Valid`, so
    /// the bootloader keeps it; an image that never gets here is rolled back by
    /// such a bootloader. Returns whether anything changed.
    pub fn confirm_running_app(&mut self) -> Result<bool, Error> {
        let selected = self.selected_slot()?;
        if selected == AppPartitionSubType::Factory {
            return Ok(false);
        }
        // After a rollback the selected (newest) slot is not the one running:
        // leave its state alone.
        if let Some(booted) = self.booted
            && self
                .slot_entry(selected as u8 - AppPartitionSubType::Ota0 as u8)?
                .1
                .offset()
                != booted
        {
            return Ok(false);
        }
        let mut ota = self.ota()?;
        match ota.current_ota_state() {
            Ok(OtaImageState::New | OtaImageState::PendingVerify) => {
                ota.set_current_ota_state(OtaImageState::Valid)?;
                Ok(true)
            }
            Ok(_) | Err(Error::InvalidState) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Take decoded bytes: into the sector buffer, a full sector into the flash.
    fn put(
        flash: &mut FlashStorage<'d>,
        u: &mut Update,
        mut data: &[u8],
    ) -> Result<(), UpdateError> {
        while !data.is_empty() {
            let take = (SECTOR - u.sector.len()).min(data.len());
            u.sector.extend_from_slice(&data[..take]);
            data = &data[take..];
            if u.sector.len() == SECTOR {
                Self::flush_sector(flash, u)?;
            }
        }
        Ok(())
    }

    fn flush_sector(flash: &mut FlashStorage<'d>, u: &mut Update) -> Result<(), UpdateError> {
        if u.sector.is_empty() {
            return Ok(());
        }
        let mut region = u.entry.as_flash_region(flash);
        region
            .write(u.flushed, &u.sector)
            .map_err(|_| UpdateError::FlashWriteFailed)?;
        u.flushed += u.sector.len() as u32;
        u.sector.clear();
        Ok(())
    }

    /// Read the written image back: `len` bytes whose MD5 is `md5` (the decoded
    /// bytes the checks passed).
    fn read_back(
        &mut self,
        entry: PartitionEntry,
        len: u32,
        md5: &[u8; 16],
    ) -> Result<(), UpdateError> {
        let mut region = entry.as_flash_region(self.flash);
        let mut hasher = md5::Md5::new();
        let mut buf = vec![0u8; SECTOR];
        let mut offset = 0u32;
        while offset < len {
            let n = (len - offset).min(SECTOR as u32) as usize;
            region
                .read(offset, &mut buf[..n])
                .map_err(|_| UpdateError::FlashReadFailed)?;
            hasher.update(&buf[..n]);
            offset += n as u32;
        }
        if hasher.finalize().as_slice() != md5.as_slice() {
            return Err(UpdateError::Activate {
                detail: "the flash does not read back what was written".into(),
            });
        }
        Ok(())
    }

    /// Select the written slot for the next boot, on probation (`New`).
    fn activate(&mut self, slot: AppPartitionSubType) -> Result<(), Error> {
        let mut ota = self.ota()?;
        ota.set_current_app_partition(slot)?;
        ota.set_current_ota_state(OtaImageState::New)
    }
}

impl UpdateSink for OtaSink<'_, '_> {
    fn begin(&mut self, kind: Command, size: u32, md5: &str) -> Result<(), UpdateError> {
        self.update = None;
        let (slot, entry) = match kind {
            Command::Flash => {
                let slot = self
                    .next_slot()
                    .map_err(|_| UpdateError::PartitionNotFound)?;
                let number = slot as u8 - AppPartitionSubType::Ota0 as u8;
                let entry = self
                    .slot_entry(number)
                    .map_err(|_| UpdateError::PartitionNotFound)?;
                (Some(slot), entry.1)
            }
            Command::Filesystem => (None, self.filesystem.ok_or(UpdateError::PartitionNotFound)?),
        };
        // The stream's size: a compressed one is checked again as it inflates.
        if size > entry.len() {
            return Err(UpdateError::BadSize);
        }
        let _ = md5; // the Transfer checks the stream's MD5; the read-back, the image's
        let stages = Stages::new(kind, entry.len(), true, true, self.chip);
        #[cfg(feature = "signature")]
        let stages = match &self.trusted_keys {
            Some(keys) => stages.with_signature(keys),
            None => stages,
        };
        // A patch reads the running slot: never the one being written.
        let base = self
            .running
            .filter(|r| kind == Command::Flash && r.offset() != entry.offset());
        let stages = if base.is_some() {
            stages.with_delta()
        } else {
            stages
        };
        self.update = Some(Update {
            entry,
            slot,
            stages: Some(stages),
            base,
            flushed: 0,
            sector: Vec::with_capacity(SECTOR),
        });
        Ok(())
    }

    fn write(&mut self, data: &[u8]) -> Result<(), UpdateError> {
        let u = self.update.as_mut().ok_or(UpdateError::Aborted)?;
        let mut stages = u.stages.take().ok_or(UpdateError::Aborted)?;
        // The base reads and the writer take turns with the flash.
        let flash = RefCell::new(&mut *self.flash);
        let running = u.base;
        let result = match running {
            Some(entry) => {
                let mut base = SlotReader {
                    flash: &flash,
                    entry,
                };
                stages.push_from(data, &mut base, &mut |out| {
                    Self::put(&mut flash.borrow_mut(), u, out)
                })
            }
            None => stages.push(data, &mut |out| Self::put(&mut flash.borrow_mut(), u, out)),
        };
        u.stages = Some(stages);
        result
    }

    fn finish(&mut self) -> Result<(), UpdateError> {
        let flash = &mut *self.flash;
        let u = self.update.as_mut().ok_or(UpdateError::Aborted)?;
        let stages = u.stages.take().ok_or(UpdateError::Aborted)?;
        let written = stages.finish(&mut |out| Self::put(flash, u, out))?;
        Self::flush_sector(flash, u)?;
        let (entry, slot) = (u.entry, u.slot);
        self.read_back(entry, written.len, &written.md5)?;
        self.update = None;
        if let Some(slot) = slot {
            // Where the booted slot is not known, the running one was taken to
            // be the selected one: no longer.
            if self.booted.is_none() {
                self.running = None;
            }
            self.activate(slot).map_err(|e| UpdateError::Activate {
                detail: alloc::format!("could not select the new slot: {e:?}"),
            })?;
        }
        Ok(())
    }

    fn takes_compressed(&self) -> bool {
        true
    }

    fn takes_delta(&self) -> bool {
        self.running.is_some()
    }

    fn abort(&mut self) {
        // Nothing was selected: the partial image in the idle slot is never booted.
        self.update = None;
    }
}

/// A slot read as the base of a delta patch (never written), sharing the flash
/// with the writer of the other slot.
struct SlotReader<'r, 'f, 'd> {
    flash: &'r RefCell<&'f mut FlashStorage<'d>>,
    entry: PartitionEntry,
}

impl Base for SlotReader<'_, '_, '_> {
    fn size(&self) -> u32 {
        self.entry.len()
    }

    fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), UpdateError> {
        let mut flash = self.flash.borrow_mut();
        self.entry
            .as_flash_region(&mut flash)
            .read(offset, buf)
            .map_err(|_| UpdateError::FlashReadFailed)
    }
}

/// The sink on esp-bootloader-esp-idf's in-memory flash (its `std` feature): the
/// real partition-table and otadata code, a 256 KiB flash. The mock flash is one
/// static, so the tests take turns.
#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use super::*;
    use crate::{Failure, Invitation, Profile, Transfer, appimage, md5_hex};

    static FLASH: Mutex<()> = Mutex::new(());

    const TABLE_AT: u32 = 0x8000;
    const OTADATA: u32 = 0xd000;
    const OTA0: u32 = 0x10000;
    const OTA1: u32 = 0x28000;
    const SLOT_SIZE: u32 = 0x18000;

    fn entry(kind: u8, sub: u8, offset: u32, size: u32, label: &str) -> [u8; 32] {
        let mut e = [0u8; 32];
        e[0..2].copy_from_slice(&[0xaa, 0x50]);
        e[2] = kind;
        e[3] = sub;
        e[4..8].copy_from_slice(&offset.to_le_bytes());
        e[8..12].copy_from_slice(&size.to_le_bytes());
        e[12..12 + label.len()].copy_from_slice(label.as_bytes());
        e
    }

    /// CRC-32 of ESP-IDF's otadata (reflected 0x04C11DB7, init 0, final xor).
    fn crc32(data: &[u8]) -> u32 {
        let mut crc = 0u32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    fn select_entry(seq: u32, state: u32) -> [u8; 32] {
        let mut e = [0xffu8; 32];
        e[0..4].copy_from_slice(&seq.to_le_bytes());
        e[24..28].copy_from_slice(&state.to_le_bytes());
        e[28..32].copy_from_slice(&crc32(&seq.to_le_bytes()).to_le_bytes());
        e
    }

    /// A fresh flash: the partition table, and otadata that boots ota_0 (valid).
    fn fresh(flash: &mut FlashStorage<'static>) {
        flash.erase(0, 0x40000).unwrap();
        let mut table = Vec::new();
        table.extend_from_slice(&entry(1, 2, 0x9000, 0x4000, "nvs"));
        table.extend_from_slice(&entry(1, 0, OTADATA, 0x2000, "otadata"));
        table.extend_from_slice(&entry(0, 0x10, OTA0, SLOT_SIZE, "ota_0"));
        table.extend_from_slice(&entry(0, 0x11, OTA1, SLOT_SIZE, "ota_1"));
        flash.write(TABLE_AT, &table).unwrap();
        flash.write(OTADATA, &select_entry(1, 2)).unwrap();
    }

    /// The slot the bootloader would boot and its state, read from the raw
    /// otadata bytes (the highest valid sequence number wins).
    fn boot_choice(flash: &mut FlashStorage<'static>) -> (u32, u32) {
        let mut best: Option<(u32, u32)> = None;
        for at in [OTADATA, OTADATA + 0x1000] {
            let mut e = [0u8; 32];
            flash.read(at, &mut e).unwrap();
            let seq = u32::from_le_bytes(e[0..4].try_into().unwrap());
            let state = u32::from_le_bytes(e[24..28].try_into().unwrap());
            let crc = u32::from_le_bytes(e[28..32].try_into().unwrap());
            if seq != u32::MAX && crc == crc32(&seq.to_le_bytes()) && best.is_none_or(|b| seq > b.0)
            {
                best = Some((seq, state));
            }
        }
        let (seq, state) = best.expect("a valid otadata entry");
        ((seq - 1) % 2, state)
    }

    fn otadata(flash: &mut FlashStorage<'static>) -> Vec<u8> {
        let mut raw = vec![0u8; 0x2000];
        flash.read(OTADATA, &mut raw).unwrap();
        raw
    }

    fn app(len: usize) -> Vec<u8> {
        let body: Vec<u8> = (0..len).map(|i| (i * 131 + 17) as u8).collect();
        appimage::build(5, 0x4200_0020, &[(0x3c00_0020, &body)])
    }

    /// Run one update of `sent` (announced as `image`) into a sink on `flash`,
    /// the host closing after `cut` bytes if given.
    fn update(
        flash: &mut FlashStorage<'static>,
        image: &[u8],
        sent: &[u8],
        cut: Option<usize>,
        chip: Option<u16>,
    ) -> Result<(), Failure> {
        let mut sink = OtaSink::new(flash).unwrap();
        if let Some(c) = chip {
            sink = sink.with_chip(c);
        }
        update_into(sink, image, sent, cut)
    }

    /// Run one update of `sent` (announced as `image`) into `sink`.
    fn update_into(
        mut sink: OtaSink<'_, 'static>,
        image: &[u8],
        sent: &[u8],
        cut: Option<usize>,
    ) -> Result<(), Failure> {
        let inv = crate::invitation::parse_device_invitation(
            &Invitation {
                command: Command::Flash,
                host_port: 1,
                size: image.len() as u32,
                md5: md5_hex(image),
            }
            .encode(),
        )
        .unwrap();
        let mut t = Transfer::begin(&mut sink, &inv, Profile::ESP32).map_err(Failure::Update)?;
        let end = cut.unwrap_or(sent.len()).min(sent.len());
        let mut now = Duration::ZERO;
        t.connected(now);
        for piece in sent[..end].chunks(1460) {
            now += Duration::from_millis(1);
            t.handle_data(now, piece);
        }
        if cut.is_some() {
            t.handle_close();
        }
        while t.poll_transmit().is_some() {}
        t.outcome().cloned().expect("ended")
    }

    #[cfg(feature = "signature")]
    #[test]
    fn with_trusted_keys_only_a_signed_image_is_selected() {
        use crate::SignatureError;
        use crate::signature::tests::sign;
        let _turn = FLASH.lock().unwrap_or_else(|e| e.into_inner());
        let mut flash = FlashStorage::new();
        let image = app(40_000);
        let (signed, key) = sign(&image, 21);
        let (by_other, _) = sign(&image, 22);
        let body = signed.len() - crate::signature::SECTOR;
        // The signature's r flipped, the block's CRC mended.
        let mut forged = signed.clone();
        forged[body + 101] ^= 1;
        let crc = crate::signature::crc32(&forged[body..body + 1196]);
        forged[body + 1196..body + 1200].copy_from_slice(&crc.to_le_bytes());
        let refused = [
            (&image, SignatureError::NotSigned),
            (&by_other, SignatureError::UntrustedKey),
            (&forged, SignatureError::BadSignature),
        ];
        for (sent, why) in refused {
            fresh(&mut flash);
            let before = otadata(&mut flash);
            let sink = OtaSink::new(&mut flash).unwrap().with_trusted_keys(&[key]);
            let r = update_into(sink, sent, sent, None);
            assert_eq!(r, Err(Failure::Update(UpdateError::Signature(why))));
            assert_eq!(otadata(&mut flash), before, "{why:?}: otadata changed");
            assert_eq!(boot_choice(&mut flash), (0, 2), "{why:?}");
        }
        fresh(&mut flash);
        let sink = OtaSink::new(&mut flash).unwrap().with_trusted_keys(&[key]);
        update_into(sink, &signed, &signed, None).unwrap();
        assert_eq!(boot_choice(&mut flash).0, 1);
        let mut stored = vec![0u8; signed.len()];
        flash.read(OTA1, &mut stored).unwrap();
        assert_eq!(stored, signed);
    }

    #[cfg(feature = "signature")]
    #[test]
    fn the_running_images_key_is_trusted_when_asked() {
        use crate::SignatureError;
        use crate::signature::tests::sign;
        let _turn = FLASH.lock().unwrap_or_else(|e| e.into_inner());
        let mut flash = FlashStorage::new();
        let (running, key) = sign(&app(30_000), 31);
        let (by_same, _) = sign(&app(40_000), 31);
        let (by_other, _) = sign(&app(40_000), 32);
        // An unsigned running image: nothing to trust, said so.
        fresh(&mut flash);
        flash.write(OTA0, &app(30_000)).unwrap();
        let mut sink = OtaSink::new(&mut flash).unwrap();
        assert_eq!(sink.trust_running_image_keys(), Err(Error::Invalid));
        // A signed one (ota_0 runs): its key, once.
        for (sent, want) in [
            (
                &by_other,
                Err(Failure::Update(UpdateError::Signature(
                    SignatureError::UntrustedKey,
                ))),
            ),
            (&by_same, Ok(())),
        ] {
            fresh(&mut flash);
            flash.write(OTA0, &running).unwrap();
            let mut sink = OtaSink::new(&mut flash).unwrap();
            assert_eq!(sink.trust_running_image_keys(), Ok(1));
            assert_eq!(sink.trust_running_image_keys(), Ok(0));
            assert_eq!(sink.trusted_keys.as_deref(), Some(&[key][..]));
            assert_eq!(update_into(sink, sent, sent, None), want);
            let selected = if want.is_ok() { 1 } else { 0 };
            assert_eq!(boot_choice(&mut flash).0, selected);
        }
    }

    #[test]
    fn interrupted_at_every_sector_keeps_the_running_slot() {
        let _turn = FLASH.lock().unwrap_or_else(|e| e.into_inner());
        let mut flash = FlashStorage::new();
        let image = app(40_000);
        for cut in (0..image.len())
            .step_by(4096)
            .chain([1, 4097, image.len() - 1])
        {
            fresh(&mut flash);
            let before = otadata(&mut flash);
            let result = update(&mut flash, &image, &image, Some(cut), None);
            assert!(
                matches!(result, Err(Failure::HostClosed { .. })),
                "cut at {cut}: {result:?}"
            );
            assert_eq!(otadata(&mut flash), before, "cut at {cut}: otadata changed");
            assert_eq!(boot_choice(&mut flash), (0, 2), "cut at {cut}");
            let mut sink = OtaSink::new(&mut flash).unwrap();
            assert_eq!(sink.selected_slot().unwrap(), AppPartitionSubType::Ota0);
        }
    }

    #[test]
    fn only_a_complete_verified_image_is_selected() {
        let _turn = FLASH.lock().unwrap_or_else(|e| e.into_inner());
        let mut flash = FlashStorage::new();
        let image = app(40_000);

        // A corrupted byte: MD5 fails, nothing selected.
        fresh(&mut flash);
        let mut bad = image.clone();
        bad[20_000] ^= 1;
        let r = update(&mut flash, &image, &bad, None, None);
        assert!(matches!(
            r,
            Err(Failure::Update(UpdateError::Md5Mismatch { .. }))
        ));
        assert_eq!(boot_choice(&mut flash), (0, 2));

        // An image for another chip: the app check fails, nothing selected.
        fresh(&mut flash);
        let r = update(&mut flash, &image, &image, None, Some(13));
        assert!(
            matches!(r, Err(Failure::Update(UpdateError::Activate { .. }))),
            "{r:?}"
        );
        assert_eq!(boot_choice(&mut flash), (0, 2));

        // Not an app image at all (valid MD5): refused.
        fresh(&mut flash);
        let mut junk = image.clone();
        junk[100] ^= 0xff;
        let r = update(&mut flash, &junk, &junk, None, None);
        assert!(
            matches!(r, Err(Failure::Update(UpdateError::Activate { .. }))),
            "{r:?}"
        );
        assert_eq!(boot_choice(&mut flash), (0, 2));

        // Larger than the slot: refused at begin.
        fresh(&mut flash);
        let big = app(SLOT_SIZE as usize);
        let r = update(&mut flash, &big, &big, None, None);
        assert_eq!(r, Err(Failure::Update(UpdateError::BadSize)));

        // The real thing: ota_1 holds the image and is selected, on probation.
        fresh(&mut flash);
        update(&mut flash, &image, &image, None, Some(5)).unwrap();
        assert_eq!(boot_choice(&mut flash), (1, 0), "ota_1, state New");
        let mut written = vec![0u8; image.len()];
        flash.read(OTA1, &mut written).unwrap();
        assert_eq!(written, image);
    }

    /// A zlib stream with a 4 KiB window, as `cargo ota` sends it.
    fn zlib(data: &[u8]) -> Vec<u8> {
        crate::decode::tests::zlib(data, 12)
    }

    #[test]
    fn a_compressed_image_is_inflated_into_the_slot_and_only_whole_activates() {
        let _turn = FLASH.lock().unwrap_or_else(|e| e.into_inner());
        let mut flash = FlashStorage::new();
        let image = app(SLOT_SIZE as usize - 4096);
        let stream = zlib(&image);
        assert!(stream.len() * 4 < image.len(), "{}", stream.len());

        // Cut at every 4 KiB of the stream (and just after its start and
        // before its end): nothing selected, otadata untouched.
        for cut in (0..stream.len())
            .step_by(4096)
            .chain([1, 3, stream.len() - 1])
        {
            fresh(&mut flash);
            let before = otadata(&mut flash);
            let r = update(&mut flash, &stream, &stream, Some(cut), None);
            assert!(
                matches!(r, Err(Failure::HostClosed { .. })),
                "cut at {cut}: {r:?}"
            );
            assert_eq!(otadata(&mut flash), before, "cut at {cut}");
        }
        // One byte flipped on the way: the inflater (the stream's Adler-32 at
        // its end) or the MD5 of the stream refuses it.
        fresh(&mut flash);
        let mut bad = stream.clone();
        bad[stream.len() / 2] ^= 0x10;
        let r = update(&mut flash, &stream, &bad, None, None);
        assert!(
            matches!(
                r,
                Err(Failure::Update(
                    UpdateError::Md5Mismatch { .. } | UpdateError::Inflate { .. }
                ))
            ),
            "{r:?}"
        );
        assert_eq!(boot_choice(&mut flash), (0, 2));
        // Flipped before the MD5 was taken (it matches): the inflater or the
        // image checks refuse it, at every position tried.
        for at in (2..stream.len()).step_by(stream.len() / 23 + 1) {
            fresh(&mut flash);
            let mut bad = stream.clone();
            bad[at] ^= 0x10;
            let r = update(&mut flash, &bad, &bad, None, None);
            assert!(
                matches!(
                    r,
                    Err(Failure::Update(
                        UpdateError::Inflate { .. } | UpdateError::Activate { .. }
                    ))
                ),
                "flip at {at}: {r:?}"
            );
            assert_eq!(boot_choice(&mut flash), (0, 2), "flip at {at}");
        }
        // A stream that inflates to more than the slot: refused, nothing selected.
        fresh(&mut flash);
        let big = app(SLOT_SIZE as usize + 4096);
        let big_stream = zlib(&big);
        let r = update(&mut flash, &big_stream, &big_stream, None, None);
        assert_eq!(r, Err(Failure::Update(UpdateError::NotEnoughSpace)));
        assert_eq!(boot_choice(&mut flash), (0, 2));
        // The whole stream: ota_1 holds the inflated image, byte for byte.
        fresh(&mut flash);
        update(&mut flash, &stream, &stream, None, Some(5)).unwrap();
        assert_eq!(boot_choice(&mut flash), (1, 0), "ota_1, state New");
        let mut written = vec![0u8; image.len()];
        flash.read(OTA1, &mut written).unwrap();
        assert_eq!(written, image);
    }

    fn slot(flash: &mut FlashStorage<'static>, at: u32) -> Vec<u8> {
        let mut raw = vec![0u8; SLOT_SIZE as usize];
        flash.read(at, &mut raw).unwrap();
        raw
    }

    #[test]
    fn the_running_images_validation_hash_is_read_from_its_slot() {
        use crate::delta::tests::image;
        let _turn = FLASH.lock().unwrap_or_else(|e| e.into_inner());
        let mut flash = FlashStorage::new();
        // Nothing runs (blank slot): no hash to announce.
        fresh(&mut flash);
        assert_eq!(
            OtaSink::new(&mut flash).unwrap().running_validation_hash(),
            None
        );
        let running = image(40_000, 11);
        fresh(&mut flash);
        flash.write(OTA0, &running).unwrap();
        let hash = OtaSink::new(&mut flash)
            .unwrap()
            .running_validation_hash()
            .unwrap();
        // The SHA-256 appended after the image's padded body: its last 32 bytes.
        assert_eq!(hash[..], running[running.len() - 32..]);
        assert_eq!(
            hash,
            crate::delta::validation_hash(&mut &running[..]).unwrap()
        );
    }

    #[test]
    fn a_delta_patch_against_the_running_slot_stores_the_new_image_in_the_other() {
        use crate::delta::tests::{changed, image, patch};
        let _turn = FLASH.lock().unwrap_or_else(|e| e.into_inner());
        let mut flash = FlashStorage::new();
        let running = image(40_000, 11);
        let new = changed(40_000, 11);
        let p = patch(&running, &new, false);
        assert!(p.len() * 20 < new.len(), "{} bytes", p.len());

        // Nothing runs in ota_0 (blank): no deltas; a patch is no app image.
        fresh(&mut flash);
        let sink = OtaSink::new(&mut flash).unwrap();
        assert!(!sink.takes_delta());
        let r = update_into(sink, &p, &p, None);
        assert_eq!(r, Err(Failure::Update(UpdateError::WrongMagic)));

        // Refused, and neither otadata nor the running slot changes: a patch for
        // another image, a cut one, one flipped on the way (the MD5 is the
        // patch's) and flipped before the MD5 was taken.
        let other = patch(&image(40_000, 12), &new, false);
        let mut cases: Vec<(Vec<u8>, Vec<u8>, Option<usize>)> = vec![(other.clone(), other, None)];
        for cut in (0..p.len())
            .step_by(p.len() / 7)
            .chain([1, 64, p.len() - 1])
        {
            cases.push((p.clone(), p.clone(), Some(cut)));
        }
        let mut flipped = p.clone();
        flipped[p.len() / 2] ^= 0x10;
        cases.push((p.clone(), flipped, None));
        for at in (0..p.len()).step_by(p.len() / 17 + 1) {
            let mut bad = p.clone();
            bad[at] ^= 0x10;
            cases.push((bad.clone(), bad, None));
        }
        for (announced, sent, cut) in cases {
            fresh(&mut flash);
            flash.write(OTA0, &running).unwrap();
            let (before, ota0) = (otadata(&mut flash), slot(&mut flash, OTA0));
            let sink = OtaSink::new(&mut flash).unwrap();
            assert!(sink.takes_delta());
            let r = update_into(sink, &announced, &sent, cut);
            assert!(
                slot(&mut flash, OTA0) == ota0,
                "cut {cut:?}: the running slot changed"
            );
            if r.is_ok() {
                // Only a flip that changes no byte made (in the reserved header
                // bytes, a padding bit): the exact new image.
                assert!(cut.is_none() && announced == sent);
                let mut stored = vec![0u8; new.len()];
                flash.read(OTA1, &mut stored).unwrap();
                assert!(
                    stored == new,
                    "an image other than the new one was selected"
                );
                continue;
            }
            assert_eq!(otadata(&mut flash), before, "cut {cut:?}: {r:?}");
            assert_eq!(boot_choice(&mut flash), (0, 2), "cut {cut:?}: {r:?}");
        }
        // The base mismatch says so, first.
        fresh(&mut flash);
        flash.write(OTA0, &running).unwrap();
        let other = patch(&image(40_000, 12), &new, false);
        let sink = OtaSink::new(&mut flash).unwrap();
        let r = update_into(sink, &other, &other, None);
        assert!(
            matches!(
                r,
                Err(Failure::Update(UpdateError::DeltaBaseMismatch { .. }))
            ),
            "{r:?}"
        );

        // The patch whole: ota_1 holds the new image and is selected, on
        // probation; ota_0 is as it was.
        fresh(&mut flash);
        flash.write(OTA0, &running).unwrap();
        let ota0 = slot(&mut flash, OTA0);
        let sink = OtaSink::new(&mut flash).unwrap();
        update_into(sink, &p, &p, None).unwrap();
        assert_eq!(boot_choice(&mut flash), (1, 0), "ota_1, state New");
        let mut stored = vec![0u8; new.len()];
        flash.read(OTA1, &mut stored).unwrap();
        assert!(stored == new);
        assert!(slot(&mut flash, OTA0) == ota0);
        // After the reboot into ota_1: the next patch is against ota_1 and goes
        // to ota_0; ota_1 is read, never written.
        let newer = image(40_000, 13);
        let p = patch(&new, &newer, true);
        let ota1 = slot(&mut flash, OTA1);
        let mut sink = OtaSink::new(&mut flash).unwrap();
        assert!(sink.takes_delta(), "ota_1 is selected and carries its hash");
        assert_eq!(sink.next_slot().unwrap(), AppPartitionSubType::Ota0);
        update_into(sink, &p, &p, None).unwrap();
        assert_eq!(boot_choice(&mut flash).0, 0);
        let mut stored = vec![0u8; newer.len()];
        flash.read(OTA0, &mut stored).unwrap();
        assert!(stored == newer);
        assert!(slot(&mut flash, OTA1) == ota1);
    }

    #[test]
    fn confirmation_and_the_next_update_alternate_slots() {
        let _turn = FLASH.lock().unwrap_or_else(|e| e.into_inner());
        let mut flash = FlashStorage::new();
        fresh(&mut flash);
        let first = app(30_000);
        update(&mut flash, &first, &first, None, None).unwrap();
        // The bootloader (with rollback) marks the new image PendingVerify.
        let mut sink = OtaSink::new(&mut flash).unwrap();
        sink.ota()
            .unwrap()
            .set_current_ota_state(OtaImageState::PendingVerify)
            .unwrap();
        assert!(sink.confirm_running_app().unwrap());
        assert!(!sink.confirm_running_app().unwrap(), "already valid");
        assert_eq!(boot_choice(&mut flash), (1, 2));
        // The next update goes to ota_0 again.
        let second = app(20_000);
        update(&mut flash, &second, &second, None, None).unwrap();
        assert_eq!(boot_choice(&mut flash), (0, 0));
        let mut written = vec![0u8; second.len()];
        flash.read(OTA0, &mut written).unwrap();
        assert_eq!(written, second);
    }

    #[test]
    fn filesystem_images_need_a_filesystem_partition() {
        let _turn = FLASH.lock().unwrap_or_else(|e| e.into_inner());
        let mut flash = FlashStorage::new();
        fresh(&mut flash);
        let mut sink = OtaSink::new(&mut flash).unwrap();
        assert_eq!(
            sink.begin(Command::Filesystem, 100, &md5_hex(b"x")),
            Err(UpdateError::PartitionNotFound)
        );
    }
}
