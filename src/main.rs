//! The `errand` binary: parses the command line and hands over to the library.

use clap::Parser as _;
use errand::config::{Cli, CliCommand};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // slack-morphism brings rustls with ring, reqwest with aws-lc-rs: pick one before any TLS.
    let _ = rustls::crypto::ring::default_provider().install_default();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_env("ERRAND_LOG").unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        CliCommand::Serve(args) => errand::app::serve(args).await,
        CliCommand::Worker(args) => errand::app::worker(args).await,
        CliCommand::All(args) => errand::app::all(args).await,
        CliCommand::Jobs(args) => errand::app::jobs(args).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("errand: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
