//! Compressed uploads: gzip to an ESP8266 (its Updater stores it, eboot
//! inflates it), zlib to the arduino-ota responder (inflated as it arrives), the
//! image itself after a refusal in `auto`, and the `compress` setting.

use std::io::Read;

use serde_json::Value;

use crate::support::{Emu, Run, upload_file, write_file};

/// An ESP8266 app image: the magic byte, one segment, an entry point in IRAM,
/// code that compresses as firmware does, and the reply literal every
/// ArduinoOTA build carries (so the OTA guard passes it).
fn esp8266_image(len: usize) -> Vec<u8> {
    let mut image = vec![0xe9, 1, 2, 0x40, 0x00, 0x10, 0x10, 0x40];
    image.extend((0..len as u32).map(|i| ((i % 251) ^ (i / 2048)) as u8));
    image.extend_from_slice(b"Authentication Failed");
    image
}

/// An ESP32-C3 app image whose code compresses as firmware does, with the
/// responder's marker (for the OTA guard).
fn esp32c3_image(len: usize) -> Vec<u8> {
    let mut code: Vec<u8> = (0..len as u32)
        .map(|i| ((i % 251) ^ (i / 2048)) as u8)
        .collect();
    code.extend_from_slice(b"cargo-ota:ota-responder");
    arduino_ota::appimage::build(5, 0x4200_0020, &[(0x4200_0020, &code)])
}

fn lines(r: &Run, reason: &str) -> Vec<Value> {
    r.json()
        .into_iter()
        .filter(|l| l["reason"] == reason)
        .collect()
}

fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data)
        .read_to_end(&mut out)
        .unwrap();
    out
}

const JSON: &[&str] = &["--message-format", "json"];

/// The Updater's behaviour (core >= 2.7.0): it takes the gzip bytes, the
/// invitation's size and MD5 are theirs, and the staged bytes gunzip to the
/// exact image.
#[test]
fn an_esp8266_gets_gzip_that_gunzips_to_the_image() {
    let emu = Emu::start(&["--flavor", "esp8266", "--ok-spacing-ms", "0"]);
    let dir = tempfile::tempdir().unwrap();
    let img = esp8266_image(200_000);
    let file = write_file(dir.path(), "app.bin", &img);
    let r = upload_file(&emu, &file, JSON, &[]);
    r.assert_code(0);
    let started = &lines(&r, "upload-started")[0];
    assert_eq!(started["compression"], "gzip");
    assert_eq!(started["image_size"], img.len());
    let sent = started["size"].as_u64().unwrap();
    assert!(sent * 10 < img.len() as u64 * 7, "{sent} of {}", img.len());
    let finished = &lines(&r, "upload-finished")[0];
    assert_eq!(finished["bytes_sent"], sent);
    assert_eq!(finished["image_size"], img.len());
    assert_eq!(finished["compression"], "gzip");
    let ev = emu.next_event();
    assert_eq!(ev["event"], "update-ok", "{ev}");
    assert_eq!(ev["md5"], started["md5"], "the MD5 is of what was sent");
    let staged = std::fs::read(ev["path"].as_str().unwrap()).unwrap();
    assert_eq!(&staged[..2], &[0x1f, 0x8b]);
    assert_eq!(
        arduino_ota::md5_hex(&staged),
        started["md5"].as_str().unwrap()
    );
    assert_eq!(gunzip(&staged), img);
}

/// An ESP8266 core before 2.7.0 refuses gzip at the end ("Magic byte is not
/// 0xE9"): `auto` says so and sends the image itself, once; `always` fails.
#[test]
fn an_older_esp8266_gets_the_image_itself_after_its_refusal() {
    let emu = Emu::start(&[
        "--flavor",
        "esp8266",
        "--ok-spacing-ms",
        "0",
        "--fault",
        "no-gzip",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let img = esp8266_image(100_000);
    let file = write_file(dir.path(), "app.bin", &img);
    let r = upload_file(&emu, &file, JSON, &[]);
    r.assert_code(0).assert_stderr(
        "refused the gzip image (ERROR[10]: Magic byte is not 0xE9): sending it uncompressed",
    );
    let started = lines(&r, "upload-started");
    assert_eq!(started.len(), 2);
    assert_eq!(started[0]["compression"], "gzip");
    assert_eq!(started[1]["compression"], "none");
    assert_eq!(lines(&r, "upload-finished")[0]["compression"], "none");
    let summary = &lines(&r, "summary")[0]["devices"][0];
    assert_eq!(summary["compression"], "none");
    assert_eq!(emu.next_event()["event"], "update-failed");
    let ev = emu.next_event();
    assert_eq!(ev["event"], "update-ok", "{ev}");
    assert_eq!(std::fs::read(ev["path"].as_str().unwrap()).unwrap(), img);

    // `always`: the refusal is the result.
    let r = upload_file(&emu, &file, &["--compress"], &[]);
    r.assert_code(9).assert_stderr("Magic byte is not 0xE9");
    assert!(!r.stderr.contains("uncompressed"), "{}", r.stderr);
    assert_eq!(emu.next_event()["event"], "update-failed");
    assert!(emu.pending_events().is_empty());
}

/// `--no-compress` (or `compress = "never"`) sends the image as it is.
#[test]
fn never_sends_the_image_itself() {
    let emu = Emu::start(&["--flavor", "esp8266", "--ok-spacing-ms", "0"]);
    let dir = tempfile::tempdir().unwrap();
    let img = esp8266_image(50_000);
    let file = write_file(dir.path(), "app.bin", &img);
    let r = upload_file(
        &emu,
        &file,
        &["--no-compress", "--message-format", "json"],
        &[],
    );
    r.assert_code(0);
    assert_eq!(lines(&r, "upload-started")[0]["compression"], "none");
    let ev = emu.next_event();
    assert_eq!(std::fs::read(ev["path"].as_str().unwrap()).unwrap(), img);
    // The two flags contradict each other.
    upload_file(&emu, &file, &["--compress", "--no-compress"], &[]).assert_code(2);
}

/// The arduino-ota responder inflates a zlib stream as it arrives: the stored
/// image is the exact image, in fewer bytes on the wire. An arduino-esp32 core
/// refuses the stream at its first 4 KiB.
#[test]
fn the_arduino_ota_responder_inflates_zlib() {
    let emu = Emu::start(&["--flavor", "arduino-ota", "--chip", "esp32c3"]);
    let dir = tempfile::tempdir().unwrap();
    let img = esp32c3_image(300_000);
    let file = write_file(dir.path(), "app.bin", &img);
    let r = upload_file(
        &emu,
        &file,
        &["--compress", "--message-format", "json"],
        &[],
    );
    r.assert_code(0);
    let started = &lines(&r, "upload-started")[0];
    assert_eq!(started["compression"], "zlib");
    let sent = started["size"].as_u64().unwrap();
    assert!(sent < img.len() as u64, "{sent}");
    let ev = emu.next_event();
    assert_eq!(ev["event"], "update-ok", "{ev}");
    assert_eq!(std::fs::read(ev["path"].as_str().unwrap()).unwrap(), img);

    let core = Emu::start(&["--flavor", "esp32"]);
    let r = upload_file(&core, &file, &["--compress"], &[]);
    r.assert_code(9).assert_stderr("Wrong Magic Byte");
    assert_eq!(core.next_event()["event"], "update-failed");
    assert!(core.written().is_empty());
}

/// espota.py's way (the image as it is, 1024 bytes per reply) still works
/// against the responder that inflates: a raw image passes through its decoder.
#[test]
fn an_espota_style_client_is_unchanged_against_the_inflating_responder() {
    let emu = Emu::start(&["--flavor", "arduino-ota", "--chip", "esp32c3"]);
    let img = esp32c3_image(40_000);
    cargo_ota_testkit::espota::stop_and_wait(emu.addr, std::net::Ipv4Addr::LOCALHOST.into(), &img);
    let ev = emu.next_event();
    assert_eq!(ev["event"], "update-ok", "{ev}");
    assert_eq!(ev["md5"], arduino_ota::md5_hex(&img));
    assert_eq!(std::fs::read(ev["path"].as_str().unwrap()).unwrap(), img);
}

/// A fleet's summary table shows both figures for a compressed upload.
#[test]
fn the_summary_shows_sent_and_image_bytes() {
    use crate::support::fixture::{env_refs, fleet_fixture, real_cargo};
    let inflating = Emu::start(&["--flavor", "arduino-ota"]);
    let core = Emu::start(&[]);
    let (f, _) = fleet_fixture(&[(&inflating, "compress = \"always\""), (&core, "")], "");
    let dir = tempfile::tempdir().unwrap();
    let img = esp32c3_image(100_000);
    let file = write_file(dir.path(), "app.bin", &img);
    let cargo = real_cargo();
    let env = vec![("CARGO".to_string(), cargo)];
    let r = crate::support::run_in(
        f.root(),
        &["upload", file.to_str().unwrap(), "--all", "--jobs", "1"],
        &env_refs(&env),
    );
    r.assert_code(0);
    let row = r
        .stderr
        .lines()
        .find(|l| l.trim_start().starts_with("dev01") && l.contains("zlib, "))
        .unwrap_or_else(|| panic!("no compressed row:\n{}", r.stderr));
    assert!(row.contains(" of ") && row.contains('%'), "{row}");
    assert_eq!(inflating.next_event()["event"], "update-ok");
    assert_eq!(core.next_event()["event"], "update-ok");
}
