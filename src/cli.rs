//! The command line (clap derive). Option names follow cargo and cargo-espflash;
//! the README maps espota.py's options onto them.

use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use espflash::flasher::{FlashFrequency, FlashMode, FlashSize};

use crate::emulator::{FaultSpec, Flavor};
use crate::firmware::BuildOptions;
use crate::image;
use crate::report::MessageFormat;
use crate::sign::Scheme;
use arduino_ota::AuthMode;

#[derive(Debug, Parser)]
#[command(
    name = "cargo-ota",
    bin_name = "cargo ota",
    version,
    about = "Update ESP32/ESP8266 devices over Wi-Fi with the ArduinoOTA protocol",
    after_help = "Exit codes: 0 ok, 1 some uploads failed, 2 usage/config, 3 build, 4 image, \
5 no answer, 6 auth, 7 no connect-back, 8 transfer, 9 device error, 10 I/O on this host, \
130 interrupted."
)]
/// The whole command line.
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct Cli {
    /// The subcommand, if any.
    #[command(subcommand)]
    pub command: Option<Commands>,
    /// (No subcommand) build the firmware, convert it and upload it.
    #[command(flatten)]
    pub main: MainArgs,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Commands {
    /// Build and convert only: write the app image, print its size, MD5, chip and
    /// partition check (no network).
    Image(Box<ImageCommandArgs>),
    /// Push a prebuilt image (.bin) to devices, like espota.py.
    Upload(Box<UploadArgs>),
    /// Browse mDNS for ArduinoOTA devices (`_arduino._tcp`).
    Discover(DiscoverArgs),
    /// Run an emulated device on this host (for tests and trying things out).
    Emulate(Box<EmulateArgs>),
    /// The whole job with no hardware: an emulated device, a sample image, the
    /// full handshake and transfer, and the device's verdict.
    Demo(DemoArgs),
    /// Add a commented [package.metadata.ota] section to Cargo.toml.
    Init(InitArgs),
    /// Make a new signing key for signed updates (PKCS#8 PEM, mode 0600) and
    /// print the digest the firmware trusts it by.
    #[command(
        long_about = "Make a new signing key for signed updates and write it to FILE as \
PKCS#8 PEM, readable by this user only (mode 0600). It never overwrites a file. It prints the \
key's digest (as `espsecure digest-sbv2-public-key` computes it) and the Rust line that makes \
the firmware trust it.\n\n\
The default, ecdsa256 (ECDSA P-256), is what the arduino-ota device crate checks on every \
chip, the ESP32-C3 too. rsa3072 (RSA-3072, e = 65537) needs the device crate's \
`signature-rsa` feature, which builds only for chips with atomics, such as the ESP32-C6.\n\n\
Keep the key out of git: whoever has it can sign firmware your devices take."
    )]
    Keygen(KeygenArgs),
}

/// `cargo ota` without a subcommand: build, convert, upload.
#[derive(Debug, Args)]
pub struct MainArgs {
    /// Cargo's options.
    #[command(flatten)]
    pub build: BuildOptions,
    /// How the ELF becomes an app image.
    #[command(flatten)]
    pub image: ImageArgs,
    /// Which devices.
    #[command(flatten)]
    pub devices: DevicesArgs,
    /// The password and scheme.
    #[command(flatten)]
    pub auth: AuthArgs,
    /// Timeouts, retries, parallel sessions, `--verify`.
    #[command(flatten)]
    pub session: SessionArgs,
    /// How to print.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// How the ELF becomes an app image (espflash's spellings).
#[derive(Debug, Args, Default, Clone)]
#[command(next_help_heading = "Image options")]
pub struct ImageArgs {
    /// Chip [default: config `chip`, the ELF's metadata, or the target triple].
    #[arg(long, value_name = "CHIP")]
    pub chip: Option<String>,
    /// Flash size, e.g. 4mb.
    #[arg(short = 's', long, value_name = "SIZE", value_parser = flash_size)]
    pub flash_size: Option<FlashSize>,
    /// Flash mode: qio, qout, dio, dout.
    #[arg(short = 'm', long, value_name = "MODE", value_parser = flash_mode)]
    pub flash_mode: Option<FlashMode>,
    /// Flash frequency, e.g. 80mhz.
    #[arg(short = 'f', long, value_name = "FREQ", value_parser = flash_freq)]
    pub flash_freq: Option<FlashFrequency>,
    /// Partition table (CSV or binary) the device was flashed with.
    #[arg(long, value_name = "FILE")]
    pub partition_table: Option<PathBuf>,
    /// App partition to check the image against [default: the smallest ota_N slot].
    #[arg(long, value_name = "LABEL")]
    pub target_app_partition: Option<String>,
    /// The device's OTA slot size (e.g. 0x180000, 1536k, 1.5m): a larger image is
    /// refused before any traffic [default: the size of that partition].
    #[arg(long, value_parser = parse_size, value_name = "SIZE")]
    pub partition_size: Option<u32>,
    /// Minimum chip revision (major * 100 + minor).
    #[arg(long, value_name = "REV")]
    pub min_chip_rev: Option<u16>,
    /// Do not require an ESP-IDF app descriptor in the ELF.
    #[arg(long)]
    pub ignore_app_descriptor: bool,
    /// Upload even if the image shows no OTA responder (the device could then
    /// only be updated over serial) [config: ota-guard = false].
    #[arg(long)]
    pub allow_no_ota: bool,
    /// Use this ELF instead of building.
    #[arg(long, value_name = "PATH")]
    pub elf: Option<PathBuf>,
    /// Signing the image.
    #[command(flatten)]
    pub sign: SignArgs,
}

/// Signing app images (Secure Boot V2 signature blocks).
#[derive(Debug, Args, Default, Clone)]
#[command(next_help_heading = "Signing")]
pub struct SignArgs {
    /// Sign app images with this key: a PEM file, or env:VAR (the PEM text in
    /// that variable) [default: config `signing-key`].
    // Hyphen values reach the check that refuses a key itself (clap's own
    // error would repeat it).
    #[arg(
        long,
        value_name = "KEY",
        conflicts_with = "no_sign",
        allow_hyphen_values = true
    )]
    pub sign: Option<String>,
    /// Do not sign, even with a configured `signing-key`.
    #[arg(long)]
    pub no_sign: bool,
}

/// `cargo ota image`.
#[derive(Debug, Args)]
pub struct ImageCommandArgs {
    /// Where to write the app image [default: the ELF's path with `.bin` added].
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Cargo's options.
    #[command(flatten)]
    pub build: BuildOptions,
    /// How the ELF becomes an app image.
    #[command(flatten)]
    pub image: ImageArgs,
    /// How to print.
    #[command(flatten)]
    pub out: OutputArgs,
}

/// `cargo ota discover`.
#[derive(Debug, Args)]
pub struct DiscoverArgs {
    /// Seconds to listen for answers.
    #[arg(long, default_value = "3", value_parser = parse_secs, value_name = "SECS")]
    pub timeout: Duration,
    /// How to print.
    #[command(flatten)]
    pub output: ResultArgs,
}

/// `cargo ota init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Also write a CI workflow (.github/workflows/ota.yml) that builds and deploys.
    #[arg(long)]
    pub ci: bool,
    /// Path to Cargo.toml.
    #[arg(long, value_name = "PATH")]
    pub manifest_path: Option<PathBuf>,
    /// Package to configure.
    #[arg(short = 'p', long, value_name = "SPEC")]
    pub package: Option<String>,
    /// How to print.
    #[command(flatten)]
    pub output: ResultArgs,
}

/// `cargo ota keygen`.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Where to write the private key (a new file; never overwritten).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The signature scheme: ecdsa256 is what the device crate checks on every
    /// chip (on the ESP32-C3, the only one); rsa3072 needs its `signature-rsa`
    /// feature, for chips with atomics such as the ESP32-C6.
    #[arg(long, value_enum, default_value_t = Scheme::Ecdsa256, value_name = "SCHEME")]
    pub scheme: Scheme,
    /// How to print.
    #[command(flatten)]
    pub output: ResultArgs,
}

/// How results are printed.
#[derive(Debug, Args, Default, Clone)]
#[command(next_help_heading = "Output")]
pub struct OutputArgs {
    /// How to print results.
    #[arg(long, value_enum, default_value_t = MessageFormat::Human, value_name = "FMT")]
    pub message_format: MessageFormat,
    /// Print only errors.
    #[arg(short, long)]
    pub quiet: bool,
    /// Print every step: the cargo that builds, each step of the handshake.
    #[arg(short, long)]
    pub verbose: bool,
}

/// How results are printed, for commands with no steps to detail (`init`,
/// `discover`, `keygen`): no `-v`.
#[derive(Debug, Args, Default, Clone)]
#[command(next_help_heading = "Output")]
pub struct ResultArgs {
    /// How to print results.
    #[arg(long, value_enum, default_value_t = MessageFormat::Human, value_name = "FMT")]
    pub message_format: MessageFormat,
    /// Print only errors.
    #[arg(short, long)]
    pub quiet: bool,
}

impl From<&ResultArgs> for OutputArgs {
    fn from(r: &ResultArgs) -> Self {
        OutputArgs {
            message_format: r.message_format,
            quiet: r.quiet,
            verbose: false,
        }
    }
}

/// Which devices, and how they reach this host.
#[derive(Debug, Args, Default, Clone)]
#[command(next_help_heading = "Device options")]
pub struct DevicesArgs {
    /// A device by IP address (IPv4, or IPv6: `2001:db8::5`, `[2001:db8::5]`,
    /// `fe80::1%wlan0` with its interface) or host name.
    #[arg(long, value_name = "HOST", env = "CARGO_OTA_HOST")]
    pub host: Option<String>,
    /// The device's OTA UDP port [default: config `port`, else 3232; ESP8266: 8266].
    #[arg(long, value_name = "PORT", env = "CARGO_OTA_PORT", value_parser = clap::value_parser!(u16).range(1..))]
    pub port: Option<u16>,
    /// A configured device or group (repeatable).
    #[arg(short = 'd', long = "device", value_name = "NAME")]
    pub devices: Vec<String>,
    /// Every configured device.
    #[arg(long)]
    pub all: bool,
    /// Local address the device connects back to, IPv4 or IPv6 [default: the
    /// one that routes to the device].
    #[arg(long, value_name = "IP", env = "CARGO_OTA_HOST_IP")]
    pub host_ip: Option<IpAddr>,
    /// Local TCP port the device connects back to [default: any free port]. Pin
    /// it to open a single firewall rule.
    #[arg(long, value_name = "PORT", env = "CARGO_OTA_HOST_PORT")]
    pub host_port: Option<u16>,
}

/// The OTA password and how to answer the challenge.
#[derive(Debug, Args, Default, Clone)]
#[command(next_help_heading = "Authentication")]
pub struct AuthArgs {
    /// Environment variable holding the OTA password [default: config
    /// `password-env`, else CARGO_OTA_PASSWORD].
    #[arg(long, value_name = "VAR")]
    pub password_env: Option<String>,
    /// The OTA password itself. Visible to other local users in the process list:
    /// prefer --password-env.
    #[arg(long, value_name = "PASSWORD", hide_default_value = true)]
    pub password: Option<String>,
    /// Authentication scheme [default: config `auth`, else auto].
    #[arg(long, value_enum)]
    pub auth: Option<AuthMode>,
    /// Answer with the --auth scheme even when the device's challenge asks for
    /// another (for responders with nonstandard nonces).
    #[arg(long, requires = "auth")]
    pub force_auth: bool,
}

/// How each session runs, and how many at once.
#[derive(Debug, Args, Default, Clone)]
#[command(next_help_heading = "Session")]
pub struct SessionArgs {
    /// Sessions at once when updating several devices [default: all, at most 16].
    #[arg(short = 'j', long, value_name = "N", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub jobs: Option<usize>,
    /// After the update, wait for each device to reboot and answer again [config:
    /// verify = true].
    #[arg(long)]
    pub verify: bool,
    /// Seconds to wait for a device to answer after its update [default: 30].
    #[arg(long, value_parser = parse_secs, value_name = "SECS")]
    pub verify_timeout: Option<Duration>,
    /// Longest wait in seconds for any step: a reply, the connect-back, progress
    /// [default: config `timeout`, else 10].
    #[arg(long, value_parser = parse_secs, value_name = "SECS")]
    pub timeout: Option<Duration>,
    /// Invitations re-sent when the device does not answer [default: 4].
    #[arg(long, value_name = "N")]
    pub retries: Option<u32>,
    /// Send app images compressed, and fail if a device refuses them [default:
    /// config `compress`, else auto: compressed, the image itself after a refusal].
    #[arg(long, conflicts_with = "no_compress")]
    pub compress: bool,
    /// Send app images as they are [config: compress = "never"].
    #[arg(long)]
    pub no_compress: bool,
    /// Send the whole image, never a patch against the one the device runs
    /// [config: delta = "never"; default: auto].
    #[arg(long)]
    pub no_delta: bool,
}

/// `cargo ota upload`.
#[derive(Debug, Args)]
#[command(args_override_self = true)]
pub struct UploadArgs {
    /// The image to send (an app .bin, or a filesystem image with --fs).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Send a filesystem image (SPIFFS/LittleFS partition, command 100).
    #[arg(long)]
    pub fs: bool,
    /// Upload an app image even if it shows no OTA responder [config: ota-guard =
    /// false].
    #[arg(long)]
    pub allow_no_ota: bool,
    /// The device's OTA slot size (e.g. 0x180000, 1536k, 1.5m): a larger image is
    /// refused before any traffic [default: the smallest ota_N slot of the config's
    /// `partition-table`, if any].
    #[arg(long, value_parser = parse_size, value_name = "SIZE")]
    pub partition_size: Option<u32>,
    /// Signing the image (a file already signed by the key is sent as it is).
    #[command(flatten)]
    pub sign: SignArgs,
    /// Which devices.
    #[command(flatten)]
    pub devices: DevicesArgs,
    /// The password and scheme.
    #[command(flatten)]
    pub auth: AuthArgs,
    /// Timeouts, retries, parallel sessions, `--verify`.
    #[command(flatten)]
    pub session: SessionArgs,
    /// Path to Cargo.toml (for configured devices).
    #[arg(long, value_name = "PATH")]
    pub manifest_path: Option<PathBuf>,
    /// How to print.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `cargo ota emulate`.
#[derive(Debug, Args)]
pub struct EmulateArgs {
    /// Which core's OTA to behave like.
    #[arg(long, value_enum, default_value_t = Flavor::Esp32)]
    pub flavor: Flavor,
    /// Address to listen on (UDP): IPv4 or IPv6 (`::1`; `::` takes both
    /// families).
    #[arg(long, default_value = "127.0.0.1", value_name = "IP")]
    pub bind: IpAddr,
    /// UDP port; 0 picks a free one [default: 3232, or 8266 for esp8266]. The first
    /// line on stdout says the bound address.
    #[arg(long, value_name = "PORT")]
    pub port: Option<u16>,
    /// OTA password.
    #[arg(long, value_name = "PASSWORD")]
    pub password: Option<String>,
    /// Read the OTA password from this environment variable.
    #[arg(long, value_name = "VAR", conflicts_with = "password")]
    pub password_env: Option<String>,
    /// esp32 flavor: store the MD5 hash of the password, like a sketch calling
    /// setPasswordHash with an MD5 hash.
    #[arg(long)]
    pub md5_password_hash: bool,
    /// Write each accepted image into this directory.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Exit after the first successful update (like a device rebooting).
    #[arg(long)]
    pub once: bool,
    /// Size of the OTA partition (bytes; 0x hex or a K/M suffix allowed).
    #[arg(long, value_parser = parse_size, value_name = "SIZE")]
    pub partition_size: Option<u32>,
    /// The chip images must be built for (e.g. esp32c3) [default: any ESP32-family].
    #[arg(long, value_name = "CHIP")]
    pub chip: Option<String>,
    /// Accept only images signed by this key, as the arduino-ota responder built
    /// with trusted keys does: a key file (public or private PEM) or the key's
    /// digest in hex (as `cargo ota keygen` prints it). Repeat for more keys.
    #[arg(long, value_name = "KEY")]
    pub require_signature: Vec<String>,
    /// The app image the device runs at the start (`--flavor arduino-ota`): the
    /// base a delta patch applies to. Each app image it takes replaces it.
    #[arg(long, value_name = "IMAGE")]
    pub running: Option<PathBuf>,
    /// ESP32 receive timeout in ms (ArduinoOTA.setTimeout).
    #[arg(long, default_value_t = 1000, value_name = "MS")]
    pub rx_timeout_ms: u64,
    /// ESP8266: the pause before its final "OK" and again before it closes, in ms.
    #[arg(long, default_value_t = 1000, value_name = "MS")]
    pub ok_spacing_ms: u64,
    /// Seed of the random datagram loss (`--fault udp-loss=PCT`) [default: random,
    /// printed on stderr]: the same seed loses the same datagrams.
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Link model: round-trip time in ms.
    #[arg(long, default_value_t = 0, value_name = "MS")]
    pub link_rtt_ms: u64,
    /// Link model: the device's TCP receive window in bytes.
    #[arg(long, default_value_t = 5760, value_name = "BYTES")]
    pub link_window: usize,
    /// Link model: flash write rate in bytes per second [default: unlimited].
    #[arg(long, value_name = "BYTES_PER_SEC")]
    pub flash_rate: Option<u64>,
    /// After a successful update, stay silent this long (the reboot).
    #[arg(long, default_value_t = 0, value_name = "MS")]
    pub reboot_ms: u64,
    /// Advertise over mDNS as `_arduino._tcp` with this instance name, as a device does.
    #[arg(long, value_name = "NAME")]
    pub mdns: Option<String>,
    /// The `board` TXT value to advertise with --mdns.
    #[arg(long, default_value = "esp32c3", value_name = "BOARD")]
    pub board: String,
    /// Inject a fault (repeatable): drop-invitations=N, drop-auth-reply, drop-ok,
    /// dup-replies, udp-loss=PCT, no-connect-back, stall-after=BYTES,
    /// close-after=BYTES, reset-after=BYTES, corrupt, error-at-end=TEXT, glue-ok, busy,
    /// never-back, no-gzip, rollback.
    #[arg(long = "fault", value_name = "FAULT")]
    pub faults: Vec<FaultSpec>,
    /// Print only the JSON lines (no log on stderr).
    #[arg(short, long)]
    pub quiet: bool,
}

/// `cargo ota demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Which core the emulated device behaves like.
    #[arg(long, value_enum, default_value_t = Flavor::Esp32)]
    pub flavor: Flavor,
    /// Size of the sample image in KiB (4 to 1400: the demo's OTA slots hold 1.5 MiB).
    #[arg(long, default_value_t = 512, value_name = "KIB", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(4..=1400))]
    pub size_kib: usize,
    /// How to print.
    #[command(flatten)]
    pub output: OutputArgs,
}

fn flash_size(s: &str) -> Result<FlashSize, String> {
    image::parse_flash_size(s).ok_or_else(|| "not a flash size (e.g. 4mb)".to_string())
}

fn flash_mode(s: &str) -> Result<FlashMode, String> {
    image::parse_flash_mode(s).ok_or_else(|| "not a flash mode (qio, qout, dio, dout)".to_string())
}

fn flash_freq(s: &str) -> Result<FlashFrequency, String> {
    image::parse_flash_freq(s).ok_or_else(|| "not a flash frequency (e.g. 80mhz)".to_string())
}

/// Seconds, fractions allowed: `10`, `0.5`.
pub fn parse_secs(s: &str) -> Result<Duration, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a number of seconds"))?;
    if !(v > 0.0 && v <= 86_400.0) {
        return Err(format!(
            "`{s}`: give a number of seconds above 0 (at most 86400)"
        ));
    }
    Ok(Duration::from_secs_f64(v))
}

/// A byte size: `1572864`, `0x180000`, `1536k`, `1.5m` (K and M are binary).
pub fn parse_size(s: &str) -> Result<u32, String> {
    let t = s.trim().to_ascii_lowercase();
    let bad = || format!("`{s}` is not a size (examples: 1572864, 0x180000, 1536k, 1.5m)");
    let value: f64 = if let Some(hex) = t.strip_prefix("0x") {
        u64::from_str_radix(hex, 16).map_err(|_| bad())? as f64
    } else {
        let (num, mult) = match t.trim_end_matches('b').trim_end_matches('i') {
            x if x.ends_with('k') => (&x[..x.len() - 1], 1024.0),
            x if x.ends_with('m') => (&x[..x.len() - 1], 1024.0 * 1024.0),
            x => (x, 1.0),
        };
        num.trim().parse::<f64>().map_err(|_| bad())? * mult
    };
    if !(0.0..=u32::MAX as f64).contains(&value) || value.fract() != 0.0 {
        return Err(bad());
    }
    Ok(value as u32)
}

/// The environment variables behind options.
const ENV_OPTIONS: &[(&str, &str)] = &[
    ("--port", "CARGO_OTA_PORT"),
    ("--host-port", "CARGO_OTA_HOST_PORT"),
    ("--host-ip", "CARGO_OTA_HOST_IP"),
    ("--host", "CARGO_OTA_HOST"),
];

/// Parse the command line. A bad value that came from an environment variable
/// (clap only names the option) is reported with the variable's name.
pub fn parse(args: Vec<std::ffi::OsString>) -> Cli {
    match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => {
            let culprit = env_culprit(&e, &args);
            if e.use_stderr() && wants_json(&args) {
                // CI reading JSON gets its `error` line for a bad command line too.
                let text = culprit.clone().unwrap_or_else(|| e.to_string());
                let first = text.lines().next().unwrap_or_default();
                let err = crate::error::Error::from(crate::error::UsageError::Arguments {
                    detail: first.trim_start_matches("error: ").to_string(),
                });
                crate::report::Message::error(&err).write_line();
            }
            if let Some(text) = culprit {
                let _ = writeln!(std::io::stderr(), "{text}");
                std::process::exit(crate::error::exit::USAGE);
            }
            e.exit()
        }
    }
}

/// `--message-format json` (or `=json`) among the arguments, as given.
fn wants_json(args: &[std::ffi::OsString]) -> bool {
    args.iter().any(|a| a == "--message-format=json")
        || args
            .windows(2)
            .any(|w| w[0] == "--message-format" && w[1] == "json")
}

fn env_culprit(e: &clap::Error, args: &[std::ffi::OsString]) -> Option<String> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if !matches!(
        e.kind(),
        ErrorKind::InvalidValue | ErrorKind::ValueValidation
    ) {
        return None;
    }
    let (Some(ContextValue::String(arg)), Some(ContextValue::String(value))) = (
        e.get(ContextKind::InvalidArg),
        e.get(ContextKind::InvalidValue),
    ) else {
        return None;
    };
    let option = arg.split(' ').next()?;
    let (_, var) = ENV_OPTIONS.iter().find(|(o, _)| *o == option)?;
    let given = args.iter().any(|a| {
        a.to_str()
            .is_some_and(|a| a == option || a.starts_with(&format!("{option}=")))
    });
    if given || std::env::var(var).ok().as_deref() != Some(value.as_str()) {
        return None;
    }
    let rendered = e.to_string();
    let reason = rendered
        .lines()
        .next()
        .and_then(|l| l.rsplit_once("': "))
        .map_or("not a valid value", |(_, r)| r);
    Some(format!(
        "error: the environment variable {var} is `{value}`, which is not a valid {option}: {reason}\n  help: fix or unset {var}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn sizes_and_seconds() {
        assert_eq!(parse_size("1572864"), Ok(1_572_864));
        assert_eq!(parse_size("0x180000"), Ok(0x180000));
        assert_eq!(parse_size("1536k"), Ok(1536 * 1024));
        assert_eq!(parse_size("1.5M"), Ok(1_572_864));
        assert_eq!(parse_size("1536KiB"), Ok(1536 * 1024));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("-1").is_err());
        assert_eq!(parse_secs("0.5"), Ok(Duration::from_millis(500)));
        assert!(parse_secs("0").is_err());
        assert!(parse_secs("x").is_err());
    }
}
