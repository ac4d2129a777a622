//! The egress proxy of `network = "allowlist"`: a step reaches the hosts on its repository's list, and only
//! those, through an HTTP proxy in the worker.
//!
//! Steps of such a repository run on one Docker network, [`EGRESS_NETWORK`], created with `internal: true`:
//! the engine forwards nothing from it to the outside. Per attempt, [`open`] binds a listener on that
//! network's gateway address (the host's side of its bridge) on a port the OS chooses, and the steps get it
//! as `HTTP_PROXY`/`HTTPS_PROXY`. The proxy admits `CONNECT host:port` (a tunnel, which is how HTTPS goes
//! through a proxy) and plain `http://` requests in absolute form, each only to a host on the list; it
//! resolves the names itself, so the steps need no DNS. It connects only to addresses its [`AddressPolicy`]
//! admits: globally routable ones and the ranges the operator allows (`ERRAND_EGRESS_ALLOW_NETS`), so that a
//! listed name or IP literal that points at the worker's loopback, the cloud metadata service or a private
//! network leads nowhere. Everything else is answered with a one-line reason (`403 Forbidden` for a host that
//! is not on the list or has no admitted address) and logged with the job. The listener and its tunnels stop
//! when the [`EgressLease`] is dropped.
//!
//! Why these choices:
//! - Hand-written rather than a crate: the surface is one request head per connection and a byte pipe
//!   (`copy_bidirectional`), about what a crate's glue would take; the proxy crates there are (such as
//!   `sbe-proxy`) are young, bind to loopback, and have no notion of a per-job lease.
//! - The proxy URL carries a random credential per lease (`http://errand:<token>@gateway:port`), checked on
//!   every request: all leases listen on the same network, so without it one job's step could use another
//!   job's proxy, and that job's list. Clients take credentials from the proxy URL (curl, Python, Go,
//!   Node's proxy agents).
//! - Inter-container traffic is off on the network (`enable_icc=false`): steps of different jobs share it.
//! - A name is resolved once, and the proxy connects to the very addresses it judged, never letting the OS
//!   resolve again: a name that answers with a public address first and the loopback next (DNS rebinding)
//!   gains nothing.
//!
//! What it does not do: look inside the tunnels (a CONNECT to an allowed host may carry TLS for another
//! name served by the same front end), and guard the worker host against the step's own packets. The
//! proxy itself reaches no loopback or private address unless the operator allows it, but the engine only
//! keeps packets from being *forwarded*: a service on the host that listens on all addresses can still be
//! reached directly at the gateway address (or any other address of the host). On a worker host with such
//! services, drop traffic from the network's subnet in the host's `INPUT` chain except TCP to the
//! gateway's ephemeral ports.

mod address;

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::Context as _;
use base64::Engine as _;
use bollard::Docker;
use bollard::models::{Network, NetworkCreateRequest};
use bollard::query_parameters::ListNetworksOptionsBuilder;
use subtle::ConstantTimeEq as _;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::{CancellationToken, DropGuard};

pub use self::address::{AddressPolicy, NotPublic};
use super::container::LABEL_MANAGED;
use super::{NetworkAccess, engine_detail};
use crate::job::JobId;

/// The internal Docker network of allowlisted steps, shared by every worker on the engine.
pub const EGRESS_NETWORK: &str = "errand-egress";
/// How many connections one lease serves at once; more are answered `503`.
const MAX_CONNECTIONS: usize = 64;
/// A tunnel through which nothing moved for this long is closed. Model APIs stream their answers,
/// and a slow one may think for minutes before the first token.
const IDLE_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// How long a client may take to send its request head, and how large the head may be.
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_HEAD_BYTES: usize = 16 * 1024;
/// How long resolving and connecting to an allowed host may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How many refused addresses a refusal names; a name may resolve to dozens.
const NAMED_ADDRESSES: usize = 4;
/// The user name in the proxy URL; the password is the lease's token.
const PROXY_USER: &str = "errand";
/// The ports an entry without a port allows: HTTPS and HTTP.
const DEFAULT_PORTS: [u16; 2] = [443, 80];

/// One attempt's proxy. Dropping it closes the listener and every tunnel through it.
pub struct EgressLease {
    network: String,
    proxy_url: String,
    _stop: DropGuard,
}

impl EgressLease {
    /// The id of the internal network the steps must join (what `network_mode` names).
    pub fn network(&self) -> &str {
        &self.network
    }

    /// `http://errand:<token>@<gateway>:<port>`, for the steps' `HTTP_PROXY` and `HTTPS_PROXY`.
    pub fn proxy_url(&self) -> &str {
        &self.proxy_url
    }

    /// What a step that goes through this proxy asks of the sandbox.
    pub fn access(&self) -> NetworkAccess {
        NetworkAccess::Proxied { network: self.network.clone(), proxy_url: self.proxy_url.clone() }
    }
}

impl std::fmt::Debug for EgressLease {
    // The proxy URL holds the lease's credential.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EgressLease").field("network", &self.network).finish_non_exhaustive()
    }
}

/// Opens a proxy for `job` that lets through exactly `hosts`, at addresses `policy` admits, on the internal
/// network `network_name` (created if missing).
pub(super) async fn open(
    docker: &Docker,
    network_name: &str,
    job: &JobId,
    hosts: &[String],
    policy: AddressPolicy,
) -> anyhow::Result<EgressLease> {
    let allowlist = Allowlist::parse(hosts).map_err(anyhow::Error::msg).context("reading allow_hosts")?;
    let network = ensure_network(docker, network_name).await?;
    let listener = TcpListener::bind((network.gateway, 0)).await.with_context(|| {
        format!(
            "binding the egress proxy on {}, the gateway of Docker network `{network_name}`: the worker must share \
             the Docker host's network (a worker in a container needs `network_mode: host`)",
            network.gateway
        )
    })?;
    let address = listener.local_addr().context("reading the egress proxy's address")?;
    let token = random_token().await?;
    let proxy = Arc::new(Proxy {
        job: job.clone(),
        allowlist,
        policy,
        credentials: format!("{PROXY_USER}:{token}"),
        connections: Arc::new(Semaphore::new(MAX_CONNECTIONS)),
    });
    let stop = CancellationToken::new();
    tokio::spawn(serve(listener, proxy, stop.clone()));
    tracing::info!(job = %job, %address, hosts = ?hosts, "egress proxy open");
    Ok(EgressLease {
        network: network.id,
        proxy_url: format!("http://{PROXY_USER}:{token}@{address}"),
        _stop: stop.drop_guard(),
    })
}

/// The hosts a lease lets through: `api.example.com` (ports 443 and 80), `api.example.com:8443`,
/// `*.example.com` (any name below example.com, not example.com itself), and IP literals (`10.0.0.5:8080`,
/// `[::1]:8080`). Names compare case-insensitively; an IP is only reached when it is listed as an IP. Being
/// on the list is not enough: every address, listed or resolved, must also pass the [`AddressPolicy`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allowlist {
    rules: Vec<Rule>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    host: HostPattern,
    /// None: the [`DEFAULT_PORTS`].
    port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Exact(Host),
    /// `*.example.com`, kept as `example.com`.
    Below(String),
}

/// A host a client asked for, normalized: lowercase, without a trailing dot or IPv6 brackets.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Host {
    Name(String),
    Ip(IpAddr),
}

impl std::fmt::Display for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Host::Name(name) => f.write_str(name),
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            Host::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

impl Allowlist {
    /// Reads `allow_hosts`; the error names the entry and says what is wrong with it.
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        let rules = entries
            .iter()
            .map(|entry| parse_rule(entry).map_err(|reason| format!("`{entry}` is not a host: {reason}")))
            .collect::<Result<_, _>>()?;
        Ok(Self { rules })
    }

    fn allows(&self, host: &Host, port: u16) -> bool {
        self.rules.iter().any(|rule| {
            let port_ok = match rule.port {
                Some(allowed) => allowed == port,
                None => DEFAULT_PORTS.contains(&port),
            };
            let host_ok = match (&rule.host, host) {
                (HostPattern::Exact(allowed), host) => allowed == host,
                (HostPattern::Below(suffix), Host::Name(name)) => {
                    name.strip_suffix(suffix.as_str()).is_some_and(|head| head.len() > 1 && head.ends_with('.'))
                }
                (HostPattern::Below(_), Host::Ip(_)) => false,
            };
            port_ok && host_ok
        })
    }
}

fn parse_rule(entry: &str) -> Result<Rule, String> {
    if entry.contains("://") || entry.contains('/') {
        return Err("write the host alone, without a scheme or path (`api.example.com`)".into());
    }
    let (host, port) = split_authority(entry.trim())?;
    let port = port.map(parse_port).transpose()?;
    let host = match host.strip_prefix("*.") {
        Some(suffix) => match parse_host(suffix)? {
            Host::Name(name) => HostPattern::Below(name),
            Host::Ip(_) => return Err("a wildcard only goes before a name".into()),
        },
        None => HostPattern::Exact(parse_host(host)?),
    };
    Ok(Rule { host, port })
}

/// Splits `host[:port]` or `[v6][:port]`.
fn split_authority(authority: &str) -> Result<(&str, Option<&str>), String> {
    if let Some(rest) = authority.strip_prefix('[') {
        let (ip, after) = rest.split_once(']').ok_or("an IPv6 address without its closing `]`")?;
        return match after {
            "" => Ok((ip, None)),
            _ => after.strip_prefix(':').map(|port| (ip, Some(port))).ok_or_else(|| "junk after `]`".into()),
        };
    }
    match authority.split_once(':') {
        // More than one colon: an IPv6 address must be in brackets.
        Some((_, port)) if port.contains(':') => Err("an IPv6 address goes in brackets: `[::1]:443`".into()),
        Some((host, port)) => Ok((host, Some(port))),
        None => Ok((authority, None)),
    }
}

fn parse_port(text: &str) -> Result<u16, String> {
    // `parse` takes a leading `+`.
    match text.parse::<u16>() {
        Ok(port) if port != 0 && text.bytes().all(|b| b.is_ascii_digit()) => Ok(port),
        _ => Err(format!("`{text}` is not a port")),
    }
}

fn parse_host(host: &str) -> Result<Host, String> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(Host::Ip(ip));
    }
    let name = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if name.is_empty() || name.len() > 253 || !name.split('.').all(label_ok) {
        return Err(format!("`{host}` is not a host name"));
    }
    Ok(Host::Name(name))
}

/// A request head as the client sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RequestHead {
    method: String,
    target: String,
    version: String,
    headers: Vec<(String, String)>,
}

impl RequestHead {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Parses a request head (up to and without the blank line).
fn parse_head(head: &[u8]) -> Result<RequestHead, Refusal> {
    let bad = |reason: &str| Refusal::new(Status::BadRequest, reason);
    let head = std::str::from_utf8(head).map_err(|_| bad("the request head is not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("the request line is not `METHOD target HTTP/1.1`"));
    };
    if method.is_empty() || target.is_empty() || !matches!(version, "HTTP/1.1" | "HTTP/1.0") {
        return Err(bad("the request line is not `METHOD target HTTP/1.1`"));
    }
    let mut headers = Vec::new();
    for line in lines {
        let Some((name, value)) = line.split_once(':') else { return Err(bad("a header line without a colon")) };
        // Folded lines and spaces before the colon are how request smuggling starts.
        if name.is_empty() || name.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control()) {
            return Err(bad("a malformed header name"));
        }
        headers.push((name.to_owned(), value.trim().to_owned()));
    }
    Ok(RequestHead { method: method.to_owned(), target: target.to_owned(), version: version.to_owned(), headers })
}

/// Where an admitted request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    /// `CONNECT`: a byte tunnel after `200`.
    Tunnel { host: Host, port: u16 },
    /// A plain `http://` request: sent on with `head` (origin form, hop-by-hop headers removed).
    Forward { host: Host, port: u16, head: Vec<u8> },
}

impl Route {
    fn destination(&self) -> (&Host, u16) {
        match self {
            Route::Tunnel { host, port } | Route::Forward { host, port, .. } => (host, *port),
        }
    }
}

/// Headers not passed on: those for the hop to the proxy only, and `Host` (set from the URL, so that it names
/// the host that was allowed).
const NOT_PASSED_ON: [&str; 7] =
    ["connection", "proxy-connection", "proxy-authorization", "keep-alive", "te", "upgrade", "host"];

/// Where a request wants to go, if the proxy serves that kind of request at all.
fn route_of(head: &RequestHead) -> Result<Route, Refusal> {
    if head.method == "CONNECT" {
        let (host, port) = split_authority(&head.target).map_err(|r| Refusal::new(Status::BadRequest, &r))?;
        let port = port.ok_or_else(|| Refusal::new(Status::BadRequest, "CONNECT needs `host:port`"))?;
        let port = parse_port(port).map_err(|r| Refusal::new(Status::BadRequest, &r))?;
        let host = parse_host(host).map_err(|r| Refusal::new(Status::BadRequest, &r))?;
        return Ok(Route::Tunnel { host, port });
    }
    let scheme_len = "http://".len();
    let is_http = head.target.get(..scheme_len).is_some_and(|scheme| scheme.eq_ignore_ascii_case("http://"));
    if !is_http {
        return Err(Refusal::new(
            Status::MethodNotAllowed,
            "this proxy serves only CONNECT host:port and requests for absolute http:// URLs",
        ));
    }
    let rest = &head.target[scheme_len..];
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    if authority.contains('@') {
        return Err(Refusal::new(Status::BadRequest, "credentials in the URL are not passed on"));
    }
    let (host_text, port) = split_authority(authority).map_err(|r| Refusal::new(Status::BadRequest, &r))?;
    let port = port.map(parse_port).transpose().map_err(|r| Refusal::new(Status::BadRequest, &r))?.unwrap_or(80);
    let host = parse_host(host_text).map_err(|r| Refusal::new(Status::BadRequest, &r))?;
    let path = match path.split('#').next().unwrap_or_default() {
        "" => "/".to_owned(),
        query if query.starts_with('?') => format!("/{query}"),
        path => path.to_owned(),
    };
    let listed_by_connection: Vec<String> = head
        .header("connection")
        .map(|value| value.split(',').map(|token| token.trim().to_ascii_lowercase()).collect())
        .unwrap_or_default();
    let mut out = format!("{} {path} {}\r\nHost: {authority}\r\n", head.method, head.version);
    for (name, value) in &head.headers {
        let lower = name.to_ascii_lowercase();
        if !NOT_PASSED_ON.contains(&lower.as_str()) && !listed_by_connection.contains(&lower) {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    // One request per connection: whatever the client sends next reaches this host or nothing.
    out.push_str("Connection: close\r\n\r\n");
    Ok(Route::Forward { host, port, head: out.into_bytes() })
}

/// Why the proxy answered instead of passing a request on.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Refusal {
    status: Status,
    reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    BadRequest,
    Forbidden,
    MethodNotAllowed,
    ProxyAuthenticationRequired,
    BadGateway,
    ServiceUnavailable,
    GatewayTimeout,
}

impl Status {
    fn line(self) -> &'static str {
        match self {
            Status::BadRequest => "400 Bad Request",
            Status::Forbidden => "403 Forbidden",
            Status::MethodNotAllowed => "405 Method Not Allowed",
            Status::ProxyAuthenticationRequired => "407 Proxy Authentication Required",
            Status::BadGateway => "502 Bad Gateway",
            Status::ServiceUnavailable => "503 Service Unavailable",
            Status::GatewayTimeout => "504 Gateway Timeout",
        }
    }
}

impl Refusal {
    fn new(status: Status, reason: &str) -> Self {
        Self { status, reason: reason.to_owned() }
    }

    /// The whole answer: the status, and the reason as a one-line body.
    fn response(&self) -> Vec<u8> {
        let body = format!("errand egress proxy: {}\n", self.reason);
        let challenge = match self.status {
            Status::ProxyAuthenticationRequired => "Proxy-Authenticate: Basic realm=\"errand\"\r\n",
            _ => "",
        };
        format!(
            "HTTP/1.1 {}\r\n{challenge}Content-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            self.status.line(),
            body.len()
        )
        .into_bytes()
    }
}

/// What one lease's connections share.
struct Proxy {
    job: JobId,
    allowlist: Allowlist,
    /// Decides on the addresses, after the list decided on the host: the operator's, never the repository's.
    policy: AddressPolicy,
    /// `errand:<token>`, as the `Proxy-Authorization: Basic` header must carry it.
    credentials: String,
    connections: Arc<Semaphore>,
}

impl Proxy {
    /// Decides a request: its credential first (so a stranger learns nothing about the list), then
    /// its kind, then its host.
    fn admit(&self, head: &RequestHead) -> Result<Route, Refusal> {
        if !self.authorized(head) {
            return Err(Refusal::new(
                Status::ProxyAuthenticationRequired,
                "this proxy needs the credential in the proxy URL the step was given",
            ));
        }
        let route = route_of(head)?;
        let (host, port) = route.destination();
        if !self.allowlist.allows(host, port) {
            let reason = format!("{host}:{port} is not in this repository's allow_hosts (.errand.toml)");
            return Err(Refusal { status: Status::Forbidden, reason });
        }
        Ok(route)
    }

    fn authorized(&self, head: &RequestHead) -> bool {
        let Some((scheme, encoded)) = head.header("proxy-authorization").and_then(|v| v.split_once(' ')) else {
            return false;
        };
        let Ok(given) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else { return false };
        scheme.eq_ignore_ascii_case("basic") && bool::from(given.ct_eq(self.credentials.as_bytes()))
    }

    /// Serves one client connection: reads its request head, then refuses, tunnels or forwards.
    async fn handle(&self, mut client: TcpStream, peer: SocketAddr) {
        let (head, early) = match tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut client)).await {
            Ok(Ok(Some(read))) => read,
            Ok(Err(error)) if error.kind() == io::ErrorKind::InvalidData => {
                let reason = format!("the request head is larger than {MAX_HEAD_BYTES} bytes");
                let refusal = Refusal { status: Status::BadRequest, reason };
                return self.refuse(&mut client, peer, "-", refusal).await;
            }
            // Closed before a full head: nothing to answer.
            Ok(Ok(None) | Err(_)) => return,
            Err(_) => {
                let refusal = Refusal::new(Status::BadRequest, "no complete request head in time");
                return self.refuse(&mut client, peer, "-", refusal).await;
            }
        };
        let head = match parse_head(&head) {
            Ok(head) => head,
            Err(refusal) => return self.refuse(&mut client, peer, "-", refusal).await,
        };
        let route = match self.admit(&head) {
            Ok(route) => route,
            Err(refusal) => return self.refuse(&mut client, peer, &head.target, refusal).await,
        };
        let (host, port) = route.destination();
        let target = format!("{host}:{port}");
        let connected = tokio::time::timeout(CONNECT_TIMEOUT, self.connect(host, port)).await;
        let mut upstream = match connected {
            Ok(Ok(upstream)) => upstream,
            Ok(Err(refusal)) => return self.refuse(&mut client, peer, &target, refusal).await,
            Err(_) => {
                let refusal = Refusal {
                    status: Status::GatewayTimeout,
                    reason: format!("{target} did not answer within {CONNECT_TIMEOUT:?}"),
                };
                return self.refuse(&mut client, peer, &target, refusal).await;
            }
        };
        tracing::debug!(job = %self.job, host = %target, method = %head.method, "egress allowed");
        let started = match &route {
            Route::Tunnel { .. } => client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n").await,
            Route::Forward { head, .. } => upstream.write_all(head).await,
        };
        // Bytes the client sent right after its head (a TLS hello, a request body) go on too.
        if started.is_err() || upstream.write_all(&early).await.is_err() {
            return;
        }
        let activity = Activity::new();
        let mut client = Metered { inner: client, activity: &activity };
        let mut upstream = Metered { inner: upstream, activity: &activity };
        tokio::select! {
            _ = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {}
            () = idle(&activity, IDLE_TIMEOUT) => {
                tracing::debug!(job = %self.job, host = %target, "closed an idle egress tunnel");
            }
        }
    }

    /// Connects to an address of `host` that the policy admits, trying them in the resolver's order.
    async fn connect(&self, host: &Host, port: u16) -> Result<TcpStream, Refusal> {
        let unreachable = |error: io::Error| Refusal {
            status: Status::BadGateway,
            reason: format!("could not reach {host}:{port}: {error}"),
        };
        let candidates = match host {
            Host::Ip(ip) => vec![SocketAddr::new(*ip, port)],
            // Resolved here, on the worker (the steps have no DNS), and only here: what is connected to below
            // is what the policy judged.
            Host::Name(name) => tokio::net::lookup_host((name.as_str(), port)).await.map_err(unreachable)?.collect(),
        };
        let admitted = screen(&self.policy, host, port, &candidates)?;
        if admitted.len() < candidates.len() {
            tracing::info!(
                job = %self.job,
                host = %format!("{host}:{port}"),
                admitted = ?admitted,
                candidates = ?candidates,
                "egress: skipped addresses the policy refuses"
            );
        }
        // A slice of addresses: tokio tries each in turn and resolves nothing.
        TcpStream::connect(admitted.as_slice()).await.map_err(unreachable)
    }

    async fn refuse(&self, client: &mut TcpStream, peer: SocketAddr, target: &str, refusal: Refusal) {
        tracing::warn!(
            job = %self.job,
            host = %target.chars().take(200).collect::<String>(),
            %peer,
            status = refusal.status.line(),
            reason = %refusal.reason,
            "egress refused"
        );
        // The client may be gone already; there is no one else to tell.
        let _ = client.write_all(&refusal.response()).await;
        let _ = client.shutdown().await;
    }
}

/// Accepts connections until `stop`; each runs in its own task, also until `stop`.
async fn serve(listener: TcpListener, proxy: Arc<Proxy>, stop: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors, most likely: back off instead of spinning.
                tracing::warn!(job = %proxy.job, %error, "the egress proxy could not accept a connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = proxy.connections.clone().try_acquire_owned() else {
            let refusal = Refusal::new(Status::ServiceUnavailable, "too many connections through this proxy at once");
            tracing::warn!(job = %proxy.job, %peer, reason = %refusal.reason, "egress refused");
            // A fresh socket's send buffer takes this whole; never wait on a client here.
            let _ = stream.try_write(&refusal.response());
            continue;
        };
        let (proxy, stop) = (proxy.clone(), stop.clone());
        tokio::spawn(async move {
            let _permit = permit;
            tokio::select! {
                () = stop.cancelled() => {}
                () = proxy.handle(stream, peer) => {}
            }
        });
    }
}

/// Reads up to the blank line after the head. Returns the head without it, and whatever came after;
/// None when the client closed first.
async fn read_head(client: &mut TcpStream) -> io::Result<Option<(Vec<u8>, Vec<u8>)>> {
    let mut buffer = Vec::with_capacity(1024);
    let mut chunk = [0; 2048];
    loop {
        let read = client.read(&mut chunk).await?;
        if read == 0 {
            return Ok(None);
        }
        // Look again only from where the blank line could start.
        let from = buffer.len().saturating_sub(3);
        buffer.extend_from_slice(&chunk[..read]);
        if let Some(at) = buffer[from..].windows(4).position(|w| w == b"\r\n\r\n").map(|at| from + at) {
            let early = buffer.split_off(at + 4);
            buffer.truncate(at);
            return Ok(Some((buffer, early)));
        }
        if buffer.len() > MAX_HEAD_BYTES {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "request head too large"));
        }
    }
}

/// The `candidates` (the addresses of `host`) that `policy` admits, in their order; a `403` that names the
/// refused addresses when none is.
fn screen(
    policy: &AddressPolicy,
    host: &Host,
    port: u16,
    candidates: &[SocketAddr],
) -> Result<Vec<SocketAddr>, Refusal> {
    let mut admitted = Vec::new();
    let mut refused: Vec<(IpAddr, NotPublic)> = Vec::new();
    for candidate in candidates {
        match policy.check(candidate.ip()) {
            Ok(()) => admitted.push(*candidate),
            Err(why) if !refused.iter().any(|(ip, _)| *ip == candidate.ip()) => refused.push((candidate.ip(), why)),
            Err(_) => {}
        }
    }
    if !admitted.is_empty() {
        return Ok(admitted);
    }
    let target = format!("{host}:{port}");
    if refused.is_empty() {
        let reason = format!("could not reach {target}: it resolves to no address");
        return Err(Refusal { status: Status::BadGateway, reason });
    }
    let mut named: Vec<String> =
        refused.iter().take(NAMED_ADDRESSES).map(|(ip, why)| format!("{ip} is {why}")).collect();
    if refused.len() > NAMED_ADDRESSES {
        named.push(format!("and {} more", refused.len() - NAMED_ADDRESSES));
    }
    let named = named.join(", ");
    let what = match host {
        Host::Ip(_) => format!("{target} is not a public address ({named})"),
        Host::Name(_) => format!("{target} resolves only to addresses that are not public ({named})"),
    };
    let reason = format!("{what}; the operator can allow a range with ERRAND_EGRESS_ALLOW_NETS");
    Err(Refusal { status: Status::Forbidden, reason })
}

/// When bytes last moved through a tunnel, in either direction.
struct Activity {
    start: Instant,
    last_millis: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self { start: Instant::now(), last_millis: AtomicU64::new(0) }
    }

    fn touch(&self) {
        let millis = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_millis.store(millis, Ordering::Relaxed);
    }

    fn idle_for(&self) -> Duration {
        self.start.elapsed().saturating_sub(Duration::from_millis(self.last_millis.load(Ordering::Relaxed)))
    }
}

/// Returns once nothing has moved for `limit`.
async fn idle(activity: &Activity, limit: Duration) {
    loop {
        let idle_for = activity.idle_for();
        if idle_for >= limit {
            return;
        }
        tokio::time::sleep(limit - idle_for).await;
    }
}

/// A stream that records reads in an [`Activity`]; every byte written was read from the other side.
struct Metered<'a, S> {
    inner: S,
    activity: &'a Activity,
}

impl<S: AsyncRead + Unpin> AsyncRead for Metered<'_, S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        poll
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Metered<'_, S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The internal network and its gateway address.
struct EgressNetwork {
    id: String,
    gateway: IpAddr,
}

/// Creating the network is check-then-create; attempts of one worker open leases side by side.
static NETWORK_SETUP: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Finds the internal network `name`, creating it if missing.
async fn ensure_network(docker: &Docker, name: &str) -> anyhow::Result<EgressNetwork> {
    let _setup = NETWORK_SETUP.lock().await;
    if let Some(network) = find_network(docker, name).await? {
        return egress_network(name, network);
    }
    let request = NetworkCreateRequest {
        name: name.to_owned(),
        driver: Some("bridge".to_owned()),
        internal: Some(true),
        options: Some([("com.docker.network.bridge.enable_icc".to_owned(), "false".to_owned())].into()),
        labels: Some([(LABEL_MANAGED.to_owned(), "1".to_owned())].into()),
        ..NetworkCreateRequest::default()
    };
    match docker.create_network(request).await {
        Ok(_) => tracing::info!(network = name, "created the internal egress network"),
        // Another worker created it meanwhile (engines that check for duplicate names).
        Err(error) if super::is_conflict(&error) => {}
        Err(error) => {
            return Err(anyhow::anyhow!(engine_detail(&error)))
                .with_context(|| format!("creating the internal Docker network `{name}`"));
        }
    }
    let network = find_network(docker, name)
        .await?
        .with_context(|| format!("the Docker network `{name}` is missing right after it was created"))?;
    egress_network(name, network)
}

/// The network named exactly `name`. Engines before API 1.44 allow two of the same name (two workers
/// creating it at once); every worker then picks the same one, the lowest id.
async fn find_network(docker: &Docker, name: &str) -> anyhow::Result<Option<Network>> {
    let filters = [("name".to_owned(), vec![name.to_owned()])].into();
    let networks = docker
        .list_networks(Some(ListNetworksOptionsBuilder::new().filters(&filters).build()))
        .await
        .map_err(|error| anyhow::anyhow!(engine_detail(&error)))
        .with_context(|| format!("looking up the Docker network `{name}`"))?;
    // The engine's name filter matches parts of names too.
    Ok(networks.into_iter().filter(|n| n.name.as_deref() == Some(name)).min_by(|a, b| a.id.cmp(&b.id)))
}

fn egress_network(name: &str, network: Network) -> anyhow::Result<EgressNetwork> {
    // An open network of this name would give allowlisted steps the whole network.
    if network.internal != Some(true) {
        anyhow::bail!(
            "the Docker network `{name}` exists but is not internal: remove it (`docker network rm {name}`) so errand \
             creates it with `--internal`"
        );
    }
    let id = network.id.with_context(|| format!("the Docker network `{name}` has no id"))?;
    let gateway = network
        .ipam
        .and_then(|ipam| ipam.config)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|config| config.gateway?.parse::<IpAddr>().ok())
        .find(IpAddr::is_ipv4)
        .with_context(|| format!("the Docker network `{name}` has no IPv4 gateway for the egress proxy"))?;
    Ok(EgressNetwork { id, gateway })
}

/// 128 random bits, hex: the lease's proxy credential.
async fn random_token() -> anyhow::Result<String> {
    let mut bytes = [0; 16];
    let mut random = tokio::fs::File::open("/dev/urandom").await.context("opening /dev/urandom")?;
    random.read_exact(&mut bytes).await.context("reading /dev/urandom")?;
    Ok(hex::encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowlist(entries: &[&str]) -> Allowlist {
        let entries: Vec<String> = entries.iter().map(|&e| e.to_owned()).collect();
        Allowlist::parse(&entries).unwrap_or_else(|e| panic!("{e}"))
    }

    fn name(name: &str) -> Host {
        Host::Name(name.to_owned())
    }

    fn ip(ip: &str) -> Host {
        Host::Ip(ip.parse().expect("an IP"))
    }

    #[test]
    fn a_bare_host_allows_https_and_http_and_a_host_with_a_port_only_that_port() {
        let list = allowlist(&["api.openai.com", "llm.internal:8080"]);
        assert!(list.allows(&name("api.openai.com"), 443));
        assert!(list.allows(&name("api.openai.com"), 80));
        assert!(!list.allows(&name("api.openai.com"), 22));
        assert!(list.allows(&name("llm.internal"), 8080));
        assert!(!list.allows(&name("llm.internal"), 443));
        assert!(!list.allows(&name("openai.com"), 443));
        assert!(!list.allows(&name("evil-api.openai.com"), 443));
        assert!(!list.allows(&name("api.openai.com.evil.com"), 443));
    }

    #[test]
    fn host_names_compare_case_insensitively_and_without_a_trailing_dot() {
        let list = allowlist(&["API.OpenAI.com."]);
        let asked = parse_host("api.openai.COM.").expect("a host");
        assert_eq!(asked, name("api.openai.com"));
        assert!(list.allows(&asked, 443));
    }

    #[test]
    fn a_wildcard_allows_names_below_its_domain_but_not_the_domain_or_look_alikes() {
        let list = allowlist(&["*.example.com"]);
        assert!(list.allows(&name("api.example.com"), 443));
        assert!(list.allows(&name("a.b.example.com"), 443));
        assert!(!list.allows(&name("example.com"), 443));
        assert!(!list.allows(&name("badexample.com"), 443));
        assert!(!list.allows(&name(".example.com"), 443));
    }

    #[test]
    fn ip_literals_pass_only_when_listed_as_ips() {
        let list = allowlist(&["localhost:8080", "10.0.0.5:8080", "[::1]:9000"]);
        assert!(!list.allows(&ip("127.0.0.1"), 8080), "a name on the list does not admit its address");
        assert!(list.allows(&ip("10.0.0.5"), 8080));
        assert!(!list.allows(&ip("10.0.0.6"), 8080));
        assert!(list.allows(&ip("::1"), 9000));
        assert!(!allowlist(&["*.example.com"]).allows(&ip("93.184.216.34"), 443));
        assert!(!list.allows(&name("10.0.0.5.nip.io"), 8080));
    }

    #[test]
    fn entries_that_are_not_hosts_are_refused_with_the_entry_named() {
        for entry in [
            "https://api.openai.com",
            "api.openai.com/v1",
            "",
            "*",
            "*.",
            "api.*.com",
            "host:0",
            "host:99999",
            "host:http",
            "::1",
            "[::1",
            "*.10.0.0.1",
            "two words",
        ] {
            let error = Allowlist::parse(&[entry.to_owned()]).expect_err(entry);
            assert!(error.starts_with(&format!("`{entry}` is not a host: ")), "{error}");
        }
        assert!(Allowlist::parse(&[]).is_ok());
    }

    #[test]
    fn a_request_head_is_parsed_into_line_and_headers() {
        let head = parse_head(b"CONNECT api.openai.com:443 HTTP/1.1\r\nHost: api.openai.com:443\r\nX-A:  b \r\nEmpty:")
            .expect("a head");
        assert_eq!(head.method, "CONNECT");
        assert_eq!(head.target, "api.openai.com:443");
        assert_eq!(head.version, "HTTP/1.1");
        assert_eq!(head.header("host"), Some("api.openai.com:443"));
        assert_eq!(head.header("x-a"), Some("b"));
        assert_eq!(head.header("empty"), Some(""));
    }

    #[test]
    fn malformed_request_heads_are_bad_requests() {
        for head in [
            &b"CONNECT api.openai.com:443"[..],
            b"GET  / HTTP/1.1",
            b"GET / HTTP/2",
            b"GET / HTTP/1.1 extra",
            b"GET / HTTP/1.1\r\nno colon",
            b"GET / HTTP/1.1\r\n folded: header",
            b"GET / HTTP/1.1\r\nName : value",
            b"GET / HTTP/1.1\r\nA: \xff",
            b"",
        ] {
            let refusal = parse_head(head).expect_err(&String::from_utf8_lossy(head));
            assert_eq!(refusal.status, Status::BadRequest, "{}", String::from_utf8_lossy(head));
        }
    }

    fn head(text: &str) -> RequestHead {
        parse_head(text.as_bytes()).expect("a head")
    }

    #[test]
    fn connect_needs_a_port_and_becomes_a_tunnel() {
        assert_eq!(
            route_of(&head("CONNECT Api.OpenAI.com:443 HTTP/1.1")),
            Ok(Route::Tunnel { host: name("api.openai.com"), port: 443 })
        );
        assert_eq!(route_of(&head("CONNECT [::1]:8443 HTTP/1.1")), Ok(Route::Tunnel { host: ip("::1"), port: 8443 }));
        for target in ["api.openai.com", "api.openai.com:", "api.openai.com:https", "::1:443"] {
            let refusal = route_of(&head(&format!("CONNECT {target} HTTP/1.1"))).expect_err(target);
            assert_eq!(refusal.status, Status::BadRequest, "{target}");
        }
    }

    #[test]
    fn an_absolute_http_request_is_forwarded_in_origin_form_without_proxy_headers() {
        let route = route_of(&head(
            "POST http://Example.com:8080/v1/x?y=1 HTTP/1.1\r\nHost: elsewhere.com\r\n\
             Proxy-Authorization: Basic abc\r\nProxy-Connection: keep-alive\r\nConnection: keep-alive, X-Drop\r\n\
             X-Drop: 1\r\nContent-Length: 2",
        ))
        .expect("a route");
        let Route::Forward { host, port, head } = route else { panic!("{route:?}") };
        assert_eq!((host, port), (name("example.com"), 8080));
        assert_eq!(
            String::from_utf8(head).expect("text"),
            "POST /v1/x?y=1 HTTP/1.1\r\nHost: Example.com:8080\r\nContent-Length: 2\r\nConnection: close\r\n\r\n"
        );
        let Ok(Route::Forward { port, head, .. }) = route_of(&self::head("GET HTTP://example.com?q HTTP/1.0")) else {
            panic!("not forwarded")
        };
        assert_eq!(port, 80);
        assert!(String::from_utf8(head).expect("text").starts_with("GET /?q HTTP/1.0\r\nHost: example.com\r\n"));
    }

    #[test]
    fn other_requests_are_not_served() {
        for request in ["GET / HTTP/1.1", "GET https://example.com/ HTTP/1.1", "OPTIONS * HTTP/1.1"] {
            assert_eq!(route_of(&head(request)).map_err(|r| r.status), Err(Status::MethodNotAllowed), "{request}");
        }
        let with_credentials = route_of(&head("GET http://user:pw@example.com/ HTTP/1.1"));
        assert_eq!(with_credentials.map_err(|r| r.status), Err(Status::BadRequest));
    }

    fn proxy(hosts: &[&str]) -> Proxy {
        Proxy {
            job: "0190abcdef".parse().expect("a job id"),
            allowlist: allowlist(hosts),
            policy: AddressPolicy::strict(),
            credentials: "errand:s3cret".to_owned(),
            connections: Arc::new(Semaphore::new(1)),
        }
    }

    fn authorized(request_line: &str, credentials: &str) -> RequestHead {
        let encoded = base64::engine::general_purpose::STANDARD.encode(credentials);
        head(&format!("{request_line}\r\nProxy-Authorization: Basic {encoded}"))
    }

    #[test]
    fn admission_checks_the_credential_then_the_list() {
        let proxy = proxy(&["api.openai.com"]);
        let allowed = authorized("CONNECT api.openai.com:443 HTTP/1.1", "errand:s3cret");
        assert_eq!(proxy.admit(&allowed), Ok(Route::Tunnel { host: name("api.openai.com"), port: 443 }));

        let other = proxy.admit(&authorized("CONNECT example.com:443 HTTP/1.1", "errand:s3cret")).expect_err("refused");
        assert_eq!(other.status, Status::Forbidden);
        assert_eq!(other.reason, "example.com:443 is not in this repository's allow_hosts (.errand.toml)");

        for head in [
            head("CONNECT api.openai.com:443 HTTP/1.1"),
            authorized("CONNECT api.openai.com:443 HTTP/1.1", "errand:wrong"),
            authorized("CONNECT example.com:443 HTTP/1.1", "errand:s3cre"),
        ] {
            assert_eq!(proxy.admit(&head).map_err(|r| r.status), Err(Status::ProxyAuthenticationRequired));
        }
    }

    #[test]
    fn a_refusal_is_a_complete_response_with_a_one_line_reason() {
        let response = Refusal::new(Status::Forbidden, "example.com:443 is not allowed").response();
        assert_eq!(
            String::from_utf8(response).expect("text"),
            "HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 52\r\n\
             Connection: close\r\n\r\nerrand egress proxy: example.com:443 is not allowed\n"
        );
        let challenge = Refusal::new(Status::ProxyAuthenticationRequired, "x").response();
        assert!(
            String::from_utf8(challenge).expect("text").contains("\r\nProxy-Authenticate: Basic realm=\"errand\"\r\n")
        );
    }

    fn addresses(ips: &[&str], port: u16) -> Vec<SocketAddr> {
        ips.iter().map(|ip| SocketAddr::new(ip.parse().expect("an IP"), port)).collect()
    }

    #[test]
    fn a_name_that_resolves_only_to_non_public_addresses_is_forbidden_with_the_addresses_named() {
        let candidates = addresses(&["127.0.0.1", "::1", "169.254.169.254"], 8080);
        let refusal = screen(&AddressPolicy::strict(), &name("localhost"), 8080, &candidates).expect_err("refused");
        assert_eq!(refusal.status, Status::Forbidden);
        assert_eq!(
            refusal.reason,
            "localhost:8080 resolves only to addresses that are not public (127.0.0.1 is loopback 127.0.0.0/8, ::1 is \
             loopback ::1/128, 169.254.169.254 is link-local 169.254.0.0/16); the operator can allow a range with \
             ERRAND_EGRESS_ALLOW_NETS"
        );
    }

    #[test]
    fn an_ip_literal_on_the_list_goes_through_the_same_policy() {
        for (host, why) in [
            ("169.254.169.254", "169.254.169.254 is link-local 169.254.0.0/16"),
            ("::1", "::1 is loopback ::1/128"),
            ("::ffff:127.0.0.1", "::ffff:127.0.0.1 is IPv4-mapped loopback 127.0.0.0/8"),
        ] {
            let refusal = screen(&AddressPolicy::strict(), &ip(host), 80, &addresses(&[host], 80)).expect_err(host);
            assert_eq!(refusal.status, Status::Forbidden);
            assert_eq!(
                refusal.reason,
                format!(
                    "{}:80 is not a public address ({why}); the operator can allow a range with ERRAND_EGRESS_ALLOW_NETS",
                    ip(host)
                )
            );
        }
        let public = addresses(&["1.1.1.1"], 443);
        assert_eq!(screen(&AddressPolicy::strict(), &ip("1.1.1.1"), 443, &public), Ok(public));
    }

    #[test]
    fn of_a_name_s_addresses_only_those_the_policy_admits_are_kept_in_the_resolver_s_order() {
        let candidates = addresses(&["127.0.0.1", "8.8.8.8", "10.20.0.5", "fd00::1", "2606:4700:4700::1111"], 443);
        let strict = screen(&AddressPolicy::strict(), &name("rebind.example"), 443, &candidates);
        assert_eq!(strict, Ok(addresses(&["8.8.8.8", "2606:4700:4700::1111"], 443)));
        let operator = AddressPolicy::parse(&["10.20.0.0/16".to_owned()]).expect("a policy");
        let widened = screen(&operator, &name("rebind.example"), 443, &candidates);
        assert_eq!(widened, Ok(addresses(&["8.8.8.8", "10.20.0.5", "2606:4700:4700::1111"], 443)));
    }

    #[test]
    fn a_refusal_names_a_few_addresses_and_counts_the_rest() {
        let many: Vec<String> = (1..=7).map(|n| format!("10.0.0.{n}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let refusal =
            screen(&AddressPolicy::strict(), &name("many.example"), 443, &addresses(&many, 443)).expect_err("refused");
        assert!(refusal.reason.contains("10.0.0.4 is private 10.0.0.0/8, and 3 more); "), "{}", refusal.reason);
        let none = screen(&AddressPolicy::strict(), &name("nothing.example"), 443, &[]).expect_err("no address");
        assert_eq!(none.status, Status::BadGateway);
    }

    /// A TCP listener on the loopback that counts the connections it accepts.
    async fn canary() -> (u16, Arc<AtomicU64>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("binding a canary");
        let port = listener.local_addr().expect("its address").port();
        let accepted = Arc::new(AtomicU64::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((_stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
            }
        });
        (port, accepted)
    }

    #[tokio::test]
    async fn under_the_strict_policy_the_proxy_never_connects_to_the_loopback() {
        let (port, accepted) = canary().await;
        let proxy = proxy(&[]);
        for host in [name("localhost"), ip("127.0.0.1"), ip("::ffff:127.0.0.1")] {
            let refusal = proxy.connect(&host, port).await.expect_err("refused");
            assert_eq!(refusal.status, Status::Forbidden, "{host}: {}", refusal.reason);
            assert!(refusal.reason.contains("127.0.0.1 is "), "{}", refusal.reason);
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 0);

        // The control: the operator's range lets the same name through.
        let operator =
            Proxy { policy: AddressPolicy::parse(&["127.0.0.0/8".to_owned()]).expect("a policy"), ..self::proxy(&[]) };
        let connected = operator.connect(&name("localhost"), port).await;
        assert!(connected.is_ok(), "{:?}", connected.err());
        // The canary's accept loop runs on its own; give it the moment it needs to count.
        let deadline = Instant::now() + Duration::from_secs(10);
        while accepted.load(Ordering::SeqCst) == 0 {
            assert!(Instant::now() < deadline, "the canary never counted the connection");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_tunnel_counts_as_idle_from_the_last_byte_that_moved() {
        let activity = Activity::new();
        let started = Instant::now();
        tokio::time::sleep(Duration::from_secs(40)).await;
        activity.touch();
        idle(&activity, Duration::from_secs(60)).await;
        assert_eq!(started.elapsed(), Duration::from_secs(100));
    }
}
