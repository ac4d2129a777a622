//! Composition: each command assembles its process ([`Process::assemble`]) and runs it with one
//! [`start`], which production and the tests share. `serve` runs the ingress, `worker` the worker,
//! `all` both, until SIGTERM or SIGINT; either half ending on its own stops the process with an
//! error, so a dead worker never leaves an ingress accepting jobs nobody runs.

mod assemble;
mod jobs;

use std::future::Future;

use anyhow::{Context, Result, bail};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use self::assemble::{Ingress, Process, ProcessArgs, acknowledge_accepted_jobs, known_secrets, open_queue};
use crate::config::{Cli, CliCommand};
use crate::ingress;
use crate::logging::LogRedaction;

/// Acknowledgements waiting to be posted by `serve`; beyond this the worker acknowledges instead.
const ACK_BACKLOG: usize = 1024;

/// Runs the command the command line names; its log lines pass the process's redactor from the
/// moment the secrets are read.
pub async fn run(cli: Cli, logs: &LogRedaction) -> Result<()> {
    let (args, listen) = match &cli.command {
        CliCommand::Serve(args) => (ProcessArgs::serve(args), Some(args.ingress.listen)),
        CliCommand::Worker(args) => (ProcessArgs::worker(args), None),
        CliCommand::All(args) => (ProcessArgs::all(args), Some(args.ingress.listen)),
        CliCommand::Jobs(args) => return jobs::run(args).await,
    };
    let shutdown = shutdown_signal();
    let process = Process::assemble(args, None).await?;
    logs.set(&process.redactor);
    let listener = match listen {
        Some(address) => {
            let listener = TcpListener::bind(address).await.with_context(|| format!("listening on {address}"))?;
            tracing::info!(address = %listener.local_addr()?, "ingress listening");
            Some(listener)
        }
        None => None,
    };
    start(process, listener, shutdown).await
}

/// Runs the halves `process` has, the ingress on `listener` and the worker, until `shutdown`
/// fires (see [`supervise`]).
pub async fn start(process: Process, listener: Option<TcpListener>, shutdown: CancellationToken) -> Result<()> {
    let mut halves: Vec<Half> = Vec::new();
    if let Some(ingress) = process.ingress {
        let listener = listener.context("the ingress needs a listener")?;
        let (queue, stop) = (process.queue.clone(), shutdown.clone());
        halves.push(("ingress", Box::pin(serve(ingress, queue, listener, stop))));
    }
    if let Some(worker) = process.worker {
        let stop = shutdown.clone();
        halves.push(("worker", Box::pin(async move { worker.run(stop).await })));
    }
    supervise(halves, shutdown).await
}

/// A half of a process: its name, and the future that runs it until shutdown.
type Half = (&'static str, std::pin::Pin<Box<dyn Future<Output = Result<()>> + Send>>);

/// Runs `halves` side by side. The first to end stops the others (through `shutdown`); a half
/// that ends before `shutdown` was asked for, or fails, makes the whole an error: the process
/// must not go on half alive.
async fn supervise(halves: Vec<Half>, shutdown: CancellationToken) -> Result<()> {
    let mut running = JoinSet::new();
    for (name, half) in halves {
        running.spawn(async move { (name, half.await) });
    }
    let mut outcome = Ok(());
    while let Some(ended) = running.join_next().await {
        let unexpected = !shutdown.is_cancelled();
        shutdown.cancel();
        let failure = match ended {
            Ok((half, Err(error))) => Some(error.context(format!("the {half} failed"))),
            Ok((half, Ok(()))) if unexpected => Some(anyhow::anyhow!("the {half} stopped on its own")),
            Ok(_) => None,
            Err(panicked) => Some(anyhow::anyhow!("a half of errand panicked: {panicked}")),
        };
        if let Some(failure) = failure {
            tracing::error!(error = format!("{failure:#}"), "stopping errand");
            if outcome.is_ok() {
                outcome = Err(failure);
            }
        }
    }
    outcome
}

/// The ingress on `listener`, with its acknowledger, until `shutdown`.
async fn serve(
    ingress: Ingress,
    queue: crate::queue::Queue,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<()> {
    let acks = match ingress.acknowledger {
        Some(publisher) => {
            let (acks, accepted) = mpsc::channel(ACK_BACKLOG);
            tokio::spawn(acknowledge_accepted_jobs(accepted, queue.clone(), publisher));
            Some(acks)
        }
        None => None,
    };
    let router = ingress::router(std::sync::Arc::new(ingress.settings), queue, acks);
    ingress::serve(listener, router, async move { shutdown.cancelled().await }).await
}

/// Fires on SIGTERM or SIGINT.
pub fn shutdown_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let fire = token.clone();
    tokio::spawn(async move {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(term) => term,
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                return;
            }
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        tracing::info!("shutdown requested");
        fire.cancel();
    });
    token
}

/// Refuses a memory queue for a command that reads a shared one.
fn shared_queue_only(kind: crate::config::QueueKind) -> Result<()> {
    if kind == crate::config::QueueKind::Memory {
        bail!("`errand jobs` reads a shared queue: give it ERRAND_REDIS_URL (a memory queue lives inside one process)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    /// A half that runs until shutdown and then says it saw it.
    fn until_shutdown(shutdown: &CancellationToken, stopped: &Arc<AtomicBool>) -> Half {
        let (shutdown, stopped) = (shutdown.clone(), stopped.clone());
        (
            "ingress",
            Box::pin(async move {
                shutdown.cancelled().await;
                stopped.store(true, Ordering::SeqCst);
                Ok(())
            }),
        )
    }

    #[tokio::test]
    async fn a_half_that_dies_stops_the_other_and_the_process_fails() {
        let shutdown = CancellationToken::new();
        let stopped = Arc::new(AtomicBool::new(false));
        let dying: Half = ("worker", Box::pin(async { Err(anyhow::anyhow!("Docker went away")) }));
        let ended = supervise(vec![until_shutdown(&shutdown, &stopped), dying], shutdown.clone()).await;
        let error = format!("{:#}", ended.expect_err("the process fails"));
        assert_eq!(error, "the worker failed: Docker went away");
        assert!(stopped.load(Ordering::SeqCst), "the ingress was stopped");
    }

    #[tokio::test]
    async fn a_half_that_stops_on_its_own_is_a_failure_too() {
        let shutdown = CancellationToken::new();
        let stopped = Arc::new(AtomicBool::new(false));
        let quitting: Half = ("worker", Box::pin(async { Ok(()) }));
        let ended = supervise(vec![until_shutdown(&shutdown, &stopped), quitting], shutdown.clone()).await;
        assert_eq!(format!("{:#}", ended.expect_err("the process fails")), "the worker stopped on its own");
        assert!(stopped.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn a_shutdown_ends_every_half_and_the_process_succeeds() {
        let shutdown = CancellationToken::new();
        let stopped = Arc::new(AtomicBool::new(false));
        shutdown.cancel();
        let ended = supervise(vec![until_shutdown(&shutdown, &stopped)], shutdown.clone()).await;
        assert!(ended.is_ok() && stopped.load(Ordering::SeqCst));
    }
}
