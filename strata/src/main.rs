//! `strata`: one binary for every role.

mod admin_client;
mod alloc;
mod backends_cli;
mod cli;
mod jobs_cli;
mod jobs_wiring;
mod roles;
mod telemetry;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    alloc::fix_mmap_threshold();
    let cli = cli::Cli::parse();
    match cli.command {
        cli::Command::Version => {
            println!("strata {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        cli::Command::Validate(args) => cli::validate(&args),
        cli::Command::Bench(args) => strata_bench::main(args),
        cli::Command::Jobs(args) => jobs_cli::main(args),
        cli::Command::Backends(args) => backends_cli::main(args),
        cli::Command::Serve(args) => {
            let (config, role) = match cli::load_for_serve(&args) {
                Ok(c) => c,
                Err(code) => return code,
            };
            telemetry::init(&config.logging);
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build();
            let rt = match rt {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("error: cannot start the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match rt.block_on(roles::run(config, role)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = %e, "strata stopped with an error");
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
