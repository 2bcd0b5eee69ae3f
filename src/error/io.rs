//! Reading and writing on this host (exit 10): failures the user's input did not
//! cause (permissions, a full disk, a socket on 127.0.0.1). A path the user named
//! that does not exist is a usage error ([`super::UsageError::BadPath`]).

use std::io;
use std::path::PathBuf;

use super::exit;

/// This host could not read, write or open what cargo-ota needed.
#[derive(Debug, thiserror::Error)]
pub enum IoError {
    /// A file that exists but cannot be read (permissions, the disk).
    #[error("cannot read `{}`: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS's error.
        source: io::Error,
    },

    /// An output: the image `cargo ota image` writes, a file `init` writes, a
    /// scratch file.
    #[error("cannot write `{}`: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The OS's error.
        source: io::Error,
    },

    /// A directory to write into (`emulate --out`, the demo's scratch directory,
    /// `.github/workflows`).
    #[error("cannot create the directory `{}`: {source}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The OS's error.
        source: io::Error,
    },

    /// The current directory is gone or cannot be read.
    #[error("cannot read the current directory")]
    CurrentDir,

    /// `cargo ota demo`'s emulated device on 127.0.0.1.
    #[error("cannot start the emulated device: {source}")]
    EmulatorStart {
        /// The socket error.
        source: io::Error,
    },

    /// `cargo ota emulate`: its socket failed while serving.
    #[error("emulator socket failed: {source}")]
    EmulatorSocket {
        /// The socket error.
        source: io::Error,
    },

    /// `cargo ota keygen`: no key could be made (the random source failed).
    #[error("cannot make a new key: {detail}")]
    Keygen {
        /// What failed, in the key generator's words (never key material).
        detail: String,
    },
}

/// What to do when writing `kind` failed.
fn write_hint(kind: io::ErrorKind) -> &'static str {
    use io::ErrorKind as K;
    match kind {
        K::PermissionDenied | K::ReadOnlyFilesystem => {
            "this user may not write there: pick another path, or fix the directory's permissions"
        }
        K::StorageFull | K::QuotaExceeded | K::FileTooLarge => {
            "the disk is full: free some space, or pick a path on another disk"
        }
        K::NotFound | K::NotADirectory => {
            "the directory it goes into must exist (and be a directory): create it, or pick another path"
        }
        _ => "check the path, the directory's permissions and the free space",
    }
}

impl IoError {
    /// The process's exit code for it (always 10).
    pub fn exit_code(&self) -> i32 {
        exit::IO
    }

    /// A stable kebab-case name (JSON).
    pub fn kind(&self) -> &'static str {
        match self {
            IoError::Read { .. } => "read",
            IoError::Write { .. } => "write",
            IoError::CreateDir { .. } => "create-dir",
            IoError::CurrentDir => "current-dir",
            IoError::EmulatorStart { .. } => "emulator-start",
            IoError::EmulatorSocket { .. } => "emulator-socket",
            IoError::Keygen { .. } => "keygen",
        }
    }

    /// What to do about it.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            IoError::Read { source, .. } => match source.kind() {
                io::ErrorKind::PermissionDenied => {
                    "this user may not read it: check its permissions".into()
                }
                _ => "the file is there but reading it failed: check the disk, then try again"
                    .into(),
            },
            IoError::Write { source, .. } | IoError::CreateDir { source, .. } => {
                write_hint(source.kind()).into()
            }
            IoError::CurrentDir => {
                "run cargo ota from a directory that exists and is readable".into()
            }
            IoError::EmulatorStart { .. } => {
                "the demo's device listens on 127.0.0.1 at a free port: check that this host lets programs open local UDP and TCP sockets".into()
            }
            IoError::EmulatorSocket { .. } => {
                "start the emulator again; if it repeats, check this host's network settings"
                    .into()
            }
            IoError::Keygen { .. } => {
                "a key needs the operating system's random numbers (getrandom): check that this host provides them (/dev/urandom), then run cargo ota keygen again; nothing was written".into()
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
                IoError::Read {
                    path: "/root/fw.bin".into(),
                    source: e(io::ErrorKind::PermissionDenied, "Permission denied"),
                },
                10,
                "read",
                Some("check its permissions"),
                "cannot read `/root/fw.bin`: Permission denied",
            ),
            row(
                IoError::Read {
                    path: "fw.bin".into(),
                    source: e(io::ErrorKind::Other, "Input/output error"),
                },
                10,
                "read",
                Some("check the disk"),
                "cannot read `fw.bin`: Input/output error",
            ),
            row(
                IoError::Write {
                    path: "/ro/fw.bin".into(),
                    source: e(io::ErrorKind::ReadOnlyFilesystem, "Read-only file system"),
                },
                10,
                "write",
                Some("may not write there"),
                "cannot write `/ro/fw.bin`: Read-only file system",
            ),
            row(
                IoError::Write {
                    path: "fw.bin".into(),
                    source: e(io::ErrorKind::StorageFull, "No space left on device"),
                },
                10,
                "write",
                Some("the disk is full"),
                "cannot write `fw.bin`",
            ),
            row(
                IoError::Write {
                    path: "file/fw.bin".into(),
                    source: e(io::ErrorKind::NotADirectory, "Not a directory"),
                },
                10,
                "write",
                Some("must exist (and be a directory)"),
                "cannot write `file/fw.bin`: Not a directory",
            ),
            row(
                IoError::CreateDir {
                    path: "out".into(),
                    source: e(io::ErrorKind::PermissionDenied, "Permission denied"),
                },
                10,
                "create-dir",
                Some("may not write there"),
                "cannot create the directory `out`: Permission denied",
            ),
            row(
                IoError::CurrentDir,
                10,
                "current-dir",
                Some("exists and is readable"),
                "cannot read the current directory",
            ),
            row(
                IoError::EmulatorStart {
                    source: e(io::ErrorKind::AddrNotAvailable, "no loopback"),
                },
                10,
                "emulator-start",
                Some("127.0.0.1"),
                "cannot start the emulated device: no loopback",
            ),
            row(
                IoError::EmulatorSocket {
                    source: e(io::ErrorKind::Other, "gone"),
                },
                10,
                "emulator-socket",
                Some("start the emulator again"),
                "emulator socket failed: gone",
            ),
            row(
                IoError::Keygen {
                    detail: "no random numbers from the operating system".into(),
                },
                10,
                "keygen",
                Some("random numbers (getrandom)"),
                "cannot make a new key: no random numbers from the operating system",
            ),
        ]);
    }
}
