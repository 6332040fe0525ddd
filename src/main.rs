fn main() {
    std::process::exit(ovsup::run(std::env::args_os()));
}
