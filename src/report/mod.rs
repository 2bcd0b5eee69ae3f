//! The only place that prints. Stages and sessions send what happened to one
//! reporter thread over a channel; that thread owns the display (cargo-style
//! status lines and indicatif bars on stderr) and the JSON writer (stdout, one
//! [`Message`] per line with `--message-format json`).

mod display;
mod message;

use std::fmt::Display;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Sender};
use std::time::Duration;

use indicatif::HumanBytes;

pub use message::{DeviceSummary, Message, round3};

use crate::encode::{Compression, Payload};
use crate::error::{Error, UploadError};
use crate::session::{Event, Outcome, Target};
use arduino_ota::Command;

/// How results are printed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum MessageFormat {
    /// Status lines and progress bars on stderr.
    #[default]
    Human,
    /// One JSON object per line on stdout (nothing else on stdout).
    Json,
}

/// The widest a live status line may be.
pub const LINE_WIDTH: usize = 80;

/// What the reporter thread is told.
enum Note {
    Status {
        verb: &'static str,
        text: String,
        /// Shown only with `-v`.
        detail: bool,
    },
    Warn(String),
    /// Written to stderr as it is (cargo's rendered diagnostics).
    Raw(String),
    Error {
        message: String,
        hint: Option<String>,
    },
    Table {
        header: Vec<String>,
        rows: Vec<Vec<String>>,
    },
    Message(Message),
    Device(usize, DeviceNote),
    /// Everything sent before is written; answer on the channel.
    Flush(Sender<()>),
}

/// What happens to one device's session.
enum DeviceNote {
    Started {
        target: Target,
        what: String,
        size: u64,
        md5: String,
        kind: Command,
        in_fleet: bool,
        image_size: u64,
        compression: Compression,
        key_digest: Option<String>,
    },
    Event(Event),
    Verifying,
    /// `--verify`: the validation hash of the image the device says it runs
    /// (its `ota_sha256`), and the one it was sent.
    Running {
        sha256: String,
        expected: String,
    },
    Finished {
        outcome: Outcome,
        back_online: Option<Option<Duration>>,
    },
    Interrupted,
    Failed {
        kind: &'static str,
        code: i32,
        message: String,
        hint: Option<String>,
        elapsed: Duration,
    },
}

/// The handle every stage reports through (shared by the fleet's threads).
pub struct Reporter {
    tx: Sender<Note>,
    next_device: AtomicUsize,
}

impl Reporter {
    /// Start the reporter thread. `colour`: style the labels (see
    /// [`crate::settings::Environment::colour`]).
    pub fn new(format: MessageFormat, quiet: bool, verbose: bool, colour: bool) -> Self {
        let (tx, rx) = mpsc::channel();
        let display = display::Display::new(format, quiet, verbose, colour);
        std::thread::Builder::new()
            .name("reporter".into())
            .spawn(move || display.run(rx))
            .expect("spawn the reporter thread");
        Reporter {
            tx,
            next_device: AtomicUsize::new(0),
        }
    }

    fn send(&self, note: Note) {
        // The thread ends only when the reporter does.
        let _ = self.tx.send(note);
    }

    /// A cargo-style status line: `   Uploading foo.bin to ...` (human output).
    pub fn status(&self, verb: &'static str, message: impl Display) {
        self.send(Note::Status {
            verb,
            text: message.to_string(),
            detail: false,
        });
    }

    /// A status line shown only with `-v`.
    pub fn detail(&self, verb: &'static str, message: impl Display) {
        self.send(Note::Status {
            verb,
            text: message.to_string(),
            detail: true,
        });
    }

    /// Warnings go to stderr in every format, unless `-q`.
    pub fn warn(&self, message: impl Display) {
        self.send(Note::Warn(message.to_string()));
    }

    /// A compiler diagnostic as cargo rendered it: on stderr in every format, as
    /// cargo would show it.
    pub fn diagnostic(&self, text: String) {
        self.send(Note::Raw(text));
    }

    /// The final error, always shown (stderr), with its hint.
    pub fn error(&self, err: &Error) {
        self.send(Note::Error {
            message: err.to_string(),
            hint: err.hint(),
        });
    }

    /// One device's failure in a run over several devices.
    pub fn device_error(&self, device: &str, err: &UploadError) {
        self.send(Note::Error {
            message: format!("{device}: {err}"),
            hint: err.hint(),
        });
    }

    /// A line of the output contract: JSON on stdout, and its human form (if it
    /// has one) on stderr.
    pub fn message(&self, message: Message) {
        self.send(Note::Message(message));
    }

    /// An aligned table on stderr (human output only).
    pub fn table<const N: usize>(&self, header: &[&str; N], rows: &[[String; N]]) {
        self.send(Note::Table {
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: rows.iter().map(|r| r.to_vec()).collect(),
        });
    }

    /// Start reporting one device's upload (`in_fleet`: one of several devices,
    /// whose failure is shown at once on its own line).
    pub fn session(
        &self,
        target: &Target,
        what: &str,
        payload: &Payload,
        kind: Command,
        in_fleet: bool,
    ) -> SessionReport<'_> {
        let id = self.next_device.fetch_add(1, Ordering::SeqCst);
        self.send(Note::Device(
            id,
            DeviceNote::Started {
                target: target.clone(),
                what: what.to_string(),
                size: payload.bytes.len() as u64,
                md5: arduino_ota::md5_hex(&payload.bytes),
                kind,
                in_fleet,
                image_size: payload.image_size,
                compression: payload.compression,
                key_digest: payload.key_digest.map(hex::encode),
            },
        ));
        SessionReport { reporter: self, id }
    }

    /// The end of a run over devices: a `summary` line, and a table for
    /// several devices.
    pub fn summary(&self, rows: Vec<DeviceSummary>, secs: f64) {
        let succeeded = rows.iter().filter(|r| r.ok).count();
        self.message(Message::Summary {
            total: rows.len(),
            succeeded,
            failed: rows.len() - succeeded,
            secs: round3(secs),
            devices: rows,
        });
    }

    /// Wait until everything sent so far is written (at most `limit`): false
    /// when the output could not take it in time (a reader that stopped).
    pub fn flush_within(&self, limit: Duration) -> bool {
        let (tx, rx) = mpsc::channel();
        self.send(Note::Flush(tx));
        rx.recv_timeout(limit).is_ok()
    }
}

impl Drop for Reporter {
    /// Everything reported is written before the reporter goes.
    fn drop(&mut self) {
        let (tx, rx) = mpsc::channel();
        let _ = self.tx.send(Note::Flush(tx));
        // The thread ends when the channel closes, right after this.
        let _ = rx.recv();
    }
}

/// Reporting for one device's session: what it sends the reporter thread.
pub struct SessionReport<'a> {
    reporter: &'a Reporter,
    id: usize,
}

impl SessionReport<'_> {
    fn send(&self, note: DeviceNote) {
        self.reporter.send(Note::Device(self.id, note));
    }

    /// A step of the session.
    pub fn event(&self, event: &Event) {
        self.send(DeviceNote::Event(event.clone()));
    }

    /// `--verify`: the update succeeded; now waiting for the reboot.
    pub fn verifying(&self) {
        self.send(DeviceNote::Verifying);
    }

    /// `--verify`: back up, the device announced that it runs the image with
    /// validation hash `sha256` (hex); it was sent `expected`.
    pub fn running(&self, sha256: String, expected: String) {
        self.send(DeviceNote::Running { sha256, expected });
    }

    /// The device answered OK. `back_online` is `Some` with `--verify`.
    pub fn finished(self, outcome: &Outcome, back_online: Option<Option<Duration>>) {
        self.send(DeviceNote::Finished {
            outcome: outcome.clone(),
            back_online,
        });
    }

    /// Ctrl-C ended the session: its bar goes; the command reports the interrupt.
    pub fn interrupted(self) {
        self.send(DeviceNote::Interrupted);
    }

    /// The device refused the compressed image: this session's bar goes, and
    /// a warning says the image itself follows (a new session).
    pub fn refused_compressed(self, device: &str, compression: Compression, why: &str) {
        self.send(DeviceNote::Interrupted);
        self.reporter.warn(format!(
            "{device} refused the {} image ({why}): sending it uncompressed (compress = \"never\" in its config, or --no-compress, skips the try)",
            compression.name()
        ));
    }

    /// The device refused a delta patch (`why`, its words): the whole image
    /// follows.
    pub fn refused_delta(self, device: &str, why: &str) {
        self.send(DeviceNote::Interrupted);
        self.reporter.warn(format!(
            "{device} refused the delta patch ({why}): sending the whole image (delta = \"never\" in its config, or --no-delta, skips the try)"
        ));
    }

    /// The session failed after `elapsed` (the summary's figure too).
    pub fn failed(self, err: &UploadError, elapsed: Duration) {
        self.send(DeviceNote::Failed {
            kind: err.kind(),
            code: err.exit_code(),
            message: err.to_string(),
            hint: err.hint(),
            elapsed,
        });
    }
}

/// Bytes per second, for humans.
pub fn rate(bytes: u64, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64().max(1e-6);
    format!("{}/s", HumanBytes((bytes as f64 / secs) as u64))
}
