//! Many devices in one run: bounded parallel sessions (one thread each), every
//! session with its own host port, a failed device never stopping the others.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use arduino_ota::{Command, DeviceFailure, appimage};

use crate::bases::Bases;
use crate::discover::Found;
use crate::encode::{self, Compress, Compression, Delta, Payload, SignedImages};
use crate::error::UploadError;
use crate::report::Reporter;
use crate::session::Outcome;
use crate::session::{Target, UploadOptions};
use crate::sign::SigningKey;

/// Most sessions at once when `--jobs` is not given.
pub const MAX_DEFAULT_JOBS: usize = 16;

/// One device to update.
#[derive(Clone, Debug)]
pub struct Planned {
    /// The device: its name, host and port.
    pub target: Target,
    /// How its session runs: password, auth, host address, timeouts.
    pub options: UploadOptions,
    /// Whether it gets a compressed image.
    pub compress: Compress,
    /// Whether it may get a patch against the image it runs.
    pub delta: Delta,
    /// The key its image is signed with (`None`: sent unsigned).
    pub key: Option<Arc<SigningKey>>,
}

/// How the fleet runs.
#[derive(Clone, Copy, Debug, Default)]
pub struct FleetOptions {
    /// Sessions at once (`--jobs`, at most the number of devices).
    pub jobs: usize,
    /// `--verify`: wait for each device to come back.
    pub verify: Option<Verify>,
}

/// After a successful update: wait for the device to come back.
#[derive(Clone, Copy, Debug)]
pub struct Verify {
    /// How long to wait for the device to answer again.
    pub timeout: Duration,
    /// How long the device takes to go down before the first probe.
    pub reboot_grace: Duration,
}

/// How one device fared.
#[derive(Debug)]
pub struct DeviceResult {
    /// The device's name (its host with `--host`).
    pub name: String,
    /// Its host.
    pub host: String,
    /// How the session ended.
    pub result: Result<Outcome, UploadError>,
    /// Seconds from the session's start to its end (as its upload-finished or
    /// upload-failed line says; a `--verify` wait is not counted).
    pub secs: f64,
    /// With `--verify` after a success: how long until it answered again (`None`:
    /// it did not within the timeout).
    pub back_online: Option<Option<Duration>>,
    /// How the bytes of its last try were made.
    pub compression: Compression,
    /// The image's own size.
    pub image_size: u64,
}

/// How long `auto` waits for a `.local` device's mDNS answer, to learn whether
/// it inflates (the arduino-ota responder's `ota_compress` TXT record).
pub const CAPABILITY_WAIT: Duration = Duration::from_millis(1500);

/// What the device at `host` says of itself (its mDNS TXT records): only a
/// `.local` name can say; an address cannot.
fn announced(host: &str, wait: Duration) -> Option<Found> {
    if host.trim_end_matches('.').ends_with(".local") {
        crate::discover::lookup(host, wait)
    } else {
        None
    }
}

/// Did the device refuse a patch as such: another base, a patch it could not
/// apply, or (a core, which takes no patches) a first byte that is no app
/// image's? Other failures (a signature, the size, the MD5) are the image's,
/// and a whole image would fail the same way.
fn refuses_the_patch(failure: Option<DeviceFailure>) -> bool {
    matches!(
        failure,
        Some(
            DeviceFailure::DeltaBaseMismatch
                | DeviceFailure::DeltaPatch
                | DeviceFailure::WrongMagic
                | DeviceFailure::Decryption
        )
    )
}

/// The number of sessions to run at once.
pub fn jobs(requested: Option<usize>, devices: usize) -> usize {
    requested
        .unwrap_or(MAX_DEFAULT_JOBS)
        .clamp(1, devices.max(1))
}

/// The host port of the session on `worker`: a pinned port becomes consecutive
/// ports, one per parallel session, so one firewall rule for the range does.
pub fn worker_port(pinned: Option<u16>, worker: usize) -> Option<u16> {
    pinned.map(|p| p.saturating_add(worker as u16))
}

/// Upload `image` to every planned device, `jobs` at a time; a device with a
/// key gets the image `signed` by it (the key's digest to the signed image,
/// from [`encode::sign_for`]).
pub fn run(
    rep: &Reporter,
    planned: &[Planned],
    what: &str,
    image: &[u8],
    signed: &SignedImages,
    options: FleetOptions,
    bases: Option<&Bases>,
) -> Vec<DeviceResult> {
    let FleetOptions { jobs, verify } = options;
    // Patches: for ESP32-family app images, against the image each device was
    // last updated with (kept per device and chip).
    let chip = appimage::check(image, None)
        .ok()
        .and_then(|info| appimage::chip_name(info.chip_id));
    // Each (signature, encoding) is made once, when the first device needs it.
    type Payloads = HashMap<(Option<[u8; 32]>, Compression), Arc<Payload>>;
    let payloads: Mutex<Payloads> = Mutex::default();
    let payload = |key: Option<[u8; 32]>, c: Compression| -> Arc<Payload> {
        let mut made = payloads.lock().expect("payloads lock");
        made.entry((key, c))
            .or_insert_with(|| {
                let bytes = key.map_or(image, |d| &signed[&d][..]);
                let mut p = encode::encode(bytes, c);
                p.key_digest = key;
                Arc::new(p)
            })
            .clone()
    };
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<DeviceResult>>> =
        Mutex::new((0..planned.len()).map(|_| None).collect());
    thread::scope(|scope| {
        for worker in 0..jobs.clamp(1, planned.len().max(1)) {
            let (next, results) = (&next, &results);
            scope.spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(p) = planned.get(i) else { break };
                    if crate::interrupt::requested() {
                        break;
                    }
                    let mut options = p.options.clone();
                    options.host_port = worker_port(options.host_port, worker);
                    let key = p.key.as_ref().map(|k| k.digest);
                    // What the device will run: the image, signed when signed.
                    let final_image = key.map_or(image, |d| &signed[&d][..]);
                    // Where what the device runs after this update is kept
                    // (also with `delta = "never"`, so that a later run can
                    // patch), and whether this update may be a patch.
                    let keep_base = match (bases, chip) {
                        (Some(b), Some(c))
                            if options.command == Command::Flash
                                && !b.takes_no_patches(&p.target.name, c) =>
                        {
                            Some((b, c))
                        }
                        _ => None,
                    };
                    let mut delta_base = keep_base.filter(|_| p.delta == Delta::Auto);
                    // A `.local` device says what it takes and runs.
                    let found = (p.compress == Compress::Auto || delta_base.is_some())
                        .then(|| announced(&p.target.host, CAPABILITY_WAIT))
                        .flatten();
                    let compression = encode::choose(
                        image,
                        options.command,
                        p.compress,
                        p.compress == Compress::Auto
                            && found.as_ref().is_some_and(Found::inflates_zlib),
                    );
                    let full = payload(key, compression);
                    let mut base = delta_base.and_then(|(b, c)| b.get(&p.target.name, c));
                    if let (Some(d), Some((b, c))) = (&found, delta_base) {
                        if !d.applies_patches() {
                            // It says what it takes, and patches are not among it.
                            delta_base = None;
                        } else if let (Some(runs), Some(kept)) = (d.running_sha256(), &base)
                            && crate::delta::validation_hash(kept).ok() != Some(runs)
                        {
                            // It runs another image than the one kept: no patch
                            // against it, and it is forgotten.
                            b.forget(&p.target.name, c);
                            base = None;
                        }
                    }
                    let patch = delta_base
                        .and(base)
                        .and_then(|base| encode::delta_payload(&base, final_image, &full));
                    let mut sent = patch.map_or_else(|| full.clone(), Arc::new);
                    let (session, started, result) = loop {
                        let started = Instant::now();
                        let session =
                            rep.session(&p.target, what, &sent, options.command, planned.len() > 1);
                        let result =
                            crate::session::upload(&p.target, &sent.bytes, &options, &mut |e| {
                                session.event(&e)
                            });
                        // A device that refuses the patch gets the whole image,
                        // once (`auto`); a patch against another base forgets
                        // the kept one.
                        if let (Err(UploadError::DeviceError { text, failure, .. }), Some((b, c))) =
                            (&result, delta_base)
                            && sent.compression == Compression::Delta
                            && refuses_the_patch(*failure)
                        {
                            match failure {
                                // It runs another image: patch against what it
                                // takes now.
                                Some(DeviceFailure::DeltaBaseMismatch) => {
                                    b.forget(&p.target.name, c)
                                }
                                // Our own responder could not apply it: try again
                                // next time.
                                Some(DeviceFailure::DeltaPatch) => {}
                                // No patches at all (a core): never again.
                                _ => {
                                    let _ = b.mark_no_patches(&p.target.name, c);
                                }
                            }
                            session.refused_delta(&p.target.name, text);
                            sent = full.clone();
                            continue;
                        }
                        // A device that does not take compressed images gets the
                        // image itself, once (`auto`).
                        match &result {
                            Err(e @ UploadError::DeviceError { text, .. })
                                if sent.compression != Compression::None
                                    && p.compress == Compress::Auto
                                    && encode::is_refusal_of_compression(e) =>
                            {
                                session.refused_compressed(&p.target.name, sent.compression, text);
                                sent = payload(key, Compression::None);
                            }
                            _ => break (session, started, result),
                        }
                    };
                    // It runs the new image now: the base of its next patch.
                    if let (Ok(_), Some((b, c))) = (&result, keep_base)
                        && let Err(e) = b.put(&p.target.name, c, final_image)
                    {
                        rep.warn(format!(
                            "cannot keep the image {} runs now in {} ({e}): its next update is sent whole",
                            p.target.name,
                            b.path(&p.target.name, c).display()
                        ));
                    }
                    // The session's time, the same figure in upload-finished or
                    // upload-failed and in the summary (not the --verify wait).
                    let elapsed = match &result {
                        Ok(outcome) => outcome.elapsed,
                        Err(_) => started.elapsed(),
                    };
                    let back_online = match (&result, verify) {
                        (Ok(outcome), Some(v)) => {
                            session.verifying();
                            let back = crate::session::wait_back_online(
                                outcome.device,
                                &options,
                                v.timeout,
                                v.reboot_grace,
                            );
                            // A device that announces what it runs says whether
                            // it runs the new image (not after a rollback).
                            let expected = (options.command == Command::Flash)
                                .then(|| crate::delta::validation_hash(final_image).ok())
                                .flatten();
                            if back.is_some()
                                && let Some(expected) = expected
                                && let Some(runs) = announced(&p.target.host, CAPABILITY_WAIT)
                                    .as_ref()
                                    .and_then(Found::running_sha256)
                            {
                                if runs != expected
                                    && let Some((b, c)) = keep_base
                                {
                                    b.forget(&p.target.name, c);
                                }
                                session.running(hex::encode(runs), hex::encode(expected));
                            }
                            Some(back)
                        }
                        _ => None,
                    };
                    match &result {
                        Ok(outcome) => session.finished(outcome, back_online),
                        Err(UploadError::Interrupted) => session.interrupted(),
                        Err(e) => session.failed(e, elapsed),
                    }
                    let r = DeviceResult {
                        name: p.target.name.clone(),
                        host: p.target.host.clone(),
                        result,
                        secs: elapsed.as_secs_f64(),
                        back_online,
                        compression: sent.compression,
                        image_size: sent.image_size,
                    };
                    results.lock().expect("results lock")[i] = Some(r);
                }
            });
        }
    });
    // After an interrupt, the devices never started have no result.
    results
        .into_inner()
        .expect("results lock")
        .into_iter()
        .flatten()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_and_ports() {
        assert_eq!(jobs(None, 40), 16);
        assert_eq!(jobs(None, 3), 3);
        assert_eq!(jobs(Some(4), 12), 4);
        assert_eq!(jobs(Some(0), 12), 1);
        assert_eq!(jobs(Some(50), 2), 2);
        assert_eq!(worker_port(Some(47000), 3), Some(47003));
        assert_eq!(worker_port(None, 3), None);
        assert_eq!(worker_port(Some(65535), 3), Some(65535));
    }
}
