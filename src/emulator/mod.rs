//! An emulated ESP device: the device crate's responder and std driver
//! (`arduino_ota::net`) on real sockets, plus what is not a device's job: each
//! core's profile (flavors), a link model, fault injection, and a file sink.

pub mod faults;
pub mod link;

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use arduino_ota::net::{Device, FileSink, Network, SessionEnd, UdpNetwork};
use arduino_ota::{
    Command, DeviceAuth, ErrorStyle, Profile, ResponderConfig, UpdateError, UpdateSink,
};
use serde::Serialize;

pub use faults::{FAULT_SPELLINGS, FaultSpec, Faults};
use link::EmulatedNetwork;
pub use link::LinkModel;

/// Which core's ArduinoOTA the emulator behaves like.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum Flavor {
    /// arduino-esp32 >= 3.3.1: PBKDF2-HMAC-SHA256 auth.
    Esp32,
    /// arduino-esp32 <= 3.3.0: MD5 digest auth.
    Esp32Md5,
    /// esp8266/Arduino: MD5 digest, late "OK"/"ERR:", replies to the inviter.
    Esp8266,
    /// This project's `arduino-ota` responder as esp-rs firmware runs it: the
    /// esp32 flavor, but an updater that cannot start says why (`ERR: Bad Size
    /// Given`) instead of "OK" and silence.
    ArduinoOta,
}

impl Flavor {
    /// An ESP32 core (either auth scheme), not the ESP8266.
    pub fn is_esp32(self) -> bool {
        !matches!(self, Flavor::Esp8266)
    }

    /// The device crate's profile of this core.
    pub fn profile(self) -> Profile {
        match self {
            Flavor::Esp32 | Flavor::ArduinoOta => Profile::ESP32,
            Flavor::Esp32Md5 => Profile::ESP32_MD5,
            Flavor::Esp8266 => Profile::ESP8266,
        }
    }

    /// The challenge this core sends.
    pub fn auth(self) -> DeviceAuth {
        self.profile().auth
    }

    /// How this core prints an updater error.
    pub fn style(self) -> ErrorStyle {
        self.profile().style
    }

    /// The device's default OTA port.
    pub fn default_port(self) -> u16 {
        self.profile().default_port()
    }

    /// The `--flavor` spelling.
    pub fn name(self) -> &'static str {
        match self {
            Flavor::Esp32 => "esp32",
            Flavor::Esp32Md5 => "esp32-md5",
            Flavor::Esp8266 => "esp8266",
            Flavor::ArduinoOta => "arduino-ota",
        }
    }
}

/// Everything `cargo ota emulate` can set.
#[derive(Clone, Debug)]
pub struct EmulatorConfig {
    /// Which core to behave like.
    pub flavor: Flavor,
    /// The address to listen on.
    pub bind: IpAddr,
    /// 0 = any free port.
    pub port: u16,
    /// The OTA password, if any.
    pub password: Option<String>,
    /// On the SHA core, store the MD5 hex of the password, as a sketch that calls
    /// `setPasswordHash` with an MD5 hash does.
    pub md5_password_hash: bool,
    /// Where accepted images are written (`--out`).
    pub out_dir: Option<PathBuf>,
    /// Stop after the first successful update (the device reboots).
    pub once: bool,
    /// The OTA slot's size: a larger image is refused as a device does.
    pub partition_size: Option<u32>,
    /// The chip id images must carry; `None`: any ESP32-family chip.
    pub chip: Option<u16>,
    /// Accept only images signed by these keys (their digests), as the
    /// arduino-ota responder with trusted keys does; `None`: not checked.
    pub trusted_keys: Option<Vec<[u8; 32]>>,
    /// The app image the device runs at the start (the arduino-ota flavor: the
    /// base of a delta patch; each app image it takes replaces it).
    pub running: Option<Vec<u8>>,
    /// ESP32's receive timeout (`ArduinoOTA.setTimeout`), default 1 s.
    pub rx_timeout: Duration,
    /// Round-trip time, receive window and flash rate.
    pub link: LinkModel,
    /// The faults to inject.
    pub faults: Faults,
    /// After a successful update the device reboots: silent this long.
    pub reboot: Duration,
    /// ESP8266's pause before its final "OK" and before it closes.
    pub ok_spacing: Duration,
    /// Seed of the datagram-loss fault's random choices.
    pub seed: u64,
}

impl EmulatorConfig {
    /// A device of this core on 127.0.0.1 (any free port), no password, an ideal link.
    pub fn new(flavor: Flavor) -> Self {
        EmulatorConfig {
            flavor,
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            password: None,
            md5_password_hash: false,
            out_dir: None,
            once: false,
            partition_size: None,
            chip: None,
            trusted_keys: None,
            running: None,
            rx_timeout: Duration::from_secs(1),
            link: LinkModel::default(),
            faults: Faults::default(),
            reboot: Duration::ZERO,
            ok_spacing: Flavor::Esp8266.profile().ok_spacing,
            seed: 1,
        }
    }

    /// The device crate's settings for this emulator.
    fn responder(&self) -> ResponderConfig {
        let mut profile = self.flavor.profile();
        if profile.rx_timeout.is_some() {
            profile.rx_timeout = Some(self.rx_timeout);
        }
        if !profile.ok_spacing.is_zero() {
            profile.ok_spacing = self.ok_spacing;
        }
        if self.faults.glue_ok {
            profile.ok_spacing = Duration::ZERO;
        }
        if self.faults.no_gzip {
            profile.accepts_gzip = false;
        }
        let mut config = ResponderConfig::new(profile);
        if matches!(self.flavor, Flavor::Esp32 | Flavor::Esp32Md5) {
            config = config.with_silent_begin_failure();
        }
        match &self.password {
            Some(pw) if self.md5_password_hash => {
                config.with_password_hash(&arduino_ota::md5_hex(pw.as_bytes()))
            }
            Some(pw) => config.with_password(pw),
            None => config,
        }
    }
}

/// One line of the emulator's JSON output: how a session ended (the device
/// crate's [`SessionEnd`], which gives `event`, `kind`, `size`, `md5`, `peer`,
/// `secs` or `received` and `reason`), or a reboot.
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum EmulatorEvent {
    /// One session ended (one JSON line).
    Session {
        /// The core emulated.
        flavor: Flavor,
        /// How it ended (flattened: `event` and its fields).
        #[serde(flatten)]
        end: SessionEnd,
        /// Where an accepted image was written (`--out`).
        #[serde(skip_serializing_if = "Option::is_none")]
        path: Option<PathBuf>,
        /// After an accepted app image (the arduino-ota flavor): the
        /// validation hash of the image it runs now, as its `ota_sha256` TXT
        /// record says.
        #[serde(skip_serializing_if = "Option::is_none")]
        running_sha256: Option<String>,
    },
    /// Back up after the reboot that follows a successful update.
    Rebooted(Rebooted),
}

/// `{"event":"rebooted","flavor":..,"secs":..}`
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "event", rename = "rebooted")]
pub struct Rebooted {
    /// The core emulated.
    pub flavor: Flavor,
    /// How long the reboot took.
    pub secs: f64,
}

impl EmulatorEvent {
    /// A session that ended with the image accepted.
    pub fn is_ok(&self) -> bool {
        matches!(self, EmulatorEvent::Session { end, .. } if end.is_updated())
    }

    /// The session's end, unless this is a reboot.
    pub fn end(&self) -> Option<&SessionEnd> {
        match self {
            EmulatorEvent::Session { end, .. } => Some(end),
            EmulatorEvent::Rebooted(_) => None,
        }
    }
}

/// The emulator's sink: the crate's file sink, plus the `error-at-end` fault,
/// and (the arduino-ota flavor) the image the device runs: the base a delta
/// patch applies to, replaced by each app image it takes.
struct EmulatorSink {
    file: FileSink,
    error_at_end: Option<String>,
    /// What is being updated (an app image becomes the running one).
    kind: Option<Command>,
    /// It applies delta patches (the arduino-ota flavor): keep what runs.
    keeps_running: bool,
    /// The `rollback` fault: it keeps running the previous image.
    rollback: bool,
}

impl UpdateSink for EmulatorSink {
    fn begin(&mut self, kind: Command, size: u32, md5: &str) -> Result<(), UpdateError> {
        self.kind = Some(kind);
        self.file.begin(kind, size, md5)
    }

    fn write(&mut self, data: &[u8]) -> Result<(), UpdateError> {
        self.file.write(data)
    }

    fn finish(&mut self) -> Result<(), UpdateError> {
        if let Some(text) = &self.error_at_end {
            return Err(UpdateError::Other(text.clone()));
        }
        self.file.finish()?;
        // The device boots the new app: it is the base of the next patch.
        if self.keeps_running && self.kind == Some(Command::Flash) && !self.rollback {
            self.file.base = self.file.last.clone();
        }
        Ok(())
    }

    fn abort(&mut self) {
        self.file.abort()
    }

    fn takes_compressed(&self) -> bool {
        self.file.takes_compressed()
    }

    fn takes_delta(&self) -> bool {
        self.file.takes_delta()
    }
}

/// The emulated device.
pub struct Emulator {
    config: EmulatorConfig,
    addr: SocketAddr,
    device: Device<EmulatedNetwork>,
    sink: EmulatorSink,
}

impl Emulator {
    /// Bind the UDP port; nothing is answered until [`Emulator::run`].
    pub fn bind(config: EmulatorConfig) -> io::Result<Emulator> {
        let inner = UdpNetwork::bind((config.bind, config.port))?;
        let addr = inner.local_addr()?;
        let net = EmulatedNetwork::new(
            inner,
            config.faults.clone(),
            config.link,
            !config.flavor.is_esp32(),
            config.seed,
        );
        let device = Device::new(net, config.responder(), |buf: &mut [u8]| {
            let _ = getrandom::fill(buf);
        });
        let esp32 = config.flavor.is_esp32();
        let mut file = FileSink::new(config.out_dir.clone());
        file.partition_size = config.partition_size;
        // ESP32's Update.begin says "Bad Size Given"; ESP8266 "Not Enough Space".
        file.too_big = Some(if esp32 {
            UpdateError::BadSize
        } else {
            UpdateError::NotEnoughSpace
        });
        file.verify_app = esp32;
        // This crate's responder inflates a zlib stream; the cores do not.
        file.inflate = config.flavor == Flavor::ArduinoOta;
        file.chip = config.chip;
        file.trusted_keys = config.trusted_keys.clone();
        // This crate's responder applies delta patches against what it runs.
        let keeps_running = config.flavor == Flavor::ArduinoOta;
        if keeps_running {
            // Always a base (empty without `--running`: no image to patch, so
            // a patch is "Delta Base Mismatch", as on a device).
            file.base = Some(config.running.clone().unwrap_or_default());
        }
        let sink = EmulatorSink {
            file,
            error_at_end: config.faults.error_at_end.clone(),
            kind: None,
            keeps_running,
            rollback: config.faults.rollback,
        };
        Ok(Emulator {
            config,
            addr,
            device,
            sink,
        })
    }

    /// The bound UDP address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.addr)
    }

    /// The validation hash (hex) of the app image the device runs (the
    /// arduino-ota flavor; `None` without one, or one without the hash).
    pub fn running_sha256(&self) -> Option<String> {
        let base = self.sink.file.base.as_deref()?;
        crate::delta::validation_hash(base).ok().map(hex::encode)
    }

    /// Run in a thread; events arrive on the returned channel.
    pub fn spawn(self) -> io::Result<(SocketAddr, mpsc::Receiver<EmulatorEvent>)> {
        let addr = self.addr;
        let (tx, rx) = mpsc::channel();
        thread::Builder::new()
            .name(format!("emulator-{addr}"))
            .spawn(move || {
                let _ = self.run(|e| {
                    let _ = tx.send(e);
                });
            })?;
        Ok((addr, rx))
    }

    /// Serve invitations until `--once` is satisfied (or forever).
    pub fn run(mut self, mut on_event: impl FnMut(EmulatorEvent)) -> io::Result<()> {
        let flavor = self.config.flavor;
        loop {
            let end = self.device.serve(&mut self.sink)?;
            let ok = end.is_updated();
            let path = if ok {
                self.sink.file.written.take()
            } else {
                None
            };
            let running_sha256 = if ok && self.sink.keeps_running {
                self.running_sha256()
            } else {
                None
            };
            on_event(EmulatorEvent::Session {
                flavor,
                end,
                path,
                running_sha256,
            });
            if ok && self.config.once {
                return Ok(());
            }
            if ok {
                self.reboot(&mut on_event);
            }
        }
    }

    /// After a successful update the device restarts: datagrams sent meanwhile are
    /// lost, and the new firmware starts idle. With `never-back` it never answers
    /// again (firmware without an OTA responder).
    fn reboot(&mut self, on_event: &mut impl FnMut(EmulatorEvent)) {
        let started = Instant::now();
        self.device.reset();
        if self.config.faults.never_back {
            self.device.network().silence();
            return;
        }
        if !self.config.reboot.is_zero() {
            thread::sleep(self.config.reboot);
            self.device.network().discard_pending();
            on_event(EmulatorEvent::Rebooted(Rebooted {
                flavor: self.config.flavor,
                secs: started.elapsed().as_secs_f64(),
            }));
        }
    }
}
