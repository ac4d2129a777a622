//! The hardened container a step runs in, built from a [`StepSpec`] (pure; no engine calls).

use std::collections::HashMap;

use bollard::models::{ContainerCreateBody, HostConfig, HostConfigLogConfig, Mount, MountType};

use super::{Limits, NetworkAccess, SandboxError, StepSpec};

/// Every container errand starts carries this label, so leftovers can be found and removed.
pub const LABEL_MANAGED: &str = "errand.managed";
/// The job a container belongs to.
pub const LABEL_JOB: &str = "errand.job";
/// The step a container runs (`agent`, `check:test`, ...).
pub const LABEL_STEP: &str = "errand.step";

/// Where the workspace and errand's own files appear inside the container.
pub const WORKSPACE_DIR: &str = "/workspace";
pub const ERRAND_DIR: &str = "/errand";
/// Where the repository's git objects appear, read-only (see `StepSpec::objects`).
pub const OBJECTS_DIR: &str = "/errand-objects";

/// The size of the `/tmp` tmpfs. Its pages are charged to the container's memory cgroup, so it
/// cannot take more than the memory limit whatever this says; the size only keeps one runaway
/// writer from filling the whole limit before the step notices.
const TMP_SIZE: &str = "512m";
/// The json-file log is only read for the output tail, so it is kept small on disk: rotation
/// at `LOG_MAX_SIZE` with one older file kept always leaves the last lines readable.
const LOG_MAX_SIZE: &str = "8m";
const LOG_MAX_FILES: &str = "2";

/// The variables that point HTTP clients at a proxy; programs read either case (curl only the lowercase
/// `http_proxy`, since `HTTP_PROXY` can be set by a CGI request header).
const PROXY_VARIABLES: [&str; 5] = ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"];
/// What a proxied step reaches without the proxy: itself.
const NO_PROXY: &str = "localhost,127.0.0.1";

/// A container name Docker accepts: `errand-<job>-<step>-<random>`, the step reduced to
/// `[a-z0-9-]` and cut short so names stay readable in `docker ps`.
pub fn container_name(spec: &StepSpec, random: &str) -> String {
    let mut step: String = spec
        .step
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' })
        .take(40)
        .collect();
    step = step.trim_matches('-').to_owned();
    if step.is_empty() {
        step.push_str("step");
    }
    format!("errand-{}-{step}-{random}", spec.job)
}

/// Checks what the engine would not: the step never runs as root and always has limits.
pub fn validate(spec: &StepSpec) -> Result<(), SandboxError> {
    let invalid = |reason: String| Err(SandboxError::InvalidStep { step: spec.step.clone(), reason });
    let ids: Vec<&str> = spec.user.split(':').collect();
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if ids.is_empty() || ids.len() > 2 || !ids.iter().all(|id| numeric(id)) {
        return invalid(format!("the user must be a numeric `uid:gid`, not `{}`", spec.user));
    }
    if ids.iter().any(|id| id.bytes().all(|b| b == b'0')) {
        return invalid(format!("sandboxes never run as root (user `{}`)", spec.user));
    }
    let Limits { memory_bytes, nano_cpus, pids, disk_bytes } = spec.limits;
    if memory_bytes <= 0 || nano_cpus <= 0 || pids <= 0 || disk_bytes == 0 {
        return invalid(format!(
            "every limit must be positive (memory {memory_bytes} bytes, {nano_cpus} nano-CPUs, {pids} processes, disk {disk_bytes} bytes)"
        ));
    }
    let dirs = [
        ("workspace", Some(&spec.workspace)),
        ("errand directory", Some(&spec.errand_dir)),
        ("objects", spec.objects.as_ref()),
    ];
    for (name, dir) in dirs.into_iter().filter_map(|(name, dir)| Some((name, dir?))) {
        if !dir.is_absolute() || !dir.is_dir() {
            return invalid(format!("the {name} `{}` is not an existing absolute directory", dir.display()));
        }
    }
    if let Some((key, _)) = spec.env.iter().find(|(key, _)| key.is_empty() || key.contains('=')) {
        return invalid(format!("`{key}` is not an environment variable name"));
    }
    if let NetworkAccess::Proxied { network, proxy_url } = &spec.network
        && (network.is_empty() || !proxy_url.starts_with("http://"))
    {
        return invalid("a proxied step needs a network and an http:// proxy URL".to_owned());
    }
    Ok(())
}

/// The container for one step: `sh -c <script>` in `/workspace` as a non-root user, with no
/// capabilities, no privilege escalation, memory, CPU and process limits, no network unless
/// asked, and exactly the environment the spec gives (the image's own `ENV`, such as `PATH`,
/// still applies; Docker adds `HOSTNAME`), plus the proxy variables of a proxied step.
pub fn container_body(spec: &StepSpec) -> ContainerCreateBody {
    let labels = HashMap::from([
        (LABEL_MANAGED.to_owned(), "1".to_owned()),
        (LABEL_JOB.to_owned(), spec.job.to_string()),
        (LABEL_STEP.to_owned(), spec.step.clone()),
    ]);
    let mut env: Vec<String> = spec.env.iter().map(|(key, value)| format!("{key}={value}")).collect();
    let network_mode = match &spec.network {
        NetworkAccess::None => Some("none".to_owned()),
        // The engine's default bridge.
        NetworkAccess::Open => None,
        NetworkAccess::Proxied { network, proxy_url } => {
            // The proxy's settings win over variables of the same name in the spec.
            let ours = |entry: &String| {
                let key = entry.split('=').next().unwrap_or_default();
                PROXY_VARIABLES.contains(&key) || key.eq_ignore_ascii_case("no_proxy")
            };
            env.retain(|entry| !ours(entry));
            env.extend(PROXY_VARIABLES.iter().map(|key| format!("{key}={proxy_url}")));
            env.extend(["NO_PROXY", "no_proxy"].map(|key| format!("{key}={NO_PROXY}")));
            Some(network.clone())
        }
    };
    let bind = |source: &std::path::Path, target: &str, read_only: bool| Mount {
        target: Some(target.to_owned()),
        source: Some(source.to_string_lossy().into_owned()),
        typ: Some(MountType::BIND),
        read_only: Some(read_only),
        ..Mount::default()
    };
    let mut mounts = vec![bind(&spec.workspace, WORKSPACE_DIR, false), bind(&spec.errand_dir, ERRAND_DIR, false)];
    // Read-only: a sandbox that runs as the worker's own uid (a worker that is not root) owns
    // these files, and must still not change what later jobs check out.
    mounts.extend(spec.objects.as_deref().map(|objects| bind(objects, OBJECTS_DIR, true)));
    let host_config = HostConfig {
        mounts: Some(mounts),
        tmpfs: Some(HashMap::from([("/tmp".to_owned(), format!("rw,nosuid,nodev,size={TMP_SIZE},mode=1777"))])),
        // Swap equal to memory means no swap at all: the limit is a hard one.
        memory: Some(spec.limits.memory_bytes),
        memory_swap: Some(spec.limits.memory_bytes),
        nano_cpus: Some(spec.limits.nano_cpus),
        pids_limit: Some(spec.limits.pids),
        network_mode,
        cap_drop: Some(vec!["ALL".to_owned()]),
        security_opt: Some(vec!["no-new-privileges:true".to_owned()]),
        privileged: Some(false),
        // A tiny init as pid 1 reaps the orphans an agent's tools leave behind.
        init: Some(true),
        // Removed explicitly after the logs and state are read: auto_remove races with both.
        auto_remove: Some(false),
        log_config: Some(HostConfigLogConfig {
            typ: Some("json-file".to_owned()),
            config: Some(HashMap::from([
                ("max-size".to_owned(), LOG_MAX_SIZE.to_owned()),
                ("max-file".to_owned(), LOG_MAX_FILES.to_owned()),
            ])),
        }),
        ..HostConfig::default()
    };
    ContainerCreateBody {
        image: Some(spec.image.clone()),
        // The entrypoint is replaced too, so an image's own ENTRYPOINT cannot wrap the script.
        entrypoint: Some(vec!["sh".to_owned(), "-c".to_owned(), spec.script.clone()]),
        cmd: None,
        user: Some(spec.user.clone()),
        working_dir: Some(WORKSPACE_DIR.to_owned()),
        env: Some(env),
        labels: Some(labels),
        network_disabled: Some(spec.network == NetworkAccess::None),
        attach_stdin: Some(false),
        open_stdin: Some(false),
        tty: Some(false),
        host_config: Some(host_config),
        ..ContainerCreateBody::default()
    }
}

/// The container setup runs in: the step's container, but idling (`idle_script`) while each setup
/// command runs in it as an exec, and with `/workspace` read-only: what setup wrote there would
/// not be in the image later steps start from, so it may not write there at all.
pub fn setup_container_body(spec: &StepSpec, idle_script: &str) -> ContainerCreateBody {
    let mut body = container_body(spec);
    body.entrypoint = Some(vec!["sh".to_owned(), "-c".to_owned(), idle_script.to_owned()]);
    if let Some(mounts) = body.host_config.as_mut().and_then(|host| host.mounts.as_mut()) {
        for mount in mounts.iter_mut().filter(|m| m.target.as_deref() == Some(WORKSPACE_DIR)) {
            mount.read_only = Some(true);
        }
    }
    body
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::job::JobId;

    fn spec() -> StepSpec {
        let dir = std::env::temp_dir();
        StepSpec {
            job: "0190abcdef".parse::<JobId>().expect("a job id"),
            step: "check:Unit tests".into(),
            image: "img".into(),
            script: "make test".into(),
            workspace: dir.clone(),
            errand_dir: dir,
            objects: None,
            env: vec![("HOME".into(), "/tmp".into())],
            user: "10001:10001".into(),
            network: NetworkAccess::None,
            limits: Limits { memory_bytes: 1 << 28, nano_cpus: 1_000_000_000, pids: 128, disk_bytes: 1 << 30 },
            timeout: Duration::from_secs(60),
        }
    }

    #[test]
    fn container_names_are_docker_safe_and_name_the_job_and_step() {
        assert_eq!(container_name(&spec(), "ab12cd34"), "errand-0190abcdef-check-unit-tests-ab12cd34");
        let odd = StepSpec { step: "::".into(), ..spec() };
        assert_eq!(container_name(&odd, "r"), "errand-0190abcdef-step-r");
    }

    #[test]
    fn root_and_non_numeric_users_are_refused() {
        for user in ["0:0", "0", "10001:0", "00:10001", "root", "10001:staff", "", "1:2:3"] {
            let result = validate(&StepSpec { user: user.into(), ..spec() });
            assert!(matches!(result, Err(SandboxError::InvalidStep { .. })), "{user} was accepted");
        }
        assert!(validate(&StepSpec { user: "10001".into(), ..spec() }).is_ok());
        assert!(validate(&spec()).is_ok());
    }

    #[test]
    fn unlimited_steps_are_refused() {
        let unlimited = StepSpec { limits: Limits { pids: 0, ..spec().limits }, ..spec() };
        assert!(matches!(validate(&unlimited), Err(SandboxError::InvalidStep { .. })));
        let no_disk = StepSpec { limits: Limits { disk_bytes: 0, ..spec().limits }, ..spec() };
        assert!(matches!(validate(&no_disk), Err(SandboxError::InvalidStep { .. })));
    }

    #[test]
    fn the_container_is_hardened_and_carries_only_the_given_environment() {
        let body = container_body(&spec());
        assert_eq!(body.user.as_deref(), Some("10001:10001"));
        assert_eq!(body.env, Some(vec!["HOME=/tmp".to_owned()]));
        assert_eq!(body.working_dir.as_deref(), Some("/workspace"));
        let host = body.host_config.expect("a host config");
        assert_eq!(host.cap_drop, Some(vec!["ALL".to_owned()]));
        assert_eq!(host.security_opt, Some(vec!["no-new-privileges:true".to_owned()]));
        assert_eq!(host.network_mode.as_deref(), Some("none"));
        assert_eq!(host.memory, host.memory_swap);
        assert_eq!(host.pids_limit, Some(128));
        let labels = body.labels.expect("labels");
        assert_eq!(labels.get("errand.managed").map(String::as_str), Some("1"));
        assert_eq!(labels.get("errand.job").map(String::as_str), Some("0190abcdef"));
        assert_eq!(body.network_disabled, Some(true));
        let open = container_body(&StepSpec { network: NetworkAccess::Open, ..spec() });
        assert_eq!(open.host_config.expect("a host config").network_mode, None);
        assert_eq!(open.network_disabled, Some(false));
    }

    #[test]
    fn the_setup_container_idles_with_a_read_only_workspace_and_the_same_hardening() {
        let body = setup_container_body(&spec(), "sleep 1");
        assert_eq!(body.entrypoint, Some(vec!["sh".to_owned(), "-c".to_owned(), "sleep 1".to_owned()]));
        assert_eq!(body.user.as_deref(), Some("10001:10001"));
        let host = body.host_config.expect("a host config");
        let read_only: Vec<(String, bool)> = host
            .mounts
            .expect("mounts")
            .into_iter()
            .map(|m| (m.target.unwrap_or_default(), m.read_only.unwrap_or(false)))
            .collect();
        assert_eq!(read_only, [("/workspace".to_owned(), true), ("/errand".to_owned(), false)]);
        assert_eq!(host.cap_drop, Some(vec!["ALL".to_owned()]));
        assert_eq!(host.security_opt, Some(vec!["no-new-privileges:true".to_owned()]));
        assert_eq!(host.network_mode.as_deref(), Some("none"));
        assert_eq!(host.pids_limit, Some(128));
        assert_eq!(body.labels.expect("labels").get("errand.managed").map(String::as_str), Some("1"));
    }

    #[test]
    fn a_proxied_step_joins_the_internal_network_with_the_proxy_in_its_environment() {
        let proxy_url = "http://errand:t0ken@172.20.0.1:40000";
        let network = NetworkAccess::Proxied { network: "errand-egress".into(), proxy_url: proxy_url.into() };
        let env = vec![("HOME".into(), "/tmp".into()), ("https_proxy".into(), "http://elsewhere:1".into())];
        let body = container_body(&StepSpec { network, env, ..spec() });

        let host = body.host_config.expect("a host config");
        assert_eq!(host.network_mode.as_deref(), Some("errand-egress"));
        assert_eq!(host.cap_drop, Some(vec!["ALL".to_owned()]));
        assert_eq!(body.network_disabled, Some(false));
        let mut env = body.env.expect("an environment");
        env.sort();
        let mut expected: Vec<String> = ["ALL_PROXY", "HTTPS_PROXY", "HTTP_PROXY", "http_proxy", "https_proxy"]
            .iter()
            .map(|key| format!("{key}={proxy_url}"))
            .chain(["HOME=/tmp".into(), "NO_PROXY=localhost,127.0.0.1".into(), "no_proxy=localhost,127.0.0.1".into()])
            .collect();
        expected.sort();
        assert_eq!(env, expected);
    }

    #[test]
    fn a_proxied_step_without_a_network_or_proxy_is_refused() {
        for (network, proxy_url) in [("", "http://172.20.0.1:1"), ("errand-egress", "socks5://172.20.0.1:1")] {
            let network = NetworkAccess::Proxied { network: network.into(), proxy_url: proxy_url.into() };
            let result = validate(&StepSpec { network, ..spec() });
            assert!(matches!(result, Err(SandboxError::InvalidStep { .. })), "{proxy_url} was accepted");
        }
    }
}
