//! `cargo ota keygen FILE`: a new signing key for signed updates, written once
//! (never over a file) and readable by this user only; what it prints is the
//! public side: the key's digest and the line that makes a firmware trust it.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::cli::KeygenArgs;
use crate::error::{Error, IoError, UsageError};
use crate::report::{Message, Reporter};
use crate::settings::Environment;
use crate::sign::{self, Scheme};

/// What the file's permissions are, for the status line.
#[cfg(unix)]
const PERMISSIONS: &str = "readable by this user only: mode 0600";
#[cfg(not(unix))]
const PERMISSIONS: &str = "keep its permissions to yourself";

pub fn keygen_command(rep: &Reporter, args: &KeygenArgs, env: &Environment) -> Result<(), Error> {
    let file = &args.file;
    let path = env.cwd()?.join(file);
    // Refuse what cannot work before the (for RSA, slow) key is made; creating
    // the file with create_new stays the guard.
    check_path(file, &path)?;
    let scheme = args.scheme;
    rep.status(
        "Generating",
        format!(
            "a new {} signing key{}",
            scheme.describe(),
            match scheme {
                Scheme::Ecdsa256 => "",
                Scheme::Rsa3072 => " (finding its primes can take a second)",
            }
        ),
    );
    let (key, pem) = sign::generate(scheme).map_err(|detail| IoError::Keygen { detail })?;
    if crate::interrupt::requested() {
        return Err(Error::Interrupted);
    }
    write_new(file, &path, pem.as_str())?;
    drop(pem);

    let digest = key.digest();
    let hex = hex::encode(digest);
    rep.status(
        "Wrote",
        format!(
            "the private key to {} (PKCS#8 PEM, {PERMISSIONS})",
            file.display()
        ),
    );
    rep.status(
        "Keep",
        "it secret, out of git (add it to .gitignore) and out of logs: whoever has it can sign firmware your devices take. Back it up: without it, devices that trust only this key take no more updates over the air",
    );
    rep.status(
        "Key digest",
        format!(
            "{hex} (SHA-256 of the public key, as `espsecure digest-sbv2-public-key` gives it)"
        ),
    );
    rep.status(
        "Firmware",
        format!(
            "trusts this key with this line in its source:\n    {}\n  (examples/esp-hal-ota reads the digest from its build environment instead:)\n    OTA_TRUSTED_KEY={hex} cargo build --release",
            trusted_key_line(&digest)
        ),
    );
    rep.status(
        "Next",
        format!(
            "sign updates with it: add to [package.metadata.ota] in Cargo.toml (the path relative to that file)\n    signing-key = {:?}",
            file.display().to_string()
        ),
    );
    rep.message(Message::Keygen {
        file: file.clone(),
        scheme,
        key_digest: hex,
    });
    Ok(())
}

/// The firmware's line: `pub const OTA_TRUSTED_KEY: [u8; 32] = [0x12, ...];`.
fn trusted_key_line(digest: &[u8; 32]) -> String {
    let bytes: Vec<String> = digest.iter().map(|b| format!("{b:#04x}")).collect();
    format!(
        "pub const OTA_TRUSTED_KEY: [u8; 32] = [{}];",
        bytes.join(", ")
    )
}

/// `file` (at `path`) must not exist, and its directory must.
fn check_path(file: &Path, path: &Path) -> Result<(), Error> {
    if fs::symlink_metadata(path).is_ok() {
        return Err(UsageError::KeyExists {
            path: file.to_path_buf(),
        }
        .into());
    }
    let Some(parent) = path.parent() else {
        return Ok(());
    };
    let not_a_directory = match fs::metadata(parent) {
        Ok(m) if m.is_dir() => return Ok(()),
        Ok(_) => true,
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(e) if e.kind() == io::ErrorKind::NotADirectory => true,
        // Creating the file reports anything else (permissions).
        Err(_) => return Ok(()),
    };
    Err(key_dir(file, not_a_directory))
}

/// The error for `file`'s directory, named as the user named it.
fn key_dir(file: &Path, not_a_directory: bool) -> Error {
    let dir = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    UsageError::KeyDir {
        path: file.to_path_buf(),
        dir,
        not_a_directory,
    }
    .into()
}

/// Create `path` (mode 0600 from the start, never over an existing file) and
/// write `text`; on a failure after it was created, remove it again.
fn write_new(file: &Path, path: &Path, text: &str) -> Result<(), Error> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut out = options.open(path).map_err(|e| match e.kind() {
        io::ErrorKind::AlreadyExists => UsageError::KeyExists {
            path: file.to_path_buf(),
        }
        .into(),
        io::ErrorKind::NotFound => key_dir(file, false),
        io::ErrorKind::NotADirectory => key_dir(file, true),
        _ => Error::write_file(file, &e),
    })?;
    out.write_all(text.as_bytes())
        .and_then(|()| out.sync_all())
        .map_err(|e| {
            drop(out);
            let _ = fs::remove_file(path);
            Error::write_file(file, &e)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_firmware_line() {
        let mut digest = [0u8; 32];
        digest[0] = 0x12;
        digest[1] = 0xab;
        digest[31] = 0x05;
        let line = trusted_key_line(&digest);
        assert!(
            line.starts_with("pub const OTA_TRUSTED_KEY: [u8; 32] = [0x12, 0xab, 0x00, "),
            "{line}"
        );
        assert!(line.ends_with(", 0x00, 0x05];"), "{line}");
        assert_eq!(line.matches("0x").count(), 32);
    }
}
