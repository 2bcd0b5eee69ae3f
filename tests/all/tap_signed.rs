//! Signed updates into the device crate's responder on smoltcp over a TAP
//! interface (the `tap-device` example with `--require-signature`), inside a
//! private network namespace each test makes: the signed image is taken; an
//! unsigned one, another key's, a changed byte of the image or of its
//! signature block are refused with exit 11 and nothing is stored; a man in the
//! middle that swaps the TCP stream after a correct password gets nowhere.
//! And `cargo ota emulate --require-signature`, which behaves the same.

use cargo_ota::sign::{Key, sign};
use p256::ecdsa::SigningKey;

use crate::support::netns::{in_namespace, namespace, tap_device};
use crate::support::{BIN, Emu, image, upload_file, write_file};
use crate::tap::{DEVICE, outcome, run, setup};

/// The ECDSA P-256 key made from `seed` (fixed bytes: the same key every run).
fn key(seed: u8) -> Key {
    Key::Ecdsa(SigningKey::from_slice(&[seed; 32]).unwrap())
}

fn require(key: &Key) -> String {
    format!("--require-signature {}", hex::encode(key.digest()))
}

/// Flip one byte and mend the block's CRC, so that only the signature can
/// tell (a block whose CRC fails is no block at all).
fn flip_signature(signed: &[u8]) -> Vec<u8> {
    let mut t = signed.to_vec();
    let block = t.len() - 4096;
    t[block + 101] ^= 1;
    let crc = arduino_ota::signature::crc32(&t[block..block + 1196]);
    t[block + 1196..block + 1200].copy_from_slice(&crc.to_le_bytes());
    t
}

/// `cargo ota upload --sign KEY` (the project's key, as `signing-key` names
/// it) into a device that requires it: taken raw and compressed, stored as
/// signed; and a file already signed goes as it is.
#[test]
fn a_device_that_requires_a_signature_takes_the_signed_image_raw_and_compressed() {
    use p256::pkcs8::{EncodePrivateKey, LineEnding};
    use std::os::unix::fs::PermissionsExt;
    let test = "a_device_that_requires_a_signature_takes_the_signed_image_raw_and_compressed";
    let project = key(1);
    let Key::Ecdsa(k) = &project else {
        unreachable!()
    };
    let dir = tempfile::tempdir().unwrap();
    let pem = k.to_pkcs8_pem(LineEnding::LF).unwrap();
    let key_file = write_file(dir.path(), "ota.pem", pem.as_bytes());
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let app = image(200_000);
    let signed = sign(&app, &project);
    let sign_with = format!("--sign '{}'", key_file.display());
    for (data, upload_args) in [
        (&app, format!("{sign_with} --no-compress")),
        (&app, format!("{sign_with} --compress")),
        (&signed, "--no-compress".to_string()),
    ] {
        let Some(o) = run(test, data, "", &require(&project), "", &upload_args) else {
            return;
        };
        assert_eq!(o.code, 0, "{upload_args}: {:?}", o.lines);
        assert_eq!(o.device["event"], "update-ok", "{}", o.device);
        assert_eq!(o.images, vec![signed.clone()], "{upload_args}");
    }
}

#[test]
fn unsigned_foreign_and_changed_images_are_refused_with_exit_11() {
    let test = "unsigned_foreign_and_changed_images_are_refused_with_exit_11";
    let project = key(1);
    let app = image(120_000);
    let signed = sign(&app, &project);
    let mut image_byte = signed.clone();
    image_byte[50_000] ^= 0x40;
    let cases = [
        ("unsigned", app.clone(), "has no signature sector"),
        ("another key", sign(&app, &key(2)), "does not trust"),
        ("an image byte", image_byte, "not the image's"),
        (
            "a signature byte",
            flip_signature(&signed),
            "does not verify",
        ),
    ];
    for (what, data, says) in cases {
        let Some(o) = run(test, &data, "", &require(&project), "", "") else {
            return;
        };
        assert_eq!(o.code, 11, "{what}: {:?}", o.lines);
        let failed = o
            .lines
            .iter()
            .find(|l| l["reason"] == "upload-failed")
            .expect("upload-failed");
        assert_eq!(failed["error"], "signature-refused", "{what}");
        let message = failed["message"].as_str().unwrap();
        assert!(message.contains(says), "{what}: {message}");
        assert!(failed["hint"].as_str().is_some(), "{what}: a hint");
        assert_eq!(o.device["event"], "update-failed", "{what}: {}", o.device);
        assert!(o.images.is_empty(), "{what}: an image was stored");
    }
}

/// A relay in the middle: it forwards the handshake (so the password is
/// right), but tells the device another image's size and MD5 and, once the
/// device connects, sends it the other image in place of what cargo ota sends,
/// passing the device's answers back. The same Python the test runs.
const RELAY: &str = r#"
import hashlib, select, socket, sys
evil = open(sys.argv[1], 'rb').read()
device = (sys.argv[2], int(sys.argv[3]))
front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
front.bind(('127.0.0.1', 0))
back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
back.bind(('0.0.0.0', 0))
listener = socket.socket()
listener.bind(('0.0.0.0', 0))
listener.listen(1)
print(front.getsockname()[1], flush=True)
client = None
host_port = None
while True:
    ready, _, _ = select.select([front, back, listener], [], [], 30)
    if not ready:
        sys.exit('relay: no traffic for 30 s')
    if listener in ready:
        break
    if front in ready:
        data, client = front.recvfrom(4096)
        words = data.split()
        if len(words) == 4 and words[0] in (b'0', b'100'):
            host_port = int(words[1])
            data = b'%s %d %d %s\n' % (words[0], listener.getsockname()[1], len(evil),
                                       hashlib.md5(evil).hexdigest().encode())
        back.sendto(data, device)
    if back in ready:
        data, _ = back.recvfrom(4096)
        front.sendto(data, client)
dev, _ = listener.accept()
up = socket.create_connection(('127.0.0.1', host_port))
swapped = 0
while True:
    ready, _, _ = select.select([up, dev], [], [], 30)
    if not ready:
        sys.exit('relay: the transfer stalled')
    if up in ready:
        data = up.recv(65536)
        if not data:
            break
        dev.sendall(evil[swapped:swapped + len(data)])
        swapped += len(data)
    if dev in ready:
        data = dev.recv(65536)
        if not data:
            break
        up.sendall(data)
print('swapped %d bytes' % swapped, file=sys.stderr)
dev.close()
up.close()
"#;

/// What the relay did to one upload: the uploader's exit code and failure, the
/// device's event, the images it stored.
fn through_the_relay(test: &str, device_args: &str) -> Option<crate::tap::Outcome> {
    if !namespace(test) {
        return None;
    }
    let tap = tap_device(test)?;
    let dir = tempfile::tempdir().unwrap();
    let project = key(1);
    // The attacker's image: another app of the same size, signed with their key.
    let genuine = sign(&image(150_000), &project);
    let evil = (1..4000)
        .map(|less| sign(&image(150_000 - less * 8), &key(9)))
        .find(|e| e.len() == genuine.len())
        .expect("an image of the same signed size");
    assert_ne!(evil, genuine);
    let app = write_file(dir.path(), "app.bin", &genuine);
    let evil_file = write_file(dir.path(), "evil.bin", &evil);
    let relay = write_file(dir.path(), "relay.py", RELAY.as_bytes());
    let script = format!(
        r#"{setup}
mkfifo rl
python3 '{relay}' '{evil}' {DEVICE} 3232 > rl 2> relay.err & r=$!
trap 'kill $p $r 2>/dev/null || true' EXIT
exec 5<rl
read rport <&5
code=0
CARGO_OTA_PASSWORD=tap-secret '{BIN}' upload '{app}' --host 127.0.0.1 --port $rport --message-format json || code=$?
echo "{{\"reason\":\"exit\",\"code\":$code}}"
wait $r || echo "{{\"reason\":\"relay-failed\"}}"
read ev <&3
echo "$ev"
"#,
        setup = setup(
            &tap,
            dir.path(),
            "OTA_PW=tap-secret",
            &format!("--password-env OTA_PW {device_args}"),
        ),
        relay = relay.display(),
        evil = evil_file.display(),
        app = app.display(),
    );
    let r = in_namespace(&script);
    r.assert_code(0);
    let o = outcome(&r.json(), &dir.path().join("images"));
    assert!(
        !o.lines.iter().any(|l| l["reason"] == "relay-failed"),
        "the relay failed: {}",
        std::fs::read_to_string(dir.path().join("relay.err")).unwrap_or_default()
    );
    let relay_err = std::fs::read_to_string(dir.path().join("relay.err")).unwrap();
    assert!(
        relay_err.contains(&format!("swapped {} bytes", genuine.len())),
        "the relay swapped the whole stream: {relay_err}"
    );
    if o.code == 0 {
        // The attack works where nothing checks signatures: proof that the
        // relay really swaps the image.
        assert_eq!(o.images, vec![evil]);
    }
    Some(o)
}

#[test]
fn a_man_in_the_middle_after_a_correct_password_is_refused() {
    let test = "a_man_in_the_middle_after_a_correct_password_is_refused";
    // Without a trusted key the password alone protects nothing: the device
    // takes the other image and cargo ota believes it updated.
    let Some(o) = through_the_relay(test, "") else {
        return;
    };
    assert_eq!(o.code, 0, "{:?}", o.lines);
    assert_eq!(o.device["event"], "update-ok", "{}", o.device);
    // With the project's key trusted: refused, nothing stored, and cargo ota
    // says so with exit 11.
    let Some(o) = through_the_relay(test, &require(&key(1))) else {
        return;
    };
    assert_eq!(o.code, 11, "{:?}", o.lines);
    assert_eq!(o.device["event"], "update-failed", "{}", o.device);
    assert!(o.images.is_empty(), "the swapped image was stored");
    let failed = o
        .lines
        .iter()
        .find(|l| l["reason"] == "upload-failed")
        .expect("upload-failed");
    assert_eq!(failed["error"], "signature-refused");
}

/// `emulate --require-signature` takes the key as a PEM file (public or
/// private) or the digest in hex, and then behaves as the device.
#[test]
fn the_emulator_requires_a_signature_as_the_device_does() {
    use p256::pkcs8::{EncodePublicKey, LineEnding};
    let dir = tempfile::tempdir().unwrap();
    let project = key(1);
    let Key::Ecdsa(k) = &project else {
        unreachable!()
    };
    let public = k.verifying_key().to_public_key_pem(LineEnding::LF).unwrap();
    let public = write_file(dir.path(), "pub.pem", public.as_bytes());
    let app = image(60_000);
    let signed = write_file(dir.path(), "signed.bin", &sign(&app, &project));
    let unsigned = write_file(dir.path(), "app.bin", &app);
    let digest = hex::encode(project.digest());
    for trusted in [public.to_str().unwrap(), digest.as_str()] {
        let emu = Emu::start(&["--flavor", "arduino-ota", "--require-signature", trusted]);
        let json = &["--message-format", "json"];
        let r = upload_file(&emu, &unsigned, json, &[]);
        r.assert_code(11);
        let failed = r
            .json()
            .into_iter()
            .find(|l| l["reason"] == "upload-failed")
            .unwrap();
        assert_eq!(failed["error"], "signature-refused");
        assert_eq!(emu.next_event()["event"], "update-failed");
        upload_file(&emu, &signed, json, &[]).assert_code(0);
        assert_eq!(emu.next_event()["event"], "update-ok");
        assert_eq!(emu.written().len(), 1, "{trusted}: only the signed image");
    }
    // A filesystem image must be signed too: `upload --fs --sign` signs it.
    use p256::pkcs8::EncodePrivateKey;
    use std::os::unix::fs::PermissionsExt;
    let pem = k.to_pkcs8_pem(LineEnding::LF).unwrap();
    let key_file = write_file(dir.path(), "ota.pem", pem.as_bytes());
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let fs_image = write_file(dir.path(), "fs.bin", &[0x5a; 20_000]);
    let emu = Emu::start(&["--flavor", "arduino-ota", "--require-signature", &digest]);
    let r = upload_file(&emu, &fs_image, &["--fs"], &[]);
    r.assert_code(11);
    assert_eq!(emu.next_event()["event"], "update-failed");
    let r = upload_file(
        &emu,
        &fs_image,
        &["--fs", "--sign", key_file.to_str().unwrap()],
        &[],
    );
    r.assert_code(0);
    assert_eq!(emu.next_event()["event"], "update-ok");
    let stored = std::fs::read(&emu.written()[0]).unwrap();
    assert_eq!(
        arduino_ota::signature::verify(&stored, &[project.digest()]),
        Ok(20_480)
    );
    assert_eq!(&stored[..20_000], &[0x5a; 20_000][..]);

    // A file that holds no key: exit 2, naming it.
    let junk = write_file(dir.path(), "junk.pem", b"not a key");
    let r = crate::support::run(
        &["emulate", "--require-signature", junk.to_str().unwrap()],
        &[],
    );
    r.assert_code(2);
    assert!(r.stderr.contains("junk.pem"), "{}", r.stderr);
    assert!(r.stderr.contains("64 hex digits"), "{}", r.stderr);
}
