//! `asgard-server`: the AsgardBackup server (HTTPS API, redb metadata, chunk store) and its admin
//! commands. Everything is in the library; the command line is `asgard_server::cli`.

fn main() -> std::process::ExitCode {
    asgard_server::cli::main()
}
