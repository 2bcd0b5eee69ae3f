//! The firmware: find the package with `cargo metadata`, build it with cargo's JSON
//! messages, and pick the one executable artifact.

use std::ffi::OsString;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use cargo_metadata::{Message, Metadata, MetadataCommand, Package};

use crate::error::{BuildError, Error};

/// Cargo options passed through to `cargo build` (grouped like cargo's help; with
/// the `cli` feature they are the command line's "Cargo options").
#[derive(Clone, Debug, Default)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
#[cfg_attr(feature = "cli", command(next_help_heading = "Cargo options"))]
pub struct BuildOptions {
    /// Build with the release profile.
    #[cfg_attr(feature = "cli", arg(short = 'r', long))]
    pub release: bool,
    /// Build with the given profile.
    #[cfg_attr(
        feature = "cli",
        arg(long, value_name = "NAME", conflicts_with = "release")
    )]
    pub profile: Option<String>,
    /// Package with the firmware.
    #[cfg_attr(feature = "cli", arg(short = 'p', long, value_name = "SPEC"))]
    pub package: Option<String>,
    /// Build only this binary.
    #[cfg_attr(
        feature = "cli",
        arg(long, value_name = "NAME", conflicts_with = "example")
    )]
    pub bin: Option<String>,
    /// Build only this example.
    #[cfg_attr(feature = "cli", arg(long, value_name = "NAME"))]
    pub example: Option<String>,
    /// Features to activate (comma-separated or repeated).
    #[cfg_attr(
        feature = "cli",
        arg(short = 'F', long, value_name = "FEATURES", value_delimiter = ',')
    )]
    pub features: Vec<String>,
    /// Activate all features.
    #[cfg_attr(feature = "cli", arg(long))]
    pub all_features: bool,
    /// Do not activate the default feature.
    #[cfg_attr(feature = "cli", arg(long))]
    pub no_default_features: bool,
    /// Build for this target triple [default: CARGO_BUILD_TARGET, build.target].
    #[cfg_attr(feature = "cli", arg(long, value_name = "TRIPLE"))]
    pub target: Option<String>,
    /// Directory for all generated artifacts.
    #[cfg_attr(feature = "cli", arg(long, value_name = "DIR"))]
    pub target_dir: Option<PathBuf>,
    /// Path to Cargo.toml.
    #[cfg_attr(feature = "cli", arg(long, value_name = "PATH"))]
    pub manifest_path: Option<PathBuf>,
    /// Require Cargo.lock to be up to date.
    #[cfg_attr(feature = "cli", arg(long))]
    pub locked: bool,
    /// Require Cargo.lock and cache to be up to date.
    #[cfg_attr(feature = "cli", arg(long))]
    pub frozen: bool,
    /// Run without accessing the network.
    #[cfg_attr(feature = "cli", arg(long))]
    pub offline: bool,
    /// Unstable (nightly-only) flags to cargo, e.g. -Zbuild-std=core.
    #[cfg_attr(feature = "cli", arg(short = 'Z', value_name = "FLAG"))]
    pub unstable: Vec<String>,
}

impl BuildOptions {
    /// The profile's name: `--profile`, else `release` or `dev`.
    pub fn profile_name(&self) -> String {
        self.profile
            .clone()
            .unwrap_or_else(|| if self.release { "release" } else { "dev" }.to_string())
    }
}

/// The cargo to run and what its environment says, read once by
/// [`crate::settings::Environment`].
#[derive(Clone, Debug)]
pub struct Toolchain {
    /// `$CARGO`, else `cargo`.
    pub cargo: OsString,
    /// Render cargo's diagnostics in colour (cargo's own rule: CARGO_TERM_COLOR,
    /// else NO_COLOR, else whether stderr is a terminal).
    pub colour: bool,
    /// `$CARGO_HOME`, else `~/.cargo`.
    pub cargo_home: Option<PathBuf>,
    /// `$CARGO_BUILD_TARGET`.
    pub env_target: Option<String>,
}

impl Default for Toolchain {
    fn default() -> Self {
        Toolchain {
            cargo: "cargo".into(),
            colour: false,
            cargo_home: None,
            env_target: None,
        }
    }
}

/// The selected package and its workspace.
#[derive(Clone, Debug)]
pub struct Project {
    /// What `cargo metadata` says of the workspace.
    pub metadata: Metadata,
    /// The firmware package, selected from the workspace.
    pub package: Package,
}

impl Project {
    /// The firmware package's `Cargo.toml`.
    pub fn manifest_path(&self) -> &Path {
        self.package.manifest_path.as_std_path()
    }

    /// The directory that holds the firmware package's `Cargo.toml`.
    pub fn package_dir(&self) -> &Path {
        self.manifest_path().parent().unwrap_or(Path::new("."))
    }

    /// The workspace's root directory (where its `Cargo.toml` and `target/` are).
    pub fn workspace_root(&self) -> &Path {
        self.metadata.workspace_root.as_std_path()
    }
}

/// Run `cargo metadata` and select the package: `-p`, else the one whose directory
/// holds the current directory (or `--manifest-path`), else the only member.
pub fn load_project(
    opts: &BuildOptions,
    cwd: &Path,
    toolchain: &Toolchain,
) -> Result<Project, BuildError> {
    let mut cmd = MetadataCommand::new();
    cmd.cargo_path(&toolchain.cargo).no_deps().current_dir(cwd);
    if let Some(m) = &opts.manifest_path {
        cmd.manifest_path(m);
    }
    let mut other = Vec::new();
    for (on, flag) in [
        (opts.locked, "--locked"),
        (opts.frozen, "--frozen"),
        (opts.offline, "--offline"),
    ] {
        if on {
            other.push(flag.to_string());
        }
    }
    cmd.other_options(other);
    let metadata = cmd.exec().map_err(|e| {
        let detail = match &e {
            // cargo's own "error: " would follow our "cannot read ...: ".
            cargo_metadata::Error::CargoMetadata { stderr } => {
                let text = stderr.trim();
                text.strip_prefix("error: ").unwrap_or(text).to_string()
            }
            other => other.to_string(),
        };
        // Only a missing manifest means "not in a package"; anything else (a TOML
        // syntax error, a bad key) is for cargo's own words to explain.
        BuildError::Metadata {
            no_manifest: detail.contains("could not find `Cargo.toml`"),
            detail,
        }
    })?;
    let members: Vec<&Package> = metadata.workspace_packages();
    let names = || members.iter().map(|p| p.name.to_string()).collect();
    let chosen = if let Some(name) = &opts.package {
        members
            .iter()
            .find(|p| p.name.as_str() == name)
            .ok_or_else(|| BuildError::PackageNotFound {
                name: name.clone(),
                packages: names(),
            })?
    } else {
        let anchor = match &opts.manifest_path {
            Some(m) => {
                let m = if m.is_absolute() {
                    m.clone()
                } else {
                    cwd.join(m)
                };
                m.parent().map(Path::to_path_buf).unwrap_or_default()
            }
            None => cwd.to_path_buf(),
        };
        let anchor = anchor.canonicalize().unwrap_or(anchor);
        let mut holding: Vec<&&Package> = members
            .iter()
            .filter(|p| {
                p.manifest_path
                    .parent()
                    .is_some_and(|d| anchor.starts_with(d.as_std_path()))
            })
            .collect();
        holding.sort_by_key(|p| std::cmp::Reverse(p.manifest_path.as_str().len()));
        match (holding.first(), members.as_slice()) {
            (Some(p), _) => **p,
            (None, [only]) => only,
            _ => {
                return Err(BuildError::AmbiguousPackage { packages: names() });
            }
        }
    };
    Ok(Project {
        package: (*chosen).clone(),
        metadata,
    })
}

/// `[build] target` from the cargo config files cargo would read from `cwd`.
fn config_target(cwd: &Path, cargo_home: Option<&Path>) -> Option<String> {
    let mut files: Vec<PathBuf> = cwd
        .ancestors()
        .flat_map(|d| [d.join(".cargo/config.toml"), d.join(".cargo/config")])
        .collect();
    if let Some(home) = cargo_home {
        files.push(home.join("config.toml"));
        files.push(home.join("config"));
    }
    files.iter().find_map(|f| {
        let text = std::fs::read_to_string(f).ok()?;
        let v: toml::Value = toml::from_str(&text).ok()?;
        match v.get("build")?.get("target")? {
            toml::Value::String(s) => Some(s.clone()),
            toml::Value::Array(a) if a.len() == 1 => a[0].as_str().map(str::to_string),
            _ => None,
        }
    })
}

/// Does the cargo config enable `build-std`?
fn config_build_std(cwd: &Path) -> bool {
    cwd.ancestors()
        .flat_map(|d| [d.join(".cargo/config.toml"), d.join(".cargo/config")])
        .any(|f| {
            std::fs::read_to_string(f)
                .ok()
                .and_then(|t| toml::from_str::<toml::Value>(&t).ok())
                .is_some_and(|v| v.get("unstable").and_then(|u| u.get("build-std")).is_some())
        })
}

/// The target triple the build is for: `--target`, `CARGO_BUILD_TARGET`, then
/// `build.target` in the cargo config files.
pub fn build_target(opts: &BuildOptions, cwd: &Path, toolchain: &Toolchain) -> Option<String> {
    opts.target
        .clone()
        .or_else(|| toolchain.env_target.clone())
        .or_else(|| config_target(cwd, toolchain.cargo_home.as_deref()))
}

/// A built firmware.
#[derive(Clone, Debug)]
pub struct Built {
    /// The executable cargo reported (an ELF), under the target directory.
    pub elf: PathBuf,
    /// The binary or example name.
    pub name: String,
    /// A partition table that esp-idf-sys generated during the build, if any.
    pub idf_partition_table: Option<PathBuf>,
}

/// Run `cargo build` with JSON messages. The compiler's diagnostics, rendered as
/// cargo renders them, go to `diagnostic` (the reporter); cargo's own status lines
/// go straight to stderr, where cargo draws its progress.
pub fn build(
    project: &Project,
    opts: &BuildOptions,
    target: Option<&str>,
    cwd: &Path,
    toolchain: &Toolchain,
    diagnostic: &(dyn Fn(String) + Sync),
) -> Result<Built, Error> {
    let mut cmd = Command::new(&toolchain.cargo);
    cmd.current_dir(cwd).arg("build");
    // Diagnostics are rendered in colour only where cargo itself would colour
    // them: CARGO_TERM_COLOR, else NO_COLOR, else whether stderr is a terminal.
    cmd.arg(if toolchain.colour {
        "--message-format=json-diagnostic-rendered-ansi"
    } else {
        "--message-format=json"
    });
    cmd.args(["--package", project.package.name.as_str()]);
    if let Some(p) = &opts.profile {
        cmd.args(["--profile", p]);
    } else if opts.release {
        cmd.arg("--release");
    }
    if let Some(b) = &opts.bin {
        cmd.args(["--bin", b]);
    }
    if let Some(e) = &opts.example {
        cmd.args(["--example", e]);
    }
    if !opts.features.is_empty() {
        cmd.args(["--features", &opts.features.join(",")]);
    }
    if opts.all_features {
        cmd.arg("--all-features");
    }
    if opts.no_default_features {
        cmd.arg("--no-default-features");
    }
    if let Some(t) = &opts.target {
        cmd.args(["--target", t]);
    }
    if let Some(d) = &opts.target_dir {
        cmd.arg("--target-dir").arg(d);
    }
    if let Some(m) = &opts.manifest_path {
        cmd.arg("--manifest-path").arg(m);
    }
    for (on, flag) in [
        (opts.locked, "--locked"),
        (opts.frozen, "--frozen"),
        (opts.offline, "--offline"),
    ] {
        if on {
            cmd.arg(flag);
        }
    }
    for z in &opts.unstable {
        cmd.arg(format!("-Z{z}"));
    }
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .stdin(Stdio::null());
    let mut child = cmd.spawn().map_err(|source| BuildError::CannotRunCargo {
        cargo: toolchain.cargo.to_string_lossy().into_owned(),
        source,
    })?;

    let stdout = child.stdout.take().expect("piped");
    let child = Mutex::new(child);
    let done = AtomicBool::new(false);
    let (read, status) = std::thread::scope(|scope| {
        // Ctrl-C: stop cargo too (a terminal's Ctrl-C reaches it anyway; a
        // signal to cargo-ota alone would not).
        scope.spawn(|| {
            while !done.load(Ordering::SeqCst) {
                if crate::interrupt::wait(Duration::from_millis(100)) {
                    let _ = child.lock().unwrap_or_else(|e| e.into_inner()).kill();
                    break;
                }
            }
        });
        let read = read_build_messages(project, stdout, diagnostic);
        let status = child.lock().unwrap_or_else(|e| e.into_inner()).wait();
        done.store(true, Ordering::SeqCst);
        (read, status)
    });
    if crate::interrupt::requested() {
        return Err(Error::Interrupted);
    }
    let BuildMessages {
        executables,
        idf_partition_table,
        success,
        no_core,
    } = read;
    let status = status.map_err(|source| BuildError::CargoDidNotFinish { source })?;
    if !status.success() || success == Some(false) {
        let xtensa = target.is_some_and(|t| t.starts_with("xtensa-"));
        let has_build_std =
            opts.unstable.iter().any(|z| z.starts_with("build-std")) || config_build_std(cwd);
        return Err(Error::from(BuildError::Failed {
            package: project.package.name.to_string(),
            xtensa_without_build_std: (xtensa && !has_build_std)
                .then(|| target.unwrap_or_default().to_string()),
            no_core: no_core.then(|| crate::error::NoCore {
                target: target.unwrap_or("the host").to_string(),
                cargo: toolchain.cargo.to_string_lossy().into_owned(),
                build_std: has_build_std,
            }),
        }));
    }
    let wanted: Vec<&(String, String, PathBuf)> = executables
        .iter()
        .filter(|(name, kind, _)| match (&opts.bin, &opts.example) {
            (Some(b), _) => name == b && kind == "bin",
            (None, Some(e)) => name == e && kind == "example",
            (None, None) => kind == "bin",
        })
        .collect();
    let default_run: Vec<&(String, String, PathBuf)> = match &project.package.default_run {
        Some(d) if wanted.len() > 1 => wanted.iter().copied().filter(|(n, _, _)| n == d).collect(),
        _ => wanted,
    };
    match default_run.as_slice() {
        [(name, _, elf)] => Ok(Built {
            elf: elf.clone(),
            name: name.clone(),
            idf_partition_table,
        }),
        [] => Err(Error::from(BuildError::NoExecutable {
            package: project.package.name.to_string(),
            bin: opts.bin.clone(),
            example: opts.example.clone(),
        })),
        many => Err(Error::from(BuildError::SeveralExecutables {
            package: project.package.name.to_string(),
            names: many.iter().map(|(n, _, _)| n.clone()).collect(),
        })),
    }
}

/// What cargo's JSON messages say: the package's executables (name, kind, path),
/// a partition table esp-idf-sys generated, and whether the build finished well.
struct BuildMessages {
    executables: Vec<(String, String, PathBuf)>,
    idf_partition_table: Option<PathBuf>,
    success: Option<bool>,
    /// The compiler could not find `core` (or `alloc`, `std`) for the target: no
    /// standard library for it in this toolchain.
    no_core: bool,
}

/// Read cargo's messages until it closes stdout; diagnostics go to `diagnostic`
/// as cargo renders them.
fn read_build_messages(
    project: &Project,
    stdout: std::process::ChildStdout,
    diagnostic: &(dyn Fn(String) + Sync),
) -> BuildMessages {
    let mut executables: Vec<(String, String, PathBuf)> = Vec::new();
    let mut idf_partition_table = None;
    let mut success = None;
    let mut no_core = false;
    for message in Message::parse_stream(BufReader::new(stdout)) {
        let Ok(message) = message else { continue };
        match message {
            Message::CompilerMessage(m) => {
                // E0463 for the standard library's own crates.
                no_core |= ["core", "alloc", "std"]
                    .iter()
                    .any(|c| m.message.message == format!("can't find crate for `{c}`"));
                if let Some(rendered) = &m.message.rendered {
                    let text = rendered.strip_suffix('\n').unwrap_or(rendered);
                    diagnostic(text.to_string());
                }
            }
            Message::CompilerArtifact(a) => {
                if a.package_id == project.package.id
                    && let Some(exe) = a.executable
                {
                    let kind = a
                        .target
                        .kind
                        .first()
                        .map(|k| k.to_string())
                        .unwrap_or_default();
                    executables.push((a.target.name.clone(), kind, exe.into_std_path_buf()));
                }
            }
            Message::BuildScriptExecuted(s) if s.package_id.repr.contains("esp-idf-sys") => {
                let table = s
                    .out_dir
                    .as_std_path()
                    .join("build/partition_table/partition-table.bin");
                if table.is_file() {
                    idf_partition_table = Some(table);
                }
            }
            Message::BuildFinished(f) => success = Some(f.success),
            Message::TextLine(line) => {
                diagnostic(line);
            }
            _ => {}
        }
    }
    BuildMessages {
        executables,
        idf_partition_table,
        success,
        no_core,
    }
}
