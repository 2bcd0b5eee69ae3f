//! Settle once: the command line, the environment and the three config sources
//! (`[package.metadata.ota]`, `[workspace.metadata.ota]`, espflash.toml) become
//! plain values here, and nothing after this module reads the environment or a
//! clap type.
//!
//! Precedence, highest first: a flag (or its environment variable), a device's
//! own entry, the package's section, the workspace's section, espflash.toml, the
//! built-in defaults.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::bases::Bases;
use crate::error::{Error, IoError};
use crate::firmware::{BuildOptions, Project, Toolchain};
use crate::fleet::{FleetOptions, Planned};
use crate::image::ImageOptions;
use crate::sign::SigningKey;
use arduino_ota::Command;

/// The password variable when none is named.
pub const DEFAULT_PASSWORD_ENV: &str = "CARGO_OTA_PASSWORD";
/// The device port when none is set.
pub const DEFAULT_PORT: u16 = 3232;
/// How long `--verify` waits for a device to answer after its update.
pub const DEFAULT_VERIFY_TIMEOUT: Duration = Duration::from_secs(30);

/// The process environment, read once at start-up (tests build their own).
#[derive(Clone, Debug, Default)]
pub struct Environment {
    vars: BTreeMap<OsString, OsString>,
    stderr_is_terminal: bool,
    cwd: Option<PathBuf>,
}

impl Environment {
    /// This process's variables, working directory and terminal.
    pub fn from_process() -> Self {
        Environment {
            vars: std::env::vars_os().collect(),
            stderr_is_terminal: std::io::stderr().is_terminal(),
            cwd: std::env::current_dir().ok(),
        }
    }

    /// An environment with exactly these variables (for tests).
    pub fn with_vars<K: Into<OsString>, V: Into<OsString>>(
        vars: impl IntoIterator<Item = (K, V)>,
        cwd: Option<PathBuf>,
    ) -> Self {
        Environment {
            vars: vars
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            stderr_is_terminal: false,
            cwd,
        }
    }

    /// A variable's value, when set, non-empty and UTF-8.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars
            .get(OsStr::new(name))
            .and_then(|v| v.to_str())
            .filter(|v| !v.is_empty())
    }

    fn var_os(&self, name: &str) -> Option<&OsStr> {
        self.vars
            .get(OsStr::new(name))
            .map(OsString::as_os_str)
            .filter(|v| !v.is_empty())
    }

    /// The working directory.
    pub fn cwd(&self) -> Result<PathBuf, Error> {
        self.cwd.clone().ok_or(IoError::CurrentDir.into())
    }

    /// Colour on stderr by cargo's rule: CARGO_TERM_COLOR (`always`, `never`),
    /// else no NO_COLOR and a terminal.
    pub fn colour(&self) -> bool {
        match self.var("CARGO_TERM_COLOR") {
            Some("always") => true,
            Some("never") => false,
            _ => self.var("NO_COLOR").is_none() && self.stderr_is_terminal,
        }
    }

    /// `$CARGO_HOME`, else `~/.cargo`.
    pub fn cargo_home(&self) -> Option<PathBuf> {
        self.var_os("CARGO_HOME")
            .map(PathBuf::from)
            .or_else(|| self.var_os("HOME").map(|h| Path::new(h).join(".cargo")))
    }

    /// The cargo to run and what its environment says.
    pub fn toolchain(&self) -> Toolchain {
        Toolchain {
            cargo: self
                .var_os("CARGO")
                .map(OsStr::to_os_string)
                .unwrap_or_else(|| "cargo".into()),
            colour: self.colour(),
            cargo_home: self.cargo_home(),
            env_target: self.var("CARGO_BUILD_TARGET").map(str::to_string),
        }
    }
}

/// Where the firmware comes from.
#[derive(Clone, Debug)]
pub enum Firmware {
    /// Build the project.
    Build(Box<BuildJob>),
    /// `--elf`: an ELF built elsewhere.
    Elf(PathBuf),
}

/// A build, settled.
#[derive(Clone, Debug)]
pub struct BuildJob {
    /// The workspace and the firmware package in it.
    pub project: Project,
    /// What to build: the package, profile, target, binary and features asked for.
    pub options: BuildOptions,
    /// The cargo to run and what the environment says to it.
    pub toolchain: Toolchain,
    /// The directory cargo runs in.
    pub cwd: PathBuf,
    /// The profile's name (`dev`, `release`, ...).
    pub profile: String,
    /// The target triple, when one is set.
    pub target: Option<String>,
}

/// `cargo ota` (the main job), settled.
#[derive(Clone, Debug)]
pub struct MainJob {
    /// Where the ELF comes from: a build, or `--elf`.
    pub firmware: Firmware,
    /// How the ELF becomes an app image.
    pub image: ImageOptions,
    /// Upload an image without an OTA responder (`--allow-no-ota`, `ota-guard = false`).
    pub allow_no_ota: bool,
    /// The devices to update, in order.
    pub devices: Vec<Planned>,
    /// How many sessions at once, and `--verify`.
    pub fleet: FleetOptions,
    /// The images each device was last updated with (under the package's
    /// target directory): the bases of delta patches.
    pub bases: Option<Bases>,
}

/// `cargo ota image`, settled.
#[derive(Clone, Debug)]
pub struct ImageJob {
    /// Where the ELF comes from: a build, or `--elf`.
    pub firmware: Firmware,
    /// How the ELF becomes an app image.
    pub image: ImageOptions,
    /// Where to write the image (`None`: the ELF's path with `.bin` added).
    pub output: Option<PathBuf>,
    /// The key the image is signed with (`--sign`, else `signing-key`).
    pub key: Option<Arc<SigningKey>>,
}

/// `cargo ota upload`, settled.
#[derive(Clone, Debug)]
pub struct UploadJob {
    /// The image file to send.
    pub file: PathBuf,
    /// What it updates: the app (flash), or the filesystem with `--fs`.
    pub command: Command,
    /// Send it even without an OTA responder (`--allow-no-ota`, `ota-guard = false`).
    pub allow_no_ota: bool,
    /// The device's OTA slot size and where it was learnt, when known.
    pub slot: Option<(u32, String)>,
    /// The devices to update, in order.
    pub devices: Vec<Planned>,
    /// How many sessions at once, and `--verify`.
    pub fleet: FleetOptions,
    /// The bases of delta patches (inside a package: its target directory).
    pub bases: Option<Bases>,
}

#[cfg(feature = "cli")]
pub use resolve::{image_job, main_job, upload_job};

/// The resolution of the command line's arguments (the `cli` feature).
#[cfg(feature = "cli")]
mod resolve {
    use super::Bases;
    use super::*;
    use crate::cli::{
        AuthArgs, DevicesArgs, ImageArgs, ImageCommandArgs, MainArgs, SessionArgs, SignArgs,
        UploadArgs,
    };
    use crate::config::{self, Config, Settings};
    use crate::encode::{Compress, Delta};
    use crate::error::UsageError;
    use crate::fleet;
    use crate::fleet::Verify;
    use crate::image::{self, ChipChoice};
    use crate::report::Reporter;
    use crate::session::verify::{REBOOT_GRACE, REBOOT_GRACE_ENV};
    use crate::session::{Password, Target, UploadOptions};
    use crate::sign::{self, KeyChoice, KeySource};

    /// What `--sign`/`--no-sign` say: `Some(None)` signs nothing,
    /// `Some(Some(key))` signs with that key; `None` leaves it to the config.
    type SignFlag = Option<Option<KeyChoice>>;

    /// `--sign KEY` (a path relative to the working directory, or env:VAR) or
    /// `--no-sign`. A key on the command line itself is refused.
    fn sign_flag(args: &SignArgs, cwd: &Path) -> Result<SignFlag, Error> {
        if args.no_sign {
            return Ok(Some(None));
        }
        let Some(value) = &args.sign else {
            return Ok(None);
        };
        let origin = "--sign".to_string();
        if sign::looks_like_a_key(value) {
            return Err(UsageError::SigningKeyInline { origin }.into());
        }
        Ok(Some(Some(KeyChoice {
            source: sign::key_source(value, cwd),
            origin,
        })))
    }

    /// Signing keys, each source read once (and warned about once).
    struct Keys<'a> {
        env: &'a Environment,
        rep: &'a Reporter,
        loaded: BTreeMap<KeySource, Arc<SigningKey>>,
    }

    impl<'a> Keys<'a> {
        fn new(env: &'a Environment, rep: &'a Reporter) -> Self {
            Keys {
                env,
                rep,
                loaded: BTreeMap::new(),
            }
        }

        /// The key `choice` names, read from its file or variable. The text is
        /// never shown; a file others may read is warned about.
        fn load(&mut self, choice: &KeyChoice) -> Result<Arc<SigningKey>, Error> {
            if let Some(k) = self.loaded.get(&choice.source) {
                return Ok(k.clone());
            }
            let origin = || choice.origin.clone();
            let pem = match &choice.source {
                KeySource::File(path) => {
                    let text =
                        std::fs::read_to_string(path).map_err(|e| UsageError::SigningKeyFile {
                            path: path.clone(),
                            origin: origin(),
                            detail: e.to_string(),
                        })?;
                    if let Some(mode) = others_may_read(path) {
                        self.rep.warn(format!(
                            "the signing key `{p}` can be read by other users (mode {mode:03o}): chmod 600 {p}",
                            p = path.display()
                        ));
                    }
                    text
                }
                KeySource::Env(var) => self
                    .env
                    .var(var)
                    .ok_or_else(|| UsageError::SigningKeyEnvUnset {
                        var: var.clone(),
                        origin: origin(),
                    })?
                    .to_string(),
            };
            let key = SigningKey::new(&pem, choice.source.clone()).map_err(|detail| {
                UsageError::SigningKeyInvalid {
                    source_name: choice.source.to_string(),
                    origin: origin(),
                    detail,
                }
            })?;
            let key = Arc::new(key);
            self.loaded.insert(choice.source.clone(), key.clone());
            Ok(key)
        }

        /// The key a flag or the config chooses, if any.
        fn choose(
            &mut self,
            flag: &SignFlag,
            configured: &Option<KeyChoice>,
        ) -> Result<Option<Arc<SigningKey>>, Error> {
            match flag.as_ref().unwrap_or(configured) {
                Some(choice) => self.load(choice).map(Some),
                None => Ok(None),
            }
        }
    }

    /// The file's permission bits when group or others may read it (unix).
    fn others_may_read(path: &Path) -> Option<u32> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
            (mode & 0o077 != 0).then_some(mode)
        }
        #[cfg(not(unix))]
        {
            let _ = path;
            None
        }
    }

    /// The project (when there is one) and what its files configure.
    struct Context {
        cwd: PathBuf,
        project: Option<Project>,
        config: Config,
        toolchain: Toolchain,
    }

    /// Is there a Cargo.toml here or above?
    fn inside_a_package(cwd: &Path) -> bool {
        cwd.ancestors().any(|d| d.join("Cargo.toml").is_file())
    }

    /// Read the configuration of `project`: its section, its workspace's, espflash.toml.
    pub(super) fn load_config(project: &Project, rep: &Reporter) -> Result<Config, Error> {
        let mut warnings = Vec::new();
        let package = config::read_section(
            &project.package.metadata,
            project.manifest_path(),
            "package",
            &mut warnings,
        )?;
        let ws_manifest = project.workspace_root().join("Cargo.toml");
        let workspace = config::read_section(
            &project.metadata.workspace_metadata,
            &ws_manifest,
            "workspace",
            &mut warnings,
        )?;
        let espflash_toml = [project.package_dir(), project.workspace_root()]
            .iter()
            .map(|d| d.join("espflash.toml"))
            .find(|p| p.is_file());
        let espflash = match &espflash_toml {
            Some(p) => Some(config::read_espflash_toml(p)?),
            None => None,
        };
        for w in &warnings {
            rep.warn(w);
        }
        let mut config = Config::merge(package, workspace, espflash);
        config.warnings = warnings;
        config.files = std::iter::once(project.manifest_path().to_path_buf())
            .chain(espflash_toml)
            .collect();
        Ok(config)
    }

    /// The project and its config. Without `require`, a directory with no
    /// Cargo.toml gives an empty config (for `--elf` and `upload`).
    fn context(
        build: &BuildOptions,
        require: bool,
        env: &Environment,
        rep: &Reporter,
    ) -> Result<Context, Error> {
        let cwd = env.cwd()?;
        let toolchain = env.toolchain();
        if !require && build.manifest_path.is_none() && !inside_a_package(&cwd) {
            return Ok(Context {
                cwd,
                project: None,
                config: Config::default(),
                toolchain,
            });
        }
        let project = crate::firmware::load_project(build, &cwd, &toolchain)?;
        let config = load_config(&project, rep)?;
        Ok(Context {
            cwd,
            project: Some(project),
            config,
            toolchain,
        })
    }

    /// The firmware (the build, or the `--elf` given) and the image settings,
    /// with the target triple the build is for settled once for both.
    fn firmware_and_image(
        ctx: &Context,
        build: &BuildOptions,
        args: &ImageArgs,
    ) -> (Firmware, ImageOptions) {
        let target = crate::firmware::build_target(build, &ctx.cwd, &ctx.toolchain);
        let image = image_options(ctx, args, target.clone());
        let firmware = match &args.elf {
            Some(elf) => Firmware::Elf(elf.clone()),
            None => Firmware::Build(Box::new(BuildJob {
                project: ctx.project.clone().expect("a project when building"),
                options: build.clone(),
                target,
                profile: build.profile_name(),
                toolchain: ctx.toolchain.clone(),
                cwd: ctx.cwd.clone(),
            })),
        };
        (firmware, image)
    }

    /// The image settings: flags over the config files; the target triple the
    /// build is for.
    fn image_options(ctx: &Context, args: &ImageArgs, target: Option<String>) -> ImageOptions {
        let s = &ctx.config.settings;
        let manifest = ctx
            .project
            .as_ref()
            .map(|p| p.manifest_path().display().to_string())
            .unwrap_or_default();
        let chip = match (&args.chip, &s.chip) {
            (Some(c), _) => Some(ChipChoice {
                name: c.clone(),
                source: "--chip".into(),
            }),
            (None, Some(c)) => Some(ChipChoice {
                name: c.clone(),
                source: format!("`chip` in {manifest}"),
            }),
            _ => None,
        };
        ImageOptions {
            chip,
            target_triple: target,
            flash_mode: args.flash_mode.or(s.flash_mode),
            flash_size: args.flash_size.or(s.flash_size),
            flash_freq: args.flash_freq.or(s.flash_freq),
            partition_table: args.partition_table.clone().or(s.partition_table.clone()),
            target_app_partition: args
                .target_app_partition
                .clone()
                .or(s.target_app_partition.clone()),
            partition_size: args.partition_size,
            min_chip_rev: args.min_chip_rev.or(s.min_chip_rev).unwrap_or(0),
            check_app_descriptor: !args.ignore_app_descriptor,
            signed: false,
        }
    }

    /// The command line's settings, as the top layer.
    fn cli_layer(devices: &DevicesArgs, auth: &AuthArgs, session: &SessionArgs) -> Settings {
        Settings {
            port: devices.port,
            host_ip: devices.host_ip,
            host_port: devices.host_port,
            password_env: auth.password_env.clone(),
            auth: auth.auth,
            timeout: session.timeout.map(|d| d.as_secs_f64()),
            retries: session.retries,
            compress: match (session.compress, session.no_compress) {
                (true, _) => Some(Compress::Always),
                (_, true) => Some(Compress::Never),
                _ => None,
            },
            delta: session.no_delta.then_some(Delta::Never),
            ..Settings::default()
        }
    }

    fn upload_options(
        s: &Settings,
        auth: &AuthArgs,
        command: Command,
        env: &Environment,
    ) -> UploadOptions {
        let password_env = s
            .password_env
            .clone()
            .unwrap_or_else(|| DEFAULT_PASSWORD_ENV.to_string());
        let password = auth
            .password
            .as_ref()
            .map(|p| Password::new(p.as_str()).from("--password"))
            .or_else(|| {
                env.var(&password_env).map(|p| {
                    Password::new(p).from(format!("the environment variable {password_env}"))
                })
            })
            .or_else(|| {
                s.password
                    .as_ref()
                    .map(|p| Password::new(p.as_str()).from("the configured `password`"))
            });
        let defaults = UploadOptions::default();
        UploadOptions {
            command,
            password,
            password_env,
            auth: s.auth.unwrap_or_default(),
            force_auth: auth.force_auth,
            host_ip: s.host_ip,
            host_port: s.host_port,
            timeout: s
                .timeout
                .map(Duration::from_secs_f64)
                .unwrap_or(defaults.timeout),
            retries: s.retries.unwrap_or(defaults.retries),
        }
    }

    /// Which devices, each with its port, password and auth.
    #[allow(clippy::too_many_arguments)]
    fn devices(
        config: &Config,
        devices: &DevicesArgs,
        auth: &AuthArgs,
        session: &SessionArgs,
        command: Command,
        env: &Environment,
        sign: &SignFlag,
        keys: &mut Keys,
    ) -> Result<Vec<Planned>, Error> {
        let cli = cli_layer(devices, auth, session);
        let base = cli.clone().or(&config.settings);
        let mut names: Vec<String> = if devices.all {
            config.devices.keys().cloned().collect()
        } else {
            config.expand(&devices.devices)?
        };
        if devices.all && names.is_empty() {
            return Err(UsageError::NoDevicesConfigured.into());
        }
        if names.is_empty() && devices.host.is_none() {
            names = config.expand(&config.default_devices)?;
            if names.is_empty() {
                return Err(UsageError::NoDevice.into());
            }
        }
        let mut out = Vec::new();
        if let Some(host) = &devices.host {
            out.push(Planned {
                target: Target {
                    name: host.clone(),
                    host: host.clone(),
                    port: base.port.unwrap_or(DEFAULT_PORT),
                },
                options: upload_options(&base, auth, command, env),
                compress: base.compress.unwrap_or_default(),
                delta: base.delta.unwrap_or_default(),
                key: keys.choose(sign, &base.signing_key)?,
            });
        }
        for name in names {
            let entry = &config.devices[&name];
            let layer = Settings {
                port: entry.port,
                password_env: entry.password_env.clone(),
                password: entry.password.clone(),
                auth: entry.auth,
                compress: entry.compress,
                delta: entry.delta,
                signing_key: entry.signing_key.clone(),
                ..Settings::default()
            };
            let merged = cli.clone().or(&layer.or(&config.settings));
            out.push(Planned {
                target: Target {
                    name: name.clone(),
                    host: entry.host.clone(),
                    port: merged.port.unwrap_or(DEFAULT_PORT),
                },
                options: upload_options(&merged, auth, command, env),
                compress: merged.compress.unwrap_or_default(),
                delta: merged.delta.unwrap_or_default(),
                key: keys.choose(sign, &merged.signing_key)?,
            });
        }
        Ok(out)
    }

    /// `--jobs`, `--verify` and the host-port range they need.
    fn fleet_options(
        config: &Config,
        session: &SessionArgs,
        devices: &[Planned],
        env: &Environment,
    ) -> Result<FleetOptions, Error> {
        let jobs = fleet::jobs(session.jobs, devices.len());
        if let Some(port) = devices.first().and_then(|p| p.options.host_port)
            && u32::from(port) + jobs as u32 - 1 > 65535
        {
            return Err(UsageError::HostPortRange { port, jobs }.into());
        }
        let s = &config.settings;
        let reboot_grace = match env.var(REBOOT_GRACE_ENV) {
            None => REBOOT_GRACE,
            Some(ms) => {
                Duration::from_millis(ms.trim().parse().map_err(|_| UsageError::BadEnv {
                    var: REBOOT_GRACE_ENV.into(),
                    value: ms.into(),
                    expected: "whole milliseconds".into(),
                })?)
            }
        };
        let verify = (session.verify || s.verify == Some(true)).then(|| Verify {
            timeout: session
                .verify_timeout
                .or(s.verify_timeout.map(Duration::from_secs_f64))
                .unwrap_or(DEFAULT_VERIFY_TIMEOUT),
            reboot_grace,
        });
        Ok(FleetOptions { jobs, verify })
    }

    /// `cargo ota [OPTIONS]`. The devices are settled before anything is built: a
    /// typo in a device name should not cost a build.
    pub fn main_job(args: &MainArgs, env: &Environment, rep: &Reporter) -> Result<MainJob, Error> {
        let ctx = context(&args.build, args.image.elf.is_none(), env, rep)?;
        let sign = sign_flag(&args.image.sign, &ctx.cwd)?;
        let devices = devices(
            &ctx.config,
            &args.devices,
            &args.auth,
            &args.session,
            Command::Flash,
            env,
            &sign,
            &mut Keys::new(env, rep),
        )?;
        let fleet = fleet_options(&ctx.config, &args.session, &devices, env)?;
        let (firmware, mut image) = firmware_and_image(&ctx, &args.build, &args.image);
        image.signed = devices.iter().any(|p| p.key.is_some());
        Ok(MainJob {
            firmware,
            image,
            allow_no_ota: args.image.allow_no_ota || ctx.config.settings.ota_guard == Some(false),
            devices,
            fleet,
            bases: bases(&ctx),
        })
    }

    /// `cargo ota image`.
    pub fn image_job(
        args: &ImageCommandArgs,
        env: &Environment,
        rep: &Reporter,
    ) -> Result<ImageJob, Error> {
        let ctx = context(&args.build, args.image.elf.is_none(), env, rep)?;
        let sign = sign_flag(&args.image.sign, &ctx.cwd)?;
        let key = Keys::new(env, rep).choose(&sign, &ctx.config.settings.signing_key)?;
        let (firmware, mut image) = firmware_and_image(&ctx, &args.build, &args.image);
        image.signed = key.is_some();
        Ok(ImageJob {
            firmware,
            image,
            output: args.output.clone(),
            key,
        })
    }

    /// `cargo ota upload FILE`. Inside a package, its configuration applies
    /// (ports, passwords, devices, the partition table).
    pub fn upload_job(
        args: &UploadArgs,
        env: &Environment,
        rep: &Reporter,
    ) -> Result<UploadJob, Error> {
        let command = if args.fs {
            Command::Filesystem
        } else {
            Command::Flash
        };
        let build = BuildOptions {
            manifest_path: args.manifest_path.clone(),
            ..Default::default()
        };
        let ctx = context(&build, false, env, rep)?;
        let sign = sign_flag(&args.sign, &ctx.cwd)?;
        let devices = devices(
            &ctx.config,
            &args.devices,
            &args.auth,
            &args.session,
            command,
            env,
            &sign,
            &mut Keys::new(env, rep),
        )?;
        let fleet = fleet_options(&ctx.config, &args.session, &devices, env)?;
        let s = &ctx.config.settings;
        let slot = match (args.partition_size, &s.partition_table) {
            _ if command != Command::Flash => None,
            (Some(size), _) => Some((size, "--partition-size".to_string())),
            (None, Some(table)) => {
                let check = image::pick_slot(table, s.target_app_partition.as_deref(), &mut |w| {
                    rep.warn(w)
                })?;
                Some((
                    check.partition_size,
                    format!("OTA slot `{}` of {}", check.partition, table.display()),
                ))
            }
            (None, None) => None,
        };
        Ok(UploadJob {
            file: args.file.clone(),
            command,
            allow_no_ota: args.allow_no_ota || s.ota_guard == Some(false),
            slot,
            devices,
            fleet,
            bases: bases(&ctx),
        })
    }

    /// The store of delta bases: in the package's target directory.
    fn bases(ctx: &Context) -> Option<Bases> {
        ctx.project
            .as_ref()
            .map(|p| Bases::in_target_dir(p.metadata.target_directory.as_std_path()))
    }
}

/// The configuration of `project` as the main job reads it (its section, its
/// workspace's, espflash.toml): for `cargo ota init`.
#[cfg(feature = "cli")]
pub fn package_config(
    project: &Project,
    rep: &crate::report::Reporter,
) -> Result<crate::config::Config, Error> {
    resolve::load_config(project, rep)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> Environment {
        Environment::with_vars(vars.iter().copied(), None)
    }

    #[test]
    fn colour_follows_cargo() {
        // Not a terminal: no colour unless asked for.
        assert!(!env(&[]).colour());
        assert!(env(&[("CARGO_TERM_COLOR", "always")]).colour());
        assert!(!env(&[("CARGO_TERM_COLOR", "never"), ("NO_COLOR", "")]).colour());
        let mut tty = env(&[]);
        tty.stderr_is_terminal = true;
        assert!(tty.colour());
        tty.vars.insert("NO_COLOR".into(), "1".into());
        assert!(!tty.colour());
        // An empty NO_COLOR does not count (no-color.org).
        tty.vars.insert("NO_COLOR".into(), "".into());
        assert!(tty.colour());
    }

    #[test]
    fn toolchain_from_the_environment() {
        let t = env(&[]).toolchain();
        assert_eq!(t.cargo, "cargo");
        assert_eq!(t.cargo_home, None);
        assert_eq!(t.env_target, None);
        let t = env(&[
            ("CARGO", "/opt/cargo"),
            ("HOME", "/home/u"),
            ("CARGO_BUILD_TARGET", "riscv32imc-unknown-none-elf"),
        ])
        .toolchain();
        assert_eq!(t.cargo, "/opt/cargo");
        assert_eq!(t.cargo_home, Some(PathBuf::from("/home/u/.cargo")));
        assert_eq!(t.env_target.as_deref(), Some("riscv32imc-unknown-none-elf"));
        let t = env(&[
            ("CARGO_HOME", "/c"),
            ("HOME", "/home/u"),
            ("CARGO_BUILD_TARGET", ""),
        ])
        .toolchain();
        assert_eq!(t.cargo_home, Some(PathBuf::from("/c")));
        assert_eq!(t.env_target, None, "an empty variable is unset");
    }

    #[test]
    fn no_working_directory_is_an_io_error() {
        let e = env(&[]).cwd().unwrap_err();
        assert_eq!(e.exit_code(), crate::error::exit::IO);
    }
}
