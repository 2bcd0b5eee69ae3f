//! The machine-readable output contract: one JSON object per line on stdout with
//! `--message-format json`, each tagged with its `reason` (README, "JSON output").
//! Every line cargo-ota writes there is one of these variants.

use std::path::PathBuf;

use serde::Serialize;

use crate::discover::Found;
use crate::encode::Compression;
use crate::image::AppInfo;
use crate::sign::Scheme;
use arduino_ota::Command;

/// One JSON line.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum Message {
    /// The firmware was built.
    BuildFinished {
        /// The package built.
        package: String,
        /// The binary or example.
        binary: String,
        /// The target triple, when one is set.
        target: Option<String>,
        /// The cargo profile.
        profile: String,
        /// The ELF.
        elf: PathBuf,
    },
    /// The app image is converted and checked.
    ImageReady {
        /// The ELF.
        elf: PathBuf,
        /// Where `cargo ota image` wrote it.
        path: Option<PathBuf>,
        /// The chip the image is for.
        chip: String,
        /// Bytes.
        size: u64,
        /// MD5 of the image (hex).
        md5: String,
        /// What the app descriptor says (`None`: no descriptor).
        app: Option<AppInfo>,
        /// The OTA slot it was checked against (`None`: no partition table).
        partition: Option<String>,
        /// That slot's size in bytes.
        partition_size: Option<u32>,
        /// How many OTA slots the table has.
        ota_slots: Option<usize>,
        /// The image is signed (`image`: the file written; the main job: for
        /// every device).
        signed: bool,
        /// The digest (hex) of the public key it is signed with, when one key
        /// signs it for every device (then `size` and `md5` are of the signed
        /// image); null otherwise (each `upload-started` says its own).
        key_digest: Option<String>,
    },
    /// `cargo ota init`.
    Init {
        /// The Cargo.toml.
        manifest: PathBuf,
        /// The section was added (false: it was there).
        changed: bool,
        /// The package depends on `arduino-ota`.
        responder: bool,
        /// The partition table the main job checks images against (configured,
        /// or the `partitions.csv` init wrote or found).
        partition_table: PathBuf,
        /// Init wrote that table (false: it was there).
        partition_table_written: bool,
        /// The one-time serial flash command that puts the table on the device.
        flash_command: String,
    },
    /// `cargo ota keygen`: a new signing key was written.
    Keygen {
        /// The key file, as given (PKCS#8 PEM, mode 0600; its contents are
        /// never printed).
        file: PathBuf,
        /// `ecdsa256` or `rsa3072`.
        scheme: Scheme,
        /// SHA-256 of the public key as a signature block holds it, in hex (what
        /// `espsecure digest-sbv2-public-key` writes): the digest the firmware
        /// trusts the key by.
        key_digest: String,
    },
    /// A session begins.
    UploadStarted {
        /// The device's name (its host with `--host`).
        device: String,
        /// Its host.
        host: String,
        /// Its OTA UDP port.
        port: u16,
        /// `flash` or `filesystem`.
        kind: Command,
        /// Bytes sent (the invitation's size).
        size: u64,
        /// MD5 of the bytes sent (hex).
        md5: String,
        /// The image's own size (`size` when not compressed).
        image_size: u64,
        /// How the bytes sent were made: `none`, `gzip`, `zlib`.
        compression: Compression,
        /// The image is signed (before any compression).
        signed: bool,
        /// The digest (hex) of the public key it is signed with (null: unsigned).
        key_digest: Option<String>,
    },
    /// At each tenth of the image the device acknowledged.
    UploadProgress {
        /// The device's name (its host with `--host`).
        device: String,
        /// Its host.
        host: String,
        /// Bytes the device acknowledged.
        sent: u64,
        /// Bytes of the image.
        total: u64,
    },
    /// The device verified the image and answered OK.
    UploadFinished {
        /// The device's name (its host with `--host`).
        device: String,
        /// Its host.
        host: String,
        /// The address it answered from.
        address: String,
        /// Bytes sent (as `bytes_sent`; kept for existing readers).
        bytes: u64,
        /// Bytes sent over the air.
        bytes_sent: u64,
        /// The image's own size.
        image_size: u64,
        /// How the bytes sent were made: `none`, `gzip`, `zlib`.
        compression: Compression,
        /// Seconds, to the millisecond.
        secs: f64,
        /// Bytes per second of the transfer.
        rate: f64,
        /// With `--verify`: it answered again after its reboot.
        #[serde(skip_serializing_if = "Option::is_none")]
        back_online: Option<bool>,
        /// With `--verify`: how long that took (null: it did not).
        #[serde(skip_serializing_if = "Option::is_none")]
        back_online_secs: Option<Option<f64>>,
    },
    /// `--verify`: the image a device announces that it runs after its
    /// reboot (its `ota_sha256` TXT record).
    RunningImage {
        /// The device's name (its host with `--host`).
        device: String,
        /// Its host.
        host: String,
        /// The validation hash (hex SHA-256) it announces.
        sha256: String,
        /// The validation hash of the image it was sent.
        expected: String,
        /// Whether they are the same: it runs the new image.
        matches: bool,
    },
    /// A session failed.
    UploadFailed {
        /// The device's name (its host with `--host`).
        device: String,
        /// Its host.
        host: String,
        /// The exit code this failure has on its own.
        code: i32,
        /// The failure's kind (`no-answer`, `auth-failed`, ...).
        error: String,
        /// What happened.
        message: String,
        /// What to do about it.
        hint: Option<String>,
        /// Seconds, to the millisecond.
        secs: f64,
    },
    /// The end of a run over devices.
    Summary {
        /// Devices.
        total: usize,
        /// Devices updated.
        succeeded: usize,
        /// Devices that failed.
        failed: usize,
        /// Seconds, to the millisecond.
        secs: f64,
        /// One entry per device.
        devices: Vec<DeviceSummary>,
    },
    /// `discover`: a device answered.
    DeviceFound(Found),
    /// `discover`: the browse ended.
    DiscoverFinished {
        /// Devices found.
        count: usize,
    },
    /// A failure other than an upload's.
    Error {
        /// The exit code.
        code: i32,
        /// The failure's kind from the error catalogue (`config`, `build-failed`,
        /// `no-ota-responder`, `write`, `interrupted`, ...).
        kind: String,
        /// What happened.
        message: String,
        /// What to do about it.
        hint: Option<String>,
    },
    /// `demo`: what the emulated device found.
    DeviceVerdict {
        /// The device's name (its host with `--host`).
        device: String,
        /// The update succeeded.
        ok: bool,
        /// MD5 of the image (hex).
        md5: String,
        /// What it wrote is the image sent, byte for byte.
        identical: bool,
    },
}

/// One device's line in [`Message::Summary`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DeviceSummary {
    /// The device's name (its host with `--host`).
    pub device: String,
    /// Its host.
    pub host: String,
    /// The update succeeded.
    pub ok: bool,
    /// The exit code.
    pub code: i32,
    /// The failure's kind.
    pub error: Option<String>,
    /// Bytes sent (success only).
    pub bytes: Option<u64>,
    /// Bytes sent over the air (success only).
    pub bytes_sent: Option<u64>,
    /// The image's own size.
    pub image_size: u64,
    /// How the bytes sent were made (of the last try).
    pub compression: Compression,
    /// Seconds, to the millisecond.
    pub secs: f64,
    /// Bytes per second of the transfer (success only).
    pub rate: Option<f64>,
    /// With `--verify`: it answered again.
    pub back_online: Option<bool>,
    /// What happened.
    pub message: String,
}

impl Message {
    /// The `error` line of a failure.
    pub fn error(e: &crate::error::Error) -> Self {
        Message::Error {
            code: e.exit_code(),
            kind: e.kind().to_string(),
            message: e.to_string(),
            hint: e.hint(),
        }
    }

    /// Write this as one JSON line on stdout, flushed (write errors are
    /// ignored: a reader that went away must not stop the run).
    pub fn write_line(&self) {
        use std::io::Write;
        let line = serde_json::to_string(self).expect("messages serialize");
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
}

/// Seconds to the millisecond, as every `secs` field has them.
pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The README's JSON table names every reason this enum can write.
    #[test]
    fn every_reason_is_documented() {
        let readme = include_str!("../../README.md");
        let samples = [
            Message::DiscoverFinished { count: 0 },
            Message::RunningImage {
                device: String::new(),
                host: String::new(),
                sha256: String::new(),
                expected: String::new(),
                matches: true,
            },
            Message::Error {
                code: 2,
                kind: "config".into(),
                message: String::new(),
                hint: None,
            },
            Message::Init {
                manifest: PathBuf::new(),
                changed: false,
                responder: false,
                partition_table: PathBuf::new(),
                partition_table_written: false,
                flash_command: String::new(),
            },
            Message::UploadProgress {
                device: String::new(),
                host: String::new(),
                sent: 0,
                total: 0,
            },
            Message::Keygen {
                file: PathBuf::new(),
                scheme: Scheme::Ecdsa256,
                key_digest: String::new(),
            },
        ];
        for m in samples {
            let v = serde_json::to_value(&m).unwrap();
            let reason = v["reason"].as_str().unwrap();
            assert!(readme.contains(&format!("| `{reason}` |")), "{reason}");
        }
        let found = Message::DeviceFound(Found {
            name: "n".into(),
            hostname: "h.local.".into(),
            addresses: vec![],
            port: 3232,
            board: None,
            auth_upload: Some(true),
            compress: None,
            delta: None,
            sha256: None,
        });
        let v = serde_json::to_value(found).unwrap();
        assert_eq!(v["reason"], "device-found");
        assert_eq!(v["auth_upload"], true);
        assert_eq!(v["port"], 3232);
    }

    #[test]
    fn verify_fields_only_with_verify() {
        let m = |back_online, back_online_secs| Message::UploadFinished {
            device: "d".into(),
            host: "h".into(),
            address: "1.2.3.4:3232".into(),
            bytes: 1,
            bytes_sent: 1,
            image_size: 1,
            compression: Compression::None,
            secs: 0.5,
            rate: 2.0,
            back_online,
            back_online_secs,
        };
        let plain = serde_json::to_value(m(None, None)).unwrap();
        assert!(plain.get("back_online").is_none());
        assert!(plain.get("back_online_secs").is_none());
        let gone = serde_json::to_value(m(Some(false), Some(None))).unwrap();
        assert_eq!(gone["back_online"], false);
        assert!(gone["back_online_secs"].is_null());
    }
}
