//! The `cargo-ota` binary: `cargo ota ...` (cargo runs it as `cargo-ota ota ...`).
//! Parsing and the commands are in the library (`cli`, `commands`).

fn main() {
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // `cargo ota ...` runs `cargo-ota ota ...`.
    if args.get(1).is_some_and(|a| a == "ota") {
        args.remove(1);
    }
    let env = cargo_ota::settings::Environment::from_process();
    let cli = cargo_ota::cli::parse(args);
    cargo_ota::commands::install_interrupt_handler();
    std::process::exit(cargo_ota::commands::run(cli, &env));
}
