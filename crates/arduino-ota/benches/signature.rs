//! What the signature stage costs, on this host, with the code a device runs:
//! `cargo bench -p arduino-ota --bench signature --features signature-rsa`.
//! Prints figures (the README's "Signed updates" quotes one run); asserts only
//! that the signed image verifies.

use std::time::Instant;

use arduino_ota::signature::{SECTOR, Verifier, sign_ecdsa_p256};

fn main() {
    // The size of the example firmware's C3 image.
    let image: Vec<u8> = (0..634_784u32).map(|i| (i * 2_654_435_761) as u8).collect();
    let (signed, key) = sign_ecdsa_p256(&image, &[7; 32]);
    let runs = 20;
    let mut stream = std::time::Duration::ZERO;
    let mut finish = std::time::Duration::ZERO;
    for _ in 0..runs {
        let mut v = Verifier::new(&[key]);
        let t = Instant::now();
        for piece in signed.chunks(1460) {
            v.update(piece);
        }
        stream += t.elapsed();
        let t = Instant::now();
        let body = v.finish().expect("the signed image verifies");
        finish += t.elapsed();
        assert_eq!(body as usize, signed.len() - SECTOR);
    }
    let per = |d: std::time::Duration| d.as_secs_f64() * 1000.0 / f64::from(runs);
    println!(
        "signature stage over {} bytes in 1460-byte pieces: hashing {:.2} ms ({:.0} MB/s), \
         ECDSA P-256 check at the end {:.3} ms; RAM {} bytes (Verifier + its 4 KiB sector)",
        signed.len(),
        per(stream),
        signed.len() as f64 / (per(stream) / 1000.0) / 1e6,
        per(finish),
        std::mem::size_of::<Verifier>() + SECTOR,
    );
}
