//! `cargo ota upload` into the device crate's embassy-net responder running on
//! smoltcp over a TAP interface (the `tap-device` example), inside a private
//! network namespace that each test makes. Nothing leaves the namespace.

use std::path::Path;

use serde_json::Value;

use crate::support::netns::{in_namespace, namespace, tap_device};
use crate::support::{BIN, image, write_file};

const DEVICE: &str = "192.168.69.2";

/// The start of every script: a TAP interface with the host's address, and the
/// device on it, its stdout on file descriptor 3 once it said `ready`.
fn setup(tap: &Path, out: &Path, device_env: &str, device_args: &str) -> String {
    format!(
        r#"
ip tuntap add dev tap0 mode tap
ip addr add 192.168.69.1/24 dev tap0
ip link set tap0 up
cd '{out}'
mkfifo dev
{device_env} '{tap}' --tap tap0 --address {DEVICE}/24 --out '{out}/images' {device_args} > dev & p=$!
trap 'kill $p 2>/dev/null' EXIT
exec 3<dev
read ready <&3
echo "{{\"reason\":\"device-ready\",\"line\":\"$ready\"}}"
"#,
        tap = tap.display(),
        out = out.display(),
    )
}

/// What a TAP session printed: the uploader's JSON lines, its exit code, the
/// device's event, and the images the device accepted.
struct Outcome {
    lines: Vec<Value>,
    code: i64,
    device: Value,
    images: Vec<Vec<u8>>,
}

fn run(
    test: &str,
    data: &[u8],
    device_env: &str,
    device_args: &str,
    upload: &str,
) -> Option<Outcome> {
    if !namespace(test) {
        return None;
    }
    let tap = tap_device(test)?;
    let dir = tempfile::tempdir().unwrap();
    let app = write_file(dir.path(), "app.bin", data);
    let script = format!(
        r#"{setup}
code=0
{upload} '{BIN}' upload '{app}' --host {DEVICE} --message-format json || code=$?
echo "{{\"reason\":\"exit\",\"code\":$code}}"
read ev <&3
echo "$ev"
"#,
        setup = setup(&tap, dir.path(), device_env, device_args),
        app = app.display(),
    );
    let r = in_namespace(&script);
    r.assert_code(0);
    Some(outcome(&r.json(), &dir.path().join("images")))
}

fn outcome(lines: &[Value], images: &Path) -> Outcome {
    assert_eq!(lines[0]["reason"], "device-ready");
    assert_eq!(lines[0]["line"], format!("ready {DEVICE}:3232"));
    let code = lines
        .iter()
        .find(|l| l["reason"] == "exit")
        .expect("exit line")["code"]
        .as_i64()
        .unwrap();
    let device = lines.last().unwrap().clone();
    let mut files: Vec<_> = std::fs::read_dir(images)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    files.sort();
    Outcome {
        lines: lines.to_vec(),
        code,
        device,
        images: files.iter().map(|p| std::fs::read(p).unwrap()).collect(),
    }
}

#[test]
fn upload_to_the_smoltcp_device_is_byte_identical() {
    let data = image(300_000);
    let Some(o) = run(
        "upload_to_the_smoltcp_device_is_byte_identical",
        &data,
        "",
        "",
        "",
    ) else {
        return;
    };
    assert_eq!(o.code, 0, "{:?}", o.lines);
    assert_eq!(o.device["event"], "update-ok", "{}", o.device);
    assert_eq!(o.device["size"], data.len());
    assert_eq!(o.device["md5"], arduino_ota::md5_hex(&data));
    assert_eq!(o.images, vec![data]);
    let finished = o
        .lines
        .iter()
        .find(|l| l["reason"] == "upload-finished")
        .expect("upload-finished");
    assert_eq!(finished["host"], DEVICE);
}

#[test]
fn password_with_each_challenge_scheme() {
    let data = image(50_000);
    for scheme in ["sha256", "md5"] {
        let Some(o) = run(
            "password_with_each_challenge_scheme",
            &data,
            "OTA_PW=tap-secret",
            &format!("--password-env OTA_PW --auth {scheme}"),
            "CARGO_OTA_PASSWORD=tap-secret",
        ) else {
            return;
        };
        assert_eq!(o.code, 0, "{scheme}: {:?}", o.lines);
        assert_eq!(o.device["event"], "update-ok", "{scheme}");
        assert_eq!(o.images, vec![data.clone()], "{scheme}");
        let all = serde_json::to_string(&o.lines).unwrap();
        assert!(!all.contains("tap-secret"), "the password was printed");
    }
}

#[test]
fn wrong_password_is_exit_6_and_nothing_written() {
    let data = image(20_000);
    let Some(o) = run(
        "wrong_password_is_exit_6_and_nothing_written",
        &data,
        "OTA_PW=right",
        "--password-env OTA_PW",
        "CARGO_OTA_PASSWORD=wrong",
    ) else {
        return;
    };
    assert_eq!(o.code, 6, "{:?}", o.lines);
    assert_eq!(o.device["event"], "auth-failed", "{}", o.device);
    let failed = o
        .lines
        .iter()
        .find(|l| l["reason"] == "upload-failed")
        .unwrap();
    assert_eq!(failed["error"], "auth-failed");
    assert!(o.images.is_empty());
}

#[test]
fn abort_mid_stream_leaves_no_update() {
    let test = "abort_mid_stream_leaves_no_update";
    if !namespace(test) {
        return;
    }
    let Some(tap) = tap_device(test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = image(600_000);
    let app = write_file(dir.path(), "app.bin", &data);
    // A 40 ms link makes the transfer take seconds; the uploader is interrupted
    // once it reports progress, so the device is mid-stream.
    let script = format!(
        r#"{setup}
mkfifo up
'{BIN}' upload '{app}' --host {DEVICE} --message-format json > up & u=$!
exec 4<up
while read line <&4; do
  case "$line" in *upload-progress*) break;; esac
done
kill -INT $u
code=0
wait $u || code=$?
echo "{{\"reason\":\"exit\",\"code\":$code}}"
read ev <&3
echo "$ev"
"#,
        setup = setup(&tap, dir.path(), "", "--link-rtt-ms 40"),
        app = app.display(),
    );
    let r = in_namespace(&script);
    r.assert_code(0);
    let o = outcome(&r.json(), &dir.path().join("images"));
    assert_eq!(o.code, 130, "{}", r.stderr);
    assert_eq!(o.device["event"], "update-failed", "{}", o.device);
    let received = o.device["received"].as_u64().unwrap();
    assert!(received > 0 && received < data.len() as u64, "{}", o.device);
    assert!(o.images.is_empty(), "an interrupted update left an image");
}
