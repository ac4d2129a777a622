//! The `errand` binary: parses the command line and hands over to the library.

use clap::Parser as _;
use errand::config::Cli;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // slack-morphism brings rustls with ring, reqwest with aws-lc-rs: pick one before any TLS.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    let logs = errand::logging::init();
    match errand::app::run(cli, &logs).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("errand: {}", logs.redact(&format!("{e:#}")));
            std::process::ExitCode::FAILURE
        }
    }
}
