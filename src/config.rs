//! Configuration: `[package.metadata.ota]`, `[workspace.metadata.ota]` and
//! espflash.toml, read once into plain values. Precedence (highest first): CLI
//! flag, environment, the package's device entry, the package section, the
//! workspace section, espflash.toml, built-in defaults.
//!
//! The files' schema is serde-derived (`OtaToml`, `DeviceEntry`, `EspflashToml`);
//! `serde_path_to_error` gives the dotted key of a bad value, and `explain` turns
//! serde's error into one that names the file, the key, the value and what to put
//! there (or the nearest known key).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use espflash::flasher::{FlashFrequency, FlashMode, FlashSettings, FlashSize};
use serde::Deserialize;
use serde::de::{DeserializeOwned, Deserializer, Error as _, Unexpected};
use serde_json::Value;
use serde_path_to_error::Segment;

use crate::encode::{Compress, Delta};
use crate::error::{Error, UsageError};
use crate::image::{self, CHIP_NAMES};
use crate::sign::{self, KeyChoice};
use arduino_ota::AuthMode;

/// Settings that may appear at any level.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Settings {
    /// `chip`: the chip the image is for.
    pub chip: Option<String>,
    /// `partition-table`: the table the device was flashed with (relative to its file).
    pub partition_table: Option<PathBuf>,
    /// `target-app-partition`: the app slot to check the image against.
    pub target_app_partition: Option<String>,
    /// `flash-size`.
    pub flash_size: Option<FlashSize>,
    /// `flash-mode`.
    pub flash_mode: Option<FlashMode>,
    /// `flash-freq`.
    pub flash_freq: Option<FlashFrequency>,
    /// `min-chip-rev` (major * 100 + minor).
    pub min_chip_rev: Option<u16>,
    /// `port`: the device's OTA UDP port.
    pub port: Option<u16>,
    /// `host-ip`: the local address the device connects back to.
    pub host_ip: Option<IpAddr>,
    /// `host-port`: the local TCP port the device connects back to.
    pub host_port: Option<u16>,
    /// `password-env`: the variable holding the password.
    pub password_env: Option<String>,
    /// `password` (plaintext in a file: warned about).
    pub password: Option<String>,
    /// `auth`: how to answer the challenge.
    pub auth: Option<AuthMode>,
    /// `timeout`: seconds for any one step.
    pub timeout: Option<f64>,
    /// `retries`: invitations re-sent.
    pub retries: Option<u32>,
    /// `verify`: wait for each device to come back.
    pub verify: Option<bool>,
    /// `verify-timeout`: seconds to wait for that.
    pub verify_timeout: Option<f64>,
    /// `ota-guard`: refuse an image without an OTA responder.
    pub ota_guard: Option<bool>,
    /// `compress`: send app images compressed (auto, always, never).
    pub compress: Option<Compress>,
    /// `delta`: send a patch against the image the device runs (auto, never).
    pub delta: Option<Delta>,
    /// `signing-key`: the key app images are signed with (a PEM file, or
    /// `env:VAR`).
    pub signing_key: Option<KeyChoice>,
}

impl Settings {
    /// `self` where set, else `lower`.
    pub fn or(self, lower: &Settings) -> Settings {
        let l = lower.clone();
        Settings {
            chip: self.chip.or(l.chip),
            partition_table: self.partition_table.or(l.partition_table),
            target_app_partition: self.target_app_partition.or(l.target_app_partition),
            flash_size: self.flash_size.or(l.flash_size),
            flash_mode: self.flash_mode.or(l.flash_mode),
            flash_freq: self.flash_freq.or(l.flash_freq),
            min_chip_rev: self.min_chip_rev.or(l.min_chip_rev),
            port: self.port.or(l.port),
            host_ip: self.host_ip.or(l.host_ip),
            host_port: self.host_port.or(l.host_port),
            password_env: self.password_env.or(l.password_env),
            password: self.password.or(l.password),
            auth: self.auth.or(l.auth),
            timeout: self.timeout.or(l.timeout),
            retries: self.retries.or(l.retries),
            verify: self.verify.or(l.verify),
            verify_timeout: self.verify_timeout.or(l.verify_timeout),
            ota_guard: self.ota_guard.or(l.ota_guard),
            compress: self.compress.or(l.compress),
            delta: self.delta.or(l.delta),
            signing_key: self.signing_key.or(l.signing_key),
        }
    }
}

/// A named device: `[*.metadata.ota.devices.NAME]`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DeviceEntry {
    /// The device's IP address or host name.
    #[serde(deserialize_with = "text")]
    pub host: String,
    /// Its OTA UDP port.
    #[serde(default, deserialize_with = "port")]
    pub port: Option<u16>,
    /// The variable holding its password.
    #[serde(default, deserialize_with = "text")]
    pub password_env: Option<String>,
    /// Its password (plaintext in a file: warned about).
    #[serde(default, deserialize_with = "text")]
    pub password: Option<String>,
    /// How to answer its challenge.
    #[serde(default, deserialize_with = "auth")]
    pub auth: Option<AuthMode>,
    /// Send it compressed images (auto, always, never).
    #[serde(default, deserialize_with = "compress")]
    pub compress: Option<Compress>,
    /// Send it patches against the image it runs (auto, never).
    #[serde(default, deserialize_with = "delta")]
    pub delta: Option<Delta>,
    /// `signing-key` as written (checked by `read_section`, which fills
    /// `signing_key`).
    #[serde(default, rename = "signing-key", deserialize_with = "key_value")]
    signing_key_written: Option<KeyValue>,
    /// The key its images are signed with.
    #[serde(skip)]
    pub signing_key: Option<KeyChoice>,
    /// Where it was defined, for messages.
    #[serde(skip)]
    pub defined_in: PathBuf,
}

/// One `[*.metadata.ota]` section.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Section {
    /// The section's own settings.
    pub settings: Settings,
    /// `default-devices`: names or groups updated when none are given.
    pub default_devices: Option<Vec<String>>,
    /// `devices.NAME`.
    pub devices: BTreeMap<String, DeviceEntry>,
    /// `groups.NAME`: device names.
    pub groups: BTreeMap<String, Vec<String>>,
}

/// Everything the files say, merged.
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// Package over workspace over espflash.toml.
    pub settings: Settings,
    /// The devices updated when none are given.
    pub default_devices: Vec<String>,
    /// Every configured device.
    pub devices: BTreeMap<String, DeviceEntry>,
    /// Every group.
    pub groups: BTreeMap<String, Vec<String>>,
    /// Warnings found while reading (plaintext passwords).
    pub warnings: Vec<String>,
    /// Where the settings came from, for messages.
    pub files: Vec<PathBuf>,
}

/// `[package.metadata.ota]` / `[workspace.metadata.ota]` as written.
#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
struct OtaToml {
    #[serde(deserialize_with = "text")]
    chip: Option<String>,
    #[serde(deserialize_with = "text")]
    partition_table: Option<String>,
    #[serde(deserialize_with = "text")]
    target_app_partition: Option<String>,
    #[serde(deserialize_with = "flash_size")]
    flash_size: Option<FlashSize>,
    #[serde(deserialize_with = "flash_mode")]
    flash_mode: Option<FlashMode>,
    #[serde(deserialize_with = "flash_freq")]
    flash_freq: Option<FlashFrequency>,
    #[serde(deserialize_with = "chip_rev")]
    min_chip_rev: Option<u16>,
    #[serde(deserialize_with = "port")]
    port: Option<u16>,
    #[serde(deserialize_with = "ip")]
    host_ip: Option<IpAddr>,
    #[serde(deserialize_with = "port")]
    host_port: Option<u16>,
    #[serde(deserialize_with = "text")]
    password_env: Option<String>,
    #[serde(deserialize_with = "text")]
    password: Option<String>,
    #[serde(deserialize_with = "auth")]
    auth: Option<AuthMode>,
    #[serde(deserialize_with = "seconds")]
    timeout: Option<f64>,
    #[serde(deserialize_with = "retries")]
    retries: Option<u32>,
    verify: Option<bool>,
    #[serde(deserialize_with = "seconds")]
    verify_timeout: Option<f64>,
    ota_guard: Option<bool>,
    #[serde(deserialize_with = "compress")]
    compress: Option<Compress>,
    #[serde(deserialize_with = "delta")]
    delta: Option<Delta>,
    #[serde(deserialize_with = "key_value")]
    signing_key: Option<KeyValue>,
    default_devices: Option<Names>,
    devices: BTreeMap<String, DeviceEntry>,
    groups: BTreeMap<String, Names>,
}

/// A `signing-key` value as written: a path or `env:VAR`, or (refused) a key
/// itself, which `Debug` does not show.
#[derive(Clone, Default, PartialEq)]
struct KeyValue(String);

impl std::fmt::Debug for KeyValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if sign::looks_like_a_key(&self.0) {
            f.write_str("KeyValue(<a key: redacted>)")
        } else {
            write!(f, "KeyValue({:?})", self.0)
        }
    }
}

/// A non-empty string (`explain` does not show a wrong value of this key).
fn key_value<'de, D: Deserializer<'de>>(d: D) -> Result<Option<KeyValue>, D::Error> {
    let v = Value::deserialize(d)?;
    match v.as_str() {
        Some(s) if !s.trim().is_empty() => Ok(Some(KeyValue(s.to_string()))),
        _ => Err(D::Error::invalid_value(
            Unexpected::Other("value"),
            &"a PEM file's path or env:VAR",
        )),
    }
}

/// The key `written` names, where `key` in `file` said it; a value that holds
/// a key itself is refused (without repeating it).
fn key_choice(written: &KeyValue, file: &Path, key: &str) -> Result<KeyChoice, Error> {
    let origin = format!("`{key}` in {}", file.display());
    if sign::looks_like_a_key(&written.0) {
        return Err(UsageError::SigningKeyInline { origin }.into());
    }
    let dir = file.parent().unwrap_or(Path::new("."));
    Ok(KeyChoice {
        source: sign::key_source(&written.0, dir),
        origin,
    })
}

/// Device or group names.
struct Names(Vec<String>);

impl<'de> Deserialize<'de> for Names {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        leaf(d, "a list of names such as [\"bench\"]", |v| {
            let name = |n: &Value| Some(n.as_str().filter(|s| !s.is_empty())?.to_owned());
            v.as_array()?
                .iter()
                .map(name)
                .collect::<Option<_>>()
                .map(Names)
        })
    }
}

/// The keys of espflash.toml that cargo ota reads, as espflash reads them (other
/// keys are espflash's own). `[flash]` is espflash's `FlashSettings`; espflash's
/// `[idf]` type (`cli::IdfFormatArgs`) is behind its `cli` feature, so the two keys
/// used here are spelled out.
#[derive(Default, Deserialize)]
#[serde(default)]
struct EspflashToml {
    flash: FlashSettings,
    #[serde(alias = "idf_format_args")]
    idf: IdfToml,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct IdfToml {
    #[serde(deserialize_with = "text")]
    partition_table: Option<String>,
    #[serde(deserialize_with = "text")]
    target_app_partition: Option<String>,
}

/// A value `parse` takes, or an error saying `what` to put there (`explain` adds
/// the file, the key and the value found).
fn leaf<'de, D: Deserializer<'de>, T, U: From<T>>(
    d: D,
    what: &str,
    parse: impl FnOnce(&Value) -> Option<T>,
) -> Result<U, D::Error> {
    let v = Value::deserialize(d)?;
    parse(&v)
        .map(U::from)
        .ok_or_else(|| D::Error::invalid_value(Unexpected::Other("value"), &what))
}

fn text<'de, D: Deserializer<'de>, T: From<String>>(d: D) -> Result<T, D::Error> {
    leaf(d, "a non-empty string", |v| {
        v.as_str()
            .filter(|s| !s.trim().is_empty())
            .map(str::to_owned)
    })
}

fn port<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u16>, D::Error> {
    leaf(d, "a port number from 1 to 65535", |v| {
        u16::try_from(v.as_u64()?).ok().filter(|p| *p > 0)
    })
}

/// A whole number from 0 to `max` (TOML's `3.0` too).
fn whole(v: &Value, max: f64) -> Option<f64> {
    v.as_f64()
        .filter(|n| (0.0..=max).contains(n) && n.fract() == 0.0)
}

fn chip_rev<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u16>, D::Error> {
    leaf(d, "a revision like 3 or 100 (major * 100 + minor)", |v| {
        whole(v, 65535.0).map(|n| n as u16)
    })
}

fn retries<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    leaf(d, "a whole number from 0 to 100", |v| {
        whole(v, 100.0).map(|n| n as u32)
    })
}

fn seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    leaf(d, "a number of seconds above 0 (at most 86400)", |v| {
        v.as_f64().filter(|n| *n > 0.0 && *n <= 86_400.0)
    })
}

fn ip<'de, D: Deserializer<'de>>(d: D) -> Result<Option<IpAddr>, D::Error> {
    leaf(d, "an IP address", |v| v.as_str()?.parse::<IpAddr>().ok())
}

fn auth<'de, D: Deserializer<'de>>(d: D) -> Result<Option<AuthMode>, D::Error> {
    leaf(d, "one of auto, md5, sha256, sha256-md5", |v| {
        match v.as_str()? {
            "auto" => Some(AuthMode::Auto),
            "md5" => Some(AuthMode::Md5),
            "sha256" => Some(AuthMode::Sha256),
            "sha256-md5" => Some(AuthMode::Sha256Md5),
            _ => None,
        }
    })
}

fn compress<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Compress>, D::Error> {
    leaf(d, "one of auto, always, never", |v| match v.as_str()? {
        "auto" => Some(Compress::Auto),
        "always" => Some(Compress::Always),
        "never" => Some(Compress::Never),
        _ => None,
    })
}

fn delta<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Delta>, D::Error> {
    leaf(d, "one of auto, never", |v| match v.as_str()? {
        "auto" => Some(Delta::Auto),
        "never" => Some(Delta::Never),
        _ => None,
    })
}

fn flash_size<'de, D: Deserializer<'de>>(d: D) -> Result<Option<FlashSize>, D::Error> {
    let what = "a flash size (256kb, 512kb, 1mb, 2mb, 4mb, 8mb, 16mb, 32mb, 64mb, 128mb)";
    leaf(d, what, |v| image::parse_flash_size(v.as_str()?))
}

fn flash_mode<'de, D: Deserializer<'de>>(d: D) -> Result<Option<FlashMode>, D::Error> {
    leaf(d, "a flash mode (qio, qout, dio, dout)", |v| {
        image::parse_flash_mode(v.as_str()?)
    })
}

fn flash_freq<'de, D: Deserializer<'de>>(d: D) -> Result<Option<FlashFrequency>, D::Error> {
    leaf(
        d,
        "a flash frequency (20mhz, 26mhz, 40mhz, 80mhz, ...)",
        |v| image::parse_flash_freq(v.as_str()?),
    )
}

/// The closest of `candidates` to `word`, if close enough to be a typo.
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let norm = word.replace('_', "-").to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| (strsim::levenshtein(&norm, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// A value as the file shows it, cut short.
fn show(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 {
        format!("{}…", s.chars().take(57).collect::<String>())
    } else {
        s
    }
}

fn err(file: &Path, key: &str, what: &str, hint: Option<String>) -> Error {
    UsageError::ConfigValue {
        file: file.to_path_buf(),
        key: key.to_string(),
        what: what.to_string(),
        hint,
    }
    .into()
}

/// Deserialize `value`, the table at `prefix` in `file`.
fn parse<T: DeserializeOwned>(value: &Value, file: &Path, prefix: &str) -> Result<T, Error> {
    serde_path_to_error::deserialize(value).map_err(|e| explain(&e, value, file, prefix))
}

/// serde's error as the user needs it: the file, the dotted key, the value found and
/// what to put there, or the known key it is a typo of.
fn explain(
    e: &serde_path_to_error::Error<serde_json::Error>,
    root: &Value,
    file: &Path,
    prefix: &str,
) -> Error {
    let (mut key, mut last, mut found) = (prefix.to_string(), "", Some(root));
    for segment in e.path().iter() {
        match segment {
            Segment::Seq { index } => {
                key.push_str(&format!("[{index}]"));
                found = found.and_then(|v| v.get(index));
            }
            Segment::Map { key: k } | Segment::Enum { variant: k } => {
                if !key.is_empty() {
                    key.push('.');
                }
                key.push_str(k);
                (last, found) = (k, found.and_then(|v| v.get(k)));
            }
            Segment::Unknown => found = None,
        }
    }
    let message = e.inner().to_string();
    // serde's wording: "..., expected X", "unknown field `k`, expected one of `a`, `b`".
    let expected = message.rsplit_once(", expected ").map(|(_, x)| x);
    if message.starts_with("unknown field") {
        let keys: Vec<&str> = expected
            .unwrap_or_default()
            .split('`')
            .skip(1)
            .step_by(2)
            .collect();
        let hint = match suggest(last, keys.iter().copied()) {
            Some(s) => format!("did you mean `{s}`?"),
            None => format!("the keys are: {}", keys.join(", ")),
        };
        return err(file, &key, "is not a known key", Some(hint));
    }
    if let Some(field) = message.strip_prefix("missing field `") {
        // `host` is the only key that must be there.
        let field = field.trim_end_matches('`');
        let hint = format!("add {field} = \"IP or name\" under [{key}]");
        return err(file, &key, &format!("has no `{field}`"), Some(hint));
    }
    let what = match expected {
        Some(x) if x.starts_with("struct ") || x == "a map" => "a table",
        Some(x) => x,
        None => &message,
    };
    // A bad `signing-key` might hold a key's text: never shown.
    let found = found
        .filter(|_| last != "signing-key")
        .map(|v| format!(", found {}", show(v)))
        .unwrap_or_default();
    err(file, &key, &format!("must be {what}{found}"), None)
}

fn plaintext_warning(file: &Path, key: &str) -> String {
    format!(
        "{}: `{key}` is a plaintext password: it ends up in version control; put it in an environment variable and name that with `password-env`",
        file.display()
    )
}

/// Read an `ota` section out of a `metadata` JSON value (`None`: no section).
pub fn read_section(
    metadata: &Value,
    file: &Path,
    prefix: &str,
    warnings: &mut Vec<String>,
) -> Result<Option<Section>, Error> {
    let Some(ota) = metadata.get("ota") else {
        return Ok(None);
    };
    let key = format!("{prefix}.metadata.ota");
    let t: OtaToml = parse(ota, file, &key)?;
    if let Some(c) = &t.chip
        && image::parse_chip(c).is_none()
    {
        let hint = match suggest(c, CHIP_NAMES.iter().copied()) {
            Some(s) => format!("did you mean `{s}`? chips: {}", CHIP_NAMES.join(", ")),
            None => format!("chips: {}", CHIP_NAMES.join(", ")),
        };
        let what = format!("is `{c}`, which is not a chip");
        return Err(err(file, &format!("{key}.chip"), &what, Some(hint)));
    }
    if t.password.is_some() {
        warnings.push(plaintext_warning(file, &format!("{key}.password")));
    }
    let signing_key = match &t.signing_key {
        Some(v) => Some(key_choice(v, file, &format!("{key}.signing-key"))?),
        None => None,
    };
    let mut devices = t.devices;
    for (name, entry) in &mut devices {
        entry.defined_in = file.to_path_buf();
        if let Some(v) = entry.signing_key_written.take() {
            let k = format!("{key}.devices.{name}.signing-key");
            entry.signing_key = Some(key_choice(&v, file, &k)?);
        }
        if entry.password.is_some() {
            let k = format!("{key}.devices.{name}.password");
            warnings.push(plaintext_warning(file, &k));
        }
    }
    let dir = file.parent().unwrap_or(Path::new("."));
    let settings = Settings {
        chip: t.chip,
        partition_table: t.partition_table.map(|p| dir.join(p)),
        target_app_partition: t.target_app_partition,
        flash_size: t.flash_size,
        flash_mode: t.flash_mode,
        flash_freq: t.flash_freq,
        min_chip_rev: t.min_chip_rev,
        port: t.port,
        host_ip: t.host_ip,
        host_port: t.host_port,
        password_env: t.password_env,
        password: t.password,
        auth: t.auth,
        timeout: t.timeout,
        retries: t.retries,
        verify: t.verify,
        verify_timeout: t.verify_timeout,
        ota_guard: t.ota_guard,
        compress: t.compress,
        delta: t.delta,
        signing_key,
    };
    Ok(Some(Section {
        settings,
        default_devices: t.default_devices.map(|n| n.0),
        devices,
        groups: t.groups.into_iter().map(|(g, n)| (g, n.0)).collect(),
    }))
}

/// Read espflash.toml's `[flash]` and `[idf]` tables (other keys are espflash's).
pub fn read_espflash_toml(path: &Path) -> Result<Settings, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::read_file(path, &e))?;
    let value: toml::Value = toml::from_str(&text).map_err(|e| UsageError::InvalidToml {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })?;
    let json = serde_json::to_value(value).unwrap_or(Value::Null);
    let t: EspflashToml = parse(&json, path, "")?;
    let dir = path.parent().unwrap_or(Path::new("."));
    Ok(Settings {
        flash_mode: t.flash.mode,
        flash_size: t.flash.size,
        flash_freq: t.flash.freq,
        partition_table: t.idf.partition_table.map(|p| dir.join(p)),
        target_app_partition: t.idf.target_app_partition,
        ..Settings::default()
    })
}

impl Config {
    /// Merge the package section over the workspace section over espflash.toml.
    pub fn merge(
        package: Option<Section>,
        workspace: Option<Section>,
        espflash: Option<Settings>,
    ) -> Config {
        let ws = workspace.unwrap_or_default();
        let pkg = package.unwrap_or_default();
        let settings = pkg
            .settings
            .or(&ws.settings.or(&espflash.unwrap_or_default()));
        let mut devices = ws.devices;
        devices.extend(pkg.devices);
        let mut groups = ws.groups;
        groups.extend(pkg.groups);
        Config {
            settings,
            default_devices: pkg
                .default_devices
                .or(ws.default_devices)
                .unwrap_or_default(),
            devices,
            groups,
            warnings: Vec::new(),
            files: Vec::new(),
        }
    }

    /// Expand device and group names (groups may name groups) into device names,
    /// in order, without repeats.
    pub fn expand(&self, names: &[String]) -> Result<Vec<String>, Error> {
        let mut out: Vec<String> = Vec::new();
        let mut stack: Vec<(String, usize)> = names.iter().rev().map(|n| (n.clone(), 0)).collect();
        while let Some((name, depth)) = stack.pop() {
            if depth > 16 {
                return Err(UsageError::GroupCycle { name }.into());
            }
            if self.devices.contains_key(&name) {
                if !out.contains(&name) {
                    out.push(name);
                }
            } else if let Some(members) = self.groups.get(&name) {
                stack.extend(members.iter().rev().map(|m| (m.clone(), depth + 1)));
            } else {
                let known: Vec<&str> = self
                    .devices
                    .keys()
                    .chain(self.groups.keys())
                    .map(String::as_str)
                    .collect();
                let suggestion = suggest(&name, known.iter().copied()).map(str::to_string);
                return Err(UsageError::UnknownDevice {
                    known: known.iter().map(|k| k.to_string()).collect(),
                    suggestion,
                    name,
                }
                .into());
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(v: Value) -> Result<Section, Error> {
        let mut w = Vec::new();
        read_section(
            &json!({ "ota": v }),
            Path::new("/p/Cargo.toml"),
            "package",
            &mut w,
        )
        .map(|s| s.unwrap())
    }

    fn err(v: Value) -> String {
        let e = read(v).unwrap_err();
        format!("{e} | {}", e.hint().unwrap_or_default())
    }

    #[test]
    fn reads_a_full_section() {
        let s = read(json!({
            "chip": "esp32c3", "partition-table": "parts.csv", "flash-size": "4mb",
            "flash-mode": "dio", "flash-freq": "80mhz", "port": 3232, "host-port": 47000,
            "password-env": "OTA_PW", "auth": "sha256-md5", "timeout": 2.5, "retries": 3,
            "default-devices": ["bench"],
            "devices": { "bench": { "host": "esp.local" }, "k": { "host": "10.0.0.2", "port": 8266 } },
            "groups": { "all": ["bench", "k"] }
        }))
        .unwrap();
        assert_eq!(
            s.settings.partition_table,
            Some(PathBuf::from("/p/parts.csv"))
        );
        assert_eq!(s.settings.auth, Some(AuthMode::Sha256Md5));
        assert_eq!(s.devices["k"].port, Some(8266));
        assert_eq!(s.groups["all"].len(), 2);
    }

    #[test]
    fn compress_and_delta_at_the_section_and_per_device() {
        let s = read(json!({
            "compress": "never",
            "delta": "never",
            "devices": { "shelf": { "host": "10.0.0.2", "compress": "always", "delta": "auto" } }
        }))
        .unwrap();
        assert_eq!(s.settings.compress, Some(Compress::Never));
        assert_eq!(s.devices["shelf"].compress, Some(Compress::Always));
        assert_eq!(s.settings.delta, Some(Delta::Never));
        assert_eq!(s.devices["shelf"].delta, Some(Delta::Auto));
        for (key, value, allowed) in [
            ("compress", "yes", "auto, always, never"),
            ("delta", "always", "auto, never"),
        ] {
            let e = err(json!({ key: value }));
            assert!(
                e.contains(&format!("package.metadata.ota.{key}")) && e.contains(allowed),
                "{e}"
            );
        }
        let e = err(json!({ "devices": { "d": { "host": "h", "compress": true } } }));
        assert!(e.contains("package.metadata.ota.devices.d.compress"), "{e}");
    }

    #[test]
    fn signing_key_at_the_section_and_per_device() {
        let s = read(json!({
            "signing-key": "keys/ota.pem",
            "devices": { "shelf": { "host": "10.0.0.2", "signing-key": "env:SHELF_KEY" } }
        }))
        .unwrap();
        let k = s.settings.signing_key.unwrap();
        assert_eq!(k.source, sign::KeySource::File("/p/keys/ota.pem".into()));
        assert_eq!(
            k.origin,
            "`package.metadata.ota.signing-key` in /p/Cargo.toml"
        );
        let d = s.devices["shelf"].signing_key.clone().unwrap();
        assert_eq!(d.source, sign::KeySource::Env("SHELF_KEY".into()));
        assert!(
            d.origin.contains("devices.shelf.signing-key"),
            "{}",
            d.origin
        );
        // A key itself is refused, and not repeated.
        let pem = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAsecret\n-----END PRIVATE KEY-----\n";
        for v in [
            json!({ "signing-key": pem }),
            json!({ "devices": { "d": { "host": "h", "signing-key": pem } } }),
        ] {
            let e = read(v).unwrap_err();
            assert_eq!(e.kind(), "signing-key-inline");
            let text = format!("{e} | {}", e.hint().unwrap_or_default());
            assert!(text.contains("signing-key` in /p/Cargo.toml"), "{text}");
            assert!(!text.contains("MIGHAgEA"), "{text}");
        }
        let e = err(json!({ "signing-key": ["-----BEGIN secret"] }));
        assert!(
            e.contains("signing-key` must be a PEM file's path or env:VAR"),
            "{e}"
        );
        assert!(!e.contains("secret"), "{e}");
    }

    #[test]
    fn errors_name_file_key_and_value() {
        let e = err(json!({ "prot": 3232 }));
        assert!(
            e.contains("/p/Cargo.toml") && e.contains("package.metadata.ota.prot"),
            "{e}"
        );
        assert!(e.contains("did you mean `port`"), "{e}");
        let e = err(json!({ "port": "abc" }));
        assert!(
            e.contains("package.metadata.ota.port") && e.contains("\"abc\""),
            "{e}"
        );
        let e = err(json!({ "port": 70000 }));
        assert!(e.contains("1 to 65535"), "{e}");
        let e = err(json!({ "chip": "esp32c33" }));
        assert!(
            e.contains("`esp32c33`") && e.contains("did you mean `esp32c3`"),
            "{e}"
        );
        let e = err(json!({ "flash-size": "3mb" }));
        assert!(e.contains("flash-size") && e.contains("3mb"), "{e}");
        let e = err(json!({ "devices": { "x": { "hots": "a" } } }));
        assert!(
            e.contains("devices.x.hots") && e.contains("did you mean `host`"),
            "{e}"
        );
        let e = err(json!({ "devices": { "x": { "port": 1 } } }));
        assert!(
            e.contains("devices.x") && e.contains("has no `host`"),
            "{e}"
        );
        let e = err(json!({ "default-devices": "bench" }));
        assert!(e.contains("list of names"), "{e}");
        let e = err(json!({ "auth": "sha1" }));
        assert!(e.contains("auth") && e.contains("sha1"), "{e}");
        let e = err(json!("nope"));
        assert!(e.contains("must be a table"), "{e}");
    }

    #[test]
    fn plaintext_password_warns() {
        let mut w = Vec::new();
        read_section(
            &json!({ "ota": { "devices": { "x": { "host": "h", "password": "pw" } } } }),
            Path::new("Cargo.toml"),
            "package",
            &mut w,
        )
        .unwrap();
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("devices.x.password") && !w[0].contains("pw\""));
    }

    #[test]
    fn precedence_and_groups() {
        let pkg = read(json!({ "port": 1111, "devices": { "a": { "host": "a" } }, "groups": { "g": ["a", "h"] } })).unwrap();
        let ws = read(json!({ "port": 2222, "timeout": 4, "default-devices": ["g"], "devices": { "b": { "host": "b" } }, "groups": { "h": ["b", "a"] } })).unwrap();
        let esp = Settings {
            flash_size: Some(FlashSize::_8Mb),
            port: Some(3333),
            ..Default::default()
        };
        let c = Config::merge(Some(pkg), Some(ws), Some(esp));
        assert_eq!(c.settings.port, Some(1111));
        assert_eq!(c.settings.timeout, Some(4.0));
        assert_eq!(c.settings.flash_size, Some(FlashSize::_8Mb));
        assert_eq!(c.expand(&c.default_devices).unwrap(), vec!["a", "b"]);
        let e = c.expand(&["bench".into()]).unwrap_err();
        assert!(e.to_string().contains("`bench`"));
        let e = c.expand(&["aa".into()]).unwrap_err();
        assert!(
            e.hint().unwrap().contains("did you mean `a`"),
            "{:?}",
            e.hint()
        );
    }

    #[test]
    fn group_cycles_are_caught() {
        let s = read(
            json!({ "devices": { "a": { "host": "a" } }, "groups": { "x": ["y"], "y": ["x"] } }),
        )
        .unwrap();
        let c = Config::merge(Some(s), None, None);
        assert!(
            c.expand(&["x".into()])
                .unwrap_err()
                .to_string()
                .contains("contains itself")
        );
    }

    #[test]
    fn unknown_keys_get_the_nearest_key_or_the_list() {
        let e = err(json!({ "target_app_partition": "ota_0" }));
        assert!(
            e.contains("`package.metadata.ota.target_app_partition` is not a known key")
                && e.ends_with("| did you mean `target-app-partition`?"),
            "{e}"
        );
        let e = err(json!({ "xyzzy": 1 }));
        assert!(
            e.contains("the keys are: chip, partition-table,") && e.ends_with("devices, groups"),
            "{e}"
        );
        let e = read_section(
            &json!({ "ota": { "devices": { "k": { "host": "h", "Port": 1 } } } }),
            Path::new("/w/Cargo.toml"),
            "workspace",
            &mut Vec::new(),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "/w/Cargo.toml: `workspace.metadata.ota.devices.k.Port` is not a known key"
        );
        assert_eq!(e.hint().as_deref(), Some("did you mean `port`?"));
    }

    #[test]
    fn wrong_types_name_the_value_and_what_to_put_there() {
        for (v, want) in [
            (
                json!({ "verify": "yes" }),
                "`package.metadata.ota.verify` must be a boolean, found \"yes\"",
            ),
            (
                json!({ "devices": 3 }),
                "`package.metadata.ota.devices` must be a table, found 3",
            ),
            (
                json!({ "retries": 2.5 }),
                "`package.metadata.ota.retries` must be a whole number from 0 to 100, found 2.5",
            ),
            (
                json!({ "timeout": 0 }),
                "`package.metadata.ota.timeout` must be a number of seconds above 0 (at most 86400), found 0",
            ),
            (
                json!({ "host-ip": "1.2.3" }),
                "`package.metadata.ota.host-ip` must be an IP address, found \"1.2.3\"",
            ),
            (
                json!({ "password": " " }),
                "`package.metadata.ota.password` must be a non-empty string, found \" \"",
            ),
            (
                json!({ "default-devices": "bench" }),
                "`package.metadata.ota.default-devices` must be a list of names such as [\"bench\"], found \"bench\"",
            ),
        ] {
            assert_eq!(err(v), format!("/p/Cargo.toml: {want} | "));
        }
        let long = "é".repeat(80);
        let e = err(json!({ "default-devices": long }));
        assert!(e.contains(&format!("found \"{}…", "é".repeat(56))), "{e}");
        let s = read(json!({ "min-chip-rev": 3.0, "verify-timeout": 0.5 })).unwrap();
        assert_eq!(s.settings.min_chip_rev, Some(3));
        assert_eq!(s.settings.verify_timeout, Some(0.5));
    }

    #[test]
    fn device_and_group_errors_name_the_nested_key() {
        let e = err(json!({ "devices": { "kitchen": { "host": "h", "port": 0 } } }));
        assert_eq!(
            e,
            "/p/Cargo.toml: `package.metadata.ota.devices.kitchen.port` must be a port number from 1 to 65535, found 0 | "
        );
        let e = err(json!({ "devices": { "kitchen": "10.0.0.2" } }));
        assert!(
            e.contains(
                "`package.metadata.ota.devices.kitchen` must be a table, found \"10.0.0.2\""
            ),
            "{e}"
        );
        let e = err(json!({ "devices": { "kitchen": { "host": "" } } }));
        assert!(
            e.contains("devices.kitchen.host` must be a non-empty string"),
            "{e}"
        );
        let e = err(json!({ "groups": { "house": ["kitchen", 1] } }));
        assert!(
            e.contains("`package.metadata.ota.groups.house` must be a list of names")
                && e.contains("found [\"kitchen\",1]"),
            "{e}"
        );
        let s = read(json!({ "devices": { "kitchen": { "host": "h", "auth": "md5" } } })).unwrap();
        assert_eq!(
            s.devices["kitchen"].defined_in,
            PathBuf::from("/p/Cargo.toml")
        );
        assert_eq!(s.devices["kitchen"].auth, Some(AuthMode::Md5));
    }

    #[test]
    fn espflash_toml_is_read_as_espflash_reads_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("espflash.toml");
        let write = |text: &str| std::fs::write(&path, text).unwrap();
        write(
            "baudrate = 921600\n[connection]\nserial = \"/dev/ttyUSB0\"\n\
             [flash]\nmode = \"qio\"\nsize = \"8MB\"\nfrequency = \"40MHz\"\n\
             [idf]\npartition_table = \"parts.csv\"\ntarget_app_partition = \"ota_1\"\nbootloader = \"b.bin\"\n",
        );
        let s = read_espflash_toml(&path).unwrap();
        assert_eq!(
            (s.flash_mode, s.flash_size, s.flash_freq),
            (
                Some(FlashMode::Qio),
                Some(FlashSize::_8Mb),
                Some(FlashFrequency::_40Mhz)
            )
        );
        assert_eq!(s.partition_table, Some(dir.path().join("parts.csv")));
        assert_eq!(s.target_app_partition.as_deref(), Some("ota_1"));
        assert_eq!(s.port, None);
        write("[idf_format_args]\npartition_table = \"p.csv\"\n");
        let s = read_espflash_toml(&path).unwrap();
        assert_eq!(s.partition_table, Some(dir.path().join("p.csv")));
        let fail = |text: &str| {
            write(text);
            let e = read_espflash_toml(&path).unwrap_err();
            format!("{e} | {}", e.hint().unwrap_or_default())
        };
        let e = fail("[flash]\nsize = \"8mb\"\n");
        assert!(
            e.starts_with(&format!(
                "{}: `flash.size` must be one of `256KB`",
                path.display()
            )) && e.contains("`8MB`")
                && e.contains("found \"8mb\""),
            "{e}"
        );
        let e = fail("[idf]\npartition_table = 3\n");
        assert!(
            e.contains("`idf.partition_table` must be a non-empty string, found 3"),
            "{e}"
        );
        let e = fail("flash = 3\n");
        assert!(e.contains("`flash` must be a table, found 3"), "{e}");
        let e = fail("[flash\n");
        assert!(e.contains("espflash.toml: invalid TOML"), "{e}");
    }
}
