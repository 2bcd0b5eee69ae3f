//! IPv6 end to end (#20): `cargo ota` against `cargo ota emulate --bind ::1`
//! (upload, a wrong password, a fleet with `--verify`, a dual-stack emulator),
//! into the device crate's smoltcp responder over TAP by a link-local address
//! with its interface and by a global one, and `discover` finding a device that
//! announces only an IPv6 address. Every test runs in a private network
//! namespace that it makes (`unshare -n`): `::1` and the TAP addresses exist only
//! there. Where a namespace cannot be made they fail under `CI=true` and are
//! skipped elsewhere.

use std::path::Path;

use serde_json::Value;

use crate::support::fixture::{Fixture, real_cargo};
use crate::support::netns::{in_namespace, namespace, tap_device};
use crate::support::{BIN, port_of, stored_images, write_file};

/// An app image that carries the responder's marker (no `--allow-no-ota`).
fn app(dir: &Path, len: usize) -> (Vec<u8>, std::path::PathBuf) {
    let mut code = cargo_ota_testkit::sample::noise(0x6_0006, len);
    code.extend_from_slice(b"cargo-ota:ota-responder");
    let image = arduino_ota::appimage::build(5, 0x4200_0020, &[(0x4200_0020, &code)]);
    let path = write_file(dir, "app.bin", &image);
    (image, path)
}

fn with_reason<'a>(lines: &'a [Value], reason: &str) -> Vec<&'a Value> {
    lines.iter().filter(|l| l["reason"] == reason).collect()
}

/// Upload and a wrong password against an emulator on `::1`, a fleet of two
/// with `--verify` (hosts `::1` in the config), and a dual-stack emulator on
/// `::` reached over both families.
#[test]
fn uploads_to_an_emulator_on_ipv6_loopback() {
    if !namespace("uploads_to_an_emulator_on_ipv6_loopback") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (image, app) = app(d, 40_000);
    // A package with two devices on ::1; their ports come from the emulators,
    // so the manifest is written inside the namespace.
    let f = Fixture::package("fw", "[package.metadata.ota]\n");
    let manifest = f.root().join("Cargo.toml");
    let (b, a, cargo) = (BIN, app.display(), real_cargo());
    let script = format!(
        r#"
cd '{d}'
mkfifo e1 e2 e3
'{b}' emulate --flavor esp32 --bind ::1 --port 0 -q --password pw --out '{d}/one' > e1 & k1=$!
'{b}' emulate --flavor arduino-ota --bind ::1 --port 0 -q --out '{d}/two' > e2 & k2=$!
'{b}' emulate --flavor esp8266 --bind :: --port 0 -q --out '{d}/dual' > e3 & k3=$!
trap 'kill $k1 $k2 $k3 2>/dev/null' EXIT
exec 3<e1 4<e2 5<e3
read a1 <&3
read a2 <&4
read a3 <&5
echo "{{\"reason\":\"emulators\",\"one\":\"$a1\",\"two\":\"$a2\",\"dual\":\"$a3\"}}"
p1=${{a1##*:}}; p2=${{a2##*:}}; p3=${{a3##*:}}
CARGO_OTA_PASSWORD=pw '{b}' upload '{a}' --host ::1 --port $p1 --message-format json
code=0
CARGO_OTA_PASSWORD=wrong '{b}' upload '{a}' --host '[::1]' --port $p1 --message-format json || code=$?
echo "{{\"reason\":\"wrong-password\",\"code\":$code}}"
'{b}' upload '{a}' --host ::1 --port $p2 --host-ip ::1 --message-format json
code=0
'{b}' upload '{a}' --host ::1 --port $p2 --host-ip 127.0.0.1 2>host-ip.err || code=$?
echo "{{\"reason\":\"host-ip-family\",\"code\":$code}}"
cat >> '{manifest}' <<EOF
[package.metadata.ota.devices.v6-one]
host = "::1"
port = $p1
[package.metadata.ota.devices.v6-two]
host = "::1"
port = $p2
EOF
cd '{root}'
CARGO='{cargo}' FLEET_PW=pw CARGO_OTA_PASSWORD=pw '{b}' upload '{a}' --all --verify --verify-timeout 20 --message-format json
'{b}' upload '{a}' --host 127.0.0.1 --port $p3 --message-format json
'{b}' upload '{a}' --host ::1 --port $p3 --message-format json
"#,
        d = d.display(),
        manifest = manifest.display(),
        root = f.root().display(),
    );
    let r = in_namespace(&script);
    r.assert_code(0);
    let lines = r.json();
    let emus = &lines[0];
    assert!(
        emus["one"].as_str().unwrap().starts_with("[::1]:"),
        "{emus}"
    );
    assert!(
        emus["dual"].as_str().unwrap().starts_with("[::]:"),
        "{emus}"
    );
    let finished = with_reason(&lines, "upload-finished");
    let failed = with_reason(&lines, "upload-failed");
    // 1. By address, the device's connection came from ::1.
    assert_eq!(finished[0]["host"], "::1");
    assert_eq!(finished[0]["address"], emus["one"]);
    // 2. A wrong password: the auth failure's own code, as over IPv4.
    assert_eq!(failed.len(), 1, "{}", r.stdout);
    assert_eq!(failed[0]["error"], "auth-failed");
    let wrong = with_reason(&lines, "wrong-password");
    assert_eq!(wrong[0]["code"], failed[0]["code"]);
    assert_eq!(wrong[0]["code"], 6);
    // --host-ip ::1 is used; an IPv4 one for an IPv6 device is a usage error
    // that says so.
    assert_eq!(finished[1]["host"], "::1");
    assert_eq!(finished[1]["address"], emus["two"]);
    assert_eq!(with_reason(&lines, "host-ip-family")[0]["code"], 2);
    let err = std::fs::read_to_string(d.join("host-ip.err")).unwrap();
    assert!(
        err.contains("--host-ip 127.0.0.1 is IPv4 and the device is not"),
        "{err}"
    );
    // 3. The fleet: both back online after their reboot.
    let fleet: Vec<&&Value> = finished
        .iter()
        .filter(|l| l["device"].as_str().unwrap().starts_with("v6-"))
        .collect();
    assert_eq!(fleet.len(), 2, "{}", r.stdout);
    for l in &fleet {
        assert_eq!(l["back_online"], true, "{l}");
    }
    let summary = with_reason(&lines, "summary");
    let fleet_summary = summary
        .iter()
        .find(|s| s["total"] == 2)
        .expect("the fleet's summary");
    assert_eq!(fleet_summary["succeeded"], 2, "{fleet_summary}");
    // 4. The dual-stack emulator took the image over both families.
    let dual: Vec<&&Value> = finished
        .iter()
        .filter(|l| {
            l["address"]
                .as_str()
                .unwrap()
                .ends_with(&format!(":{}", port_of(&emus["dual"])))
        })
        .collect();
    assert_eq!(dual.len(), 2, "{}", r.stdout);
    assert_eq!(dual[0]["host"], "127.0.0.1");
    assert_eq!(dual[1]["host"], "::1");
    // Every image arrived whole: one by address and one from the fleet, one
    // with --host-ip and one from the fleet, two on the dual-stack device.
    assert_eq!(stored_images(&d.join("one")), vec![image.clone(); 2]);
    assert_eq!(stored_images(&d.join("two")), vec![image.clone(); 2]);
    assert_eq!(stored_images(&d.join("dual")), vec![image.clone(); 2]);
}

/// The smoltcp responder (the `tap-device` example) with only an IPv6 address:
/// first a link-local one, reached as `fe80::2%tap0`, then a global one in a
/// /64, reached as `[2001:db8:6::2]`; each stores the exact image.
#[test]
fn uploads_into_the_tap_device_over_ipv6() {
    let test = "uploads_into_the_tap_device_over_ipv6";
    if !namespace(test) {
        return;
    }
    let Some(tap) = tap_device(test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (image, app) = app(d, 60_000);
    let script = format!(
        r#"
ip tuntap add dev tap0 mode tap
ip link set tap0 up
ip -6 addr add fe80::1/64 dev tap0 nodad
ip -6 addr add 2001:db8:6::1/64 dev tap0 nodad
cd '{d}'
run() {{
  mkfifo dev
  '{tap}' --tap tap0 --address6 "$1" --out "{d}/$2" --once > dev & p=$!
  exec 3<dev
  read ready <&3
  echo "{{\"reason\":\"device-ready\",\"line\":\"$ready\"}}"
  '{b}' upload '{a}' --host "$3" --message-format json
  read ev <&3
  echo "$ev"
  exec 3<&-
  wait $p
  rm dev
}}
run fe80::2/64 link fe80::2%tap0
run 2001:db8:6::2/64 global '[2001:db8:6::2]'
"#,
        d = d.display(),
        tap = tap.display(),
        b = BIN,
        a = app.display(),
    );
    let r = in_namespace(&script);
    r.assert_code(0);
    let lines = r.json();
    let ready = with_reason(&lines, "device-ready");
    assert_eq!(ready[0]["line"], "ready [fe80::2]:3232");
    assert_eq!(ready[1]["line"], "ready [2001:db8:6::2]:3232");
    let finished = with_reason(&lines, "upload-finished");
    assert_eq!(finished.len(), 2, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(finished[0]["host"], "fe80::2%tap0");
    assert!(
        finished[0]["address"]
            .as_str()
            .unwrap()
            .starts_with("[fe80::2%"),
        "{}",
        finished[0]
    );
    assert_eq!(finished[1]["host"], "[2001:db8:6::2]");
    assert_eq!(finished[1]["address"], "[2001:db8:6::2]:3232");
    let events: Vec<&Value> = lines.iter().filter(|l| l.get("event").is_some()).collect();
    assert_eq!(events.len(), 2, "{}", r.stdout);
    for e in &events {
        assert_eq!(e["event"], "update-ok", "{e}");
    }
    assert_eq!(stored_images(&d.join("link")), vec![image.clone()]);
    assert_eq!(stored_images(&d.join("global")), vec![image]);
}

/// `discover` lists a device that announces only an IPv6 address (an
/// emulator on one end of a veth pair, the other end this host's), and `cargo
/// ota` reaches it by its `.local` name; an emulator on `::` is announced with
/// A and AAAA records.
#[test]
fn discover_finds_an_ipv6_only_device() {
    if !namespace("discover_finds_an_ipv6_only_device") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (image, app) = app(d, 30_000);
    let script = format!(
        r#"
ip link add v0 type veth peer name v1
ip link set v0 up
ip link set v1 up
ip -6 addr add fd00:6::1/64 dev v0 nodad
ip -6 addr add fd00:6::2/64 dev v1 nodad
cd '{d}'
mkfifo e f
'{b}' emulate --flavor arduino-ota --bind fd00:6::2 --port 0 -q --mdns six --out '{d}/images' > e & k=$!
'{b}' emulate --flavor arduino-ota --bind :: --port 0 -q --mdns dual > f & k2=$!
trap 'kill $k $k2 2>/dev/null' EXIT
exec 3<e 4<f
read a <&3
read a2 <&4
# Browse until both have answered with what they announce (A and AAAA for dual).
for i in 1 2 3 4 5 6 7 8 9 10; do
  '{b}' discover --timeout 2 --message-format json > found.json
  grep -q '"name":"six"' found.json \
    && grep -Eq '"name":"dual".*"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+"' found.json \
    && grep -q '"name":"dual".*"fd00:6::2"' found.json && break
done
cat found.json
'{b}' upload '{a}' --host six.local --port "${{a##*:}}" --message-format json
"#,
        d = d.display(),
        b = BIN,
        a = app.display(),
    );
    let r = in_namespace(&script);
    r.assert_code(0);
    let lines = r.json();
    let found = with_reason(&lines, "device-found");
    let six: Vec<&&Value> = found.iter().filter(|f| f["name"] == "six").collect();
    assert_eq!(six.len(), 1, "{}", r.stdout);
    assert_eq!(six[0]["addresses"], serde_json::json!(["fd00:6::2"]));
    // Bound to `::`, an emulator announces this host's addresses: A and AAAA
    // (each change of the list is a line; together they hold both).
    let dual: Vec<&str> = found
        .iter()
        .filter(|f| f["name"] == "dual")
        .flat_map(|f| f["addresses"].as_array().unwrap())
        .map(|a| a.as_str().unwrap())
        .collect();
    let v4 = dual.iter().any(|a| a.parse::<std::net::Ipv4Addr>().is_ok());
    assert!(v4 && dual.contains(&"fd00:6::2"), "{}", r.stdout);
    let finished = with_reason(&lines, "upload-finished");
    assert_eq!(finished.len(), 1, "{}\n{}", r.stdout, r.stderr);
    assert!(
        finished[0]["address"]
            .as_str()
            .unwrap()
            .starts_with("[fd00:6::2]:"),
        "{}",
        finished[0]
    );
    assert_eq!(stored_images(&d.join("images")), vec![image]);
}

/// A name with an A and an AAAA record (a hosts file of the test's own, in a
/// mount namespace inside the network one): a device that answers only on
/// IPv6 is reached there after IPv4 gets no answer; one on IPv4 is reached
/// there at once.
#[test]
fn a_name_with_both_families_reaches_the_device_on_either() {
    if !namespace("a_name_with_both_families_reaches_the_device_on_either") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (image, app) = app(d, 20_000);
    let hosts = write_file(
        d,
        "hosts",
        b"127.0.0.1 localhost\n127.0.0.1 both-families\n::1 both-families\n",
    );
    let script = format!(
        r#"
cd '{d}'
mkfifo e4 e6
'{b}' emulate --flavor arduino-ota --bind ::1 --port 0 -q --out '{d}/six' > e6 & k6=$!
'{b}' emulate --flavor arduino-ota --bind 127.0.0.1 --port 0 -q --out '{d}/four' > e4 & k4=$!
trap 'kill $k4 $k6 2>/dev/null' EXIT
exec 3<e6 4<e4
read a6 <&3
read a4 <&4
export B='{b}' A='{a}' P6="${{a6##*:}}" P4="${{a4##*:}}"
unshare -m sh -ec '
  mount --bind "{hosts}" /etc/hosts
  "$B" upload "$A" --host both-families --port "$P6" --timeout 1 --message-format json
  "$B" upload "$A" --host both-families --port "$P4" --timeout 1 --message-format json
'
"#,
        d = d.display(),
        b = BIN,
        a = app.display(),
        hosts = hosts.display(),
    );
    let r = in_namespace(&script);
    r.assert_code(0);
    let lines = r.json();
    let finished = with_reason(&lines, "upload-finished");
    assert_eq!(finished.len(), 2, "{}\n{}", r.stdout, r.stderr);
    assert!(
        finished[0]["address"]
            .as_str()
            .unwrap()
            .starts_with("[::1]:"),
        "{}",
        finished[0]
    );
    assert!(
        finished[1]["address"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:"),
        "{}",
        finished[1]
    );
    assert_eq!(stored_images(&d.join("six")), vec![image.clone()]);
    assert_eq!(stored_images(&d.join("four")), vec![image]);
}
