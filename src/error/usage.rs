//! Arguments, configuration and what a command was asked to do (exit 2).

use std::io;
use std::net::IpAddr;
use std::path::PathBuf;

use super::exit;

/// Bad arguments or configuration: the user can fix it by changing what they
/// asked for.
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    /// A path the user named that cannot be read as asked: it does not exist,
    /// names a directory, or is not text.
    #[error("cannot read `{}`: {source}", path.display())]
    BadPath {
        /// The path as the user gave it.
        path: PathBuf,
        /// The OS's error.
        source: io::Error,
    },

    /// A config file (a manifest, espflash.toml) that is not valid TOML.
    #[error("{}: invalid TOML: {detail}", path.display())]
    InvalidToml {
        /// The file.
        path: PathBuf,
        /// The TOML parser's error, with the line and column.
        detail: String,
    },

    // --- the config files (config.rs) ---
    /// A key of `[package|workspace.metadata.ota]` or espflash.toml with a bad
    /// value, or unknown (`what`: what is wrong, e.g. "must be a port, found 0").
    #[error("{}: `{key}` {what}", file.display())]
    ConfigValue {
        /// The file the key is in.
        file: PathBuf,
        /// The dotted key, e.g. `package.metadata.ota.devices.bench.port`.
        key: String,
        /// What is wrong with it, e.g. "must be a port, found 0".
        what: String,
        /// What to put there (a did-you-mean for an unknown key).
        hint: Option<String>,
    },

    /// A device group that contains itself, directly or through other groups.
    #[error("group `{name}` contains itself")]
    GroupCycle {
        /// The group that leads back to itself.
        name: String,
    },

    /// `-d` or a group names neither a configured device nor a group.
    #[error("unknown device or group `{name}`")]
    UnknownDevice {
        /// The name as given.
        name: String,
        /// The configured devices and groups.
        known: Vec<String>,
        /// The closest of them, when one is close.
        suggestion: Option<String>,
    },

    // --- which devices (settings) ---
    /// `--all`, and the config has no devices.
    #[error("--all: no devices are configured")]
    NoDevicesConfigured,

    /// No `--host`, no `-d`, and no `default-devices` in the config.
    #[error("no device to update")]
    NoDevice,

    /// The fleet's sessions would need host ports above 65535.
    #[error(
        "--host-port {port} leaves no room for {jobs} parallel sessions (they use consecutive ports)"
    )]
    HostPortRange {
        /// The first session's host port (`--host-port`, `host-port`).
        port: u16,
        /// Sessions at once (`--jobs`).
        jobs: usize,
    },

    /// The command line does not parse (clap's words, first line).
    #[error("{detail}")]
    Arguments {
        /// What clap says is wrong.
        detail: String,
    },

    /// An environment variable cargo-ota reads holds a value it cannot use.
    #[error("the environment variable {var} is `{value}`, which is not {expected}")]
    BadEnv {
        /// The variable's name.
        var: String,
        /// Its value.
        value: String,
        /// What it must hold.
        expected: String,
    },

    // --- signing keys (settings.rs) ---
    /// `signing-key` or `--sign` holds a key's text instead of naming where it
    /// is. The message never repeats the value.
    #[error("{origin} holds a private key itself: it must name a PEM file or env:VAR")]
    SigningKeyInline {
        /// Where: "--sign", or "`package.metadata.ota.signing-key` in FILE".
        origin: String,
    },

    /// `env:VAR` names a variable that is unset or empty.
    #[error("the signing key's environment variable {var} (from {origin}) is not set or is empty")]
    SigningKeyEnvUnset {
        /// The variable's name.
        var: String,
        /// Where it was named.
        origin: String,
    },

    /// The key file cannot be read.
    #[error("cannot read the signing key `{}` (from {origin}): {detail}", path.display())]
    SigningKeyFile {
        /// The file, as resolved (relative to the file that names it).
        path: PathBuf,
        /// Where it was named.
        origin: String,
        /// The OS's error.
        detail: String,
    },

    /// The text read is not a key cargo ota signs with.
    #[error("the signing key `{source_name}` (from {origin}) cannot be used: {detail}")]
    SigningKeyInvalid {
        /// The key's source: a path or `env:VAR`.
        source_name: String,
        /// Where it was named.
        origin: String,
        /// What the text is not (never the text).
        detail: String,
    },

    // --- cargo ota emulate ---
    /// `emulate --password-env` names a variable that is not set (or is empty).
    #[error("--password-env names `{var}`, but that environment variable is not set")]
    PasswordEnvUnset {
        /// The variable's name.
        var: String,
    },

    /// `emulate --md5-password-hash` with a flavor other than esp32.
    #[error(
        "--md5-password-hash applies to --flavor esp32 only (the MD5 cores always store an MD5 hash)"
    )]
    Md5HashNeedsEsp32,

    /// `emulate --chip` names no chip the emulator knows.
    #[error("unknown chip `{name}` for --chip")]
    EmulatorChip {
        /// The chip name as given.
        name: String,
    },

    /// `emulate --require-signature` names no key or digest that can be used.
    #[error("cannot trust `{given}` (--require-signature): {detail}")]
    TrustedKey {
        /// The argument as given (a path or a digest; never key text).
        given: String,
        /// What is wrong with it.
        detail: String,
    },

    /// `emulate --link-window 0`.
    #[error("--link-window must be at least 1 byte")]
    LinkWindowZero,

    /// A `--fault` the emulator does not know (its words).
    #[error("{detail}")]
    Fault {
        /// What is wrong with the fault, as the emulator's parser says it.
        detail: String,
    },

    /// The emulator cannot bind its UDP socket.
    #[error("cannot listen on UDP {ip}:{port}: {source}")]
    Listen {
        /// The address to listen on (`--bind`).
        ip: IpAddr,
        /// The UDP port (`--port`; 0 for any free port).
        port: u16,
        /// The OS's error.
        source: io::Error,
    },

    // --- cargo ota init ---
    /// `cargo ota init`: the edited manifest would not parse; it is left as it was.
    #[error(
        "{}: adding [package.metadata.ota] would make it invalid ({detail}); nothing was changed",
        manifest.display()
    )]
    InitWouldBreak {
        /// The package's Cargo.toml.
        manifest: PathBuf,
        /// The TOML parser's error on the edited text.
        detail: String,
    },

    /// `cargo ota init`: the appended section would not read as
    /// `[package.metadata.ota]`; the manifest is left as it was.
    #[error("{}: cannot add [package.metadata.ota]; nothing was changed", manifest.display())]
    InitCannotAdd {
        /// The package's Cargo.toml.
        manifest: PathBuf,
    },

    // --- mDNS ---
    /// The mDNS daemon would not start.
    #[error("cannot start mDNS: {detail}")]
    MdnsStart {
        /// mdns-sd's error.
        detail: String,
    },

    /// `cargo ota discover`: browsing for `_arduino._tcp` failed.
    #[error("cannot browse mDNS: {detail}")]
    MdnsBrowse {
        /// mdns-sd's error.
        detail: String,
    },

    /// `emulate --mdns`: the emulated device cannot be advertised.
    #[error("cannot advertise `{name}` over mDNS: {detail}")]
    MdnsAdvertise {
        /// The `--mdns` instance name.
        name: String,
        /// mdns-sd's error.
        detail: String,
    },

    /// `cargo ota init`: the package's `partitions.csv` (not configured) is not a
    /// table with otadata and two OTA slots; nothing was written.
    #[error(
        "{}: {detail}; cargo ota init wrote nothing",
        path.display()
    )]
    InitPartitionTable {
        /// The partitions.csv next to Cargo.toml.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },

    // --- cargo ota keygen ---
    /// `cargo ota keygen FILE`: FILE exists (a key, or anything else); it is
    /// left as it is.
    #[error("`{}` already exists: cargo ota keygen never overwrites a file", path.display())]
    KeyExists {
        /// FILE as the user gave it.
        path: PathBuf,
    },

    /// `cargo ota keygen FILE`: the directory FILE goes into does not exist, or
    /// is not a directory; nothing was written.
    #[error(
        "cannot write the key `{}`: the directory `{}` {}",
        path.display(),
        dir.display(),
        if *not_a_directory { "is not a directory" } else { "does not exist" }
    )]
    KeyDir {
        /// FILE as the user gave it.
        path: PathBuf,
        /// Its parent directory.
        dir: PathBuf,
        /// `dir` (or a part of it) is a file.
        not_a_directory: bool,
    },
}

/// Does an error reading a file the user named mean the path is wrong (a usage
/// error), rather than that this host would not let it be read (I/O)?
pub(super) fn path_is_wrong(kind: io::ErrorKind) -> bool {
    use io::ErrorKind as K;
    matches!(
        kind,
        K::NotFound
            | K::IsADirectory
            | K::NotADirectory
            | K::InvalidData
            | K::InvalidInput
            | K::InvalidFilename
    )
}

impl UsageError {
    /// The process's exit code for it (always 2).
    pub fn exit_code(&self) -> i32 {
        exit::USAGE
    }

    /// A stable kebab-case name (JSON).
    pub fn kind(&self) -> &'static str {
        match self {
            UsageError::BadPath { .. } => "bad-path",
            UsageError::InvalidToml { .. } => "invalid-toml",
            UsageError::ConfigValue { .. } => "config",
            UsageError::GroupCycle { .. } => "group-cycle",
            UsageError::UnknownDevice { .. } => "unknown-device",
            UsageError::NoDevicesConfigured => "no-devices-configured",
            UsageError::NoDevice => "no-device",
            UsageError::HostPortRange { .. } => "host-port-range",
            UsageError::Arguments { .. } => "arguments",
            UsageError::BadEnv { .. } => "bad-env",
            UsageError::PasswordEnvUnset { .. } => "password-env-unset",
            UsageError::SigningKeyInline { .. } => "signing-key-inline",
            UsageError::SigningKeyEnvUnset { .. } => "signing-key-env-unset",
            UsageError::SigningKeyFile { .. } => "signing-key-file",
            UsageError::SigningKeyInvalid { .. } => "signing-key-invalid",
            UsageError::Md5HashNeedsEsp32 => "md5-hash-needs-esp32",
            UsageError::EmulatorChip { .. } => "unknown-chip",
            UsageError::TrustedKey { .. } => "bad-trusted-key",
            UsageError::LinkWindowZero => "link-window",
            UsageError::Fault { .. } => "bad-fault",
            UsageError::Listen { .. } => "listen",
            UsageError::InitWouldBreak { .. } => "init-would-break",
            UsageError::InitCannotAdd { .. } => "init-cannot-add",
            UsageError::MdnsStart { .. } => "mdns-start",
            UsageError::MdnsBrowse { .. } => "mdns-browse",
            UsageError::MdnsAdvertise { .. } => "mdns-advertise",
            UsageError::InitPartitionTable { .. } => "init-partition-table",
            UsageError::KeyExists { .. } => "key-exists",
            UsageError::KeyDir { .. } => "key-dir",
        }
    }

    /// What to do about it.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            UsageError::ConfigValue { hint, .. } => {
                return hint.clone();
            }
            UsageError::GroupCycle { .. } => {
                "remove the cycle from [package.metadata.ota.groups]".into()
            }
            UsageError::UnknownDevice { known, .. } if known.is_empty() => {
                "no devices are configured: add [package.metadata.ota.devices.NAME] with a host, or pass --host".into()
            }
            UsageError::UnknownDevice {
                known, suggestion, ..
            } => {
                let list = format!("configured devices and groups: {}", known.join(", "));
                match suggestion {
                    Some(s) => format!("did you mean `{s}`? {list}"),
                    None => list,
                }
            }
            UsageError::BadPath { source, .. } => match source.kind() {
                io::ErrorKind::IsADirectory => "check the path: it names a directory".into(),
                io::ErrorKind::InvalidData => "check the path: that file is not UTF-8 text".into(),
                _ => "check the path".into(),
            },
            UsageError::InvalidToml { .. } => {
                "fix the TOML syntax at the line and column shown".into()
            }
            UsageError::NoDevicesConfigured => {
                "add [package.metadata.ota.devices.NAME] entries with a host".into()
            }
            UsageError::NoDevice => {
                "pass --host HOST or -d NAME, or set default-devices in [package.metadata.ota]"
                    .into()
            }
            UsageError::HostPortRange { .. } => "pick a lower host port, or fewer --jobs".into(),
            UsageError::Arguments { .. } => "see `cargo ota --help`".into(),
            UsageError::BadEnv { var, .. } => format!("fix or unset {var}"),
            UsageError::PasswordEnvUnset { var } => format!(
                "set {var}, or leave out --password-env for a device without a password"
            ),
            UsageError::SigningKeyInline { .. } => {
                "put the key in a file (chmod 600, kept out of version control) or in an environment variable, and name that: signing-key = \"keys/ota.pem\" or signing-key = \"env:VAR\" (--sign takes the same)".into()
            }
            UsageError::SigningKeyEnvUnset { var, .. } => format!(
                "export {var} with the key's PEM text, name a key file instead, or pass --no-sign"
            ),
            UsageError::SigningKeyFile { .. } => {
                "check the path (a relative path is relative to the file that names it; --sign's to the working directory), or pass --no-sign".into()
            }
            UsageError::SigningKeyInvalid { .. } => {
                "give an RSA-3072 or ECDSA P-256 private key in PEM (PKCS#8, SEC1 or PKCS#1), as `cargo ota keygen` or `espsecure generate-signing-key --version 2` writes".into()
            }
            UsageError::Md5HashNeedsEsp32 => {
                "leave out --md5-password-hash, or emulate --flavor esp32".into()
            }
            UsageError::EmulatorChip { .. } => format!(
                "use one of: {}",
                arduino_ota::appimage::CHIPS
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            UsageError::TrustedKey { .. } => "name a key file (an ECDSA P-256 or RSA-3072 public or private key in PEM, as `cargo ota keygen` or `espsecure` writes it) or the key's digest in 64 hex digits".into(),
            UsageError::LinkWindowZero => {
                "give --link-window in bytes (default 5760), or leave it out".into()
            }
            UsageError::Fault { .. } => {
                "see `cargo ota emulate --help` for the faults and their values".into()
            }
            UsageError::Listen { .. } => "pick another port with --port (0 = any free port)".into(),
            UsageError::InitWouldBreak { .. } => "add the section by hand (see the README)".into(),
            UsageError::InitCannotAdd { .. } => {
                "add [package.metadata.ota] by hand (see the README)".into()
            }
            UsageError::MdnsStart { .. } => {
                "mDNS needs UDP port 5353 and multicast; give devices by IP with --host instead"
                    .into()
            }
            UsageError::MdnsBrowse { .. } => {
                "mDNS needs multicast between this host and the devices; give devices by IP with --host instead".into()
            }
            UsageError::MdnsAdvertise { .. } => {
                "pick a plain --mdns name (letters, digits, hyphens), or leave out --mdns".into()
            }
            UsageError::InitPartitionTable { .. } => {
                "give it otadata and two OTA slots (ota_0, ota_1), or move it away and run cargo ota init again to get one; if your device runs another table, set partition-table to that file".into()
            }
            UsageError::KeyExists { path } => format!(
                "pick another name, or delete `{}` yourself if you mean to replace that key (devices that trust only its digest then refuse images signed with the new one)",
                path.display()
            ),
            UsageError::KeyDir {
                dir,
                not_a_directory: false,
                ..
            } => format!(
                "create the directory first (mkdir -p {}), or give a path in a directory that exists",
                dir.display()
            ),
            UsageError::KeyDir { .. } => {
                "give a path in a directory that exists (a part of this one is a file)".into()
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{check, row};

    #[test]
    fn catalogue() {
        let e = |kind, text: &str| io::Error::new(kind, text.to_string());
        check(&[
            row(
                UsageError::ConfigValue {
                    file: "Cargo.toml".into(),
                    key: "package.metadata.ota.prot".into(),
                    what: "is not a known key".into(),
                    hint: Some("did you mean `port`?".into()),
                },
                2,
                "config",
                Some("did you mean `port`?"),
                "Cargo.toml: `package.metadata.ota.prot` is not a known key",
            ),
            row(
                UsageError::SigningKeyInline {
                    origin: "`package.metadata.ota.signing-key` in Cargo.toml".into(),
                },
                2,
                "signing-key-inline",
                Some("put the key in a file (chmod 600"),
                "`package.metadata.ota.signing-key` in Cargo.toml holds a private key itself: it must name a PEM file or env:VAR",
            ),
            row(
                UsageError::SigningKeyEnvUnset {
                    var: "OTA_KEY".into(),
                    origin: "--sign".into(),
                },
                2,
                "signing-key-env-unset",
                Some("export OTA_KEY with the key's PEM text"),
                "the signing key's environment variable OTA_KEY (from --sign) is not set or is empty",
            ),
            row(
                UsageError::SigningKeyFile {
                    path: "/p/keys/ota.pem".into(),
                    origin: "--sign".into(),
                    detail: "No such file or directory (os error 2)".into(),
                },
                2,
                "signing-key-file",
                Some("check the path"),
                "cannot read the signing key `/p/keys/ota.pem` (from --sign): No such file",
            ),
            row(
                UsageError::SigningKeyInvalid {
                    source_name: "env:OTA_KEY".into(),
                    origin: "--sign".into(),
                    detail: "not an RSA-3072 or ECDSA P-256 private key in PEM".into(),
                },
                2,
                "signing-key-invalid",
                Some("RSA-3072 or ECDSA P-256 private key in PEM"),
                "the signing key `env:OTA_KEY` (from --sign) cannot be used: not an RSA-3072",
            ),
            row(
                UsageError::GroupCycle { name: "a".into() },
                2,
                "group-cycle",
                Some("remove the cycle"),
                "group `a` contains itself",
            ),
            row(
                UsageError::UnknownDevice {
                    name: "benhc".into(),
                    known: vec!["bench".into(), "house".into()],
                    suggestion: Some("bench".into()),
                },
                2,
                "unknown-device",
                Some("did you mean `bench`? configured devices and groups: bench, house"),
                "unknown device or group `benhc`",
            ),
            row(
                UsageError::UnknownDevice {
                    name: "x".into(),
                    known: vec![],
                    suggestion: None,
                },
                2,
                "unknown-device",
                Some("no devices are configured"),
                "unknown device or group `x`",
            ),
            row(
                UsageError::BadPath {
                    path: "fw.bin".into(),
                    source: e(io::ErrorKind::NotFound, "No such file or directory"),
                },
                2,
                "bad-path",
                Some("check the path"),
                "cannot read `fw.bin`: No such file or directory",
            ),
            row(
                UsageError::BadPath {
                    path: "out".into(),
                    source: e(io::ErrorKind::IsADirectory, "Is a directory"),
                },
                2,
                "bad-path",
                Some("names a directory"),
                "cannot read `out`",
            ),
            row(
                UsageError::BadPath {
                    path: "Cargo.toml".into(),
                    source: e(
                        io::ErrorKind::InvalidData,
                        "stream did not contain valid UTF-8",
                    ),
                },
                2,
                "bad-path",
                Some("not UTF-8"),
                "Cargo.toml",
            ),
            row(
                UsageError::InvalidToml {
                    path: "Cargo.toml".into(),
                    detail: "expected `=`".into(),
                },
                2,
                "invalid-toml",
                Some("TOML syntax"),
                "Cargo.toml: invalid TOML: expected `=`",
            ),
            row(
                UsageError::NoDevicesConfigured,
                2,
                "no-devices-configured",
                Some("[package.metadata.ota.devices.NAME]"),
                "--all: no devices are configured",
            ),
            row(
                UsageError::NoDevice,
                2,
                "no-device",
                Some("--host HOST or -d NAME"),
                "no device to update",
            ),
            row(
                UsageError::HostPortRange {
                    port: 65530,
                    jobs: 8,
                },
                2,
                "host-port-range",
                Some("fewer --jobs"),
                "--host-port 65530 leaves no room for 8 parallel sessions",
            ),
            row(
                UsageError::Arguments {
                    detail: "unexpected argument '--prot' found".into(),
                },
                2,
                "arguments",
                Some("--help"),
                "unexpected argument '--prot' found",
            ),
            row(
                UsageError::BadEnv {
                    var: "CARGO_OTA_REBOOT_GRACE_MS".into(),
                    value: "soon".into(),
                    expected: "whole milliseconds".into(),
                },
                2,
                "bad-env",
                Some("fix or unset CARGO_OTA_REBOOT_GRACE_MS"),
                "the environment variable CARGO_OTA_REBOOT_GRACE_MS is `soon`, which is not whole milliseconds",
            ),
            row(
                UsageError::PasswordEnvUnset {
                    var: "OTA_PW".into(),
                },
                2,
                "password-env-unset",
                Some("set OTA_PW"),
                "--password-env names `OTA_PW`",
            ),
            row(
                UsageError::Md5HashNeedsEsp32,
                2,
                "md5-hash-needs-esp32",
                Some("--flavor esp32"),
                "--md5-password-hash applies to --flavor esp32 only",
            ),
            row(
                UsageError::EmulatorChip {
                    name: "esp99".into(),
                },
                2,
                "unknown-chip",
                Some("esp32c3"),
                "unknown chip `esp99` for --chip",
            ),
            row(
                UsageError::TrustedKey {
                    given: "keys/pub.pem".into(),
                    detail: "not found".into(),
                },
                2,
                "bad-trusted-key",
                Some("64 hex digits"),
                "cannot trust `keys/pub.pem` (--require-signature): not found",
            ),
            row(
                UsageError::LinkWindowZero,
                2,
                "link-window",
                Some("5760"),
                "--link-window must be at least 1 byte",
            ),
            row(
                UsageError::Fault {
                    detail: "unknown fault `explode`".into(),
                },
                2,
                "bad-fault",
                Some("--help"),
                "unknown fault `explode`",
            ),
            row(
                UsageError::Listen {
                    ip: [127, 0, 0, 1].into(),
                    port: 3232,
                    source: e(io::ErrorKind::AddrInUse, "Address in use"),
                },
                2,
                "listen",
                Some("--port"),
                "cannot listen on UDP 127.0.0.1:3232: Address in use",
            ),
            row(
                UsageError::InitWouldBreak {
                    manifest: "Cargo.toml".into(),
                    detail: "duplicate key".into(),
                },
                2,
                "init-would-break",
                Some("by hand"),
                "would make it invalid (duplicate key); nothing was changed",
            ),
            row(
                UsageError::InitCannotAdd {
                    manifest: "Cargo.toml".into(),
                },
                2,
                "init-cannot-add",
                Some("by hand"),
                "Cargo.toml: cannot add [package.metadata.ota]",
            ),
            row(
                UsageError::MdnsStart {
                    detail: "no interface".into(),
                },
                2,
                "mdns-start",
                Some("UDP port 5353"),
                "cannot start mDNS: no interface",
            ),
            row(
                UsageError::MdnsBrowse {
                    detail: "closed".into(),
                },
                2,
                "mdns-browse",
                Some("--host"),
                "cannot browse mDNS: closed",
            ),
            row(
                UsageError::MdnsAdvertise {
                    name: "bad name".into(),
                    detail: "invalid".into(),
                },
                2,
                "mdns-advertise",
                Some("--mdns"),
                "cannot advertise `bad name` over mDNS: invalid",
            ),
            row(
                UsageError::InitPartitionTable {
                    path: "partitions.csv".into(),
                    detail: "no otadata partition".into(),
                },
                2,
                "init-partition-table",
                Some("two OTA slots"),
                "partitions.csv: no otadata partition; cargo ota init wrote nothing",
            ),
            row(
                UsageError::KeyExists {
                    path: "keys/ota.pem".into(),
                },
                2,
                "key-exists",
                Some("pick another name, or delete `keys/ota.pem` yourself"),
                "`keys/ota.pem` already exists: cargo ota keygen never overwrites a file",
            ),
            row(
                UsageError::KeyDir {
                    path: "keys/ota.pem".into(),
                    dir: "keys".into(),
                    not_a_directory: false,
                },
                2,
                "key-dir",
                Some("mkdir -p keys"),
                "cannot write the key `keys/ota.pem`: the directory `keys` does not exist",
            ),
            row(
                UsageError::KeyDir {
                    path: "Cargo.toml/ota.pem".into(),
                    dir: "Cargo.toml".into(),
                    not_a_directory: true,
                },
                2,
                "key-dir",
                Some("a part of this one is a file"),
                "the directory `Cargo.toml` is not a directory",
            ),
        ]);
    }

    #[test]
    fn which_read_errors_are_the_users() {
        use io::ErrorKind as K;
        for k in [
            K::NotFound,
            K::IsADirectory,
            K::NotADirectory,
            K::InvalidData,
        ] {
            assert!(path_is_wrong(k), "{k:?}");
        }
        for k in [
            K::PermissionDenied,
            K::StorageFull,
            K::Other,
            K::UnexpectedEof,
        ] {
            assert!(!path_is_wrong(k), "{k:?}");
        }
    }
}
