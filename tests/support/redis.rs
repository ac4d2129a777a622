//! A Redis for each test: `ERRAND_TEST_REDIS_URL` with a key namespace of the test's own, or else a
//! `redis-server` of the test's own on a free loopback port, stopped when the test ends. A test that
//! crashes Redis and expects its data back starts a durable one ([`TestRedis::start_durable`]),
//! configured as production must be (see the README's "Guarantees").

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long a spawned server may take to answer PING.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);

const NO_REDIS: &str = "tests need Redis: install redis-server (apt-get install redis-server) or set \
                        ERRAND_TEST_REDIS_URL";

/// A Redis URL plus a key namespace no other test uses.
pub struct TestRedis {
    url: String,
    namespace: String,
    /// `None` when the Redis comes from `ERRAND_TEST_REDIS_URL`.
    server: Option<Server>,
}

struct Server {
    port: u16,
    process: Child,
    /// Where a durable server keeps its append-only file; `None`: it keeps nothing.
    data: Option<PathBuf>,
}

/// A durable server's settings, as production must run Redis: every write is in the append-only
/// file, fsynced, before Redis answers it, so a crash (even of the machine) loses nothing that
/// errand was told had been stored. No RDB snapshots: the append-only file is the whole record.
const DURABLE: [&str; 6] = ["--appendonly", "yes", "--appendfsync", "always", "--save", ""];
/// A throwaway server's settings: nothing is written to disk.
const EPHEMERAL: [&str; 4] = ["--save", "", "--appendonly", "no"];

impl TestRedis {
    /// Uses `ERRAND_TEST_REDIS_URL` if set, else spawns a server; panics if neither works, so that a
    /// test never passes by skipping.
    pub fn start() -> Self {
        let namespace = unique_namespace();
        if let Ok(url) = std::env::var("ERRAND_TEST_REDIS_URL") {
            return Self { url, namespace, server: None };
        }
        Self::start_owned_with(namespace)
    }

    /// Always spawns a server of the test's own, for tests that stop or restart it.
    pub fn start_owned() -> Self {
        Self::start_owned_with(unique_namespace())
    }

    /// Spawns a server of the test's own that keeps its data as production must (an append-only
    /// file, fsynced on every write, in a directory of its own): a [`TestRedis::stop`] (a crash)
    /// and [`TestRedis::restart`] bring back everything it had answered.
    #[allow(dead_code, reason = "not every test binary that includes this file crashes Redis")]
    pub fn start_durable() -> Self {
        let dir = tempfile::tempdir().expect("a data directory for redis-server");
        let server = Server::spawn(Some(dir.keep()));
        Self { url: format!("redis://127.0.0.1:{}/", server.port), namespace: unique_namespace(), server: Some(server) }
    }

    fn start_owned_with(namespace: String) -> Self {
        let server = Server::spawn(None);
        Self { url: format!("redis://127.0.0.1:{}/", server.port), namespace, server: Some(server) }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The key namespace for this test (pass it to `RedisQueue::connect_with_prefix`).
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Stops the server with SIGKILL, as a crash would (no save); clients see their connections
    /// drop.
    pub fn stop(&mut self) {
        self.own_server("stop").kill();
    }

    /// Starts the server again on the same port (stopping it first if it runs): empty, or, for a
    /// durable server, with everything its append-only file holds. Returns once it answers PING,
    /// which a durable server does only after it has loaded its data.
    pub fn restart(&mut self) {
        let server = self.own_server("restart");
        server.kill();
        let data = server.data.take();
        *server =
            Server::spawn_on(server.port, data).unwrap_or_else(|error| panic!("restarting redis-server: {error}"));
    }

    fn own_server(&mut self, what: &str) -> &mut Server {
        self.server.as_mut().unwrap_or_else(|| {
            panic!("cannot {what} a shared Redis: use TestRedis::start_owned() in tests that stop it")
        })
    }
}

impl Server {
    fn spawn(data: Option<PathBuf>) -> Self {
        // The free port can be taken between our look and the server's bind; try a few.
        let mut last_error = String::new();
        for _ in 0..5 {
            let port = free_port();
            match Self::spawn_on(port, data.clone()) {
                Ok(server) => return server,
                Err(error) => last_error = error,
            }
        }
        panic!("{NO_REDIS} ({last_error})");
    }

    fn spawn_on(port: u16, data: Option<PathBuf>) -> Result<Self, String> {
        let mut command = Command::new("redis-server");
        command.args(["--port", &port.to_string(), "--bind", "127.0.0.1"]);
        match &data {
            Some(dir) => command.args(DURABLE).arg("--dir").arg(dir),
            None => command.args(EPHEMERAL),
        };
        let process = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|error| format!("spawning redis-server: {error}"))?;
        let mut server = Self { port, process, data };
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Ok(Some(status)) = server.process.try_wait() {
                return Err(format!("redis-server on port {port} exited at startup: {status}"));
            }
            if answers_ping(port) {
                return Ok(server);
            }
            if Instant::now() > deadline {
                server.kill();
                return Err(format!("redis-server on port {port} did not answer PING in {STARTUP_TIMEOUT:?}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(&mut self) {
        // Errors mean the process is gone already.
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        if let Some(server) = &mut self.server {
            server.kill();
            if let Some(dir) = &server.data {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding a loopback port to find a free one");
    listener.local_addr().expect("reading a bound port").port()
}

fn answers_ping(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let mut reply = [0u8; 7];
    stream.write_all(b"PING\r\n").is_ok() && stream.read_exact(&mut reply).is_ok() && &reply == b"+PONG\r\n"
}

fn unique_namespace() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_nanos());
    format!("test-{}-{}-{nanos}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}
