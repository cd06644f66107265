fn main() {
    std::process::exit(forge_host::cli::main());
}
