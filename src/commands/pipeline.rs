//! The main job: project → config → firmware (build or `--elf`) → image → plan →
//! upload sessions. `cargo ota image` stops after the image; `cargo ota upload`
//! starts from a file.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use indicatif::HumanBytes;
use serde_json::json;

use super::read_image;
use crate::cli::{CargoArgs, ImageArgs, ImageCommandArgs, MainArgs, SessionArgs, UploadArgs};
use crate::config::{self, Config};
use crate::error::Error;
use crate::firmware::{self, BuildOptions, Project};
use crate::fleet;
use crate::image::{self, AppImage, ChipChoice, ImageOptions};
use crate::plan::{self, Planned};
use crate::report::{Reporter, SummaryRow};
use arduino_ota::Command;

/// How long `--verify` waits for a device to answer after its update.
const DEFAULT_VERIFY_TIMEOUT: Duration = Duration::from_secs(30);

/// The project (when there is one) and what its files configure.
pub struct Context {
    pub cwd: PathBuf,
    pub project: Option<Project>,
    pub config: Config,
}

fn current_dir() -> Result<PathBuf, Error> {
    std::env::current_dir()
        .map_err(|e| Error::usage(format!("cannot read the current directory: {e}"), None))
}

/// Is there a Cargo.toml here or above?
fn inside_a_package(cwd: &Path) -> bool {
    cwd.ancestors().any(|d| d.join("Cargo.toml").is_file())
}

/// Read the configuration of `project`: its section, its workspace's, espflash.toml.
pub fn load_config(project: &Project, rep: &Reporter) -> Result<Config, Error> {
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

/// Load the project and its config. Without `require`, a directory with no
/// Cargo.toml gives an empty config (for `--elf` and `upload`).
pub fn load_context(cargo: &CargoArgs, require: bool, rep: &Reporter) -> Result<Context, Error> {
    let cwd = current_dir()?;
    if !require && cargo.manifest_path.is_none() && !inside_a_package(&cwd) {
        return Ok(Context {
            cwd,
            project: None,
            config: Config::default(),
        });
    }
    let project = firmware::load_project(&BuildOptions::from(cargo), &cwd)?;
    let config = load_config(&project, rep)?;
    Ok(Context {
        cwd,
        project: Some(project),
        config,
    })
}

/// Build the firmware (or take `--elf`); returns the ELF, the target triple and a
/// partition table esp-idf-sys generated, if any.
fn firmware(
    ctx: &Context,
    cargo: &CargoArgs,
    image: &ImageArgs,
    rep: &Reporter,
) -> Result<(PathBuf, Option<String>, Option<PathBuf>), Error> {
    let opts = BuildOptions::from(cargo);
    let target = firmware::build_target(&opts, &ctx.cwd);
    if let Some(elf) = &image.elf {
        return Ok((elf.clone(), target, None));
    }
    let project = ctx.project.as_ref().expect("a project when building");
    let profile = cargo
        .profile
        .clone()
        .unwrap_or_else(|| if cargo.release { "release" } else { "dev" }.to_string());
    rep.status(
        "Building",
        format!(
            "{} ({profile}{})",
            project.package.name,
            target
                .as_deref()
                .map(|t| format!(", {t}"))
                .unwrap_or_default()
        ),
    );
    let built = firmware::build(project, &opts, target.as_deref(), &ctx.cwd)?;
    rep.json(json!({
        "reason": "build-finished",
        "package": project.package.name.as_str(),
        "binary": built.name,
        "target": target,
        "profile": profile,
        "elf": built.elf,
    }));
    rep.detail("Built", built.elf.display());
    Ok((built.elf, target, built.idf_partition_table))
}

fn parse_flag<T>(
    value: &Option<String>,
    flag: &str,
    what: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Option<T>, Error> {
    match value {
        None => Ok(None),
        Some(v) => parse(v)
            .map(Some)
            .ok_or_else(|| Error::usage(format!("{flag} `{v}` is not {what}"), None)),
    }
}

/// Merge the image settings: CLI over config (package, workspace, espflash.toml),
/// then a table from the esp-idf-sys build.
fn image_options(
    ctx: &Context,
    args: &ImageArgs,
    target: Option<String>,
    idf_table: Option<PathBuf>,
) -> Result<ImageOptions, Error> {
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
    Ok(ImageOptions {
        chip,
        target_triple: target,
        flash_mode: parse_flag(
            &args.flash_mode,
            "--flash-mode",
            "a flash mode (qio, qout, dio, dout)",
            image::parse_flash_mode,
        )?
        .or(s.flash_mode),
        flash_size: parse_flag(
            &args.flash_size,
            "--flash-size",
            "a flash size (e.g. 4mb)",
            image::parse_flash_size,
        )?
        .or(s.flash_size),
        flash_freq: parse_flag(
            &args.flash_freq,
            "--flash-freq",
            "a flash frequency (e.g. 80mhz)",
            image::parse_flash_freq,
        )?
        .or(s.flash_freq),
        partition_table: args
            .partition_table
            .clone()
            .or(s.partition_table.clone())
            .or(idf_table),
        target_app_partition: args
            .target_app_partition
            .clone()
            .or(s.target_app_partition.clone()),
        min_chip_rev: args.min_chip_rev.or(s.min_chip_rev).unwrap_or(0),
        check_app_descriptor: !args.ignore_app_descriptor,
    })
}

/// Build (or take `--elf`) and convert. The caller reports the image.
fn make_image(
    ctx: &Context,
    cargo: &CargoArgs,
    args: &ImageArgs,
    rep: &Reporter,
) -> Result<(PathBuf, AppImage), Error> {
    let (elf_path, target, idf_table) = firmware(ctx, cargo, args, rep)?;
    let opts = image_options(ctx, args, target, idf_table)?;
    let image = convert_file(&elf_path, &opts, rep)?;
    Ok((elf_path, image))
}

/// Read one ELF and convert it.
fn convert_file(elf_path: &Path, opts: &ImageOptions, rep: &Reporter) -> Result<AppImage, Error> {
    let elf = fs::read(elf_path).map_err(|e| Error::read_file(elf_path, &e))?;
    image::convert(elf_path, &elf, opts, &mut |w| rep.warn(w))
}

/// Convert one ELF and report the result.
pub fn convert_elf(
    elf_path: &Path,
    opts: &ImageOptions,
    rep: &Reporter,
) -> Result<AppImage, Error> {
    let image = convert_file(elf_path, opts, rep)?;
    report_image(rep, elf_path, &image, None);
    Ok(image)
}

fn report_image(rep: &Reporter, elf: &Path, image: &AppImage, written: Option<&Path>) {
    let size = image.data.len() as u64;
    let app = image
        .app
        .as_ref()
        .map(|a| format!(" `{}` {} (built {} {})", a.name, a.version, a.date, a.time))
        .unwrap_or_default();
    let slot = match &image.slot {
        Some(s) => format!(
            "; fits OTA slot `{}` ({}, {:.0}% used)",
            s.partition,
            HumanBytes(u64::from(s.partition_size)),
            size as f64 * 100.0 / f64::from(s.partition_size.max(1))
        ),
        None => "; size not checked (no partition table: set `partition-table`)".to_string(),
    };
    rep.status(
        "Image",
        format!(
            "{} app{app}: {}, md5 {}{slot}",
            image.chip,
            HumanBytes(size),
            image.md5
        ),
    );
    rep.json(json!({
        "reason": "image-ready",
        "elf": elf,
        "path": written,
        "chip": image.chip.to_string(),
        "size": size,
        "md5": image.md5,
        "app": image.app,
        "partition": image.slot.as_ref().map(|s| s.partition.clone()),
        "partition_size": image.slot.as_ref().map(|s| s.partition_size),
        "ota_slots": image.slot.as_ref().map(|s| s.ota_slots),
    }));
}

/// Upload to every planned device (in parallel, `--jobs` at a time), report each
/// and the summary. One device: its own exit code; several: 1 if any failed.
fn upload_all(
    rep: &Reporter,
    ctx: &Context,
    session: &SessionArgs,
    planned: &[Planned],
    what: &str,
    image: &[u8],
) -> Result<(), Error> {
    let jobs = fleet::jobs(session.jobs, planned.len());
    if let Some(port) = planned.first().and_then(|p| p.options.host_port)
        && u32::from(port) + jobs as u32 - 1 > 65535
    {
        return Err(Error::usage(
            format!(
                "--host-port {port} leaves no room for {jobs} parallel sessions (they use consecutive ports)"
            ),
            Some("pick a lower host port, or fewer --jobs".to_string()),
        ));
    }
    let s = &ctx.config.settings;
    let verify = (session.verify || s.verify == Some(true)).then(|| fleet::Verify {
        timeout: session
            .verify_timeout
            .or(s.verify_timeout.map(Duration::from_secs_f64))
            .unwrap_or(DEFAULT_VERIFY_TIMEOUT),
    });
    let started = Instant::now();
    let results = fleet::run(rep, planned, what, image, jobs, verify);
    let several = results.len() > 1;
    let rows: Vec<SummaryRow> = results
        .iter()
        .map(|r| {
            let (ok, code, error, message) = match &r.result {
                Ok(_) => (true, 0, None, String::new()),
                Err(e) => (false, e.exit_code(), Some(e.kind()), e.to_string()),
            };
            let outcome = r.result.as_ref().ok();
            SummaryRow {
                device: &r.name,
                host: &r.host,
                ok,
                code,
                error,
                bytes: outcome.map(|o| o.bytes),
                secs: r.secs,
                rate: outcome.map(|o| o.bytes as f64 / o.transfer.as_secs_f64().max(1e-6)),
                message,
                back_online: r.back_online.map(|b| b.is_some()),
            }
        })
        .collect();
    if several {
        for r in &results {
            if let Err(e) = &r.result {
                rep.device_error(&r.name, e);
            }
        }
    }
    rep.summary(&rows, started.elapsed().as_secs_f64());
    let failed = rows.iter().filter(|r| !r.ok).count();
    drop(rows);
    if !several {
        return results
            .into_iter()
            .next()
            .map_or(Ok(()), |r| r.result.map(|_| ()).map_err(Error::Upload));
    }
    if failed > 0 {
        return Err(Error::SomeFailed {
            failed,
            total: results.len(),
        });
    }
    Ok(())
}

/// Refuse an app image without an OTA responder unless allowed.
fn ota_guard(
    rep: &Reporter,
    ctx: &Context,
    image: &[u8],
    what: &str,
    allow: bool,
) -> Result<(), Error> {
    let allowed = allow || ctx.config.settings.ota_guard == Some(false);
    match crate::guard::has_ota_responder(image) {
        Some(true) => Ok(()),
        None => {
            rep.detail("Unchecked", format!("{what} is compressed: cannot look for an OTA responder"));
            Ok(())
        }
        Some(false) if allowed => {
            rep.warn(format!(
                "{what} shows no OTA responder: after this update the device may only take updates over serial (uploading anyway: --allow-no-ota / ota-guard = false)"
            ));
            Ok(())
        }
        Some(false) => Err(Error::image(
            format!(
                "{what} shows no OTA responder: after this update the device could no longer be updated over the air"
            ),
            Some(
                "keep the OTA responder in the firmware (ArduinoOTA carries the literal \"Authentication Failed\"; a Rust responder embeds the marker `cargo-ota:ota-responder`, see the README), or pass --allow-no-ota (config: ota-guard = false) to upload anyway"
                    .to_string(),
            ),
        )),
    }
}

/// `cargo ota [OPTIONS]`.
pub fn main_command(rep: &Reporter, args: &MainArgs) -> Result<(), Error> {
    let ctx = load_context(&args.cargo, args.image.elf.is_none(), rep)?;
    // Settle the devices first: a typo in a device name should not cost a build.
    let planned = plan::plan(
        &ctx.config,
        &args.devices,
        &args.auth,
        &args.session,
        Command::Flash,
    )?;
    let (elf, image) = make_image(&ctx, &args.cargo, &args.image, rep)?;
    report_image(rep, &elf, &image, None);
    let what = elf
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "firmware".into());
    ota_guard(
        rep,
        &ctx,
        &image.data,
        &format!("`{what}`"),
        args.image.allow_no_ota,
    )?;
    upload_all(rep, &ctx, &args.session, &planned, &what, &image.data)
}

/// `cargo ota image`.
pub fn image_command(rep: &Reporter, args: &ImageCommandArgs) -> Result<(), Error> {
    let ctx = load_context(&args.cargo, args.image.elf.is_none(), rep)?;
    let (elf_path, image) = make_image(&ctx, &args.cargo, &args.image, rep)?;
    let out = args.output.clone().unwrap_or_else(|| {
        let mut p = elf_path.clone().into_os_string();
        p.push(".bin");
        PathBuf::from(p)
    });
    let tmp = out.with_extension("cargo-ota.partial");
    fs::write(&tmp, &image.data)
        .and_then(|_| fs::rename(&tmp, &out))
        .map_err(|e| {
            let _ = fs::remove_file(&tmp);
            Error::usage(format!("cannot write `{}`: {e}", out.display()), None)
        })?;
    report_image(rep, &elf_path, &image, Some(&out));
    if crate::guard::has_ota_responder(&image.data) == Some(false) {
        rep.warn(format!(
            "`{}` shows no OTA responder: `cargo ota` will refuse to upload it (--allow-no-ota overrides)",
            out.display()
        ));
    }
    rep.status("Wrote", out.display());
    Ok(())
}

/// `cargo ota upload FILE`.
pub fn upload_command(rep: &Reporter, args: &UploadArgs) -> Result<(), Error> {
    let kind = if args.fs {
        Command::Filesystem
    } else {
        Command::Flash
    };
    let cargo = CargoArgs {
        manifest_path: args.manifest_path.clone(),
        ..Default::default()
    };
    // Inside a package, its configuration applies (ports, passwords, devices).
    let ctx = load_context(&cargo, false, rep)?;
    let planned = plan::plan(&ctx.config, &args.devices, &args.auth, &args.session, kind)?;
    let image = read_image(&args.file, kind)?;
    let what = args.file.display().to_string();
    if kind == Command::Flash {
        ota_guard(rep, &ctx, &image, &format!("`{what}`"), args.allow_no_ota)?;
        // An image larger than the device's slot: an ESP32 would accept the
        // invitation and stay silent. Refuse it here when the slot is known.
        let slot = match (args.partition_size, &ctx.config.settings.partition_table) {
            (Some(size), _) => Some((size, "--partition-size".to_string())),
            (None, Some(table)) => {
                let check = image::pick_slot(
                    table,
                    ctx.config.settings.target_app_partition.as_deref(),
                    &mut |w| rep.warn(w),
                )?;
                Some((
                    check.partition_size,
                    format!("OTA slot `{}` of {}", check.partition, table.display()),
                ))
            }
            (None, None) => None,
        };
        if let Some((size, from)) = slot
            && image.len() as u64 > u64::from(size)
        {
            return Err(Error::image(
                format!(
                    "`{what}` is {} bytes but the device's OTA slot holds {size} bytes ({from}): the device would accept the update and never connect back",
                    image.len()
                ),
                Some("upload an image that fits, or check the partition table the device was flashed with".to_string()),
            ));
        }
    }
    upload_all(rep, &ctx, &args.session, &planned, &what, &image)
}
