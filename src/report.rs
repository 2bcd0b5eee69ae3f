//! The only place that prints: cargo-style status lines and progress bars on
//! stderr, or JSON lines on stdout (`--message-format json`).

use std::fmt::Display;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use indicatif::{HumanBytes, MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Value, json};

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

pub struct Reporter {
    format: MessageFormat,
    quiet: bool,
    verbose: bool,
    color: bool,
    bars: bool,
    multi: MultiProgress,
}

impl Reporter {
    /// `colour`: style the status, warning and error labels (see
    /// [`crate::settings::Environment::colour`]).
    pub fn new(format: MessageFormat, quiet: bool, verbose: bool, colour: bool) -> Self {
        let term = std::io::stderr().is_terminal();
        let bars = term && format == MessageFormat::Human && !quiet;
        let multi = MultiProgress::with_draw_target(if bars {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        });
        Reporter {
            format,
            quiet,
            verbose,
            color: colour,
            bars,
            multi,
        }
    }

    pub fn is_json(&self) -> bool {
        self.format == MessageFormat::Json
    }

    fn eprint(&self, line: String) {
        self.multi.suspend(|| {
            let _ = writeln!(std::io::stderr().lock(), "{line}");
        });
    }

    fn verb(&self, verb: &str, style: &str) -> String {
        if self.color {
            format!("\x1b[{style}m{verb:>12}\x1b[0m")
        } else {
            format!("{verb:>12}")
        }
    }

    /// A cargo-style status line: `   Uploading foo.bin to ...`.
    pub fn status(&self, verb: &str, message: impl Display) {
        if !self.quiet && !self.is_json() {
            self.eprint(format!("{} {message}", self.verb(verb, "1;32")));
        }
    }

    /// A status line shown only with `-v`.
    pub fn detail(&self, verb: &str, message: impl Display) {
        if self.verbose {
            self.status(verb, message);
        }
    }

    /// Warnings go to stderr in every format, unless `-q`.
    pub fn warn(&self, message: impl Display) {
        if !self.quiet {
            let label = if self.color {
                "\x1b[1;33mwarning\x1b[0m"
            } else {
                "warning"
            };
            self.eprint(format!("{label}: {message}"));
        }
    }

    /// The final error, always shown (stderr), with its hint.
    pub fn error(&self, err: &Error) {
        self.print_error(&err.to_string(), err.hint());
    }

    /// One device's failure in a run over several devices.
    pub fn device_error(&self, device: &str, err: &UploadError) {
        self.print_error(&format!("{device}: {err}"), err.hint());
    }

    fn print_error(&self, message: &str, hint: Option<String>) {
        let label = if self.color {
            "\x1b[1;31merror\x1b[0m"
        } else {
            "error"
        };
        let mut text = format!("{label}: {message}");
        if let Some(hint) = hint {
            text.push_str(&format!("\n  help: {hint}"));
        }
        self.eprint(text);
    }

    /// One JSON line on stdout (JSON mode only).
    pub fn json(&self, value: Value) {
        if self.is_json() {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{value}");
            let _ = out.flush();
        }
    }

    /// Start reporting one device's upload.
    pub fn session<'a>(
        &'a self,
        target: &Target,
        what: &str,
        image: &[u8],
        kind: Command,
    ) -> Session<'a> {
        let md5 = arduino_ota::md5_hex(image);
        let size = image.len() as u64;
        self.json(json!({
            "reason": "upload-started",
            "device": target.name,
            "host": target.host,
            "port": target.port,
            "kind": kind,
            "size": size,
            "md5": md5,
        }));
        self.status(
            "Uploading",
            format!(
                "{what} ({}, md5 {md5}) to {}",
                HumanBytes(size),
                describe_target(target)
            ),
        );
        // Until the device connects back there is nothing to measure: a spinner
        // with the handshake step; the bar comes with the connection.
        let bar = if self.bars {
            let bar = self.multi.add(ProgressBar::new_spinner());
            bar.set_style(style(SPINNER));
            bar.set_prefix(truncate(&target.name, 12));
            bar.set_message("inviting");
            bar.enable_steady_tick(Duration::from_millis(120));
            Some(bar)
        } else {
            None
        };
        Session {
            reporter: self,
            target: target.clone(),
            bar,
            total: size,
            next_json_decile: 1,
            started: Instant::now(),
            in_fleet: false,
        }
    }
}

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

/// The widest a live status line may be.
pub const LINE_WIDTH: usize = 80;

fn describe_target(t: &Target) -> String {
    if t.name == t.host {
        format!("{}:{}", t.host, t.port)
    } else {
        format!("{} ({}:{})", t.name, t.host, t.port)
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n - 1).chain(['…']).collect()
    }
}

/// Bytes per second, for humans.
pub fn rate(bytes: u64, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64().max(1e-6);
    format!("{}/s", HumanBytes((bytes as f64 / secs) as u64))
}

/// Reporting for one device's session.
pub struct Session<'a> {
    reporter: &'a Reporter,
    target: Target,
    bar: Option<ProgressBar>,
    total: u64,
    next_json_decile: u64,
    started: Instant,
    /// One of several devices: its failure is shown at once, on its own line.
    in_fleet: bool,
}

impl Session<'_> {
    /// This session is one of a fleet's.
    pub fn in_fleet(mut self) -> Self {
        self.in_fleet = true;
        self
    }

    /// The spinner's text (handshake steps, the verdict wait).
    fn step(&self, text: impl Into<std::borrow::Cow<'static, str>>) {
        if let Some(bar) = &self.bar {
            bar.set_message(text);
        }
    }

    pub fn event(&mut self, event: &Event) {
        let r = self.reporter;
        match event {
            Event::Inviting { attempt, attempts } => {
                self.step(format!("invitation {attempt} of {attempts}"))
            }
            Event::Authenticating { .. } => self.step("answering the challenge"),
            Event::Accepted => self.step("waiting for the device to connect back"),
            Event::Connected { .. } => {
                if let Some(bar) = &self.bar {
                    bar.set_length(self.total);
                    bar.set_position(0);
                    bar.reset_eta();
                    bar.set_style(style(BAR));
                }
            }
            Event::Verifying => {
                if let Some(bar) = &self.bar {
                    bar.set_style(style(SPINNER));
                    bar.set_message("the device has every byte; waiting for its verdict");
                }
            }
            _ => {}
        }
        match event {
            Event::Listening { local, device } => r.detail(
                "Listening",
                format!("on {local} for the connection from {device}"),
            ),
            Event::Inviting { attempt, attempts } if *attempt > 1 => r.status(
                "Retrying",
                format!(
                    "{}: invitation {attempt} of {attempts} (no answer yet)",
                    self.target.name
                ),
            ),
            Event::Inviting { .. } => r.detail("Inviting", describe_target(&self.target)),
            Event::Authenticating { scheme } => r.status(
                "Answering",
                format!("{}: the challenge with {scheme}", self.target.name),
            ),
            Event::AuthFallback { scheme } => r.status(
                "Retrying",
                format!(
                    "{}: authentication with {scheme} (new invitation)",
                    self.target.name
                ),
            ),
            Event::Accepted => r.detail("Accepted", "the device takes the update"),
            Event::RejectedPeer { peer } => r.warn(format!(
                "closed a connection from {peer}: only the device may connect"
            )),
            Event::StaleConnection => {
                r.detail("Discarded", "a connection the device had already closed")
            }
            Event::Connected { peer } => r.detail("Connected", format!("from {peer}")),
            Event::Progress { sent, total } => {
                if let Some(bar) = &self.bar {
                    bar.set_position(*sent);
                }
                let total = (*total).max(1);
                if self.next_json_decile <= 10 && sent * 10 >= self.next_json_decile * total {
                    self.next_json_decile = sent * 10 / total + 1;
                    r.json(json!({
                        "reason": "upload-progress",
                        "device": self.target.name,
                        "host": self.target.host,
                        "sent": sent,
                        "total": total,
                    }));
                }
            }
            Event::Verifying => r.detail("Verifying", "waiting for the device's verdict"),
        }
    }

    /// `--verify`: the update succeeded; now waiting for the reboot.
    pub fn verifying(&self) {
        self.reporter.status(
            "Verifying",
            format!(
                "{}: waiting for it to reboot and answer on its OTA port",
                self.target.name
            ),
        );
    }

    /// The device answered OK. `back_online` is `Some` with `--verify`.
    pub fn finished(self, outcome: &Outcome, back_online: Option<Option<Duration>>) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        let r = self.reporter;
        let secs = outcome.elapsed.as_secs_f64();
        let rate_bps = outcome.bytes as f64 / outcome.transfer.as_secs_f64().max(1e-6);
        let mut line = json!({
            "reason": "upload-finished",
            "device": self.target.name,
            "host": self.target.host,
            "address": outcome.device.to_string(),
            "bytes": outcome.bytes,
            "secs": round3(secs),
            "rate": rate_bps.round(),
        });
        if let Some(back) = back_online {
            line["back_online"] = json!(back.is_some());
            line["back_online_secs"] = json!(back.map(|d| round3(d.as_secs_f64())));
        }
        r.json(line);
        let verified = match back_online {
            Some(Some(d)) => format!("; back online after {:.1} s", d.as_secs_f64()),
            _ => String::new(),
        };
        r.status(
            "Finished",
            format!(
                "{}: {} in {:.2} s ({}); the device verified the image and answered OK{verified}",
                self.target.name,
                HumanBytes(outcome.bytes),
                secs,
                rate(outcome.bytes, outcome.transfer)
            ),
        );
        if back_online == Some(None) {
            r.warn(format!(
                "{} took the update but did not answer on its OTA port afterwards: the new firmware may lack an OTA responder, and the next update may need a serial cable",
                self.target.name
            ));
        }
    }

    pub fn failed(self, err: &UploadError) {
        let r = self.reporter;
        if let Some(bar) = &self.bar {
            bar.set_style(style(FAILED));
            bar.abandon_with_message(truncate(
                &format!("failed: {} (exit {})", err.kind(), err.exit_code()),
                LINE_WIDTH - 13,
            ));
        }
        if self.in_fleet && !r.quiet && !r.is_json() {
            // The others go on: say it now, in one line (the whole error and its
            // hint come with the summary).
            let text = truncate(
                &format!("{}: {err} (exit {})", self.target.name, err.exit_code()),
                LINE_WIDTH - 13,
            );
            r.eprint(format!("{} {text}", r.verb("Failed", "1;31")));
        }
        self.reporter.json(json!({
            "reason": "upload-failed",
            "device": self.target.name,
            "host": self.target.host,
            "code": err.exit_code(),
            "error": err.kind(),
            "message": err.to_string(),
            "hint": err.hint(),
            "secs": round3(self.started.elapsed().as_secs_f64()),
        }));
    }
}

/// One device's line in the summary.
pub struct SummaryRow<'a> {
    pub device: &'a str,
    pub host: &'a str,
    pub ok: bool,
    pub code: i32,
    pub error: Option<&'a str>,
    pub bytes: Option<u64>,
    pub secs: f64,
    pub rate: Option<f64>,
    pub message: String,
    pub back_online: Option<bool>,
}

impl Reporter {
    /// The end of a run over devices: a table (human, several devices) and a
    /// `summary` JSON line.
    pub fn summary(&self, rows: &[SummaryRow], secs: f64) {
        let ok = rows.iter().filter(|r| r.ok).count();
        self.json(json!({
            "reason": "summary",
            "total": rows.len(),
            "succeeded": ok,
            "failed": rows.len() - ok,
            "secs": round3(secs),
            "devices": rows.iter().map(|r| json!({
                "device": r.device,
                "host": r.host,
                "ok": r.ok,
                "code": r.code,
                "error": r.error,
                "bytes": r.bytes,
                "secs": round3(r.secs),
                "rate": r.rate.map(f64::round),
                "back_online": r.back_online,
                "message": r.message,
            })).collect::<Vec<_>>(),
        }));
        if rows.len() < 2 || self.quiet || self.is_json() {
            return;
        }
        self.status(
            "Summary",
            format!("{ok} of {} devices updated in {secs:.1} s", rows.len()),
        );
        let cells: Vec<[String; 7]> = rows
            .iter()
            .map(|r| {
                [
                    r.device.to_string(),
                    r.host.to_string(),
                    if r.ok {
                        "ok".to_string()
                    } else {
                        format!("{} ({})", r.error.unwrap_or("failed"), r.code)
                    },
                    r.bytes.map_or("-".into(), |b| HumanBytes(b).to_string()),
                    format!("{:.2} s", r.secs),
                    r.rate
                        .map_or("-".into(), |b| format!("{}/s", HumanBytes(b as u64))),
                    r.message.clone(),
                ]
            })
            .collect();
        self.table(
            &[
                "device", "host", "result", "bytes", "time", "rate", "message",
            ],
            &cells,
        );
    }

    /// An aligned table on stderr (human output only).
    pub fn table<const N: usize>(&self, header: &[&str; N], rows: &[[String; N]]) {
        if self.quiet || self.is_json() {
            return;
        }
        let mut widths = header.map(str::len);
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
        let mut text = vec![line(&header.map(String::from))];
        text.extend(rows.iter().map(|r| line(r)));
        self.eprint(text.join("\n"));
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
