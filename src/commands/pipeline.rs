//! The main job, stage by stage: settle (`settings`) -> build (or `--elf`) ->
//! image -> guard -> fleet -> report. `cargo ota image` stops after the image;
//! `cargo ota upload` starts from a file.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::read_image;
use crate::cli::{ImageCommandArgs, MainArgs, UploadArgs};
use crate::encode::{self, SignedImages};
use crate::error::{Error, ImageError};
use crate::firmware;
use crate::fleet::{self, DeviceResult, Planned};
use crate::image::{self, AppImage, ImageOptions};
use crate::report::{DeviceSummary, Message, Reporter, round3};
use crate::settings::{self, Environment, Firmware};
use crate::sign::SigningKey;
use arduino_ota::Command;

/// Build the firmware (or take `--elf`); returns the ELF and a partition table
/// esp-idf-sys generated, if any.
fn firmware(firmware: &Firmware, rep: &Reporter) -> Result<(PathBuf, Option<PathBuf>), Error> {
    let job = match firmware {
        Firmware::Elf(elf) => return Ok((elf.clone(), None)),
        Firmware::Build(job) => job,
    };
    let name = job.project.package.name.as_str();
    let target = job.target.as_deref();
    rep.status(
        "Building",
        format!(
            "{name} ({}{})",
            job.profile,
            target.map(|t| format!(", {t}")).unwrap_or_default()
        ),
    );
    // Which cargo builds: `$CARGO` (cargo sets it to itself when it runs
    // `cargo ota`), else the `cargo` on PATH.
    let cargo = job.toolchain.cargo.to_string_lossy();
    rep.detail(
        "Cargo",
        if cargo == "cargo" {
            "`cargo` from PATH ($CARGO is not set)".to_string()
        } else {
            format!("{cargo} (from $CARGO)")
        },
    );
    // Cargo writes straight to stderr: these lines first.
    rep.flush_within(std::time::Duration::from_secs(1));
    let built = firmware::build(
        &job.project,
        &job.options,
        target,
        &job.cwd,
        &job.toolchain,
        &|text| rep.diagnostic(text),
    )?;
    rep.message(Message::BuildFinished {
        package: name.to_string(),
        binary: built.name.clone(),
        target: job.target.clone(),
        profile: job.profile.clone(),
        elf: built.elf.clone(),
    });
    Ok((built.elf, built.idf_partition_table))
}

/// Build (or take `--elf`) and convert. The caller reports the image.
fn make_image(
    source: &Firmware,
    mut opts: ImageOptions,
    rep: &Reporter,
) -> Result<(PathBuf, AppImage), Error> {
    let (elf_path, idf_table) = firmware(source, rep)?;
    // A table the esp-idf-sys build generated, when the config names none.
    opts.partition_table = opts.partition_table.or(idf_table);
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
    report_image(rep, elf_path, &image, None, Signed::No);
    Ok(image)
}

/// How the image `image-ready` describes is signed.
enum Signed<'a> {
    /// Not at all.
    No,
    /// By one key, for every device (or the file written): these bytes.
    By(&'a SigningKey, &'a [u8]),
    /// For every device, by keys of their own.
    PerDevice,
}

fn report_image(
    rep: &Reporter,
    elf: &Path,
    image: &AppImage,
    written: Option<&Path>,
    signed: Signed,
) {
    let (size, md5) = match signed {
        Signed::By(_, bytes) => (bytes.len() as u64, arduino_ota::md5_hex(bytes)),
        _ => (image.data.len() as u64, image.md5.clone()),
    };
    rep.message(Message::ImageReady {
        elf: elf.to_path_buf(),
        path: written.map(Path::to_path_buf),
        chip: image.chip.to_string(),
        size,
        md5,
        app: image.app.clone(),
        partition: image.slot.as_ref().map(|s| s.partition.clone()),
        partition_size: image.limit,
        ota_slots: image.slot.as_ref().map(|s| s.ota_slots),
        signed: !matches!(signed, Signed::No),
        key_digest: match signed {
            Signed::By(key, _) => Some(key.digest_hex()),
            _ => None,
        },
    });
}

/// The distinct keys of `devices`, in order.
fn keys_of(devices: &[Planned]) -> Vec<&SigningKey> {
    let mut keys: Vec<&SigningKey> = Vec::new();
    for k in devices.iter().filter_map(|p| p.key.as_deref()) {
        if !keys.iter().any(|s| s.digest == k.digest) {
            keys.push(k);
        }
    }
    keys
}

/// `-v`: each key's scheme, public digest and source (never the key).
fn report_keys(rep: &Reporter, keys: &[&SigningKey]) {
    for k in keys {
        rep.detail(
            "Signing",
            format!(
                "with {} key {} from {}",
                k.key.scheme(),
                k.digest_hex(),
                k.source
            ),
        );
    }
}

/// Refuse to sign an ESP8266 image for any device (a key of its own or the
/// section's): its core checks its own signature format.
fn refuse_signed_esp8266(image: &[u8], what: &str, devices: &[Planned]) -> Result<(), Error> {
    if !encode::is_esp8266_image(image) {
        return Ok(());
    }
    match devices.iter().find(|p| p.key.is_some()) {
        Some(p) => Err(ImageError::SignEsp8266 {
            what: what.to_string(),
            device: format!(
                "device `{}` (key {})",
                p.target.name,
                p.key
                    .as_ref()
                    .map(|k| k.source.to_string())
                    .unwrap_or_default()
            ),
        }
        .into()),
        None => Ok(()),
    }
}

/// The image signed for every device that has a key; what `image-ready` says.
fn sign_for_devices<'a>(
    rep: &Reporter,
    image: &[u8],
    devices: &'a [Planned],
) -> Result<(SignedImages, Vec<&'a SigningKey>), Error> {
    let keys = keys_of(devices);
    report_keys(rep, &keys);
    let signed = encode::sign_for(image, keys.iter().copied())?;
    Ok((signed, keys))
}

/// Report each device and the summary. One device: its own exit code; several:
/// 1 if any failed.
fn report_fleet(rep: &Reporter, results: Vec<DeviceResult>, started: Instant) -> Result<(), Error> {
    if crate::interrupt::requested() {
        return Err(Error::Interrupted);
    }
    let several = results.len() > 1;
    let rows: Vec<DeviceSummary> = results
        .iter()
        .map(|r| {
            let (ok, code, error, message) = match &r.result {
                Ok(_) => (true, 0, None, String::new()),
                Err(e) => (
                    false,
                    e.exit_code(),
                    Some(e.kind().to_string()),
                    e.to_string(),
                ),
            };
            let outcome = r.result.as_ref().ok();
            DeviceSummary {
                device: r.name.clone(),
                host: r.host.clone(),
                ok,
                code,
                error,
                bytes: outcome.map(|o| o.bytes),
                bytes_sent: outcome.map(|o| o.bytes),
                image_size: r.image_size,
                compression: r.compression,
                secs: round3(r.secs),
                rate: outcome
                    .map(|o| (o.bytes as f64 / o.transfer.as_secs_f64().max(1e-6)).round()),
                back_online: r.back_online.map(|b| b.is_some()),
                message,
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
    let failed = rows.iter().filter(|r| !r.ok).count();
    rep.summary(rows, started.elapsed().as_secs_f64());
    if !several {
        return results
            .into_iter()
            .next()
            .map_or(Ok(()), |r| r.result.map(|_| ()).map_err(Error::from));
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
fn ota_guard(rep: &Reporter, image: &[u8], what: &str, allowed: bool) -> Result<(), Error> {
    match crate::guard::has_ota_responder(image) {
        Some(true) => Ok(()),
        None => {
            rep.detail(
                "Unchecked",
                format!("`{what}` is compressed: cannot look for an OTA responder"),
            );
            Ok(())
        }
        Some(false) if allowed => {
            rep.warn(format!(
                "`{what}` shows no OTA responder: after this update the device may only take updates over serial (uploading anyway: --allow-no-ota / ota-guard = false)"
            ));
            Ok(())
        }
        Some(false) => Err(ImageError::NoOtaResponder {
            what: what.to_string(),
        }
        .into()),
    }
}

/// `cargo ota [OPTIONS]`.
pub fn main_command(rep: &Reporter, args: &MainArgs, env: &Environment) -> Result<(), Error> {
    let job = settings::main_job(args, env, rep)?;
    let (elf, image) = make_image(&job.firmware, job.image, rep)?;
    let what = elf
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "firmware".into());
    refuse_signed_esp8266(&image.data, &what, &job.devices)?;
    let (signed, keys) = sign_for_devices(rep, &image.data, &job.devices)?;
    let all_signed = job.devices.iter().all(|p| p.key.is_some());
    let how = match keys.as_slice() {
        [key] if all_signed => Signed::By(key, &signed[&key.digest]),
        _ if all_signed => Signed::PerDevice,
        _ => Signed::No,
    };
    report_image(rep, &elf, &image, None, how);
    ota_guard(rep, &image.data, &what, job.allow_no_ota)?;
    let started = Instant::now();
    let results = fleet::run(
        rep,
        &job.devices,
        &what,
        &image.data,
        &signed,
        job.fleet,
        job.bases.as_ref(),
    );
    report_fleet(rep, results, started)
}

/// `cargo ota image`.
pub fn image_command(
    rep: &Reporter,
    args: &ImageCommandArgs,
    env: &Environment,
) -> Result<(), Error> {
    let job = settings::image_job(args, env, rep)?;
    let (elf_path, image) = make_image(&job.firmware, job.image, rep)?;
    let out = job.output.unwrap_or_else(|| {
        let mut p = elf_path.clone().into_os_string();
        p.push(".bin");
        PathBuf::from(p)
    });
    // The file for the first serial flash: signed with the key, if any.
    let keys: Vec<&SigningKey> = job.key.as_deref().into_iter().collect();
    report_keys(rep, &keys);
    let signed = encode::sign_for(&image.data, keys.iter().copied())?;
    let (bytes, how) = match keys.first() {
        Some(key) => {
            let bytes = &signed[&key.digest];
            (&bytes[..], Signed::By(key, bytes))
        }
        None => (&image.data[..], Signed::No),
    };
    let tmp = out.with_extension("cargo-ota.partial");
    fs::write(&tmp, bytes)
        .and_then(|_| fs::rename(&tmp, &out))
        .map_err(|e| {
            let _ = fs::remove_file(&tmp);
            Error::write_file(&out, &e)
        })?;
    report_image(rep, &elf_path, &image, Some(&out), how);
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
pub fn upload_command(rep: &Reporter, args: &UploadArgs, env: &Environment) -> Result<(), Error> {
    let job = settings::upload_job(args, env, rep)?;
    let image = read_image(&job.file, job.command)?;
    let what = job.file.display().to_string();
    if job.command == Command::Flash {
        ota_guard(rep, &image, &what, job.allow_no_ota)?;
        refuse_signed_esp8266(&image, &what, &job.devices)?;
    }
    // A filesystem image is signed too: a device that requires signatures
    // takes nothing else.
    let (signed, _) = sign_for_devices(rep, &image, &job.devices)?;
    if job.command == Command::Flash {
        // An image larger than the device's slot: an ESP32 would accept the
        // invitation and stay silent. Refuse it here when the slot is known
        // (signed, the largest a device gets).
        let (largest, is_signed) = signed
            .values()
            .map(|s| (s.len(), s.len() != image.len()))
            .chain([(image.len(), false)])
            .max()
            .expect("the image itself");
        if let Some((size, from)) = &job.slot
            && largest as u64 > u64::from(*size)
        {
            return Err(ImageError::TooBigForSlot {
                what,
                size: largest as u64,
                slot: *size,
                from: from.clone(),
                signed: is_signed,
            }
            .into());
        }
    }
    let started = Instant::now();
    let results = fleet::run(
        rep,
        &job.devices,
        &what,
        &image,
        &signed,
        job.fleet,
        job.bases.as_ref(),
    );
    report_fleet(rep, results, started)
}
