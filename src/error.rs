//! The error catalogue: every failure of cargo-ota is a typed variant of its
//! stage's error, and each variant's message (thiserror), exit code (README "Exit
//! codes"), JSON kind and hint are written here and nowhere else. The stages only
//! construct variants with the data (paths, names, sizes).
//!
//! | stage | type | file |
//! | --- | --- | --- |
//! | arguments, configuration, commands | [`UsageError`] | `error/usage.rs` |
//! | the cargo project and its build | [`BuildError`] | `error/build.rs` |
//! | the ELF, the app image, its checks | [`ImageError`] | `error/image.rs` |
//! | reading and writing on this host | [`IoError`] | `error/io.rs` |
//! | one upload session | [`UploadError`] | `error/upload.rs` |

use std::path::Path;

mod build;
mod image;
mod io;
mod upload;
mod usage;

pub use build::{BuildError, NoCore};
pub use image::{ElfFound, ImageError};
pub use io::IoError;
pub use upload::{UploadError, describe_schemes};
pub use usage::UsageError;

/// Exit codes (README "Exit codes").
pub mod exit {
    /// Success.
    pub const OK: i32 = 0;
    /// Some uploads of a fleet failed.
    pub const SOME_FAILED: i32 = 1;
    /// A usage or configuration error: the command line or a config file must change.
    pub const USAGE: i32 = 2;
    /// The build failed.
    pub const BUILD: i32 = 3;
    /// Image conversion or a check of the image failed.
    pub const IMAGE: i32 = 4;
    /// The device did not answer the invitation.
    pub const NO_ANSWER: i32 = 5;
    /// Authentication failed, or a password is needed and none is set.
    pub const AUTH: i32 = 6;
    /// The device accepted but never connected back.
    pub const NO_CONNECT_BACK: i32 = 7;
    /// The transfer failed or stalled.
    pub const TRANSFER: i32 = 8;
    /// The device reported an error, at the invitation or at the end.
    pub const DEVICE_ERROR: i32 = 9;
    /// Reading or writing on this host failed, and the user's input did not
    /// cause it (permissions, a full disk, a socket on 127.0.0.1).
    pub const IO: i32 = 10;
    /// The device refused the image's signature: unsigned, signed with a key
    /// it does not trust, or changed after signing. Nothing was activated.
    pub const SIGNATURE: i32 = 11;
    /// Interrupted (Ctrl-C).
    pub const INTERRUPTED: i32 = 130;
}

/// Any failure of a cargo-ota command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad arguments or configuration (exit 2).
    #[error(transparent)]
    Usage(#[from] UsageError),
    /// The cargo project or its build (exit 3; 2 for a project that cannot be read).
    #[error(transparent)]
    Build(#[from] BuildError),
    /// The image cannot be used (exit 4; 2 for a bad chip or partition table).
    #[error(transparent)]
    Image(#[from] ImageError),
    /// Reading or writing on this host failed (exit 10).
    #[error(transparent)]
    Io(#[from] IoError),
    /// One upload failed (exit 5 to 9).
    #[error(transparent)]
    Upload(UploadError),
    /// Some devices of several failed (exit 1).
    #[error("{failed} of {total} devices failed")]
    SomeFailed {
        /// How many devices' sessions failed.
        failed: usize,
        /// How many devices were to be updated.
        total: usize,
    },
    /// Ctrl-C (exit 130).
    #[error("interrupted")]
    Interrupted,
}

impl From<UploadError> for Error {
    /// An interrupted session interrupts the command.
    fn from(e: UploadError) -> Self {
        match e {
            UploadError::Interrupted => Error::Interrupted,
            e => Error::Upload(e),
        }
    }
}

impl Error {
    /// A file that cannot be read: a usage error when the path is wrong (it does
    /// not exist, names a directory, is not text), an I/O error otherwise
    /// (permissions, the disk).
    pub fn read_file(path: &Path, e: &std::io::Error) -> Self {
        let source = copy(e);
        if usage::path_is_wrong(source.kind()) {
            UsageError::BadPath {
                path: path.to_path_buf(),
                source,
            }
            .into()
        } else {
            IoError::Read {
                path: path.to_path_buf(),
                source,
            }
            .into()
        }
    }

    /// A file that cannot be written (always I/O: an output is not an input).
    pub fn write_file(path: &Path, e: &std::io::Error) -> Self {
        IoError::Write {
            path: path.to_path_buf(),
            source: copy(e),
        }
        .into()
    }

    /// The process's exit code for it (the [`exit`] constants).
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(e) => e.exit_code(),
            Error::Build(e) => e.exit_code(),
            Error::Image(e) => e.exit_code(),
            Error::Io(e) => e.exit_code(),
            Error::Upload(e) => e.exit_code(),
            Error::SomeFailed { .. } => exit::SOME_FAILED,
            Error::Interrupted => exit::INTERRUPTED,
        }
    }

    /// A stable kebab-case name (JSON).
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Usage(e) => e.kind(),
            Error::Build(e) => e.kind(),
            Error::Image(e) => e.kind(),
            Error::Io(e) => e.kind(),
            Error::Upload(e) => e.kind(),
            Error::SomeFailed { .. } => "some-failed",
            Error::Interrupted => "interrupted",
        }
    }

    /// What to do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Usage(e) => e.hint(),
            Error::Build(e) => e.hint(),
            Error::Image(e) => e.hint(),
            Error::Io(e) => e.hint(),
            Error::Upload(e) => e.hint(),
            Error::SomeFailed { .. } => None,
            Error::Interrupted => Some(
                "the device drops the partial update and keeps running its current firmware".into(),
            ),
        }
    }
}

/// An owned copy of a borrowed I/O error: its kind and its words.
fn copy(e: &std::io::Error) -> std::io::Error {
    std::io::Error::new(e.kind(), e.to_string())
}

/// Is `kind` a stable kebab-case name?
#[cfg(test)]
fn is_kebab(kind: &str) -> bool {
    !kind.is_empty()
        && !kind.starts_with('-')
        && !kind.ends_with('-')
        && !kind.contains("--")
        && kind
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// One row of a catalogue test: a variant, then what it must give.
#[cfg(test)]
struct Row {
    error: Error,
    code: i32,
    kind: &'static str,
    /// A part of the hint, or `None` when there must be none.
    hint: Option<&'static str>,
    /// A part of the message.
    message: &'static str,
}

#[cfg(test)]
fn row(
    error: impl Into<Error>,
    code: i32,
    kind: &'static str,
    hint: Option<&'static str>,
    message: &'static str,
) -> Row {
    Row {
        error: error.into(),
        code,
        kind,
        hint,
        message,
    }
}

/// Check each row: the code, the kind (kebab-case), the hint and the message.
#[cfg(test)]
fn check(rows: &[Row]) {
    for r in rows {
        let e = &r.error;
        assert_eq!(e.exit_code(), r.code, "exit code of {e:?}");
        assert_eq!(e.kind(), r.kind, "kind of {e:?}");
        assert!(is_kebab(e.kind()), "kind of {e:?} is not kebab-case");
        match (e.hint(), r.hint) {
            (Some(h), Some(want)) => assert!(h.contains(want), "hint of {e:?}: {h}"),
            (None, None) => {}
            (got, want) => panic!("hint of {e:?}: {got:?}, expected {want:?}"),
        }
        let message = e.to_string();
        assert!(
            message.contains(r.message),
            "message of {e:?}: {message}, expected `{}` in it",
            r.message
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    #[test]
    fn free_text_constructors_and_the_rest() {
        let missing = io::Error::new(io::ErrorKind::NotFound, "No such file or directory");
        let denied = io::Error::new(io::ErrorKind::PermissionDenied, "Permission denied");
        let dir = io::Error::new(io::ErrorKind::IsADirectory, "Is a directory");
        let full = io::Error::new(io::ErrorKind::StorageFull, "No space left on device");
        check(&[
            // The path the user named is wrong: usage.
            row(
                Error::read_file(Path::new("/no/such.bin"), &missing),
                2,
                "bad-path",
                Some("check the path"),
                "cannot read `/no/such.bin`: No such file or directory",
            ),
            row(
                Error::read_file(Path::new("/tmp"), &dir),
                2,
                "bad-path",
                Some("directory"),
                "cannot read `/tmp`",
            ),
            // The host would not let it be read: I/O.
            row(
                Error::read_file(Path::new("/root/fw.bin"), &denied),
                10,
                "read",
                Some("permissions"),
                "cannot read `/root/fw.bin`: Permission denied",
            ),
            row(
                Error::write_file(Path::new("/full/fw.bin"), &full),
                10,
                "write",
                Some("free"),
                "cannot write `/full/fw.bin`: No space left on device",
            ),
            row(
                Error::SomeFailed {
                    failed: 2,
                    total: 3,
                },
                1,
                "some-failed",
                None,
                "2 of 3 devices failed",
            ),
            row(
                Error::Interrupted,
                130,
                "interrupted",
                Some("keeps running its current firmware"),
                "interrupted",
            ),
        ]);
    }
}
