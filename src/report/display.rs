//! The reporter thread: renders what it is told as status lines, bars and
//! tables on stderr (human output) or JSON lines on stdout, in arrival order.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::mpsc::Receiver;
use std::time::Duration;

use indicatif::{HumanBytes, MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{DeviceNote, LINE_WIDTH, Message, MessageFormat, Note, rate, round3};
use crate::encode::Compression;
use crate::session::{Event, Target};

/// The handshake and the verdict wait: a spinner and what is happening.
const SPINNER: &str = "{prefix:>12.cyan.bold} {spinner} {msg}";
/// The transfer, counting what the device acknowledged. At most 79 columns:
/// 12 + 2 + 20 + 2 + 23 (bytes) + 1 + 13 (rate) + 6 (ETA).
const BAR: &str =
    "{prefix:>12.cyan.bold} [{bar:20}] {bytes}/{total_bytes} {binary_bytes_per_sec} {eta:>4}";
/// A failed device's line, kept while the others go on.
const FAILED: &str = "{prefix:>12.red.bold} {msg}";

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .expect("valid template")
        .progress_chars("=> ")
}

fn describe_target(t: &Target) -> String {
    // An IPv6 literal in brackets, as in a socket address: `[::1]:3232`.
    let host = if t.host.contains(':') && !t.host.starts_with('[') {
        format!("[{}]", t.host)
    } else {
        t.host.clone()
    };
    if t.name == t.host {
        format!("{host}:{}", t.port)
    } else {
        format!("{} ({host}:{})", t.name, t.port)
    }
}

/// The first 16 hex digits of a hash, as the text shows it.
fn short(hash: &str) -> &str {
    hash.get(..16).unwrap_or(hash)
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n - 1).chain(['…']).collect()
    }
}

/// One device's session as shown.
struct DeviceView {
    target: Target,
    bar: Option<ProgressBar>,
    total: u64,
    next_json_decile: u64,
    in_fleet: bool,
    image_size: u64,
    compression: Compression,
}

pub(super) struct Display {
    format: MessageFormat,
    quiet: bool,
    verbose: bool,
    colour: bool,
    bars: bool,
    multi: MultiProgress,
    devices: HashMap<usize, DeviceView>,
}

impl Display {
    pub(super) fn new(format: MessageFormat, quiet: bool, verbose: bool, colour: bool) -> Self {
        let bars = std::io::stderr().is_terminal() && format == MessageFormat::Human && !quiet;
        let multi = MultiProgress::with_draw_target(if bars {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        });
        Display {
            format,
            quiet,
            verbose,
            colour,
            bars,
            multi,
            devices: HashMap::new(),
        }
    }

    pub(super) fn run(mut self, rx: Receiver<Note>) {
        for note in rx {
            match note {
                Note::Status { verb, text, detail } => {
                    if detail {
                        self.detail(verb, text)
                    } else {
                        self.status(verb, text)
                    }
                }
                Note::Warn(text) => self.warn(&text),
                Note::Raw(text) => self.eprint(text),
                Note::Error { message, hint } => self.error(&message, hint.as_deref()),
                Note::Table { header, rows } => self.table(&header, &rows),
                Note::Message(m) => self.message(m),
                Note::Device(id, note) => self.device(id, note),
                Note::Flush(done) => {
                    let _ = std::io::stdout().flush();
                    let _ = done.send(());
                }
            }
        }
    }

    fn is_json(&self) -> bool {
        self.format == MessageFormat::Json
    }

    fn human(&self) -> bool {
        !self.quiet && !self.is_json()
    }

    fn eprint(&self, line: String) {
        self.multi.suspend(|| {
            let _ = writeln!(std::io::stderr().lock(), "{line}");
        });
    }

    fn paint(&self, text: &str, style: &str) -> String {
        if self.colour {
            format!("\x1b[{style}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    fn status(&self, verb: &str, text: impl std::fmt::Display) {
        if self.human() {
            self.eprint(format!(
                "{} {text}",
                self.paint(&format!("{verb:>12}"), "1;32")
            ));
        }
    }

    fn detail(&self, verb: &str, text: impl std::fmt::Display) {
        if self.verbose {
            self.status(verb, text);
        }
    }

    fn warn(&self, text: &str) {
        if !self.quiet {
            self.eprint(format!("{}: {text}", self.paint("warning", "1;33")));
        }
    }

    fn error(&self, message: &str, hint: Option<&str>) {
        let mut text = format!("{}: {message}", self.paint("error", "1;31"));
        if let Some(hint) = hint {
            text.push_str(&format!("\n  help: {hint}"));
        }
        self.eprint(text);
    }

    fn json(&self, message: &Message) {
        if self.is_json() {
            message.write_line();
        }
    }

    /// A line of the contract: JSON, and its human form where it has one.
    fn message(&mut self, m: Message) {
        self.json(&m);
        match &m {
            Message::BuildFinished { elf, .. } => self.detail("Built", elf.display()),
            Message::ImageReady {
                chip,
                size,
                md5,
                app,
                partition,
                partition_size,
                signed,
                key_digest,
                ..
            } => {
                let app = app
                    .as_ref()
                    .map(|a| format!(" `{}` {} (built {} {})", a.name, a.version, a.date, a.time))
                    .unwrap_or_default();
                let slot = match (partition, partition_size) {
                    (Some(p), Some(s)) => format!(
                        "; fits OTA slot `{p}` ({}, {:.0}% used)",
                        HumanBytes(u64::from(*s)),
                        *size as f64 * 100.0 / f64::from((*s).max(1))
                    ),
                    _ => "; size not checked (no partition table: set `partition-table`)"
                        .to_string(),
                };
                self.status(
                    "Image",
                    format!(
                        "{chip} app{app}: {}{}, md5 {md5}{slot}",
                        HumanBytes(*size),
                        match (signed, key_digest) {
                            (true, Some(_)) => " signed",
                            // The size and MD5 are the unsigned image's.
                            (true, None) => " (signed per device)",
                            _ => "",
                        }
                    ),
                );
            }
            Message::Summary {
                total,
                succeeded,
                secs,
                devices,
                ..
            } if *total > 1 && self.human() => {
                self.status(
                    "Summary",
                    format!("{succeeded} of {total} devices updated in {secs:.1} s"),
                );
                let rows: Vec<Vec<String>> = devices
                    .iter()
                    .map(|r| {
                        vec![
                            r.device.clone(),
                            r.host.clone(),
                            if r.ok {
                                "ok".to_string()
                            } else {
                                format!("{} ({})", r.error.as_deref().unwrap_or("failed"), r.code)
                            },
                            r.bytes.map_or("-".into(), |b| match r.compression {
                                Compression::None => HumanBytes(b).to_string(),
                                c => format!(
                                    "{} of {} ({}, {:.0}%)",
                                    HumanBytes(b),
                                    HumanBytes(r.image_size),
                                    c.name(),
                                    100.0 * b as f64 / r.image_size.max(1) as f64
                                ),
                            }),
                            format!("{:.2} s", r.secs),
                            r.rate
                                .map_or("-".into(), |b| format!("{}/s", HumanBytes(b as u64))),
                            r.message.clone(),
                        ]
                    })
                    .collect();
                let header = [
                    "device", "host", "result", "bytes", "time", "rate", "message",
                ]
                .map(String::from);
                self.table(&header, &rows);
            }
            Message::DeviceVerdict { identical, .. } => self.status(
                "Device",
                format!(
                    "verified the MD5 and the app image (chip, segments, checksum, SHA-256), wrote it to its OTA slot{} and rebooted",
                    if *identical { " byte for byte" } else { "" }
                ),
            ),
            _ => {}
        }
    }

    fn table(&self, header: &[String], rows: &[Vec<String>]) {
        if !self.human() {
            return;
        }
        let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
        for row in rows {
            for (w, c) in widths.iter_mut().zip(row.iter()) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |cols: &[String]| {
            let mut out = String::from("  ");
            for (i, c) in cols.iter().enumerate() {
                if i + 1 == cols.len() {
                    out.push_str(c);
                } else {
                    out.push_str(&format!("{c:<w$}  ", w = widths[i]));
                }
            }
            out.trim_end().to_string()
        };
        let mut text = vec![line(header)];
        text.extend(rows.iter().map(|r| line(r)));
        self.eprint(text.join("\n"));
    }

    fn device(&mut self, id: usize, note: DeviceNote) {
        match note {
            DeviceNote::Started {
                target,
                what,
                size,
                md5,
                kind,
                in_fleet,
                image_size,
                compression,
                key_digest,
            } => {
                self.json(&Message::UploadStarted {
                    device: target.name.clone(),
                    host: target.host.clone(),
                    port: target.port,
                    kind,
                    size,
                    md5: md5.clone(),
                    image_size,
                    compression,
                    signed: key_digest.is_some(),
                    key_digest: key_digest.clone(),
                });
                let signed = if key_digest.is_some() { "signed, " } else { "" };
                let what_is_sent = match compression {
                    Compression::None => format!("{}, md5 {md5}", HumanBytes(size)),
                    c => format!(
                        "{} {} of {}, {:.0}%, md5 {md5}",
                        HumanBytes(size),
                        c.name(),
                        HumanBytes(image_size),
                        100.0 * size as f64 / image_size.max(1) as f64
                    ),
                };
                self.status(
                    "Uploading",
                    format!(
                        "{what} ({signed}{what_is_sent}) to {}",
                        describe_target(&target)
                    ),
                );
                // Until the device connects back there is nothing to measure: a
                // spinner with the handshake step; the bar comes with the connection.
                let bar = self.bars.then(|| {
                    let bar = self.multi.add(ProgressBar::new_spinner());
                    bar.set_style(style(SPINNER));
                    bar.set_prefix(truncate(&target.name, 12));
                    bar.set_message("inviting");
                    bar.enable_steady_tick(Duration::from_millis(120));
                    bar
                });
                self.devices.insert(
                    id,
                    DeviceView {
                        target,
                        bar,
                        total: size,
                        next_json_decile: 1,
                        in_fleet,
                        image_size,
                        compression,
                    },
                );
            }
            DeviceNote::Event(event) => self.event(id, &event),
            DeviceNote::Verifying => {
                if let Some(v) = self.devices.get(&id) {
                    self.status(
                        "Verifying",
                        format!(
                            "{}: waiting for it to reboot and answer on its OTA port",
                            v.target.name
                        ),
                    );
                }
            }
            DeviceNote::Running { sha256, expected } => {
                let Some(v) = self.devices.get(&id) else {
                    return;
                };
                let matches = sha256 == expected;
                self.json(&Message::RunningImage {
                    device: v.target.name.clone(),
                    host: v.target.host.clone(),
                    sha256: sha256.clone(),
                    expected: expected.clone(),
                    matches,
                });
                if matches {
                    self.detail(
                        "Verified",
                        format!(
                            "{} runs the new image (validation hash {})",
                            v.target.name,
                            short(&sha256)
                        ),
                    );
                } else {
                    self.warn(&format!(
                        "{} came back running another image (validation hash {}, not the {} it was sent): it may have rolled back to its previous firmware; check its serial log",
                        v.target.name,
                        short(&sha256),
                        short(&expected)
                    ));
                }
            }
            DeviceNote::Finished {
                outcome,
                back_online,
            } => {
                let Some(v) = self.devices.remove(&id) else {
                    return;
                };
                if let Some(bar) = &v.bar {
                    bar.finish_and_clear();
                }
                let secs = outcome.elapsed.as_secs_f64();
                self.json(&Message::UploadFinished {
                    device: v.target.name.clone(),
                    host: v.target.host.clone(),
                    address: outcome.device.to_string(),
                    bytes: outcome.bytes,
                    bytes_sent: outcome.bytes,
                    image_size: v.image_size,
                    compression: v.compression,
                    secs: round3(secs),
                    rate: (outcome.bytes as f64 / outcome.transfer.as_secs_f64().max(1e-6)).round(),
                    back_online: back_online.map(|b| b.is_some()),
                    back_online_secs: back_online.map(|b| b.map(|d| round3(d.as_secs_f64()))),
                });
                let verified = match back_online {
                    Some(Some(d)) => format!("; back online after {:.1} s", d.as_secs_f64()),
                    _ => String::new(),
                };
                let sent = match v.compression {
                    Compression::None => HumanBytes(outcome.bytes).to_string(),
                    c => format!(
                        "{} sent for a {} image ({}, {:.0}%)",
                        HumanBytes(outcome.bytes),
                        HumanBytes(v.image_size),
                        c.name(),
                        100.0 * outcome.bytes as f64 / v.image_size.max(1) as f64
                    ),
                };
                self.status(
                    "Finished",
                    format!(
                        "{}: {sent} in {:.2} s ({}); the device verified the image and answered OK{verified}",
                        v.target.name,
                        secs,
                        rate(outcome.bytes, outcome.transfer)
                    ),
                );
                if back_online == Some(None) {
                    self.warn(&format!(
                        "{} took the update but did not answer on its OTA port afterwards: the new firmware may lack an OTA responder, and the next update may need a serial cable",
                        v.target.name
                    ));
                }
            }
            DeviceNote::Interrupted => {
                if let Some(bar) = self.devices.remove(&id).and_then(|v| v.bar) {
                    bar.finish_and_clear();
                }
            }
            DeviceNote::Failed {
                kind,
                code,
                message,
                hint,
                elapsed,
            } => {
                let Some(v) = self.devices.remove(&id) else {
                    return;
                };
                if let Some(bar) = &v.bar {
                    bar.set_style(style(FAILED));
                    bar.abandon_with_message(truncate(
                        &format!("failed: {kind} (exit {code})"),
                        LINE_WIDTH - 13,
                    ));
                }
                if v.in_fleet && self.human() {
                    // The others go on: say it now, in one line (the whole error
                    // and its hint come with the summary).
                    let text = truncate(
                        &format!("{}: {message} (exit {code})", v.target.name),
                        LINE_WIDTH - 13,
                    );
                    self.eprint(format!(
                        "{} {text}",
                        self.paint(&format!("{:>12}", "Failed"), "1;31")
                    ));
                }
                self.json(&Message::UploadFailed {
                    device: v.target.name.clone(),
                    host: v.target.host.clone(),
                    code,
                    error: kind.to_string(),
                    message,
                    hint,
                    secs: round3(elapsed.as_secs_f64()),
                });
            }
        }
    }

    fn event(&mut self, id: usize, event: &Event) {
        let Some(v) = self.devices.get_mut(&id) else {
            return;
        };
        if let Some(bar) = &v.bar {
            match event {
                Event::Inviting { attempt, attempts } => {
                    bar.set_message(format!("invitation {attempt} of {attempts}"))
                }
                Event::Authenticating { .. } => bar.set_message("answering the challenge"),
                Event::Accepted => bar.set_message("waiting for the device to connect back"),
                Event::Connected { .. } => {
                    bar.set_length(v.total);
                    bar.set_position(0);
                    bar.reset_eta();
                    bar.set_style(style(BAR));
                }
                Event::Progress { sent, .. } => bar.set_position(*sent),
                Event::Verifying => {
                    bar.set_style(style(SPINNER));
                    bar.set_message("the device has every byte; waiting for its verdict");
                }
                _ => {}
            }
        }
        let mut progress = None;
        if let Event::Progress { sent, total } = event {
            let total = (*total).max(1);
            if v.next_json_decile <= 10 && sent * 10 >= v.next_json_decile * total {
                v.next_json_decile = sent * 10 / total + 1;
                progress = Some(Message::UploadProgress {
                    device: v.target.name.clone(),
                    host: v.target.host.clone(),
                    sent: *sent,
                    total,
                });
            }
        }
        let target = v.target.clone();
        if let Some(m) = progress {
            self.json(&m);
        }
        let name = &target.name;
        match event {
            Event::Listening { local, device } => self.detail(
                "Listening",
                format!("on {local} for the connection from {device}"),
            ),
            Event::Inviting { attempt, attempts } if *attempt > 1 => self.status(
                "Retrying",
                format!("{name}: invitation {attempt} of {attempts} (no answer yet)"),
            ),
            Event::Inviting { .. } => self.detail("Inviting", describe_target(&target)),
            Event::Authenticating { scheme } => {
                self.status("Answering", format!("{name}: the challenge with {scheme}"))
            }
            Event::AuthFallback { scheme } => self.status(
                "Retrying",
                format!("{name}: authentication with {scheme} (new invitation)"),
            ),
            Event::Accepted => self.detail("Accepted", "the device takes the update"),
            Event::RejectedPeer { peer } => self.warn(&format!(
                "closed a connection from {peer}: only the device may connect"
            )),
            Event::StaleConnection => {
                self.detail("Discarded", "a connection the device had already closed")
            }
            Event::Connected { peer } => self.detail("Connected", format!("from {peer}")),
            Event::Progress { .. } => {}
            Event::Verifying => self.detail("Verifying", "waiting for the device's verdict"),
        }
    }
}
