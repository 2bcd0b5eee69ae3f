//! Delta patches in esp_delta_ota's format (#19, the host's half): patches
//! `cargo_ota::delta` makes against seeded app images, checked both ways against
//! PyPI `detools` (the format's reference: what esp_delta_ota's patch generator
//! calls), their size after small changes, and the refusals. `detools` is
//! required under CI=true; elsewhere its tests print a skip line without it.

use std::path::Path;
use std::process::Command;

use arduino_ota::appimage;
use cargo_ota::delta::{self, DeltaError, HEADER_LEN};
use cargo_ota_testkit::sample::noise;

use crate::support::netns::missing;

/// A seeded ESP32-C3 app image: read-only data and code segments, as espflash
/// lays out firmware.
fn firmware(rodata: &[u8], text: &[u8]) -> Vec<u8> {
    appimage::build(
        5,
        0x4200_0020,
        &[(0x3c00_0020, rodata), (0x4201_0020, text)],
    )
}

/// Segments of about `len` bytes from `seed`: three quarters data, a quarter code.
fn segments(seed: u32, len: usize) -> (Vec<u8>, Vec<u8>) {
    (noise(seed, len / 4 * 3), noise(seed ^ 0x5555, len / 4))
}

/// A base image and new images after a few changed bytes, after a run inserted
/// in the data (which shifts everything after it, the code segment too), and
/// after a change of everything (another seed).
fn cases(len: usize) -> (Vec<u8>, Vec<(&'static str, Vec<u8>)>) {
    let (rodata, text) = segments(0x2545_f491, len);
    let base = firmware(&rodata, &text);
    let mut changed = text.clone();
    for at in [100, 101, 4000, changed.len() / 2] {
        changed[at] ^= 0x5a;
    }
    let mut inserted = rodata.clone();
    inserted.splice(rodata.len() / 3..rodata.len() / 3, noise(7, 300));
    let (other_rodata, other_text) = segments(0x1234_5678, len);
    let news = vec![
        ("a few bytes changed", firmware(&rodata, &changed)),
        ("300 bytes inserted", firmware(&inserted, &text)),
        ("everything changed", firmware(&other_rodata, &other_text)),
    ];
    for (what, new) in &news {
        appimage::check(new, Some(5)).unwrap_or_else(|e| panic!("{what}: {e}"));
    }
    (base, news)
}

/// `detools ARGS` (PyPI detools' command line): its output, or `None` where it
/// is not installed (a failure under CI=true, a skip line elsewhere).
fn detools(test: &str, args: &[&Path]) -> Option<std::process::Output> {
    match Command::new("detools").args(args).output() {
        // 127: a shim (pyenv's) that finds no detools behind it.
        Ok(out) if out.status.code() == Some(127) => {
            let why = String::from_utf8_lossy(&out.stderr).trim().to_string();
            missing(
                test,
                &format!("detools is not installed ({why}): pip install detools"),
            );
            None
        }
        Ok(out) => Some(out),
        Err(e) => {
            missing(
                test,
                &format!("detools is not installed ({e}): pip install detools"),
            );
            None
        }
    }
}

/// What `cargo ota` creates, `detools apply_patch` applies (the patch without its
/// 64-byte header, as esp_delta_ota_patch_gen.py's own check does): the new
/// image, byte for byte.
#[test]
fn detools_applies_the_patches_cargo_ota_creates() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (base, news) = cases(150_000);
    std::fs::write(d.join("base.bin"), &base).unwrap();
    for (what, new) in news {
        let patch = delta::create_patch(&base, &new).unwrap();
        std::fs::write(d.join("patch.bin"), &patch[HEADER_LEN..]).unwrap();
        let apply = [
            Path::new("apply_patch"),
            &d.join("base.bin"),
            &d.join("patch.bin"),
            &d.join("out.bin"),
        ];
        let Some(out) = detools("detools_applies_the_patches_cargo_ota_creates", &apply) else {
            return;
        };
        assert!(
            out.status.success(),
            "{what}: detools apply_patch failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let made = std::fs::read(d.join("out.bin")).unwrap();
        assert!(made == new, "{what}: detools made another image");
        std::fs::remove_file(d.join("out.bin")).unwrap();
    }
}

/// What `detools create_patch -c heatshrink` creates (sequential, window 2^8,
/// lookahead 2^7: its defaults), `cargo_ota::delta::apply_patch` applies once
/// the header esp_delta_ota_patch_gen.py adds is in front: the new image. The
/// patches `cargo ota` makes are no larger than detools' own, give or take.
#[test]
fn cargo_ota_applies_the_patches_detools_creates() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (base, news) = cases(150_000);
    std::fs::write(d.join("base.bin"), &base).unwrap();
    let header = delta::header(&delta::validation_hash(&base).unwrap());
    for (what, new) in news {
        std::fs::write(d.join("new.bin"), &new).unwrap();
        let create = [
            Path::new("create_patch"),
            Path::new("-c"),
            Path::new("heatshrink"),
            &d.join("base.bin"),
            &d.join("new.bin"),
            &d.join("patch.bin"),
        ];
        let Some(out) = detools("cargo_ota_applies_the_patches_detools_creates", &create) else {
            return;
        };
        assert!(
            out.status.success(),
            "{what}: detools create_patch failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let theirs = std::fs::read(d.join("patch.bin")).unwrap();
        assert_eq!(theirs[0], 0x04, "{what}: sequential, heatshrink");
        let mut patch = header.to_vec();
        patch.extend_from_slice(&theirs);
        let made = delta::apply_patch(&base, &patch).unwrap();
        assert!(made == new, "{what}: detools' patch gave another image");
        let ours = delta::create_patch(&base, &new).unwrap();
        eprintln!(
            "{what}: cargo-ota's patch {} B, detools' {} B (+{HEADER_LEN} B header){}",
            ours.len() - HEADER_LEN,
            theirs.len(),
            if ours[HEADER_LEN..] == theirs[..] {
                ", the same bytes"
            } else {
                ""
            }
        );
        assert!(
            ours.len() - HEADER_LEN <= theirs.len() + theirs.len() / 10 + 64,
            "{what}: {} B against detools' {} B",
            ours.len() - HEADER_LEN,
            theirs.len()
        );
    }
}

/// The issue's goal: after a small change in a ~600 KB firmware, the patch is at
/// most 1/20 of the image (detools gets ~1.7% on real firmware). Each patch
/// applies back to the exact new image.
#[test]
fn small_changes_give_patches_well_under_a_twentieth_of_the_image() {
    let (base, news) = cases(600_000);
    for (what, new) in news {
        let patch = delta::create_patch(&base, &new).unwrap();
        assert!(
            delta::apply_patch(&base, &patch).unwrap() == new,
            "{what}: the patch does not give the new image"
        );
        let ratio = patch.len() as f64 / new.len() as f64;
        eprintln!(
            "{what}: {} B image, {} B patch = {:.2}%",
            new.len(),
            patch.len(),
            ratio * 100.0
        );
        if what == "everything changed" {
            // Nothing to share: the new image's bytes, as heatshrink literals
            // (9 bits a byte) at most.
            assert!(patch.len() <= new.len() / 8 * 9 + 1024, "{what}");
        } else {
            assert!(
                patch.len() <= new.len() / 20,
                "{what}: {:.2}%",
                ratio * 100.0
            );
        }
    }
}

/// A base without a validation hash (hash-appended byte 0) cannot be named in a
/// patch header: refused with a clear error, as is a base that is no image.
#[test]
fn a_base_without_a_validation_hash_is_refused() {
    let (base, news) = cases(20_000);
    let mut unhashed = base.clone();
    unhashed[23] = 0;
    unhashed.truncate(base.len() - 32);
    appimage::check(&unhashed, Some(5)).unwrap();
    let e = delta::create_patch(&unhashed, &news[0].1).unwrap_err();
    assert_eq!(e, DeltaError::NoValidationHash);
    assert!(e.to_string().contains("no validation hash"), "{e}");
    let e = delta::create_patch(&news[0].1[100..], &base).unwrap_err();
    assert!(matches!(e, DeltaError::BaseNotAnImage(_)), "{e}");
}

/// A patch made against one image, applied to another: refused by the header's
/// validation hash before anything is applied.
#[test]
fn a_patch_for_another_base_is_refused() {
    let (base, news) = cases(20_000);
    let patch = delta::create_patch(&base, &news[0].1).unwrap();
    let other = &news[1].1;
    match delta::apply_patch(other, &patch) {
        Err(DeltaError::WrongBase {
            patch: named,
            base: have,
        }) => {
            assert_eq!(named, hex::encode(&base[base.len() - 32..]));
            assert_eq!(have, hex::encode(&other[other.len() - 32..]));
        }
        r => panic!("applied to another base: {r:?}"),
    }
    assert_eq!(
        delta::apply_patch(&base, &patch).as_deref(),
        Ok(news[0].1.as_slice())
    );
}

/// Upload `bytes` as they are to the emulator: a session of the host library
/// (`cargo ota` does not choose patches yet), so the patch reaches the device.
fn send(emu: &crate::support::Emu, bytes: &[u8]) -> Result<(), cargo_ota::error::UploadError> {
    use cargo_ota::session::{Target, UploadOptions, upload};
    let target = Target {
        name: "emu".into(),
        host: "127.0.0.1".into(),
        port: emu.port().parse().unwrap(),
    };
    let options = UploadOptions {
        timeout: std::time::Duration::from_secs(5),
        retries: 3,
        ..UploadOptions::default()
    };
    upload(&target, bytes, &options, &mut |_| {}).map(|_| ())
}

/// The emulated arduino-ota device runs an image (`--running`), applies a patch
/// against it, runs the result, and takes the next patch against that; a patch
/// for another base is refused ("Delta Base Mismatch") and nothing is stored;
/// an arduino-esp32 core refuses a patch as not an app image.
#[test]
fn the_emulator_applies_patches_against_the_image_it_runs() {
    use arduino_ota::DeviceFailure;
    use cargo_ota::error::UploadError;
    let dir = tempfile::tempdir().unwrap();
    let (v1, news) = cases(120_000);
    let (v2, v3) = (news[0].1.clone(), news[1].1.clone());
    let running = crate::support::write_file(dir.path(), "running.bin", &v1);
    let emu = crate::support::Emu::start(&[
        "--flavor",
        "arduino-ota",
        "--running",
        running.to_str().unwrap(),
    ]);
    let stored = |ev: &serde_json::Value| std::fs::read(ev["path"].as_str().unwrap()).unwrap();
    for (base, new) in [(&v1, &v2), (&v2, &v3)] {
        let patch = delta::create_patch(base, new).unwrap();
        assert!(
            patch.len() * 20 < new.len(),
            "{} of {}",
            patch.len(),
            new.len()
        );
        send(&emu, &patch).unwrap();
        let ev = emu.next_event();
        assert_eq!(ev["event"], "update-ok", "{ev}");
        assert_eq!(stored(&ev), *new, "the device stores the patched image");
    }
    // It runs v3 now: a patch against v1 is for another base.
    let stale = delta::create_patch(&v1, &v2).unwrap();
    // What the device said, as the host read it.
    let failure = |e: UploadError| match e {
        UploadError::DeviceError { failure, .. } => failure,
        other => panic!("not the device's verdict: {other:?}"),
    };
    let e = send(&emu, &stale).unwrap_err();
    assert_eq!(failure(e), Some(DeviceFailure::DeltaBaseMismatch));
    assert_eq!(emu.next_event()["event"], "update-failed");
    assert_eq!(
        emu.written().len(),
        2,
        "nothing stored for the refused patch"
    );

    // A core does not know patches: the first byte is no app image's.
    let core = crate::support::Emu::start(&["--flavor", "esp32"]);
    let e = send(&core, &stale).unwrap_err();
    assert_eq!(failure(e), Some(DeviceFailure::WrongMagic));

    // Nothing to patch (no `--running`): "Delta Base Mismatch", as on a device.
    let fresh = crate::support::Emu::start(&["--flavor", "arduino-ota"]);
    let e = send(&fresh, &stale).unwrap_err();
    assert_eq!(failure(e), Some(DeviceFailure::DeltaBaseMismatch));
}

/// `cargo ota upload` inside a package keeps what each device runs and sends
/// the next image as a patch against it; a device that runs something else
/// refuses the patch, and gets the whole image at once, with a warning;
/// `--no-delta` sends the whole image.
#[test]
fn uploads_send_a_patch_against_what_the_device_was_last_sent() {
    use crate::support::fixture::{env_refs, fleet_fixture, real_cargo};
    let emu = crate::support::Emu::start(&["--flavor", "arduino-ota"]);
    let (f, _) = fleet_fixture(&[(&emu, "")], "");
    let (v1, news) = cases(120_000);
    let (v2, v3) = (&news[0].1, &news[1].1);
    let env = vec![("CARGO".to_string(), real_cargo())];
    let upload = |image: &[u8], extra: &[&str]| {
        let file = f.write_bytes("next.bin", image);
        let args = [
            &["upload", file.to_str().unwrap(), "--all"][..],
            // Seeded images carry no responder marker.
            &["--allow-no-ota", "--message-format", "json"],
            extra,
        ]
        .concat();
        let r = crate::support::run_in(f.root(), &args, &env_refs(&env));
        let started: Vec<serde_json::Value> = r
            .json()
            .into_iter()
            .filter(|l| l["reason"] == "upload-started")
            .collect();
        (r, started)
    };
    let stored = || {
        let ev = emu.next_event();
        assert_eq!(ev["event"], "update-ok", "{ev}");
        std::fs::read(ev["path"].as_str().unwrap()).unwrap()
    };
    // The first update: nothing kept, the whole image.
    let (r, started) = upload(&v1, &[]);
    r.assert_code(0);
    assert_eq!(started[0]["compression"], "none");
    assert_eq!(stored(), v1);
    // The next: a patch against it.
    let (r, started) = upload(v2, &[]);
    r.assert_code(0);
    assert_eq!(started[0]["compression"], "delta");
    let sent = started[0]["size"].as_u64().unwrap();
    assert!(sent * 20 < v2.len() as u64, "{sent} of {}", v2.len());
    assert_eq!(started[0]["image_size"], v2.len());
    assert_eq!(stored(), *v2);
    // The kept base is not what the device runs (v3 kept, v2 running): the
    // device refuses the patch, the whole image follows in the same run.
    let bases = cargo_ota::bases::Bases::in_target_dir(&f.root().join("target"));
    assert_eq!(bases.get("dev01", "esp32c3").as_ref(), Some(v2));
    bases.put("dev01", "esp32c3", v3).unwrap();
    let (r, started) = upload(v2, &[]);
    r.assert_code(0);
    assert_eq!(started.len(), 2, "a patch, then the whole image");
    assert_eq!(started[0]["compression"], "delta");
    assert_eq!(started[1]["compression"], "none");
    assert!(
        r.stderr
            .contains("refused the delta patch (Delta Base Mismatch")
            && r.stderr.contains("sending the whole image"),
        "{}",
        r.stderr
    );
    assert_eq!(emu.next_event()["event"], "update-failed");
    assert_eq!(stored(), *v2);
    assert_eq!(bases.get("dev01", "esp32c3").as_ref(), Some(v2));
    // --no-delta: the whole image, and it is still kept as what the device
    // runs, so that the next run without the flag sends a patch against it.
    let (r, started) = upload(v3, &["--no-delta"]);
    r.assert_code(0);
    assert_eq!(started[0]["compression"], "none");
    assert_eq!(stored(), *v3);
    assert_eq!(bases.get("dev01", "esp32c3").as_ref(), Some(v3));
    let (r, started) = upload(v2, &[]);
    r.assert_code(0);
    assert_eq!(started[0]["compression"], "delta");
    assert_eq!(stored(), *v2);
}

/// An Arduino core takes no patches: it refuses the first as no app image, gets
/// the whole image in the same run, and is never sent another.
#[test]
fn a_core_is_sent_one_patch_and_then_only_whole_images() {
    use crate::support::fixture::{env_refs, fleet_fixture, real_cargo};
    let core = crate::support::Emu::start(&["--flavor", "esp32"]);
    let (f, _) = fleet_fixture(&[(&core, "")], "");
    let (v1, news) = cases(120_000);
    let env = vec![("CARGO".to_string(), real_cargo())];
    let upload = |image: &[u8]| {
        let file = f.write_bytes("next.bin", image);
        let args = ["upload", file.to_str().unwrap(), "--all", "--allow-no-ota"];
        crate::support::run_in(f.root(), &args, &env_refs(&env))
    };
    upload(&v1).assert_code(0);
    assert_eq!(core.next_event()["event"], "update-ok");
    let r = upload(&news[0].1);
    r.assert_code(0);
    assert!(
        r.stderr
            .contains("refused the delta patch (Wrong Magic Byte)"),
        "{}",
        r.stderr
    );
    assert_eq!(core.next_event()["event"], "update-failed");
    assert_eq!(core.next_event()["event"], "update-ok");
    let r = upload(&news[1].1);
    r.assert_code(0);
    assert!(!r.stderr.contains("delta"), "{}", r.stderr);
    let ev = core.next_event();
    assert_eq!(ev["event"], "update-ok", "no patch first: {ev}");
    assert_eq!(
        std::fs::read(ev["path"].as_str().unwrap()).unwrap(),
        news[1].1
    );
}

/// Seeded images through the TAP device: see [`patch_into_the_tap_device`]
/// (tests/all/firmware.rs runs it on the example firmware built twice).
#[test]
fn a_patch_into_the_tap_device_stores_the_exact_new_image() {
    let (v1, news) = cases(150_000);
    let (v2, v3) = (&news[0].1, &news[1].1);
    patch_into_the_tap_device(
        "a_patch_into_the_tap_device_stores_the_exact_new_image",
        &v1,
        v2,
        Some(v3),
        "",
    );
}

/// `cargo ota upload` of `new` into the TAP device (the `tap-device` example,
/// `device_args` added) running `base`, from a package that kept `base`: a
/// patch goes, the device stores the exact new image, the kept image becomes
/// it. Then, with the device running `other` (when given), the patch is
/// refused ("Delta Base Mismatch") and the whole image follows in the same run.
/// Then patches sent as they are (a client that sends any bytes, inside the
/// namespace) into a device running `base`: one for another base, one cut
/// short, one with a byte flipped on the way: each refused, nothing stored, and
/// the exact patch still works after them. `false` where the test cannot run
/// here (reported).
pub(crate) fn patch_into_the_tap_device(
    test: &str,
    base: &[u8],
    new: &[u8],
    other: Option<&[u8]>,
    device_args: &str,
) -> bool {
    use crate::support::netns::{in_namespace, namespace, tap_device};
    use crate::tap::{DEVICE, outcome, setup};
    if !namespace(test) {
        return false;
    }
    let Some(tap) = tap_device(test) else {
        return false;
    };
    let runs: Vec<(&[u8], usize)> = std::iter::once((base, 1))
        .chain(other.map(|o| (o, 2)))
        .collect();
    for (runs, sessions) in runs {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // A package, so that cargo ota keeps what the device runs; it kept base.
        std::fs::create_dir_all(d.join("pkg/src")).unwrap();
        std::fs::write(
            d.join("pkg/Cargo.toml"),
            "[package]\nname = \"fw\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
        )
        .unwrap();
        std::fs::write(d.join("pkg/src/main.rs"), "fn main() {}\n").unwrap();
        let bases = cargo_ota::bases::Bases::in_target_dir(&d.join("pkg/target"));
        bases.put(DEVICE, "esp32c3", base).unwrap();
        let running = crate::support::write_file(d, "running.bin", runs);
        let next = crate::support::write_file(d, "next.bin", new);
        let script = format!(
            r#"{setup}
cd '{pkg}'
code=0
'{BIN}' upload '{next}' --host {DEVICE} --allow-no-ota --message-format json || code=$?
echo "{{\"reason\":\"exit\",\"code\":$code}}"
for i in $(seq {sessions}); do read ev <&3; echo "$ev"; done
"#,
            setup = setup(
                &tap,
                d,
                "",
                &format!("--running '{}' {device_args}", running.display())
            ),
            pkg = d.join("pkg").display(),
            next = next.display(),
            BIN = crate::support::BIN,
        );
        let r = in_namespace(&script);
        r.assert_code(0);
        let o = outcome(&r.json(), &d.join("images"));
        assert_eq!(o.code, 0, "{:?}\n{}", o.lines, r.stderr);
        let started: Vec<&serde_json::Value> = o
            .lines
            .iter()
            .filter(|l| l["reason"] == "upload-started")
            .collect();
        assert_eq!(started[0]["compression"], "delta", "{:?}", o.lines);
        assert!(started[0]["size"].as_u64().unwrap() * 20 < new.len() as u64);
        if sessions == 2 {
            assert_ne!(started[1]["compression"], "delta", "the whole image after");
            assert!(r.stderr.contains("Delta Base Mismatch"), "{}", r.stderr);
        }
        assert_eq!(o.device["event"], "update-ok", "{}", o.device);
        assert!(o.images == vec![new.to_vec()], "the exact new image, once");
        assert_eq!(bases.get(DEVICE, "esp32c3").as_deref(), Some(new));
    }
    bad_patches_into_the_tap_device(&tap, base, new, device_args);
    true
}

/// A client that sends a file as it is (no password), as espota.py does:
/// `send.py HOST FILE whole|cut`; prints the device's answer, or `cut`.
const SEND_PY: &str = r#"
import hashlib, socket, sys
host, path, mode = sys.argv[1], sys.argv[2], sys.argv[3]
data = open(path, "rb").read()
md5 = hashlib.md5(data).hexdigest()
srv = socket.socket()
srv.bind(("192.168.69.1", 0))
srv.listen(1)
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.settimeout(2)
invitation = "0 %d %d %s\n" % (srv.getsockname()[1], len(data), md5)
for _ in range(10):
    udp.sendto(invitation.encode(), (host, 3232))
    try:
        reply = udp.recv(64)
        break
    except socket.timeout:
        reply = b""
assert reply.startswith(b"OK"), reply
srv.settimeout(20)
conn, _ = srv.accept()
if mode == "cut":
    conn.sendall(data[: len(data) // 2])
    conn.close()
    print("cut")
    sys.exit(0)
conn.sendall(data)
conn.settimeout(30)
answer = b""
while True:
    chunk = conn.recv(256)
    if not chunk:
        break
    answer += chunk
print(answer.decode(errors="replace").replace("\n", " "))
"#;

/// Patches as they are into the TAP device running `base`: for another base,
/// cut, flipped on the way (the MD5 is of the flipped bytes: only the patch
/// and the image checks can tell); each refused with nothing stored; then the
/// exact patch, stored as `new`.
fn bad_patches_into_the_tap_device(tap: &Path, base: &[u8], new: &[u8], device_args: &str) {
    use crate::support::netns::in_namespace;
    use crate::tap::{DEVICE, setup};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let good = delta::create_patch(base, new).unwrap();
    let other = delta::create_patch(new, base).unwrap();
    // A flip that changes what the patch makes (some flips do not: a
    // back-reference to equal bytes; those the device rightly takes).
    let flipped = (HEADER_LEN + (good.len() - HEADER_LEN) / 2..good.len())
        .map(|at| {
            let mut f = good.clone();
            f[at] ^= 0x40;
            f
        })
        .find(|f| delta::apply_patch(base, f).ok().as_deref() != Some(new))
        .expect("a flip that changes the result");
    let w = |name: &str, bytes: &[u8]| crate::support::write_file(d, name, bytes);
    let (send, running) = (w("send.py", SEND_PY.as_bytes()), w("running.bin", base));
    let cases = [
        ("another base", w("other.bin", &other), "whole"),
        ("cut short", w("good-cut.bin", &good), "cut"),
        ("a byte flipped", w("flipped.bin", &flipped), "whole"),
        ("the exact patch", w("good.bin", &good), "whole"),
    ];
    let mut script = setup(
        tap,
        d,
        "",
        &format!("--running '{}' {device_args}", running.display()),
    );
    for (_, file, mode) in &cases {
        script.push_str(&format!(
            "python3 '{}' {DEVICE} '{}' {mode} >&2\nread ev <&3\necho \"$ev\"\n",
            send.display(),
            file.display()
        ));
    }
    let r = in_namespace(&script);
    r.assert_code(0);
    let events: Vec<serde_json::Value> = r.json().into_iter().skip(1).collect();
    assert_eq!(events.len(), cases.len(), "{}\n{}", r.stdout, r.stderr);
    for ((what, _, _), ev) in cases.iter().zip(&events) {
        let want = if *what == "the exact patch" {
            "update-ok"
        } else {
            "update-failed"
        };
        assert_eq!(ev["event"], want, "{what}: {ev}\n{}", r.stderr);
    }
    assert!(
        events[0]["reason"]
            .as_str()
            .unwrap()
            .contains("Delta Base Mismatch"),
        "{}",
        events[0]
    );
    // Only the exact patch stored anything: the new image.
    let stored = crate::support::stored_images(&d.join("images"));
    assert!(
        stored == vec![new.to_vec()],
        "{} images stored",
        stored.len()
    );
}

/// A `.local` device says which image it runs (its `ota_sha256` TXT record,
/// with `ota_delta`): cargo-ota sends a patch only against that image, forgets
/// a kept one it does not run before anything is sent, and `--verify` asks it
/// after the reboot whether it runs the new one (a device that rolled back is a
/// warning, and its kept image is forgotten). In a private network namespace.
#[test]
fn a_local_device_says_which_image_it_runs() {
    use crate::support::fixture::{Fixture, real_cargo};
    use crate::support::netns::{in_namespace, namespace};
    use crate::support::{BIN, write_file};
    if !namespace("a_local_device_says_which_image_it_runs") {
        return;
    }
    let (v0, news) = cases(120_000);
    let (v1, v2) = (&news[0].1, &news[1].1);
    // v2 with one more byte changed: a small patch against v2.
    let v3 = {
        let (rodata, text) = segments(0x2545_f491, 120_000);
        let mut inserted = rodata.clone();
        inserted.splice(rodata.len() / 3..rodata.len() / 3, noise(7, 300));
        let mut changed = text;
        changed[50] ^= 0x77;
        firmware(&inserted, &changed)
    };
    let hash = |image: &[u8]| hex::encode(delta::validation_hash(image).unwrap());
    let f = Fixture::package("fw", "[package.metadata.ota]\n");
    let root = f.root();
    let [p1, p2, p3] = [("v1.bin", v1), ("v2.bin", v2), ("v3.bin", &v3)]
        .map(|(name, image)| write_file(root, name, image));
    // The image kept for bench-1 is v0; it runs v1.
    let bases = cargo_ota::bases::Bases::in_target_dir(&root.join("target"));
    bases.put("bench-1.local", "esp32c3", &v0).unwrap();
    let (r, b) = (root.display(), BIN);
    let cargo = real_cargo();
    let script = format!(
        r#"
cd '{r}'
mkfifo e1 e2
'{b}' emulate --flavor arduino-ota --port 0 -q --mdns bench-1 --running '{p1}' > e1 & k1=$!
'{b}' emulate --flavor arduino-ota --port 0 -q --mdns bench-2 --running '{p1}' --fault rollback > e2 & k2=$!
trap 'kill $k1 $k2 2>/dev/null' EXIT
exec 3<e1 4<e2
read a1 <&3
read a2 <&4
# Both announced before the uploads look them up: browse until they answer.
for i in 1 2 3 4 5 6 7 8 9 10; do
  '{b}' discover --timeout 1 --message-format json > found.json
  grep -q '"name":"bench-1"' found.json && grep -q '"name":"bench-2"' found.json && break
done
cat found.json
up() {{ CARGO='{cargo}' '{b}' upload "$1" --host "$2.local" --port "$3" --allow-no-ota --verify --verify-timeout 20 --message-format json; }}
up '{p2}' bench-1 "${{a1#*:}}"
echo '{{"reason":"next"}}'
up '{p3}' bench-1 "${{a1#*:}}"
echo '{{"reason":"next"}}'
up '{p2}' bench-2 "${{a2#*:}}"
"#,
        p1 = p1.display(),
        p2 = p2.display(),
        p3 = p3.display(),
    );
    let r = in_namespace(&script);
    r.assert_code(0);
    let lines = r.json();
    let found = lines
        .iter()
        .find(|l| l["reason"] == "device-found" && l["name"] == "bench-1")
        .expect("bench-1 found");
    assert_eq!(found["delta"], "esp_delta_ota");
    assert_eq!(found["sha256"], hash(v1));
    let runs: Vec<&[serde_json::Value]> = lines.split(|l| l["reason"] == "next").collect();
    let of = |run: &[serde_json::Value], reason: &str| -> Vec<serde_json::Value> {
        run.iter()
            .filter(|l| l["reason"] == reason)
            .cloned()
            .collect()
    };
    // 1. The kept v0 is not what it runs: forgotten, the whole image at once
    // (seeded noise does not compress), no refused patch; it runs v2 afterwards.
    let started = of(runs[0], "upload-started");
    assert_eq!(started.len(), 1, "{}", r.stdout);
    assert_eq!(started[0]["compression"], "none");
    assert!(
        !r.stderr.contains("refused the delta patch"),
        "{}",
        r.stderr
    );
    let running = of(runs[0], "running-image");
    assert_eq!(running[0]["sha256"], hash(v2));
    assert_eq!(running[0]["matches"], true);
    // 2. Now a patch against v2, which it runs.
    let started = of(runs[1], "upload-started");
    assert_eq!(started.len(), 1, "{}", r.stdout);
    assert_eq!(started[0]["compression"], "delta");
    assert!(started[0]["size"].as_u64().unwrap() * 20 < v3.len() as u64);
    let running = of(runs[1], "running-image");
    assert_eq!(running[0]["sha256"], hash(&v3));
    assert_eq!(running[0]["matches"], true);
    assert_eq!(bases.get("bench-1.local", "esp32c3"), Some(v3.clone()));
    // 3. bench-2 rolls back: it says it runs v1, not v2; a warning, and nothing
    // kept for it.
    let running = of(runs[2], "running-image");
    assert_eq!(running[0]["sha256"], hash(v1));
    assert_eq!(running[0]["expected"], hash(v2));
    assert_eq!(running[0]["matches"], false);
    assert!(
        r.stderr
            .contains("bench-2.local came back running another image"),
        "{}",
        r.stderr
    );
    assert_eq!(bases.get("bench-2.local", "esp32c3"), None);
}
