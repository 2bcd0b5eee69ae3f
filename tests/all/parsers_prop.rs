//! No parser panics, whatever it is fed: property tests over the UDP replies, the
//! TCP reply stream, the device's invitation and auth parsing, app images, and
//! configuration values.

use std::path::Path;

use arduino_ota::invitation::{parse_device_auth, parse_device_invitation};
use arduino_ota::reply::parse_udp_reply;
use arduino_ota::{Command, Invitation, ReplyStream, Verdict};
use proptest::prelude::*;
use proptest::test_runner::RngSeed;
use serde_json::Value;

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "[a-z0-9 ._-]{0,12}".prop_map(Value::String),
        prop_oneof![
            Just("esp32c3"),
            Just("4mb"),
            Just("dio"),
            Just("80mhz"),
            Just("md5"),
            Just("x")
        ]
        .prop_map(|s| Value::String(s.into())),
    ];
    let keys = prop_oneof![
        Just("chip"),
        Just("port"),
        Just("host"),
        Just("devices"),
        Just("groups"),
        Just("flash-size"),
        Just("default-devices"),
        Just("auth"),
        Just("timeout"),
        Just("retries"),
        Just("password"),
        Just("verify"),
        Just("ota-guard"),
        Just("bench"),
        Just("junk"),
    ];
    leaf.prop_recursive(4, 32, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(keys.clone().prop_map(String::from), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    // A fixed seed: every run tries the same inputs (a failure prints its input).
    #![proptest_config(ProptestConfig {
        cases: 2000,
        rng_seed: RngSeed::Fixed(0x0C07_A07A),
        ..ProptestConfig::default()
    })]

    #[test]
    fn udp_replies_never_panic(data in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = parse_udp_reply(&data);
    }

    #[test]
    fn reply_stream_never_panics(chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..20)) {
        let mut s = ReplyStream::new();
        for c in &chunks {
            let _ = s.push(c);
        }
        let _ = s.finish();
    }

    #[test]
    fn counts_then_ok_is_success(counts in "[0-9]{0,40}", split in 0usize..50) {
        let wire = format!("{counts}OK");
        let (a, b) = wire.split_at(split.min(wire.len()));
        let mut s = ReplyStream::new();
        s.push(a.as_bytes());
        s.push(b.as_bytes());
        prop_assert_eq!(s.finish(), Verdict::Ok);
    }

    #[test]
    fn counts_then_text_is_that_error(counts in "[0-9]{0,20}", text in "[A-Za-z][A-Za-z :\\[\\]0-9]{0,40}") {
        prop_assume!(text != "OK");
        let mut s = ReplyStream::new();
        s.push(format!("{counts}{text}\r\n").as_bytes());
        prop_assert_eq!(s.finish(), Verdict::Error(text.trim().to_string()));
    }

    #[test]
    fn device_parsing_never_panics(data in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = parse_device_invitation(&data);
        let _ = parse_device_auth(&data, 32);
        let _ = parse_device_auth(&data, 64);
    }

    #[test]
    fn invitations_round_trip(fs in any::<bool>(), port in any::<u16>(), size in any::<u32>(), md5 in "[0-9a-f]{32}") {
        let inv = Invitation {
            command: if fs { Command::Filesystem } else { Command::Flash },
            host_port: port,
            size,
            md5: md5.clone(),
        };
        let parsed = parse_device_invitation(&inv.encode()).unwrap();
        prop_assert_eq!(parsed.command, inv.command);
        prop_assert_eq!(parsed.host_port, u32::from(port));
        prop_assert_eq!(parsed.size, size);
        prop_assert_eq!(parsed.md5, md5);
    }

    #[test]
    fn app_image_checks_never_panic(data in prop::collection::vec(any::<u8>(), 0..512), magic in any::<bool>()) {
        let mut data = data;
        if magic && !data.is_empty() {
            data[0] = 0xE9;
        }
        let _ = arduino_ota::appimage::check(&data, None);
    }

    #[test]
    fn config_values_never_panic(v in json_value()) {
        let mut warnings = Vec::new();
        let meta = serde_json::json!({ "ota": v });
        let _ = cargo_ota::config::read_section(&meta, Path::new("Cargo.toml"), "package", &mut warnings);
    }

    #[test]
    fn option_values_never_panic(s in "\\PC{0,20}") {
        let _ = cargo_ota::cli::parse_size(&s);
        let _ = cargo_ota::cli::parse_secs(&s);
        let _ = cargo_ota::image::parse_flash_size(&s);
        let _ = cargo_ota::image::parse_flash_freq(&s);
        let _ = cargo_ota::image::parse_chip(&s);
        let _ = cargo_ota::emulator::Faults::default().apply(&s);
    }
}
