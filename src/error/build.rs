//! The cargo project and its build (exit 3; 2 when the project cannot be read or
//! the package is not named well).

use std::io;

use super::exit;

/// A build whose target has no standard library in the toolchain that ran:
/// what the hint needs to say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoCore {
    /// The target triple.
    pub target: String,
    /// The cargo that ran the build (`$CARGO`, else `cargo`).
    pub cargo: String,
    /// The project builds `core` itself (`build-std`): then the toolchain lacks
    /// the library's sources (`rust-src`).
    pub build_std: bool,
}

/// The firmware could not be found or built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// `cargo metadata` failed; `detail` is cargo's own words.
    #[error("cannot read the cargo project: {detail}")]
    Metadata {
        /// What cargo printed on its stderr, or why it could not run.
        detail: String,
        /// Cargo found no `Cargo.toml` (not in a package), rather than a bad one.
        no_manifest: bool,
    },

    /// `-p` names no package of the workspace.
    #[error("package `{name}` is not in this workspace")]
    PackageNotFound {
        /// The name given with `-p`.
        name: String,
        /// The workspace's packages, to choose from.
        packages: Vec<String>,
    },

    /// No `-p`, the current directory is in no package, and there are several.
    #[error("this workspace has several packages; which one is the firmware?")]
    AmbiguousPackage {
        /// The workspace's packages, to choose from.
        packages: Vec<String>,
    },

    /// Cargo could not be started.
    #[error("cannot run `{cargo}`: {source}")]
    CannotRunCargo {
        /// The program started: `$CARGO`, else `cargo`.
        cargo: String,
        /// Why the OS would not start it.
        source: io::Error,
    },

    /// Reading cargo's output or waiting for it failed.
    #[error("cargo did not finish: {source}")]
    CargoDidNotFinish {
        /// The I/O error on cargo's pipe or its exit.
        source: io::Error,
    },

    /// `cargo build` failed (its diagnostics were shown above).
    #[error("could not build `{package}`")]
    Failed {
        /// The firmware package.
        package: String,
        /// An Xtensa target built without `build-std`: its triple.
        xtensa_without_build_std: Option<String>,
        /// The compiler found no `core` for the target.
        no_core: Option<NoCore>,
    },

    /// The build finished but no executable matches the selection.
    #[error(
        "the build of `{package}` produced no executable{}",
        match (bin, example) {
            (Some(b), _) => format!(" named `{b}`"),
            (None, Some(e)) => format!(" for example `{e}`"),
            _ => String::new(),
        }
    )]
    NoExecutable {
        /// The firmware package.
        package: String,
        /// The `--bin` asked for, if any.
        bin: Option<String>,
        /// The `--example` asked for, if any.
        example: Option<String>,
    },

    /// The build produced several binaries and none was picked.
    #[error("`{package}` has several binaries: {}", names.join(", "))]
    SeveralExecutables {
        /// The firmware package.
        package: String,
        /// The binaries' names, to pick one with `--bin`.
        names: Vec<String>,
    },
}

impl BuildError {
    /// The process's exit code for it (3; 2 when the project cannot be read).
    pub fn exit_code(&self) -> i32 {
        match self {
            BuildError::Metadata { .. }
            | BuildError::PackageNotFound { .. }
            | BuildError::AmbiguousPackage { .. } => exit::USAGE,
            BuildError::CannotRunCargo { .. }
            | BuildError::CargoDidNotFinish { .. }
            | BuildError::Failed { .. }
            | BuildError::NoExecutable { .. }
            | BuildError::SeveralExecutables { .. } => exit::BUILD,
        }
    }

    /// A stable kebab-case name (JSON).
    pub fn kind(&self) -> &'static str {
        match self {
            BuildError::Metadata { .. } => "cargo-metadata",
            BuildError::PackageNotFound { .. } => "package-not-found",
            BuildError::AmbiguousPackage { .. } => "ambiguous-package",
            BuildError::CannotRunCargo { .. } => "cannot-run-cargo",
            BuildError::CargoDidNotFinish { .. } => "cargo-did-not-finish",
            BuildError::Failed { .. } => "build-failed",
            BuildError::NoExecutable { .. } => "no-executable",
            BuildError::SeveralExecutables { .. } => "several-executables",
        }
    }

    /// What to do about it.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            BuildError::Metadata {
                no_manifest: true, ..
            } => "run cargo ota inside a cargo package, or pass --manifest-path".into(),
            BuildError::Metadata { .. } => {
                "fix what cargo reports above in the manifest it names".into()
            }
            // espota's -p is the port; cargo's (and ours) is the package.
            BuildError::PackageNotFound { name, packages }
                if !name.is_empty() && name.chars().all(|c| c.is_ascii_digit()) =>
            {
                format!(
                    "did you mean --port {name}? -p is --package, as in cargo (packages: {})",
                    packages.join(", ")
                )
            }
            BuildError::PackageNotFound { packages, .. } => {
                format!("packages: {}", packages.join(", "))
            }
            BuildError::AmbiguousPackage { packages } => {
                format!("pick one with -p: {}", packages.join(", "))
            }
            BuildError::CannotRunCargo { .. } => {
                "is cargo installed? $CARGO names the cargo to use".into()
            }
            BuildError::CargoDidNotFinish { .. } => return None,
            BuildError::Failed {
                xtensa_without_build_std: Some(target),
                ..
            } => format!(
                "the Xtensa target `{target}` has no prebuilt standard library: add `[unstable] build-std = [\"core\"]` (or [\"std\", \"panic_abort\"] for esp-idf) to .cargo/config.toml, or pass -Zbuild-std=core, and use the esp toolchain (espup)"
            ),
            BuildError::Failed {
                no_core: Some(n), ..
            } if n.build_std => format!(
                "`{cargo}` builds `core` for `{target}` itself (build-std) but its toolchain has no library sources: install them (`rustup component add rust-src`, or Debian's rust-src), or run cargo ota with the cargo of a toolchain that has them (rust-toolchain.toml, `cargo +TOOLCHAIN ota`, or `CARGO=... cargo-ota`; see the README's \"Which cargo builds\")",
                cargo = n.cargo,
                target = n.target
            ),
            BuildError::Failed {
                no_core: Some(n), ..
            } => format!(
                "`{cargo}`'s toolchain has no standard library for `{target}`: `rustup target add {target}`, or build it with `[unstable] build-std = [\"core\", \"alloc\"]` in .cargo/config.toml and a toolchain with rust-src; to use another toolchain, see the README's \"Which cargo builds\"",
                cargo = n.cargo,
                target = n.target
            ),
            BuildError::Failed { .. } => "fix the errors above and run again".into(),
            BuildError::NoExecutable { .. } => {
                "cargo ota needs a binary: check --bin/--example, or pick the firmware package with -p".into()
            }
            BuildError::SeveralExecutables { names, .. } => format!(
                "pick one with --bin {} (or set `default-run` in Cargo.toml)",
                names.first().map_or("NAME", String::as_str)
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{check, row};

    #[test]
    fn catalogue() {
        let packages = || vec!["fw".to_string(), "tools".to_string()];
        check(&[
            row(
                BuildError::Metadata {
                    detail: "could not find `Cargo.toml` in `/tmp`".into(),
                    no_manifest: true,
                },
                2,
                "cargo-metadata",
                Some("inside a cargo package"),
                "cannot read the cargo project: could not find `Cargo.toml`",
            ),
            row(
                BuildError::Metadata {
                    detail: "TOML parse error at line 3".into(),
                    no_manifest: false,
                },
                2,
                "cargo-metadata",
                Some("fix what cargo reports"),
                "TOML parse error at line 3",
            ),
            // espota's `-p 3232`.
            row(
                BuildError::PackageNotFound {
                    name: "3232".into(),
                    packages: packages(),
                },
                2,
                "package-not-found",
                Some(
                    "did you mean --port 3232? -p is --package, as in cargo (packages: fw, tools)",
                ),
                "package `3232` is not in this workspace",
            ),
            row(
                BuildError::PackageNotFound {
                    name: "fw2".into(),
                    packages: packages(),
                },
                2,
                "package-not-found",
                Some("packages: fw, tools"),
                "package `fw2` is not in this workspace",
            ),
            row(
                BuildError::AmbiguousPackage {
                    packages: packages(),
                },
                2,
                "ambiguous-package",
                Some("pick one with -p: fw, tools"),
                "which one is the firmware?",
            ),
            row(
                BuildError::CannotRunCargo {
                    cargo: "/no/cargo".into(),
                    source: io::Error::new(io::ErrorKind::NotFound, "not found"),
                },
                3,
                "cannot-run-cargo",
                Some("$CARGO"),
                "cannot run `/no/cargo`: not found",
            ),
            row(
                BuildError::CargoDidNotFinish {
                    source: io::Error::other("interrupted"),
                },
                3,
                "cargo-did-not-finish",
                None,
                "cargo did not finish: interrupted",
            ),
            row(
                BuildError::Failed {
                    package: "fw".into(),
                    xtensa_without_build_std: Some("xtensa-esp32-none-elf".into()),
                    no_core: None,
                },
                3,
                "build-failed",
                Some("the Xtensa target `xtensa-esp32-none-elf` has no prebuilt standard library"),
                "could not build `fw`",
            ),
            row(
                BuildError::Failed {
                    package: "fw".into(),
                    xtensa_without_build_std: None,
                    no_core: None,
                },
                3,
                "build-failed",
                Some("fix the errors above"),
                "could not build `fw`",
            ),
            row(
                BuildError::Failed {
                    package: "fw".into(),
                    xtensa_without_build_std: None,
                    no_core: Some(NoCore {
                        target: "riscv32imc-unknown-none-elf".into(),
                        cargo: "/usr/bin/cargo".into(),
                        build_std: false,
                    }),
                },
                3,
                "build-failed",
                Some(
                    "`/usr/bin/cargo`'s toolchain has no standard library for `riscv32imc-unknown-none-elf`: `rustup target add riscv32imc-unknown-none-elf`",
                ),
                "could not build `fw`",
            ),
            row(
                BuildError::Failed {
                    package: "fw".into(),
                    xtensa_without_build_std: None,
                    no_core: Some(NoCore {
                        target: "riscv32imc-unknown-none-elf".into(),
                        cargo: "cargo".into(),
                        build_std: true,
                    }),
                },
                3,
                "build-failed",
                Some("has no library sources: install them"),
                "could not build `fw`",
            ),
            row(
                BuildError::NoExecutable {
                    package: "fw".into(),
                    bin: Some("app".into()),
                    example: None,
                },
                3,
                "no-executable",
                Some("check --bin/--example"),
                "the build of `fw` produced no executable named `app`",
            ),
            row(
                BuildError::NoExecutable {
                    package: "fw".into(),
                    bin: None,
                    example: Some("blink".into()),
                },
                3,
                "no-executable",
                Some("needs a binary"),
                "produced no executable for example `blink`",
            ),
            row(
                BuildError::SeveralExecutables {
                    package: "fw".into(),
                    names: vec!["a".into(), "b".into()],
                },
                3,
                "several-executables",
                Some("pick one with --bin a (or set `default-run`"),
                "`fw` has several binaries: a, b",
            ),
        ]);
    }
}
