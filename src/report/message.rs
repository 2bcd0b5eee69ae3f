//! The machine-readable output contract: one JSON object per line on stdout with
//! `--message-format json`, each tagged with its `reason` (README, "JSON output").
//! Every line cargo-ota writes there is one of these variants.

use std::path::PathBuf;

use serde::Serialize;

use crate::discover::Found;
use crate::image::AppInfo;
use arduino_ota::Command;

/// One JSON line.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum Message {
    /// The firmware was built.
    BuildFinished {
        package: String,
        binary: String,
        target: Option<String>,
        profile: String,
        elf: PathBuf,
    },
    /// The app image is converted and checked.
    ImageReady {
        elf: PathBuf,
        /// Where `cargo ota image` wrote it.
        path: Option<PathBuf>,
        chip: String,
        size: u64,
        md5: String,
        app: Option<AppInfo>,
        partition: Option<String>,
        partition_size: Option<u32>,
        ota_slots: Option<usize>,
    },
    /// `cargo ota init`.
    Init {
        manifest: PathBuf,
        changed: bool,
        /// The package depends on `arduino-ota`.
        responder: bool,
    },
    /// A session begins.
    UploadStarted {
        device: String,
        host: String,
        port: u16,
        kind: Command,
        size: u64,
        md5: String,
    },
    /// At each tenth of the image the device acknowledged.
    UploadProgress {
        device: String,
        host: String,
        sent: u64,
        total: u64,
    },
    /// The device verified the image and answered OK.
    UploadFinished {
        device: String,
        host: String,
        address: String,
        bytes: u64,
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
    /// A session failed.
    UploadFailed {
        device: String,
        host: String,
        /// The exit code this failure has on its own.
        code: i32,
        /// The failure's kind (`no-answer`, `auth-failed`, ...).
        error: String,
        message: String,
        hint: Option<String>,
        secs: f64,
    },
    /// The end of a run over devices.
    Summary {
        total: usize,
        succeeded: usize,
        failed: usize,
        secs: f64,
        devices: Vec<DeviceSummary>,
    },
    /// `discover`: a device answered.
    DeviceFound(Found),
    /// `discover`: the browse ended.
    DiscoverFinished { count: usize },
    /// A failure other than an upload's.
    Error {
        code: i32,
        message: String,
        hint: Option<String>,
    },
    /// `demo`: what the emulated device found.
    DeviceVerdict {
        device: String,
        ok: bool,
        md5: String,
        identical: bool,
    },
}

/// One device's line in [`Message::Summary`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DeviceSummary {
    pub device: String,
    pub host: String,
    pub ok: bool,
    pub code: i32,
    pub error: Option<String>,
    pub bytes: Option<u64>,
    pub secs: f64,
    pub rate: Option<f64>,
    pub back_online: Option<bool>,
    pub message: String,
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
            Message::Error {
                code: 2,
                message: String::new(),
                hint: None,
            },
            Message::Init {
                manifest: PathBuf::new(),
                changed: false,
                responder: false,
            },
            Message::UploadProgress {
                device: String::new(),
                host: String::new(),
                sent: 0,
                total: 0,
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
