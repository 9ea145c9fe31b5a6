use clap::Parser;

fn main() {
    let code = redlock_run::main(redlock_run::cli::Cli::parse());
    std::process::exit(code);
}
