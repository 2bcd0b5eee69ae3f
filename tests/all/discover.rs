//! mDNS discovery and `.local` resolution, only inside a private network namespace
//! (`unshare -n`: nothing but `lo`), never on real interfaces. Where a namespace
//! cannot be made they fail under `CI=true` and are skipped elsewhere.

use crate::support::netns::{in_namespace, namespace};
use crate::support::{BIN, write_file};

#[test]
fn discover_and_resolve_local_in_a_namespace() {
    if !namespace("discover_and_resolve_local_in_a_namespace") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // An app image that compresses, with the responder's marker (for the guard).
    let mut code: Vec<u8> = (0..60_000u32)
        .map(|i| ((i % 251) ^ (i / 2048)) as u8)
        .collect();
    code.extend_from_slice(b"cargo-ota:ota-responder");
    let image = arduino_ota::appimage::build(5, 0x4200_0020, &[(0x4200_0020, &code)]);
    let app = write_file(dir.path(), "app.bin", &image);
    let d = dir.path().display();
    // Each emulator prints its address first: reading it from a FIFO waits for
    // the emulator to be ready. The emulators are stopped on the way out.
    let script = format!(
        r#"
cd '{d}'
mkfifo e1 e2
'{BIN}' emulate --flavor arduino-ota --port 0 -q --mdns bench-1 --board esp32c3 --password pw --out '{d}/images' > e1 & p1=$!
'{BIN}' emulate --flavor esp8266 --port 0 -q --mdns shelf-2 --board d1_mini > e2 & p2=$!
trap 'kill $p1 $p2 2>/dev/null' EXIT
exec 3<e1 4<e2
read a1 <&3
read a2 <&4
echo "{{\"reason\":\"emulators\",\"bench\":\"$a1\",\"shelf\":\"$a2\"}}"
'{BIN}' discover --timeout 1 --message-format json
'{BIN}' discover --timeout 2 --message-format human 2>&1 | grep -E 'device(s)?; update' >&2 || true
CARGO_OTA_PASSWORD=pw '{BIN}' upload '{app}' --host bench-1.local --port "${{a1#*:}}" --message-format json
"#,
        app = app.display()
    );
    let r = in_namespace(&script);
    r.assert_code(0);
    let lines = r.json();
    let addrs = &lines[0];
    let port_of = |key: &str| crate::support::port_of(&addrs[key]);
    let found: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["reason"] == "device-found")
        .collect();
    assert_eq!(found.len(), 2, "{}", r.stdout);
    let bench = found
        .iter()
        .find(|f| f["name"] == "bench-1")
        .expect("bench-1 found");
    assert_eq!(bench["port"], port_of("bench"));
    assert_eq!(bench["board"], "esp32c3");
    assert_eq!(bench["auth_upload"], true);
    // The arduino-ota responder says it inflates; an Arduino core says nothing.
    assert_eq!(bench["compress"], "zlib");
    assert_eq!(bench["hostname"], "bench-1.local");
    assert_eq!(bench["addresses"][0], "127.0.0.1");
    let shelf = found
        .iter()
        .find(|f| f["name"] == "shelf-2")
        .expect("shelf-2 found");
    assert_eq!(shelf["port"], port_of("shelf"));
    assert_eq!(shelf["board"], "d1_mini");
    assert_eq!(shelf["auth_upload"], false);
    assert!(shelf["compress"].is_null());
    let done = lines
        .iter()
        .find(|l| l["reason"] == "discover-finished")
        .unwrap();
    assert_eq!(done["count"], 2);
    // The human list ends with a command that works for a device it found, not a
    // template (one or both may have answered within this second browse).
    let bench_cmd = format!(
        "with `cargo ota --release --host bench-1.local --port {}`",
        port_of("bench")
    );
    let shelf_cmd = format!(
        "with `cargo ota --release --host shelf-2.local --port {}`",
        port_of("shelf")
    );
    assert!(
        r.stderr.contains(&bench_cmd) || r.stderr.contains(&shelf_cmd),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("NAME.local"), "{}", r.stderr);
    crate::snapshots::assert_discovered(&found);
    // bench-1.local is not in any resolver: it was found over mDNS.
    let finished = lines
        .iter()
        .find(|l| l["reason"] == "upload-finished")
        .expect("upload by .local");
    assert_eq!(finished["host"], "bench-1.local");
    assert_eq!(finished["address"], addrs["bench"]);
    // `auto` learnt from its TXT record that it inflates: zlib, and the device
    // kept the exact image.
    assert_eq!(finished["compression"], "zlib", "{finished}");
    assert!(finished["bytes_sent"].as_u64() < finished["image_size"].as_u64());
    let stored: Vec<_> = std::fs::read_dir(dir.path().join("images"))
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    assert_eq!(stored, vec![image]);
}

/// `cargo ota upload --host HOST` inside the namespace, where no resolver and no
/// device can be reached, so nothing leaves this host.
fn unresolvable(test: &str, host: &str) -> Option<crate::support::Run> {
    if !namespace(test) {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let app = write_file(
        dir.path(),
        "app.bin",
        &cargo_ota_testkit::sample::sample_esp32c3(4_000),
    );
    let r = in_namespace(&format!(
        "'{BIN}' upload '{}' --host {host} --timeout 0.5\n",
        app.display()
    ));
    r.assert_code(2)
        .assert_stderr(&format!("cannot resolve device host `{host}`"));
    Some(r)
}

#[test]
fn unknown_local_name_is_a_clear_error() {
    if let Some(r) = unresolvable("unknown_local_name_is_a_clear_error", "nobody-here.local") {
        r.assert_stderr("no answer over mDNS");
    }
}

#[test]
fn a_host_that_does_not_resolve() {
    if let Some(r) = unresolvable("a_host_that_does_not_resolve", "no-such-device.invalid") {
        r.assert_stderr("give the device's IP address with --host");
    }
}
