//! `asgard-server`: the AsgardBackup server (HTTPS API, redb metadata, chunk store) and its admin
//! commands. Everything is in the library; the command line is `asgard_server::cli`.

fn main() -> std::process::ExitCode {
    // Starts itself again with glibc's mmap threshold fixed (see `asgard_server::alloc`).
    asgard_server::alloc::tune();
    asgard_server::cli::main()
}
