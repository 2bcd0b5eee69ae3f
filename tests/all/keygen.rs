//! `cargo ota keygen`: a new key in PKCS#8 PEM, mode 0600, that cargo-ota
//! loads and signs with; the digest and the firmware line it prints are the
//! key's; the key itself is never printed; espsecure (Espressif's tool) agrees
//! on the digest and verifies what cargo-ota signs with the key. It never
//! writes over a file, and names a missing directory.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use cargo_ota::sign::{Key, load_key, sign};
use rsa::traits::PublicKeyParts;

use crate::support::{Run, image, run_in};

/// What a scheme's key must be.
fn check_scheme(scheme: &str, key: &Key) {
    match (scheme, key) {
        ("ecdsa256", Key::Ecdsa(_)) => {}
        ("rsa3072", Key::Rsa(k)) => {
            assert_eq!(k.size(), 384, "an RSA-3072 modulus");
            let e = k.e().to_be_bytes();
            assert_eq!(&e[e.len() - 4..], &65_537u32.to_be_bytes(), "e = 65537");
            assert!(e[..e.len() - 4].iter().all(|b| *b == 0), "e = 65537");
        }
        _ => panic!("{scheme}: a {key:?}"),
    }
}

/// The firmware line for `digest`, written out here as the README shows it.
fn firmware_line(digest: &[u8; 32]) -> String {
    let bytes: Vec<String> = digest.iter().map(|b| format!("0x{b:02x}")).collect();
    format!(
        "pub const OTA_TRUSTED_KEY: [u8; 32] = [{}];",
        bytes.join(", ")
    )
}

/// The key file `name` in `dir`: PKCS#8 PEM, mode 0600, loaded by cargo-ota as
/// a key of `scheme`. Returns the key and its PEM text.
fn written_key(dir: &Path, name: &str, scheme: &str) -> (Key, String) {
    let path = dir.join(name);
    let pem = fs::read_to_string(&path).unwrap();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{name}");
    assert!(
        pem.trim_end().ends_with("-----END PRIVATE KEY-----"),
        "{name}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{name}: mode {mode:o}");
    }
    let key = load_key(&pem).unwrap_or_else(|e| panic!("{name}: {e}"));
    check_scheme(scheme, &key);
    (key, pem)
}

/// No line of the PEM's body (nor the body in one piece) in anything `r`
/// printed. Lines under 16 characters (a short last line) could occur in a hex
/// digest by chance and are left out.
fn assert_key_not_printed(pem: &str, r: &Run) {
    let out = format!("{}\n{}", r.stdout, r.stderr);
    let body: Vec<&str> = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    assert!(body.len() >= 3, "{pem}");
    for line in body.iter().filter(|l| l.len() >= 16) {
        assert!(
            !out.contains(line),
            "the key's PEM line {line} was printed:\n{out}"
        );
    }
    assert!(!out.contains(&body.concat()));
    assert!(!out.contains("PRIVATE KEY-----"), "{out}");
}

/// Run `cargo ota keygen ARGS` in `dir`.
fn keygen(dir: &Path, args: &[&str]) -> Run {
    let mut all = vec!["keygen"];
    all.extend_from_slice(args);
    run_in(dir, &all, &[])
}

/// Both schemes, human and JSON output: the key file, the digest and firmware
/// line printed, the next step, the JSON line; and never the key.
#[test]
fn keygen_writes_a_key_and_prints_only_its_public_digest() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (scheme, args) in [
        ("ecdsa256", &["keys.pem"][..]),
        ("ecdsa256", &["--scheme", "ecdsa256", "e.pem"]),
        ("rsa3072", &["--scheme", "rsa3072", "r.pem"]),
    ] {
        let file = *args.last().unwrap();
        let started = Instant::now();
        let r = keygen(d, args);
        eprintln!(
            "keygen {scheme}: {:.2} s (the whole command)",
            started.elapsed().as_secs_f64()
        );
        r.assert_code(0);
        assert_eq!(r.stdout, "", "human output on stdout");
        let (key, pem) = written_key(d, file, scheme);
        let digest = key.digest();
        let hex = hex::encode(digest);
        let printed = r
            .stderr
            .lines()
            .find_map(|l| l.trim_start().strip_prefix("Key digest "))
            .unwrap_or_else(|| panic!("no digest line:\n{}", r.stderr));
        assert_eq!(printed.split(' ').next(), Some(hex.as_str()), "{printed}");
        let line = r
            .stderr
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with("pub const OTA_TRUSTED_KEY"))
            .unwrap_or_else(|| panic!("no firmware line:\n{}", r.stderr));
        assert_eq!(line, firmware_line(&digest));
        r.assert_stderr(&format!("Wrote the private key to {file} (PKCS#8 PEM"))
            .assert_stderr(match scheme {
                "rsa3072" => "RSA-3072",
                _ => "ECDSA P-256",
            })
            .assert_stderr("out of git")
            .assert_stderr(&format!("signing-key = \"{file}\""))
            .assert_stderr("[package.metadata.ota]")
            .assert_stderr(&format!("OTA_TRUSTED_KEY={hex} "));
        assert_key_not_printed(&pem, &r);

        // JSON: one `keygen` line, and nothing of the key.
        let json_file = format!("json-{file}");
        let mut json_args: Vec<&str> = args[..args.len() - 1].to_vec();
        json_args.extend([json_file.as_str(), "--message-format", "json"]);
        let r = keygen(d, &json_args);
        r.assert_code(0);
        let (key, pem) = written_key(d, &json_file, scheme);
        let lines = r.json();
        assert_eq!(lines.len(), 1, "{}", r.stdout);
        assert_eq!(
            lines[0],
            serde_json::json!({
                "reason": "keygen",
                "file": json_file,
                "scheme": scheme,
                "key_digest": hex::encode(key.digest()),
            })
        );
        assert_eq!(r.stderr, "", "JSON output: nothing on stderr");
        assert_key_not_printed(&pem, &r);
        assert_ne!(key.digest(), digest, "two runs made the same key");
    }
}

/// espsecure in `dir`: its output, or `None` where it is not installed (which
/// fails under CI=true).
fn espsecure(dir: &Path, args: &[&str]) -> Option<std::process::Output> {
    match Command::new("espsecure")
        .args(args)
        .current_dir(dir)
        .output()
    {
        Ok(out) => Some(out),
        Err(e) => {
            let why = format!("espsecure is not installed ({e}): pip install esptool");
            assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}");
            eprintln!("skipped: {why}");
            None
        }
    }
}

/// Espressif's own tool agrees: the digest keygen printed is the one espsecure
/// computes from the file, and an image cargo-ota signs with the key passes
/// espsecure's verification (and a changed byte does not).
#[test]
fn keygen_keys_work_with_espsecure() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for scheme in ["ecdsa256", "rsa3072"] {
        let file = format!("{scheme}.pem");
        let r = keygen(d, &["--scheme", scheme, &file, "--message-format", "json"]);
        r.assert_code(0);
        let printed = hex::decode(r.json()[0]["key_digest"].as_str().unwrap()).unwrap();
        let dig = format!("{scheme}.dig");
        let Some(out) = espsecure(
            d,
            &[
                "digest-sbv2-public-key",
                "--keyfile",
                &file,
                "--output",
                &dig,
            ],
        ) else {
            return;
        };
        assert!(out.status.success(), "{scheme}: {out:?}");
        assert_eq!(fs::read(d.join(&dig)).unwrap(), printed, "{scheme}");

        let (key, _) = written_key(d, &file, scheme);
        let signed = sign(&image(50_000), &key);
        let bin = format!("{scheme}-signed.bin");
        fs::write(d.join(&bin), &signed).unwrap();
        let verify = |bin: &str| {
            espsecure(
                d,
                &[
                    "verify-signature",
                    "--version",
                    "2",
                    "--keyfile",
                    &file,
                    bin,
                ],
            )
            .unwrap()
        };
        let out = verify(&bin);
        assert!(
            out.status.success(),
            "{scheme}: espsecure refused the signature: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let mut bad = signed;
        bad[1000] ^= 1;
        fs::write(d.join("bad.bin"), &bad).unwrap();
        assert!(
            !verify("bad.bin").status.success(),
            "{scheme}: a changed byte passed"
        );
    }
}

/// An existing file is never overwritten: exit 2 naming it, its bytes and mode
/// kept, in both output formats; a dangling symbolic link counts as a file (the
/// file it points to is not created).
#[test]
fn keygen_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::write(d.join("ota.pem"), "my old key\n").unwrap();
    let before = fs::metadata(d.join("ota.pem")).unwrap().permissions();
    for scheme in ["ecdsa256", "rsa3072"] {
        let r = keygen(d, &["--scheme", scheme, "ota.pem"]);
        r.assert_code(2)
            .assert_stderr(
                "error: `ota.pem` already exists: cargo ota keygen never overwrites a file",
            )
            .assert_stderr("help: pick another name, or delete `ota.pem` yourself");
        assert!(!r.stderr.contains("Wrote"), "{}", r.stderr);
        assert_eq!(
            fs::read_to_string(d.join("ota.pem")).unwrap(),
            "my old key\n"
        );
        assert_eq!(
            fs::metadata(d.join("ota.pem")).unwrap().permissions(),
            before
        );
    }
    let r = keygen(d, &["ota.pem", "--message-format", "json"]);
    r.assert_code(2);
    let line = &r.json()[0];
    assert_eq!(line["reason"], "error");
    assert_eq!(line["kind"], "key-exists");
    assert_eq!(line["code"], 2);
    assert!(
        line["message"].as_str().unwrap().contains("`ota.pem`"),
        "{line}"
    );
    assert_eq!(
        fs::read_to_string(d.join("ota.pem")).unwrap(),
        "my old key\n"
    );

    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(d.join("elsewhere.pem"), d.join("link.pem")).unwrap();
        keygen(d, &["link.pem"])
            .assert_code(2)
            .assert_stderr("`link.pem` already exists");
        assert!(!d.join("elsewhere.pem").exists());
    }
    let mut names: Vec<String> = fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut expected = vec!["ota.pem"];
    if cfg!(unix) {
        expected.insert(0, "link.pem");
    }
    assert_eq!(names, expected);
}

/// A directory that is not there (or is a file) is named; nothing is created.
#[test]
fn keygen_names_a_missing_directory() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let r = keygen(d, &["keys/ota.pem"]);
    r.assert_code(2)
        .assert_stderr("cannot write the key `keys/ota.pem`: the directory `keys` does not exist")
        .assert_stderr("mkdir -p keys");
    assert!(!d.join("keys").exists());

    let r = keygen(
        d,
        &[
            "--scheme",
            "rsa3072",
            "deep/er/ota.pem",
            "--message-format",
            "json",
        ],
    );
    r.assert_code(2);
    assert_eq!(r.json()[0]["kind"], "key-dir");
    assert!(
        r.json()[0]["message"]
            .as_str()
            .unwrap()
            .contains("the directory `deep/er` does not exist"),
        "{}",
        r.stdout
    );

    fs::write(d.join("file"), "").unwrap();
    keygen(d, &["file/ota.pem"])
        .assert_code(2)
        .assert_stderr("the directory `file` is not a directory");
    let names: Vec<_> = fs::read_dir(d).unwrap().collect();
    assert_eq!(names.len(), 1, "{names:?}");
}
