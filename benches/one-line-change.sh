#!/bin/sh
# The delta row of the README's Performance section: builds examples/esp-hal-ota
# for the ESP32-C3 (release, as .ci/run does), then a copy of it with one log
# line changed, converts both ELFs into app images with `cargo ota image`, and
# sends the second into the smoltcp device over TAP at 20 ms RTT that runs the
# first: as a delta patch, whole and zlib-compressed (one run, in a private
# network namespace: root, `unshare -n`). Needs Debian's Rust (.ci/run installs
# it). Everything it makes stays under target/bench-delta.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
work="$root/target/bench-delta"
esp() { RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1 /usr/bin/cargo "$@"; }
export WIFI_SSID=${WIFI_SSID:-cargo-ota-ci} WIFI_PASSWORD=${WIFI_PASSWORD:-cargo-ota-ci-passphrase}
elf=riscv32imc-unknown-none-elf/release/esp-hal-ota

rm -rf "$work"
mkdir -p "$work/changed"
cargo build --release --locked --bin cargo-ota
ota="$root/target/release/cargo-ota"

# The example as it is.
(cd "$root/examples/esp-hal-ota" && esp build --release --locked)
"$ota" image --elf "$root/examples/esp-hal-ota/target/$elf" -o "$work/base.bin" -q

# A copy with one log line changed (its own target dir: the example's stays as
# it was), the arduino-ota path dependency made absolute.
(cd "$root/examples/esp-hal-ota" && tar cf - --exclude=./target .) | (cd "$work/changed" && tar xf -)
sed -i "s|path = \"../../crates/arduino-ota\"|path = \"$root/crates/arduino-ota\"|" "$work/changed/Cargo.toml"
sed -i 's|"Heap: {} bytes free"|"Heap: {} bytes free now"|' "$work/changed/src/main.rs"
grep -q 'bytes free now' "$work/changed/src/main.rs"
(cd "$work/changed" && esp build --release --locked)
"$ota" image --elf "$work/changed/target/$elf" -o "$work/new.bin" -q

cargo bench --locked --bench throughput -- --delta "$work/base.bin" "$work/new.bin"
