//! `cargo ota emulate`: an emulated device on this host.

use std::fs;
use std::io::Write;
use std::time::Duration;

use crate::cli::EmulateArgs;
use crate::emulator::{Emulator, EmulatorConfig, EmulatorEvent, Faults, Flavor, LinkModel};
use crate::error::{Error, IoError, UsageError};
use crate::settings::Environment;
use arduino_ota::appimage;

pub fn emulate_command(args: &EmulateArgs, env: &Environment) -> Result<(), Error> {
    let flavor = args.flavor;
    let mut cfg = EmulatorConfig::new(flavor);
    cfg.bind = args.bind;
    cfg.port = args.port.unwrap_or(flavor.default_port());
    cfg.password = match (&args.password, &args.password_env) {
        (Some(p), _) => Some(p.clone()),
        (None, Some(var)) => Some(
            env.var(var)
                .map(str::to_string)
                .ok_or_else(|| UsageError::PasswordEnvUnset { var: var.clone() })?,
        ),
        (None, None) => None,
    };
    if args.md5_password_hash && !matches!(flavor, Flavor::Esp32 | Flavor::ArduinoOta) {
        return Err(UsageError::Md5HashNeedsEsp32.into());
    }
    cfg.md5_password_hash = args.md5_password_hash;
    if let Some(dir) = &args.out {
        fs::create_dir_all(dir).map_err(|source| IoError::CreateDir {
            path: dir.clone(),
            source,
        })?;
        cfg.out_dir = Some(dir.clone());
    }
    cfg.once = args.once;
    cfg.partition_size = args.partition_size;
    if let Some(chip) = &args.chip {
        cfg.chip = Some(
            appimage::chip_id(chip)
                .ok_or_else(|| UsageError::EmulatorChip { name: chip.clone() })?,
        );
    }
    if !args.require_signature.is_empty() {
        let digests = args
            .require_signature
            .iter()
            .map(|given| trusted(given))
            .collect::<Result<Vec<_>, _>>()?;
        cfg.trusted_keys = Some(digests);
    }
    if let Some(path) = &args.running {
        cfg.running = Some(fs::read(path).map_err(|source| UsageError::BadPath {
            path: path.clone(),
            source,
        })?);
    }
    cfg.rx_timeout = Duration::from_millis(args.rx_timeout_ms.max(1));
    if args.link_window == 0 {
        return Err(UsageError::LinkWindowZero.into());
    }
    cfg.link = LinkModel {
        rtt: Duration::from_millis(args.link_rtt_ms),
        window: args.link_window,
        flash_rate: args.flash_rate.filter(|r| *r > 0),
    };
    cfg.faults = Faults::from_specs(&args.faults).map_err(|detail| UsageError::Fault { detail })?;
    cfg.reboot = Duration::from_millis(args.reboot_ms);
    cfg.ok_spacing = Duration::from_millis(args.ok_spacing_ms);
    cfg.seed = args.seed.unwrap_or_else(|| {
        let mut seed = [0u8; 8];
        let _ = getrandom::fill(&mut seed);
        u64::from_le_bytes(seed)
    });
    if cfg.faults.udp_loss_pct > 0 && !args.quiet {
        let _ = writeln!(
            std::io::stderr(),
            "datagram loss seed {} (--seed {} repeats it)",
            cfg.seed,
            cfg.seed
        );
    }

    let emulator = Emulator::bind(cfg.clone()).map_err(|source| UsageError::Listen {
        ip: cfg.bind,
        port: cfg.port,
        source,
    })?;
    let addr = emulator
        .local_addr()
        .map_err(|source| IoError::EmulatorSocket { source })?;
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{addr}");
        let _ = out.flush();
    }
    if !args.quiet {
        let _ = writeln!(
            std::io::stderr(),
            "emulating an {} OTA device on {addr} ({})",
            flavor.name(),
            if cfg.password.is_some() {
                "password set"
            } else {
                "no password"
            }
        );
    }
    // This crate's responder says what it takes and runs; the cores say
    // nothing of it.
    let capabilities = if args.flavor == Flavor::ArduinoOta {
        crate::discover::Capabilities {
            compress: Some("zlib".into()),
            delta: Some(crate::discover::DELTA_FORMAT.into()),
            sha256: emulator.running_sha256(),
        }
    } else {
        crate::discover::Capabilities::default()
    };
    let mut advertisement = match &args.mdns {
        Some(name) => Some(crate::discover::advertise(
            name,
            addr.ip(),
            addr.port(),
            &args.board,
            cfg.password.is_some(),
            capabilities,
        )?),
        None => None,
    };
    let quiet = args.quiet;
    emulator
        .run(|event| {
            // It runs the new image: announced before it answers again.
            if let (
                Some(a),
                EmulatorEvent::Session {
                    running_sha256: Some(hash),
                    ..
                },
            ) = (&mut advertisement, &event)
                && let Err(e) = a.set_running_sha256(hash.clone())
            {
                let _ = writeln!(std::io::stderr(), "mDNS: {e}");
            }
            let line = serde_json::to_string(&event).unwrap_or_default();
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
            if !quiet {
                let _ = writeln!(std::io::stderr(), "{}", describe_event(&event));
            }
        })
        .map_err(|source| match source.kind() {
            std::io::ErrorKind::Interrupted => Error::Interrupted,
            _ => IoError::EmulatorSocket { source }.into(),
        })
}

/// The digest of the key `given` names: 64 hex digits, or a PEM file.
fn trusted(given: &str) -> Result<[u8; 32], UsageError> {
    let error = |detail: String| UsageError::TrustedKey {
        given: given.to_string(),
        detail,
    };
    let is_digest = given.len() == 64 && given.bytes().all(|b| b.is_ascii_hexdigit());
    let text = if is_digest {
        given.to_string()
    } else {
        fs::read_to_string(given).map_err(|e| error(format!("cannot read it: {e}")))?
    };
    crate::sign::trusted_digest(&text).map_err(error)
}

pub fn describe_event(e: &EmulatorEvent) -> String {
    match e {
        EmulatorEvent::Session {
            end,
            path: Some(path),
            ..
        } => format!("{end}, written to {}", path.display()),
        EmulatorEvent::Session { end, .. } => end.to_string(),
        EmulatorEvent::Rebooted(r) => format!("rebooted in {:.1} s", r.secs),
    }
}
