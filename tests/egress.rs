//! `network = "allowlist"` against the real Docker engine and the busybox test image: from inside a
//! sandbox, an allowlisted host is reachable through the egress proxy, any other host is refused, nothing
//! is reachable around the proxy, a step without network still has none, and the worker's own loopback
//! stays out of reach however the repository lists it.
//!
//! The "hosts" are small HTTP servers in this test process on 127.0.0.1: the proxy runs in the worker (here,
//! the test process), so it reaches them, while a container cannot reach the host's loopback by itself.
//! The proxy only connects to the loopback when the operator allows it (`ERRAND_EGRESS_ALLOW_NETS`): most
//! tests here play that operator, and those about the loopback run with the worker's default, strict
//! policy. Each test has an internal network of its own, removed at the end. Needs a running engine and
//! `deploy/sandbox-test-image/build.sh`; fails (never skips) without.

#[path = "support/docker.rs"]
mod docker_support;
#[path = "support/wait.rs"]
mod wait;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine as _;
use bollard::Docker;
use bollard::models::ContainerCreateBody;
use bollard::query_parameters::CreateContainerOptionsBuilder;
use docker_support::{TEST_IMAGE, containers_of_job, docker, sandbox_with_test_image};
use errand::job::JobId;
use errand::sandbox::{AddressPolicy, EgressLease, Limits, NetworkAccess, Sandbox, StepOutput, StepSpec};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use wait::wait_until;

/// The uid and gid steps run as: not root, and not in the image's /etc/passwd.
const SANDBOX_UID: u32 = 10001;
/// Generous bound for anything that should take "seconds" on a loaded CI machine.
const PROMPTLY: Duration = Duration::from_secs(20);
/// `MAX_CONNECTIONS` in the proxy.
const MAX_CONNECTIONS: usize = 64;

/// A test's own internal network, and the helper containers it started; both removed on drop, even when
/// the test fails (with the docker CLI, since drop cannot wait for the engine).
struct World {
    job: JobId,
    sandbox: Sandbox,
    docker: Docker,
    network: String,
    dirs: Dirs,
}

impl World {
    /// A world whose operator allows the loopback, where this process's hosts listen.
    async fn new() -> World {
        World::with_allowed_nets(&["127.0.0.0/8", "::1/128"]).await
    }

    /// A world whose proxy connects to public addresses and to `nets` (as `ERRAND_EGRESS_ALLOW_NETS`) only;
    /// none: the worker's default.
    async fn with_allowed_nets(nets: &[&str]) -> World {
        let nets: Vec<String> = nets.iter().map(|&net| net.to_owned()).collect();
        let policy = AddressPolicy::parse(&nets).unwrap_or_else(|error| panic!("{error}"));
        let job = JobId::generate();
        let network = format!("errand-egress-test-{}", job.short());
        let sandbox = sandbox_with_test_image().await.with_egress_network(&network).with_egress_policy(policy);
        World { job, sandbox, docker: docker().await, network, dirs: Dirs::new() }
    }

    async fn open(&self, hosts: &[String]) -> EgressLease {
        self.sandbox.open_egress(&self.job, hosts).await.unwrap_or_else(|error| panic!("opening a lease: {error:#}"))
    }

    fn step(&self, network: NetworkAccess, script: &str, env: &[(&str, String)]) -> StepSpec {
        let mut step_env = vec![("HOME".to_owned(), "/tmp".to_owned())];
        step_env.extend(env.iter().map(|(key, value)| ((*key).to_owned(), value.clone())));
        StepSpec {
            job: self.job.clone(),
            step: "agent".into(),
            image: TEST_IMAGE.into(),
            script: script.into(),
            workspace: self.dirs.workspace.path().to_owned(),
            errand_dir: self.dirs.errand.path().to_owned(),
            objects: None,
            env: step_env,
            user: format!("{SANDBOX_UID}:{SANDBOX_UID}"),
            network,
            limits: Limits {
                memory_bytes: 256 * 1024 * 1024,
                nano_cpus: 1_000_000_000,
                pids: 128,
                disk_bytes: 1 << 30,
            },
            timeout: Duration::from_secs(120),
        }
    }

    async fn run(&self, spec: &StepSpec) -> StepOutput {
        let output = self
            .sandbox
            .run_step(spec, &CancellationToken::new())
            .await
            .unwrap_or_else(|error| panic!("the step ran: {error}"));
        assert_eq!(output.exit_code, 0, "{}", output.output_tail);
        output
    }

    /// What the step wrote to `/workspace/<name>`.
    fn result(&self, name: &str) -> String {
        let path = self.dirs.workspace.path().join(name);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).replace('\r', "")
    }

    /// A busybox web server on the engine's default bridge, outside the internal network; its address.
    async fn start_outside_server(&self) -> String {
        let body = ContainerCreateBody {
            image: Some(TEST_IMAGE.into()),
            entrypoint: Some(vec![
                "sh".into(),
                "-c".into(),
                "mkdir -p /tmp/www && echo outside > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www".into(),
            ]),
            labels: Some(
                [("errand.managed", "1"), ("errand.job", self.job.as_str()), ("errand.step", "outside-server")]
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect(),
            ),
            ..ContainerCreateBody::default()
        };
        let name = format!("errand-{}-outside", self.job);
        let options = CreateContainerOptionsBuilder::new().name(&name).build();
        let created = self.docker.create_container(Some(options), body).await.expect("creating the outside server");
        self.docker.start_container(&created.id, None).await.expect("starting the outside server");
        let inspected = self.docker.inspect_container(&created.id, None).await.expect("inspecting the outside server");
        inspected
            .network_settings
            .and_then(|settings| settings.networks)
            .and_then(|networks| networks.get("bridge").and_then(|bridge| bridge.ip_address.clone()))
            .filter(|ip| !ip.is_empty())
            .expect("the outside server has an address on the default bridge")
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let docker_cli = || std::process::Command::new("docker");
        let label = format!("label=errand.job={}", self.job);
        if let Ok(listed) = docker_cli().args(["ps", "-aq", "--filter", &label]).output() {
            let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
            if !listed.trim().is_empty() {
                let _ = docker_cli().args(["rm", "-f"]).args(listed.split_whitespace()).output();
            }
        }
        // Not there when the test never opened a lease.
        let _ = docker_cli().args(["network", "rm", &self.network]).output();
    }
}

/// A step's host side: its workspace and errand directory, owned by the sandbox uid.
struct Dirs {
    workspace: TempDir,
    errand: TempDir,
}

impl Dirs {
    fn new() -> Dirs {
        Dirs { workspace: sandbox_dir(), errand: sandbox_dir() }
    }
}

/// A temp dir the sandbox uid can write to: chowned when the tests run as root, world-writable otherwise.
fn sandbox_dir() -> TempDir {
    let dir = tempfile::tempdir().expect("a temp dir");
    if std::os::unix::fs::chown(dir.path(), Some(SANDBOX_UID), Some(SANDBOX_UID)).is_err() {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).expect("chmod 777");
    }
    dir
}

/// A tiny HTTP server on the host's loopback that answers every request with `body`; its port, and how
/// many connections it has accepted.
async fn host_server(body: &'static str) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binding a host server");
    let port = listener.local_addr().expect("its address").port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0; 1];
                while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).await.is_ok_and(|n| n == 1) {
                    head.push(byte[0]);
                }
                let response =
                    format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    (port, accepted)
}

/// A TCP service of the test's own on `address` (`127.0.0.1`, `[::1]`) that only counts the connections it
/// accepts: its port and the count. An error when nothing can listen there (no IPv6 loopback).
async fn canary(address: &str) -> std::io::Result<(u16, Arc<AtomicUsize>)> {
    let listener = TcpListener::bind(format!("{address}:0")).await?;
    let port = listener.local_addr()?.port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((_stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
        }
    });
    Ok((port, accepted))
}

/// Waits until `count` reaches `expected`, for at most `PROMPTLY`.
async fn until_counted(count: &AtomicUsize, expected: usize) {
    wait_until(&format!("{expected} connections are counted"), PROMPTLY, async || {
        (count.load(Ordering::SeqCst) >= expected).then_some(())
    })
    .await;
}

/// The proxy's `gateway:port` and its `Proxy-Authorization` value, from the lease's URL.
fn proxy_parts(lease: &EgressLease) -> (SocketAddr, String) {
    let rest = lease.proxy_url().strip_prefix("http://").expect("an http:// proxy URL");
    let (credentials, address) = rest.rsplit_once('@').expect("credentials in the proxy URL");
    let authorization = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(credentials));
    (address.parse().expect("gateway:port"), authorization)
}

/// Asks the proxy from inside the step: `ask FILE REQUEST` sends REQUEST (`\r\n` escapes allowed) and
/// writes the answer to `/workspace/FILE`. The proxy's address and credential (`$auth`) come from
/// `$HTTPS_PROXY`, as a client takes them.
const ASK: &str = r#"
p=${HTTPS_PROXY#http://}; credentials=${p%@*}; address=${p##*@}; gateway=${address%:*}; port=${address##*:}
auth=$(printf %s "$credentials" | base64)
ask() { printf "$2" | nc -w 5 "$gateway" "$port" > "/workspace/$1" 2>&1; }
"#;

#[tokio::test]
async fn an_allowlisted_host_is_reachable_through_the_proxy_and_every_other_host_is_refused() {
    let world = World::new().await;
    let (allowed, allowed_connections) = host_server("hello from the allowed host").await;
    let (other, other_connections) = host_server("hello from another host").await;
    let outside = world.start_outside_server().await;
    // A name in another case: the proxy resolves it itself and compares names case-insensitively.
    let lease = world.open(&[format!("LocalHost:{allowed}")]).await;
    // Straight to the outside server, around the proxy.
    let direct = "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 $OUTSIDE 8080 > /workspace/direct 2>&1; \
                  echo $? > /workspace/direct.rc";
    // The control: the outside server is up (it may take a moment), and the open network reaches it.
    let until_up = format!(
        "i=0; until {direct} && [ $(cat /workspace/direct.rc) = 0 ] || [ $i -ge 40 ]; do i=$((i+1)); \
                 sleep 0.5; done"
    );
    world.run(&world.step(NetworkAccess::Open, &until_up, &[("OUTSIDE", outside.clone())])).await;
    assert!(world.result("direct").contains("outside"), "the open network reaches it: {}", world.result("direct"));

    let requests = r#"
with="Proxy-Authorization: Basic $auth"
ask tunnel "CONNECT localhost:ALLOWED HTTP/1.1\r\n$with\r\n\r\nGET / HTTP/1.1\r\nHost: localhost\r\n\r\n"
ask forward "GET http://localhost:ALLOWED/ HTTP/1.1\r\nHost: localhost:ALLOWED\r\n$with\r\n\r\n"
ask other "CONNECT localhost:OTHER HTTP/1.1\r\n$with\r\n\r\n"
ask other-forward "GET http://localhost:OTHER/ HTTP/1.1\r\n$with\r\n\r\n"
ask ip-literal "CONNECT 127.0.0.1:ALLOWED HTTP/1.1\r\n$with\r\n\r\n"
ask no-credential "CONNECT localhost:ALLOWED HTTP/1.1\r\n\r\n"
env | grep -i _proxy= | sort > /workspace/env
"#;
    let script =
        [ASK, requests, direct].concat().replace("ALLOWED", &allowed.to_string()).replace("OTHER", &other.to_string());
    let step = world.step(lease.access(), &script, &[("OUTSIDE", outside)]);

    world.run(&step).await;

    let tunnel = world.result("tunnel");
    assert!(tunnel.starts_with("HTTP/1.1 200 Connection established\n\nHTTP/1.1 200 OK\n"), "{tunnel}");
    assert!(tunnel.ends_with("\n\nhello from the allowed host"), "{tunnel}");
    let forward = world.result("forward");
    assert!(forward.starts_with("HTTP/1.1 200 OK\n") && forward.ends_with("hello from the allowed host"), "{forward}");
    assert_eq!(allowed_connections.load(Ordering::SeqCst), 2, "the tunnel and the forwarded request");

    for (file, host) in [
        ("other", format!("localhost:{other}")),
        ("other-forward", format!("localhost:{other}")),
        ("ip-literal", format!("127.0.0.1:{allowed}")),
    ] {
        let refused = world.result(file);
        assert!(refused.starts_with("HTTP/1.1 403 Forbidden\n"), "{file}: {refused}");
        assert!(
            refused.ends_with(&format!(
                "\n\nerrand egress proxy: {host} is not in this repository's allow_hosts (.errand.toml)\n"
            )),
            "{file}: {refused}"
        );
    }
    assert_eq!(other_connections.load(Ordering::SeqCst), 0, "the proxy never connected to a host off the list");
    let no_credential = world.result("no-credential");
    assert!(no_credential.starts_with("HTTP/1.1 407 Proxy Authentication Required\n"), "{no_credential}");

    let direct = world.result("direct");
    assert_ne!(world.result("direct.rc").trim(), "0", "a direct connection failed: {direct}");
    assert!(!direct.contains("outside"), "{direct}");

    let proxy_url = lease.proxy_url();
    let env = world.result("env");
    let expected: String = ["ALL_PROXY", "HTTPS_PROXY", "HTTP_PROXY", "http_proxy", "https_proxy"]
        .iter()
        .map(|key| format!("{key}={proxy_url}\n"))
        .chain(["NO_PROXY=localhost,127.0.0.1\n".to_owned(), "no_proxy=localhost,127.0.0.1\n".to_owned()])
        .collect();
    let mut expected_lines: Vec<&str> = expected.lines().collect();
    expected_lines.sort_unstable();
    assert_eq!(env.lines().collect::<Vec<_>>(), expected_lines);
    assert_eq!(containers_of_job(&world.docker, &world.job).await.len(), 1, "only the outside server is left");
}

/// How the proxy ends the refusal of an address: the way to open it, which only the operator has.
const OPERATOR_HINT: &str = "; the operator can allow a range with ERRAND_EGRESS_ALLOW_NETS\n";

#[tokio::test]
async fn the_proxy_refuses_loopback_even_when_the_repository_allows_it() {
    let world = World::with_allowed_nets(&[]).await;
    let (v4_port, v4_accepted) = canary("127.0.0.1").await.expect("binding a canary on 127.0.0.1");
    // Without an IPv6 loopback there is no canary on [::1], but the proxy must refuse that address all the
    // same: it is asked for it with the IPv4 canary's port.
    let v6 = match canary("[::1]").await {
        Ok(v6) => Some(v6),
        Err(error) => {
            eprintln!("no IPv6 loopback here ({error}): [::1] is checked for its refusal, without a canary");
            None
        }
    };
    let v6_port = v6.as_ref().map_or(v4_port, |(port, _)| *port);
    let lease = world
        .open(&[
            format!("127.0.0.1:{v4_port}"),
            format!("[::1]:{v6_port}"),
            format!("localhost:{v4_port}"),
            format!("[::ffff:127.0.0.1]:{v4_port}"),
        ])
        .await;
    let requests = r#"
with="Proxy-Authorization: Basic $auth"
ask v4 "CONNECT 127.0.0.1:V4 HTTP/1.1\r\n$with\r\n\r\n"
ask v6 "CONNECT [::1]:V6 HTTP/1.1\r\n$with\r\n\r\n"
ask name "CONNECT localhost:V4 HTTP/1.1\r\n$with\r\n\r\n"
ask name-forward "GET http://localhost:V4/ HTTP/1.1\r\n$with\r\n\r\n"
ask mapped "CONNECT [::ffff:127.0.0.1]:V4 HTTP/1.1\r\n$with\r\n\r\n"
"#;
    let script = [ASK, requests].concat().replace("V4", &v4_port.to_string()).replace("V6", &v6_port.to_string());

    world.run(&world.step(lease.access(), &script, &[])).await;

    for (file, reason) in [
        ("v4", format!("127.0.0.1:{v4_port} is not a public address (127.0.0.1 is loopback 127.0.0.0/8)")),
        ("v6", format!("[::1]:{v6_port} is not a public address (::1 is loopback ::1/128)")),
        (
            "mapped",
            format!(
                "[::ffff:127.0.0.1]:{v4_port} is not a public address (::ffff:127.0.0.1 is IPv4-mapped loopback \
                 127.0.0.0/8)"
            ),
        ),
    ] {
        let answer = world.result(file);
        assert!(answer.starts_with("HTTP/1.1 403 Forbidden\n"), "{file}: {answer}");
        assert!(answer.ends_with(&format!("\n\nerrand egress proxy: {reason}{OPERATOR_HINT}")), "{file}: {answer}");
    }
    for file in ["name", "name-forward"] {
        let answer = world.result(file);
        assert!(answer.starts_with("HTTP/1.1 403 Forbidden\n"), "{file}: {answer}");
        let (_, body) = answer.split_once("\n\n").unwrap_or_else(|| panic!("{file}: a head and a body: {answer}"));
        let prefix =
            format!("errand egress proxy: localhost:{v4_port} resolves only to addresses that are not public (");
        assert!(body.starts_with(&prefix), "{file}: {body}");
        assert!(body.contains("127.0.0.1 is loopback 127.0.0.0/8"), "{file}: {body}");
        assert!(body.ends_with(&format!("){OPERATOR_HINT}")), "{file}: {body}");
    }
    assert_eq!(v4_accepted.load(Ordering::SeqCst), 0, "the proxy never connected to the IPv4 loopback");
    if let Some((_, v6_accepted)) = &v6 {
        assert_eq!(v6_accepted.load(Ordering::SeqCst), 0, "the proxy never connected to the IPv6 loopback");
    }

    // The control: the canaries count what does reach them.
    let direct = TcpStream::connect(("127.0.0.1", v4_port)).await.expect("connecting to the IPv4 canary");
    until_counted(&v4_accepted, 1).await;
    drop(direct);
    if let Some((port, v6_accepted)) = &v6 {
        let direct = TcpStream::connect(("::1", *port)).await.expect("connecting to the IPv6 canary");
        until_counted(v6_accepted, 1).await;
        drop(direct);
    }
}

#[tokio::test]
async fn an_operator_range_opens_the_proxy_to_its_addresses_and_to_no_others() {
    let world = World::with_allowed_nets(&["127.0.0.1/32"]).await;
    let (inside, inside_connections) = host_server("hello from inside the operator's range").await;
    // Also loopback, but outside 127.0.0.1/32.
    let (outside, outside_accepted) = canary("127.0.0.2").await.expect("binding a canary on 127.0.0.2");
    let lease = world.open(&[format!("127.0.0.1:{inside}"), format!("127.0.0.2:{outside}")]).await;
    let requests = r#"
with="Proxy-Authorization: Basic $auth"
ask inside "CONNECT 127.0.0.1:INSIDE HTTP/1.1\r\n$with\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"
ask outside "CONNECT 127.0.0.2:OUTSIDE HTTP/1.1\r\n$with\r\n\r\n"
"#;
    let script =
        [ASK, requests].concat().replace("INSIDE", &inside.to_string()).replace("OUTSIDE", &outside.to_string());

    world.run(&world.step(lease.access(), &script, &[])).await;

    let answer = world.result("inside");
    assert!(answer.starts_with("HTTP/1.1 200 Connection established\n"), "{answer}");
    assert!(answer.ends_with("hello from inside the operator's range"), "{answer}");
    assert_eq!(inside_connections.load(Ordering::SeqCst), 1);
    let answer = world.result("outside");
    assert!(answer.starts_with("HTTP/1.1 403 Forbidden\n"), "{answer}");
    let reason = format!("127.0.0.2:{outside} is not a public address (127.0.0.2 is loopback 127.0.0.0/8)");
    assert!(answer.ends_with(&format!("\n\nerrand egress proxy: {reason}{OPERATOR_HINT}")), "{answer}");
    assert_eq!(outside_accepted.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_step_without_network_cannot_reach_even_an_open_proxy() {
    let world = World::new().await;
    let (allowed, allowed_connections) = host_server("hello from the allowed host").await;
    let lease = world.open(&[format!("localhost:{allowed}")]).await;
    let (address, authorization) = proxy_parts(&lease);
    let script = "printf 'CONNECT localhost:ALLOWED HTTP/1.1\\r\\nProxy-Authorization: AUTH\\r\\n\\r\\n' \
                  | nc -w 3 GATEWAY PORT > /workspace/through-proxy 2>&1; echo $? > /workspace/through-proxy.rc; \
                  tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' > /workspace/interfaces"
        .replace("ALLOWED", &allowed.to_string())
        .replace("AUTH", &authorization)
        .replace("GATEWAY", &address.ip().to_string())
        .replace("PORT", &address.port().to_string());

    world.run(&world.step(NetworkAccess::None, &script, &[])).await;

    assert_eq!(world.result("interfaces"), "lo\n");
    assert_ne!(world.result("through-proxy.rc").trim(), "0", "{}", world.result("through-proxy"));
    assert!(!world.result("through-proxy").contains("HTTP/1.1"), "{}", world.result("through-proxy"));
    assert_eq!(allowed_connections.load(Ordering::SeqCst), 0);

    // The control: the same request from the host goes through.
    let mut client = TcpStream::connect(address).await.expect("connecting to the proxy from the host");
    let request = format!("CONNECT localhost:{allowed} HTTP/1.1\r\nProxy-Authorization: {authorization}\r\n\r\n");
    client.write_all(request.as_bytes()).await.expect("sending CONNECT");
    assert!(read_some(&mut client).await.starts_with("HTTP/1.1 200 Connection established\r\n\r\n"));
}

#[tokio::test]
async fn dropping_the_lease_closes_its_tunnels_and_its_listener() {
    let world = World::new().await;
    let (allowed, _) = host_server("hello from the allowed host").await;
    let lease = world.open(&[format!("localhost:{allowed}")]).await;
    let (address, authorization) = proxy_parts(&lease);
    let mut tunnel = TcpStream::connect(address).await.expect("connecting to the proxy");
    let request = format!("CONNECT localhost:{allowed} HTTP/1.1\r\nProxy-Authorization: {authorization}\r\n\r\n");
    tunnel.write_all(request.as_bytes()).await.expect("sending CONNECT");
    assert!(read_some(&mut tunnel).await.starts_with("HTTP/1.1 200 Connection established"));

    drop(lease);

    // The upstream server waits for a request that never comes: only the proxy can end this tunnel.
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(PROMPTLY, tunnel.read_to_end(&mut rest)).await;
    assert!(matches!(closed, Ok(Ok(0)) | Ok(Err(_))), "the tunnel is closed: {closed:?}");
    wait_until("the listener no longer accepts connections", PROMPTLY, async || {
        TcpStream::connect(address).await.is_err().then_some(())
    })
    .await;
}

#[tokio::test]
async fn connections_beyond_the_bound_are_answered_service_unavailable() {
    let world = World::new().await;
    let lease = world.open(&["api.example.com".to_owned()]).await;
    let (address, _) = proxy_parts(&lease);
    let mut held = Vec::new();
    for _ in 0..MAX_CONNECTIONS {
        held.push(TcpStream::connect(address).await.expect("connecting to the proxy"));
    }

    let mut one_too_many = TcpStream::connect(address).await.expect("connecting to the proxy");
    assert!(read_some(&mut one_too_many).await.starts_with("HTTP/1.1 503 Service Unavailable\r\n"));

    // A connection that ends gives its place back.
    drop(held.pop());
    wait_until("a place has come free", PROMPTLY, async || {
        let mut client = TcpStream::connect(address).await.expect("connecting to the proxy");
        client.write_all(b"CONNECT api.example.com:443 HTTP/1.1\r\n\r\n").await.expect("sending CONNECT");
        let answer = read_some(&mut client).await;
        if answer.starts_with("HTTP/1.1 407 ") {
            return Some(());
        }
        assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
        None
    })
    .await;
}

/// What the other side sends first, within `PROMPTLY`.
async fn read_some(stream: &mut TcpStream) -> String {
    let mut buffer = vec![0; 4096];
    let read = tokio::time::timeout(PROMPTLY, stream.read(&mut buffer))
        .await
        .expect("an answer within seconds")
        .expect("reading the answer");
    String::from_utf8_lossy(&buffer[..read]).into_owned()
}
