//! Configuration: `[package.metadata.ota]`, `[workspace.metadata.ota]` and
//! espflash.toml, read once into plain values. Precedence (highest first): CLI
//! flag, environment, the package's device entry, the package section, the
//! workspace section, espflash.toml, built-in defaults. Every error names the file,
//! the key and what to put there.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use espflash::flasher::{FlashFrequency, FlashMode, FlashSize};
use serde_json::Value;

use crate::error::Error;
use crate::image::{self, CHIP_NAMES};
use arduino_ota::AuthMode;

/// Keys of an `ota` section.
const SECTION_KEYS: &[&str] = &[
    "chip",
    "partition-table",
    "target-app-partition",
    "flash-size",
    "flash-mode",
    "flash-freq",
    "min-chip-rev",
    "port",
    "host-ip",
    "host-port",
    "password-env",
    "password",
    "auth",
    "timeout",
    "retries",
    "verify",
    "verify-timeout",
    "ota-guard",
    "default-devices",
    "devices",
    "groups",
];

/// Keys of a device entry.
const DEVICE_KEYS: &[&str] = &["host", "port", "password-env", "password", "auth"];

/// Settings that may appear at any level.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Settings {
    pub chip: Option<String>,
    pub partition_table: Option<PathBuf>,
    pub target_app_partition: Option<String>,
    pub flash_size: Option<FlashSize>,
    pub flash_mode: Option<FlashMode>,
    pub flash_freq: Option<FlashFrequency>,
    pub min_chip_rev: Option<u16>,
    pub port: Option<u16>,
    pub host_ip: Option<IpAddr>,
    pub host_port: Option<u16>,
    pub password_env: Option<String>,
    pub password: Option<String>,
    pub auth: Option<AuthMode>,
    pub timeout: Option<f64>,
    pub retries: Option<u32>,
    pub verify: Option<bool>,
    pub verify_timeout: Option<f64>,
    pub ota_guard: Option<bool>,
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
        }
    }
}

/// A named device.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DeviceEntry {
    pub host: String,
    pub port: Option<u16>,
    pub password_env: Option<String>,
    pub password: Option<String>,
    pub auth: Option<AuthMode>,
    /// Where it was defined, for messages.
    pub defined_in: PathBuf,
}

/// One `[*.metadata.ota]` section.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Section {
    pub settings: Settings,
    pub default_devices: Option<Vec<String>>,
    pub devices: BTreeMap<String, DeviceEntry>,
    pub groups: BTreeMap<String, Vec<String>>,
}

/// Everything the files say, merged.
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// Package over workspace over espflash.toml.
    pub settings: Settings,
    pub default_devices: Vec<String>,
    pub devices: BTreeMap<String, DeviceEntry>,
    pub groups: BTreeMap<String, Vec<String>>,
    /// Warnings found while reading (plaintext passwords).
    pub warnings: Vec<String>,
    /// Where the settings came from, for messages.
    pub files: Vec<PathBuf>,
}

/// Reads values out of a JSON tree and says where a bad one is.
struct Reader<'a> {
    file: &'a Path,
    /// Directory relative paths are resolved against.
    dir: &'a Path,
}

/// Levenshtein distance, for "did you mean".
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The closest of `candidates` to `word`, if close enough to be a typo.
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let norm = word.replace('_', "-").to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| (distance(&norm, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn show(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 60 {
        format!("{}…", &s[..57])
    } else {
        s
    }
}

impl Reader<'_> {
    fn err(&self, key: &str, what: String, hint: Option<String>) -> Error {
        Error::usage(format!("{}: `{key}` {what}", self.file.display()), hint)
    }

    fn table<'v>(
        &self,
        v: &'v Value,
        key: &str,
    ) -> Result<&'v serde_json::Map<String, Value>, Error> {
        v.as_object()
            .ok_or_else(|| self.err(key, format!("must be a table, found {}", show(v)), None))
    }

    fn check_keys(
        &self,
        table: &serde_json::Map<String, Value>,
        key: &str,
        allowed: &[&str],
    ) -> Result<(), Error> {
        for k in table.keys() {
            if !allowed.contains(&k.as_str()) {
                let hint = match suggest(k, allowed.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("the keys are: {}", allowed.join(", ")),
                };
                return Err(self.err(
                    &format!("{key}.{k}"),
                    "is not a known key".into(),
                    Some(hint),
                ));
            }
        }
        Ok(())
    }

    fn string(
        &self,
        t: &serde_json::Map<String, Value>,
        key: &str,
        name: &str,
    ) -> Result<Option<String>, Error> {
        match t.get(name) {
            None => Ok(None),
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.clone())),
            Some(v) => Err(self.err(
                &format!("{key}.{name}"),
                format!("must be a non-empty string, found {}", show(v)),
                None,
            )),
        }
    }

    fn port(
        &self,
        t: &serde_json::Map<String, Value>,
        key: &str,
        name: &str,
    ) -> Result<Option<u16>, Error> {
        match t.get(name) {
            None => Ok(None),
            Some(v) => match v.as_u64() {
                Some(p) if (1..=65535).contains(&p) => Ok(Some(p as u16)),
                _ => Err(self.err(
                    &format!("{key}.{name}"),
                    format!("must be a port number from 1 to 65535, found {}", show(v)),
                    None,
                )),
            },
        }
    }

    fn parsed<T>(
        &self,
        t: &serde_json::Map<String, Value>,
        key: &str,
        name: &str,
        what: &str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<Option<T>, Error> {
        match self.string(t, key, name)? {
            None => Ok(None),
            Some(s) => parse(&s).map(Some).ok_or_else(|| {
                self.err(
                    &format!("{key}.{name}"),
                    format!("is `{s}`, which is not {what}"),
                    None,
                )
            }),
        }
    }

    fn number(
        &self,
        t: &serde_json::Map<String, Value>,
        key: &str,
        name: &str,
        what: &str,
        ok: impl Fn(f64) -> bool,
    ) -> Result<Option<f64>, Error> {
        match t.get(name) {
            None => Ok(None),
            Some(v) => match v.as_f64() {
                Some(n) if ok(n) => Ok(Some(n)),
                _ => Err(self.err(
                    &format!("{key}.{name}"),
                    format!("must be {what}, found {}", show(v)),
                    None,
                )),
            },
        }
    }

    fn names(
        &self,
        t: &serde_json::Map<String, Value>,
        key: &str,
        name: &str,
    ) -> Result<Option<Vec<String>>, Error> {
        match t.get(name) {
            None => Ok(None),
            Some(Value::Array(items))
                if items
                    .iter()
                    .all(|i| i.as_str().is_some_and(|s| !s.is_empty())) =>
            {
                Ok(Some(
                    items
                        .iter()
                        .map(|i| i.as_str().unwrap().to_string())
                        .collect(),
                ))
            }
            Some(v) => Err(self.err(
                &format!("{key}.{name}"),
                format!("must be a list of names, found {}", show(v)),
                Some(format!("for example: {name} = [\"bench\"]")),
            )),
        }
    }

    fn boolean(
        &self,
        t: &serde_json::Map<String, Value>,
        key: &str,
        name: &str,
    ) -> Result<Option<bool>, Error> {
        match t.get(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(self.err(
                &format!("{key}.{name}"),
                format!("must be true or false, found {}", show(v)),
                None,
            )),
        }
    }

    fn auth(
        &self,
        t: &serde_json::Map<String, Value>,
        key: &str,
    ) -> Result<Option<AuthMode>, Error> {
        self.parsed(
            t,
            key,
            "auth",
            "one of auto, md5, sha256, sha256-md5",
            |s| match s {
                "auto" => Some(AuthMode::Auto),
                "md5" => Some(AuthMode::Md5),
                "sha256" => Some(AuthMode::Sha256),
                "sha256-md5" => Some(AuthMode::Sha256Md5),
                _ => None,
            },
        )
    }

    fn settings(&self, t: &serde_json::Map<String, Value>, key: &str) -> Result<Settings, Error> {
        let chip = self.string(t, key, "chip")?;
        if let Some(c) = &chip
            && image::parse_chip(c).is_none()
        {
            let hint = match suggest(c, CHIP_NAMES.iter().copied()) {
                Some(s) => format!("did you mean `{s}`? chips: {}", CHIP_NAMES.join(", ")),
                None => format!("chips: {}", CHIP_NAMES.join(", ")),
            };
            return Err(self.err(
                &format!("{key}.chip"),
                format!("is `{c}`, which is not a chip"),
                Some(hint),
            ));
        }
        Ok(Settings {
            chip,
            partition_table: self
                .string(t, key, "partition-table")?
                .map(|p| self.dir.join(p)),
            target_app_partition: self.string(t, key, "target-app-partition")?,
            flash_size: self.parsed(
                t,
                key,
                "flash-size",
                "a flash size (256kb, 512kb, 1mb, 2mb, 4mb, 8mb, 16mb, 32mb, 64mb, 128mb)",
                image::parse_flash_size,
            )?,
            flash_mode: self.parsed(
                t,
                key,
                "flash-mode",
                "a flash mode (qio, qout, dio, dout)",
                image::parse_flash_mode,
            )?,
            flash_freq: self.parsed(
                t,
                key,
                "flash-freq",
                "a flash frequency (20mhz, 26mhz, 40mhz, 80mhz, ...)",
                image::parse_flash_freq,
            )?,
            min_chip_rev: self
                .number(
                    t,
                    key,
                    "min-chip-rev",
                    "a revision like 3 or 100 (major * 100 + minor)",
                    |n| (0.0..=65535.0).contains(&n) && n.fract() == 0.0,
                )?
                .map(|n| n as u16),
            port: self.port(t, key, "port")?,
            host_ip: self.parsed(t, key, "host-ip", "an IP address", |s| s.parse().ok())?,
            host_port: self.port(t, key, "host-port")?,
            password_env: self.string(t, key, "password-env")?,
            password: self.string(t, key, "password")?,
            auth: self.auth(t, key)?,
            timeout: self.number(t, key, "timeout", "a number of seconds above 0", |n| {
                n > 0.0 && n <= 86_400.0
            })?,
            retries: self
                .number(t, key, "retries", "a whole number from 0 to 100", |n| {
                    (0.0..=100.0).contains(&n) && n.fract() == 0.0
                })?
                .map(|n| n as u32),
            verify: self.boolean(t, key, "verify")?,
            ota_guard: self.boolean(t, key, "ota-guard")?,
            verify_timeout: self.number(
                t,
                key,
                "verify-timeout",
                "a number of seconds above 0",
                |n| n > 0.0 && n <= 86_400.0,
            )?,
        })
    }

    fn section(&self, v: &Value, key: &str, warnings: &mut Vec<String>) -> Result<Section, Error> {
        let t = self.table(v, key)?;
        self.check_keys(t, key, SECTION_KEYS)?;
        let settings = self.settings(t, key)?;
        if settings.password.is_some() {
            warnings.push(plaintext_warning(self.file, &format!("{key}.password")));
        }
        let mut devices = BTreeMap::new();
        if let Some(d) = t.get("devices") {
            for (name, entry) in self.table(d, &format!("{key}.devices"))? {
                let dkey = format!("{key}.devices.{name}");
                let e = self.table(entry, &dkey)?;
                self.check_keys(e, &dkey, DEVICE_KEYS)?;
                let host = self.string(e, &dkey, "host")?.ok_or_else(|| {
                    self.err(
                        &dkey,
                        "has no `host`".into(),
                        Some(format!("add host = \"IP or name\" under [{dkey}]")),
                    )
                })?;
                let entry = DeviceEntry {
                    host,
                    port: self.port(e, &dkey, "port")?,
                    password_env: self.string(e, &dkey, "password-env")?,
                    password: self.string(e, &dkey, "password")?,
                    auth: self.auth(e, &dkey)?,
                    defined_in: self.file.to_path_buf(),
                };
                if entry.password.is_some() {
                    warnings.push(plaintext_warning(self.file, &format!("{dkey}.password")));
                }
                devices.insert(name.clone(), entry);
            }
        }
        let mut groups = BTreeMap::new();
        if let Some(g) = t.get("groups") {
            let gt = self.table(g, &format!("{key}.groups"))?;
            for name in gt.keys() {
                let members = self
                    .names(gt, &format!("{key}.groups"), name)?
                    .unwrap_or_default();
                groups.insert(name.clone(), members);
            }
        }
        Ok(Section {
            settings,
            default_devices: self.names(t, key, "default-devices")?,
            devices,
            groups,
        })
    }
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
    let dir = file.parent().unwrap_or(Path::new("."));
    let reader = Reader { file, dir };
    reader
        .section(ota, &format!("{prefix}.metadata.ota"), warnings)
        .map(Some)
}

/// Read espflash.toml's `[flash]` and `[idf]` tables (other keys are espflash's).
pub fn read_espflash_toml(path: &Path) -> Result<Settings, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::read_file(path, &e))?;
    let value: toml::Value = toml::from_str(&text)
        .map_err(|e| Error::usage(format!("{}: invalid TOML: {e}", path.display()), None))?;
    let json = serde_json::to_value(value).unwrap_or(Value::Null);
    let dir = path.parent().unwrap_or(Path::new("."));
    let reader = Reader { file: path, dir };
    let mut s = Settings::default();
    if let Some(flash) = json.get("flash") {
        let t = reader.table(flash, "flash")?;
        s.flash_mode = reader.parsed(
            t,
            "flash",
            "mode",
            "a flash mode (qio, qout, dio, dout)",
            image::parse_flash_mode,
        )?;
        s.flash_size = reader.parsed(
            t,
            "flash",
            "size",
            "a flash size such as 4MB",
            image::parse_flash_size,
        )?;
        s.flash_freq = reader.parsed(
            t,
            "flash",
            "frequency",
            "a flash frequency such as 80MHz",
            image::parse_flash_freq,
        )?;
    }
    if let Some(idf) = json.get("idf").or(json.get("idf_format_args")) {
        let t = reader.table(idf, "idf")?;
        s.partition_table = reader
            .string(t, "idf", "partition_table")?
            .map(|p| dir.join(p));
        s.target_app_partition = reader.string(t, "idf", "target_app_partition")?;
    }
    Ok(s)
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
                return Err(Error::usage(
                    format!("group `{name}` contains itself"),
                    Some("remove the cycle from [package.metadata.ota.groups]".to_string()),
                ));
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
                let hint = if known.is_empty() {
                    "no devices are configured: add [package.metadata.ota.devices.NAME] with a host, or pass --host".to_string()
                } else {
                    let mut h = format!("configured devices and groups: {}", known.join(", "));
                    if let Some(s) = suggest(&name, known.iter().copied()) {
                        h = format!("did you mean `{s}`? {h}");
                    }
                    h
                };
                return Err(Error::usage(
                    format!("unknown device or group `{name}`"),
                    Some(hint),
                ));
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
}
