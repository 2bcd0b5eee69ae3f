//! What each command does, from parsed arguments to an exit code.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::appimage;
use crate::cli::{AuthArgs, Cli, Commands, DemoArgs, EmulateArgs, UploadArgs};
use crate::emulator::{Emulator, EmulatorConfig, EmulatorEvent, Faults, Flavor, LinkModel};
use crate::error::{Error, exit};
use crate::protocol::Command;
use crate::report::Reporter;
use crate::upload::{self, Password, Target, UploadOptions};

/// Run a parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> i32 {
    match cli.command {
        Commands::Upload(args) => {
            let rep = Reporter::new(
                args.output.message_format,
                args.output.quiet,
                args.output.verbose,
            );
            conclude(&rep, upload_command(&rep, &args))
        }
        Commands::Emulate(args) => {
            let rep = Reporter::new(Default::default(), args.quiet, false);
            conclude(&rep, emulate_command(&args))
        }
        Commands::Demo(args) => {
            let rep = Reporter::new(
                args.output.message_format,
                args.output.quiet,
                args.output.verbose,
            );
            conclude(&rep, demo_command(&rep, &args))
        }
    }
}

fn conclude(rep: &Reporter, result: Result<(), Error>) -> i32 {
    match result {
        Ok(()) => exit::OK,
        Err(e) => {
            rep.error(&e);
            e.exit_code()
        }
    }
}

/// The password from `--password`, else from the environment variable.
fn password(args: &AuthArgs) -> Option<Password> {
    if let Some(p) = &args.password {
        return Some(Password::new(p.clone()));
    }
    std::env::var(&args.password_env)
        .ok()
        .filter(|v| !v.is_empty())
        .map(Password::new)
}

/// Read an image file and refuse what cannot be the kind of image announced.
pub fn read_image(path: &Path, kind: Command) -> Result<Vec<u8>, Error> {
    let data = fs::read(path).map_err(|e| Error::read_file(path, &e))?;
    if data.is_empty() {
        return Err(Error::image(
            format!("`{}` is empty", path.display()),
            Some("build or export the image again".to_string()),
        ));
    }
    if data.len() > u32::MAX as usize {
        return Err(Error::image(
            format!("`{}` is larger than 4 GiB", path.display()),
            None,
        ));
    }
    if kind == Command::Flash && data[0] != appimage::MAGIC && !data.starts_with(&[0x1f, 0x8b]) {
        let what = if data.starts_with(b"\x7fELF") {
            "an ELF file, not an app image".to_string()
        } else {
            format!(
                "not an ESP app image (first byte 0x{:02x}, expected 0xe9)",
                data[0]
            )
        };
        return Err(Error::image(
            format!("`{}` is {what}", path.display()),
            Some(
                "convert an ELF with `cargo ota image --elf FILE`, or pass --fs to send a filesystem image"
                    .to_string(),
            ),
        ));
    }
    Ok(data)
}

/// Upload `image` to one target and report it.
pub fn upload_one(
    rep: &Reporter,
    target: &Target,
    what: &str,
    image: &[u8],
    opts: &UploadOptions,
) -> Result<upload::Outcome, Error> {
    let mut session = rep.session(target, what, image, opts.command);
    let result = upload::upload(target, image, opts, &mut |e| session.event(&e));
    match result {
        Ok(outcome) => {
            session.finished(&outcome);
            Ok(outcome)
        }
        Err(e) => {
            session.failed(&e);
            Err(e.into())
        }
    }
}

fn upload_command(rep: &Reporter, args: &UploadArgs) -> Result<(), Error> {
    let kind = if args.fs {
        Command::Filesystem
    } else {
        Command::Flash
    };
    let image = read_image(&args.file, kind)?;
    let target = Target {
        name: args.device.host.clone(),
        host: args.device.host.clone(),
        port: args.device.port,
    };
    let opts = UploadOptions {
        command: kind,
        password: password(&args.auth),
        password_env: args.auth.password_env.clone(),
        auth: args.auth.auth.into(),
        host_ip: args.device.host_ip,
        host_port: args.device.host_port,
        timeout: args.session.timeout,
        retries: args.session.retries,
    };
    let what = args.file.display().to_string();
    upload_one(rep, &target, &what, &image, &opts).map(|_| ())
}

fn emulate_command(args: &EmulateArgs) -> Result<(), Error> {
    let flavor: Flavor = args.flavor.into();
    let mut cfg = EmulatorConfig::new(flavor);
    cfg.bind = args.bind;
    cfg.port = args.port.unwrap_or(flavor.default_port());
    cfg.password = match (&args.password, &args.password_env) {
        (Some(p), _) => Some(p.clone()),
        (None, Some(var)) => Some(
            std::env::var(var)
                .ok()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| {
                    Error::usage(
                        format!(
                            "--password-env names `{var}`, but that environment variable is not set"
                        ),
                        Some(format!(
                            "set {var}, or leave out --password-env for a device without a password"
                        )),
                    )
                })?,
        ),
        (None, None) => None,
    };
    if args.md5_password_hash && flavor != Flavor::Esp32 {
        return Err(Error::usage(
            "--md5-password-hash applies to --flavor esp32 only (the MD5 cores always store an MD5 hash)",
            None,
        ));
    }
    cfg.md5_password_hash = args.md5_password_hash;
    if let Some(dir) = &args.out {
        fs::create_dir_all(dir).map_err(|e| {
            Error::usage(
                format!("cannot create the --out directory `{}`: {e}", dir.display()),
                None,
            )
        })?;
        cfg.out_dir = Some(dir.clone());
    }
    cfg.once = args.once;
    cfg.partition_size = args.partition_size;
    if let Some(chip) = &args.chip {
        cfg.chip = Some(appimage::chip_id(chip).ok_or_else(|| {
            Error::usage(
                format!("unknown chip `{chip}` for --chip"),
                Some(format!(
                    "use one of: {}",
                    appimage::CHIPS
                        .iter()
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            )
        })?);
    }
    cfg.rx_timeout = Duration::from_millis(args.rx_timeout_ms.max(1));
    if args.link_window == 0 {
        return Err(Error::usage("--link-window must be at least 1 byte", None));
    }
    cfg.link = LinkModel {
        rtt: Duration::from_millis(args.link_rtt_ms),
        window: args.link_window,
        flash_rate: args.flash_rate.filter(|r| *r > 0),
    };
    cfg.faults = Faults::from_specs(&args.faults).map_err(|e| Error::usage(e, None))?;

    let emulator = Emulator::bind(cfg.clone()).map_err(|e| {
        Error::usage(
            format!("cannot listen on UDP {}:{}: {e}", cfg.bind, cfg.port),
            Some("pick another port with --port (0 = any free port)".to_string()),
        )
    })?;
    let addr = emulator
        .local_addr()
        .map_err(|e| Error::usage(format!("cannot read the bound address: {e}"), None))?;
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{addr}");
        let _ = out.flush();
    }
    if !args.quiet {
        eprintln!(
            "emulating an {} OTA device on {addr} ({})",
            flavor.name(),
            if cfg.password.is_some() {
                "password set"
            } else {
                "no password"
            }
        );
    }
    let quiet = args.quiet;
    emulator
        .run(|event| {
            let line = serde_json::to_string(&event).unwrap_or_default();
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
            if !quiet {
                eprintln!("{}", describe_event(&event));
            }
        })
        .map_err(|e| Error::usage(format!("emulator socket failed: {e}"), None))
}

fn describe_event(e: &EmulatorEvent) -> String {
    match e {
        EmulatorEvent::UpdateOk {
            size, md5, path, ..
        } => format!(
            "update ok: {size} bytes, md5 {md5}{}",
            path.as_ref()
                .map(|p| format!(", written to {}", p.display()))
                .unwrap_or_default()
        ),
        EmulatorEvent::UpdateFailed {
            reason,
            received,
            size,
            ..
        } => format!("update failed after {received} of {size} bytes: {reason}"),
        EmulatorEvent::AuthFailed { peer, .. } => format!("authentication failed from {peer}"),
    }
}

/// Removes the demo's scratch directory however the demo ends.
struct ScratchDir(PathBuf);

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn demo_command(rep: &Reporter, args: &DemoArgs) -> Result<(), Error> {
    let flavor: Flavor = args.flavor.into();
    let mut seed = [0u8; 8];
    let _ = getrandom::fill(&mut seed);
    let password = hex::encode(seed);
    let scratch = ScratchDir(std::env::temp_dir().join(format!(
        "cargo-ota-demo-{}-{}",
        std::process::id(),
        &password[..6]
    )));
    fs::create_dir_all(&scratch.0).map_err(|e| {
        Error::usage(
            format!("cannot create `{}`: {e}", scratch.0.display()),
            None,
        )
    })?;

    let link = LinkModel {
        rtt: Duration::from_millis(10),
        window: 5760,
        flash_rate: Some(400_000),
    };
    let mut cfg = EmulatorConfig::new(flavor);
    cfg.password = Some(password.clone());
    cfg.out_dir = Some(scratch.0.clone());
    cfg.once = true;
    cfg.partition_size = Some(0x18_0000);
    cfg.chip = flavor.is_esp32().then_some(5);
    cfg.link = link;
    let emulator = Emulator::bind(cfg)
        .map_err(|e| Error::usage(format!("cannot start the emulated device: {e}"), None))?;
    let (addr, events) = emulator
        .spawn()
        .map_err(|e| Error::usage(format!("cannot start the emulated device: {e}"), None))?;
    rep.status(
        "Emulating",
        format!(
            "an {} device at {addr} (password set, 1.5 MiB OTA slot, link {} ms RTT, {} B window, {} kB/s flash)",
            flavor.name(),
            link.rtt.as_millis(),
            link.window,
            link.flash_rate.unwrap_or(0) / 1000
        ),
    );

    let image = appimage::sample_esp32c3(args.size_kib.max(1) * 1024);
    let info = appimage::check(&image, Some(5))
        .map_err(|e| Error::image(format!("sample image is invalid: {e}"), None))?;
    rep.status(
        "Image",
        format!(
            "sample ESP32-C3 app image: {} segments, entry 0x{:08x}, SHA-256 appended",
            info.segments, info.entry
        ),
    );
    let target = Target {
        name: "demo-device".into(),
        host: addr.ip().to_string(),
        port: addr.port(),
    };
    let opts = UploadOptions {
        password: Some(Password::new(password)),
        ..UploadOptions::default()
    };
    upload_one(rep, &target, "sample image", &image, &opts)?;

    match events.recv_timeout(Duration::from_secs(10)) {
        Ok(EmulatorEvent::UpdateOk { path, md5, .. }) => {
            let identical = path
                .as_ref()
                .and_then(|p| fs::read(p).ok())
                .is_some_and(|written| written == image);
            rep.json(serde_json::json!({
                "reason": "device-verdict",
                "device": target.name,
                "ok": true,
                "md5": md5,
                "identical": identical,
            }));
            rep.status(
                "Device",
                format!(
                    "verified the MD5 and the app image (chip, segments, checksum, SHA-256), wrote it to its OTA slot{} and rebooted",
                    if identical { " byte for byte" } else { "" }
                ),
            );
            if identical {
                Ok(())
            } else {
                Err(Error::image(
                    "the device's copy differs from the image sent",
                    None,
                ))
            }
        }
        Ok(other) => Err(Error::image(
            format!("the emulated device reports: {}", describe_event(&other)),
            None,
        )),
        Err(_) => Err(Error::image(
            "the emulated device did not report the update",
            None,
        )),
    }
}
