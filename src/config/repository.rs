//! Repository settings: `.errand.toml`, read from the default branch, or the checks detected
//! from a repository's files when it has none.

use std::fmt;
use std::time::Duration;

use indexmap::IndexMap;
use serde::Deserialize;

use crate::agents::Preset;

/// Prefix of errand's branches when a repository names none.
pub const DEFAULT_BRANCH_PREFIX: &str = "errand/";

/// Whether `prefix` makes branch names git and GitHub take, and nothing else: the names are
/// pushed and shown, so they are kept to plain characters.
fn is_branch_prefix(prefix: &str) -> bool {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/');
    !prefix.is_empty()
        && prefix.len() <= 40
        && prefix.bytes().all(allowed)
        && !prefix.starts_with(['/', '-', '.'])
        && !prefix.contains("..")
        && !prefix.contains("//")
        && !prefix.contains("/.")
}

/// The name of the repository settings file, read from the default branch.
pub const REPO_CONFIG_FILE: &str = ".errand.toml";

/// A repository's `.errand.toml`. Every field is optional; see the README for the defaults.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepoConfig {
    /// The sandbox image; default: the worker's `ERRAND_DEFAULT_IMAGE`.
    pub image: Option<String>,
    /// `setup = ["..."]`, or a `[setup]` table: commands run once per environment, before the
    /// checks and the agent; their result is kept as an image (see `rollout::environment`).
    #[serde(default, deserialize_with = "setup_field")]
    pub setup: SetupConfig,
    /// Time limit of the whole attempt, e.g. "30m".
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
    /// `agent = "codex"` (a preset), or an `[agent]` table.
    #[serde(default, deserialize_with = "agent_field")]
    pub agent: AgentConfig,
    /// Checks run in order after the agent: name = command. Their results are the evidence.
    #[serde(default)]
    pub checks: IndexMap<String, String>,
    /// Also run the checks before the agent, so the evidence shows what changed. Default true.
    pub baseline_checks: Option<bool>,
    /// `"none"` (default), `"open"` or `"allowlist"`: whether the sandbox may reach the network.
    #[serde(default)]
    pub network: NetworkPolicy,
    /// With `network = "allowlist"`, the only hosts the sandbox reaches (through errand's egress proxy):
    /// `"api.openai.com"` (ports 443 and 80), `"host:port"`, `"*.example.com"`.
    #[serde(default)]
    pub allow_hosts: Vec<String>,
    /// Prefix of errand's branches; default "errand/".
    pub branch_prefix: Option<String>,
    #[serde(default)]
    pub resources: Resources,
    #[serde(default)]
    pub attempts: AttemptsConfig,
    /// Set when there was no `.errand.toml`: the file the checks were detected from.
    #[serde(skip)]
    pub detected_from: Option<String>,
}

/// How many attempts a request runs (best-of-N).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttemptsConfig {
    /// Attempts when the request names none; default 1.
    pub default: Option<u32>,
    /// The most a request may ask for; default (and never above) the worker's `ERRAND_MAX_ATTEMPTS`.
    pub max: Option<u32>,
}

impl RepoConfig {
    /// How many attempts to run for a request that asked for `asked`, under the repository's and
    /// the worker's maximum; also whether the request was cut down.
    pub fn attempts(&self, asked: Option<u32>, worker_max: u32) -> (u32, bool) {
        let max = self.attempts.max.unwrap_or(worker_max).min(worker_max).max(1);
        let wanted = asked.or(self.attempts.default).unwrap_or(1).max(1);
        (wanted.min(max), wanted > max)
    }
}

/// Which agent runs.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// A command line run with `sh -c` in /workspace (see the agent contract in the README).
    pub command: Option<String>,
    /// A real agent CLI with its pinned headless command line: `codex`, `claude`, `aider`,
    /// `opencode`, `goose`, `openhands` (see `agents::Preset`).
    #[serde(default, deserialize_with = "preset_field")]
    pub preset: Option<Preset>,
    /// The model the preset asks for, when not the CLI's default.
    pub model: Option<String>,
}

/// `agent = "codex"` is short for `[agent] preset = "codex"`. A table is read as `AgentConfig`
/// itself, so its errors (an unknown field) keep their line.
fn agent_field<'de, D: serde::Deserializer<'de>>(d: D) -> Result<AgentConfig, D::Error> {
    struct AgentVisitor;
    impl<'de> serde::de::Visitor<'de> for AgentVisitor {
        type Value = AgentConfig;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a preset name (`agent = \"codex\"`) or a table with `command`, `preset` and `model`")
        }
        fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<AgentConfig, E> {
            Ok(AgentConfig { preset: Some(preset(name)?), ..AgentConfig::default() })
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<AgentConfig, A::Error> {
            AgentConfig::deserialize(serde::de::value::MapAccessDeserializer::new(map))
        }
    }
    d.deserialize_any(AgentVisitor)
}

/// `preset = "codex"`: a preset's name. An error from here carries the value's place, so the
/// message names the line.
fn preset_field<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Preset>, D::Error> {
    let name = String::deserialize(d)?;
    preset(&name).map(Some)
}

/// The preset named `name`, or an error listing the presets.
fn preset<E: serde::de::Error>(name: &str) -> Result<Preset, E> {
    Preset::from_name(name).ok_or_else(|| {
        let known: Vec<&str> = Preset::ALL.iter().map(|p| p.name()).collect();
        E::custom(format!("agent preset `{name}` is unknown; the presets are {}", known.join(", ")))
    })
}

/// The environment a repository's steps start from: setup commands run once, in one container,
/// whose result is kept as an image for later rollouts (see `rollout::environment`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetupConfig {
    /// Run in order, in one container, as the sandbox user; `/workspace` is read-only to them.
    #[serde(default)]
    pub commands: Vec<String>,
    /// Whether setup may reach the network (the engine's default bridge); default false. The
    /// steps after it keep the repository's `network` policy.
    #[serde(default)]
    pub network: bool,
    /// Files (or directories, or `name*.ext` patterns) of the repository whose contents decide
    /// when the environment is built again; default: the usual lock files present
    /// ([`DEFAULT_DEPENDS_ON`]).
    pub depends_on: Option<Vec<String>>,
}

/// The files an environment depends on when `[setup]` names none: the lock files of the common
/// package managers, at the repository's root, those present.
pub const DEFAULT_DEPENDS_ON: [&str; 8] = [
    "Cargo.lock",
    "package-lock.json",
    "pnpm-lock.yaml",
    "yarn.lock",
    "poetry.lock",
    "requirements*.txt",
    "go.sum",
    "uv.lock",
];

impl SetupConfig {
    /// What the environment depends on: the configured files, or the defaults.
    pub fn depends_on(&self) -> Vec<String> {
        match &self.depends_on {
            Some(files) => files.clone(),
            None => DEFAULT_DEPENDS_ON.iter().map(|f| (*f).to_owned()).collect(),
        }
    }

    /// Why the table cannot be used, if it cannot.
    fn problem(&self) -> Option<String> {
        if self.commands.is_empty() && (self.network || self.depends_on.is_some()) {
            return Some("`[setup]` has no `commands`: add `commands = [\"...\"]`, or remove the section".to_owned());
        }
        if self.commands.iter().any(|c| c.trim().is_empty()) {
            return Some("`setup` has an empty command".to_owned());
        }
        let outside = |path: &str| {
            let path = std::path::Path::new(path);
            path.as_os_str().is_empty()
                || path.is_absolute()
                || path.components().any(|c| matches!(c, std::path::Component::ParentDir))
        };
        self.depends_on
            .iter()
            .flatten()
            .find(|p| outside(p))
            .map(|p| format!("setup.depends_on: `{p}` is not a path inside the repository (relative, without `..`)"))
    }
}

/// `setup = [...]` is short for `[setup] commands = [...]`. A table is read as `SetupConfig`
/// itself, so its errors (an unknown field) keep their line.
fn setup_field<'de, D: serde::Deserializer<'de>>(d: D) -> Result<SetupConfig, D::Error> {
    struct SetupVisitor;
    impl<'de> serde::de::Visitor<'de> for SetupVisitor {
        type Value = SetupConfig;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(
                "a list of commands (`setup = [\"make deps\"]`) or a table with `commands`, `network` and `depends_on`",
            )
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<SetupConfig, A::Error> {
            let commands = Vec::<String>::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))?;
            Ok(SetupConfig { commands, ..SetupConfig::default() })
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<SetupConfig, A::Error> {
            SetupConfig::deserialize(serde::de::value::MapAccessDeserializer::new(map))
        }
    }
    d.deserialize_any(SetupVisitor)
}

/// Whether the sandbox may reach the network.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkPolicy {
    #[default]
    None,
    Open,
    /// Only the hosts in `allow_hosts`, through an egress proxy.
    Allowlist,
}

/// Limits that a repository may lower (never raise) below the worker's.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    pub memory_mb: Option<u64>,
    pub cpus: Option<f64>,
    pub pids: Option<i64>,
    /// What one step may add to the disk, in MiB (see `ERRAND_SANDBOX_DISK_MB`).
    pub disk_mb: Option<u64>,
}

/// `.errand.toml` could not be read: names the line and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoConfigError {
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for RepoConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl RepoConfig {
    /// Parses `.errand.toml`; the error names the line and the field.
    pub fn parse(text: &str) -> Result<Self, RepoConfigError> {
        let config: Self = toml::from_str(text).map_err(|e| RepoConfigError {
            line: e.span().map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1),
            message: e.message().trim().to_owned(),
        })?;
        if let Some(name) = config.checks.iter().find(|(_, cmd)| cmd.trim().is_empty()).map(|(n, _)| n) {
            return Err(RepoConfigError { line: None, message: format!("check `{name}` has an empty command") });
        }
        if let Some(message) = config.setup.problem() {
            return Err(RepoConfigError { line: None, message });
        }
        if let Some(prefix) = config.branch_prefix.as_deref()
            && !is_branch_prefix(prefix)
        {
            let message = format!(
                "`branch_prefix = \"{}\"` is not a branch name prefix: use up to 40 letters, digits, `.`, `_`, `-` and `/` (not at the start), like \"errand/\"",
                prefix.escape_default()
            );
            return Err(RepoConfigError { line: None, message });
        }
        if config.agent.preset.is_some() && config.agent.command.is_some() {
            let message = "`[agent]` has both `preset` and `command`: keep one".to_owned();
            return Err(RepoConfigError { line: None, message });
        }
        let hosts_error = match (config.network, config.allow_hosts.is_empty()) {
            (NetworkPolicy::Allowlist, true) => Some(
                "`network = \"allowlist\"` needs `allow_hosts`, the hosts the sandbox may reach: \
                 `allow_hosts = [\"api.openai.com\"]`"
                    .to_owned(),
            ),
            (NetworkPolicy::None | NetworkPolicy::Open, false) => Some(
                "`allow_hosts` only applies with `network = \"allowlist\"`: add that, or remove `allow_hosts`"
                    .to_owned(),
            ),
            _ => crate::sandbox::Allowlist::parse(&config.allow_hosts).err().map(|e| format!("allow_hosts: {e}")),
        };
        if let Some(message) = hosts_error {
            return Err(RepoConfigError { line: None, message });
        }
        Ok(config)
    }

    /// The configuration of a repository without `.errand.toml`: checks detected from the files
    /// at the repository's root.
    pub fn detected(root_files: &[String]) -> Self {
        let has = |name: &str| root_files.iter().any(|f| f == name);
        // The first match wins, most specific first: a lock file names the package manager.
        let rules: [(&[&str], &str); 8] = [
            (&["Cargo.toml"], "cargo test"),
            (&["pnpm-lock.yaml"], "pnpm test"),
            (&["yarn.lock"], "yarn test"),
            (&["package.json"], "npm test"),
            (&["go.mod"], "go test ./..."),
            (&["pyproject.toml", "pytest.ini", "setup.py", "tox.ini"], "python -m pytest"),
            (&["Makefile"], "make test"),
            (&["makefile", "GNUmakefile"], "make test"),
        ];
        let found = rules.iter().find_map(|(files, command)| files.iter().find(|f| has(f)).map(|f| (*f, *command)));
        let mut checks = IndexMap::new();
        if let Some((_, command)) = found {
            checks.insert("test".to_owned(), command.to_owned());
        }
        Self { checks, detected_from: found.map(|(file, _)| file.to_owned()), ..Self::default() }
    }

    pub fn branch_prefix(&self) -> &str {
        self.branch_prefix.as_deref().unwrap_or(DEFAULT_BRANCH_PREFIX)
    }

    pub fn baseline_checks(&self) -> bool {
        self.baseline_checks.unwrap_or(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_smallest_errand_toml_from_the_design_parses() {
        let config = RepoConfig::parse(
            r#"
image = "debian:bookworm-slim"
setup = ["apt-get install -y make"]
timeout = "30m"

[agent]
command = "my-agent --task-file \"$ERRAND_TASK_FILE\""

[checks]
test = "make test"
lint = "make lint"
"#,
        )
        .unwrap();
        assert_eq!(config.image.as_deref(), Some("debian:bookworm-slim"));
        assert_eq!(config.timeout, Some(Duration::from_secs(1800)));
        assert_eq!(config.checks.keys().collect::<Vec<_>>(), ["test", "lint"]);
        assert_eq!(config.network, NetworkPolicy::None);
    }

    #[test]
    fn a_branch_prefix_is_plain_characters_only() {
        for good in ["errand/", "bots/errand-", "ai_work/v2."] {
            let config = RepoConfig::parse(&format!("branch_prefix = \"{good}\"\n")).expect(good);
            assert_eq!(config.branch_prefix(), good);
        }
        for bad in ["", "-x", "/x", "a..b", "a b", "a//b", "x/.hidden", "a:b", "a~1", "[x]", &"x".repeat(41)] {
            let error = RepoConfig::parse(&format!("branch_prefix = \"{bad}\"\n")).expect_err(bad);
            assert!(error.to_string().contains("is not a branch name prefix"), "{bad}: {error}");
        }
    }

    #[test]
    fn attempts_default_to_one_and_are_capped_by_the_repository_and_the_worker() {
        let none = RepoConfig::parse("").unwrap();
        assert_eq!(none.attempts(None, 4), (1, false));
        assert_eq!(none.attempts(Some(3), 4), (3, false));
        assert_eq!(none.attempts(Some(8), 4), (4, true));
        let config = RepoConfig::parse("[attempts]\ndefault = 2\nmax = 3\n").unwrap();
        assert_eq!(config.attempts(None, 4), (2, false));
        assert_eq!(config.attempts(Some(5), 4), (3, true));
        assert_eq!(config.attempts(Some(5), 2), (2, true), "the worker's maximum wins");
        let zero = RepoConfig::parse("[attempts]\nmax = 0\n").unwrap();
        assert_eq!(zero.attempts(Some(2), 4), (1, true));
    }

    #[test]
    fn an_agent_is_a_preset_name_or_a_table() {
        let short = RepoConfig::parse("agent = \"codex\"\n").unwrap();
        assert_eq!(short.agent.preset, Some(Preset::Codex));
        let table = RepoConfig::parse("[agent]\npreset = \"claude\"\nmodel = \"opus\"\n").unwrap();
        assert_eq!((table.agent.preset, table.agent.model.as_deref()), (Some(Preset::Claude), Some("opus")));
        let custom = RepoConfig::parse("[agent]\ncommand = \"my-agent\"\n").unwrap();
        assert_eq!((custom.agent.preset, custom.agent.command.as_deref()), (None, Some("my-agent")));
        for (text, line) in
            [("agent = \"gpt-engineer\"\n", 1), ("image = \"x\"\n\n[agent]\npreset = \"gpt-engineer\"\n", 4)]
        {
            let unknown = RepoConfig::parse(text).unwrap_err();
            assert_eq!(unknown.line, Some(line), "{text}: {unknown}");
            assert!(
                unknown.message.contains("agent preset `gpt-engineer` is unknown; the presets are codex, claude"),
                "{unknown}"
            );
        }
        let number = RepoConfig::parse("agent = 3\n").unwrap_err();
        assert!(number.message.contains("a preset name (`agent = \"codex\"`) or a table"), "{number}");
        assert!(RepoConfig::parse("[agent]\npreset = \"codex\"\ncommand = \"x\"\n").is_err());
    }

    #[test]
    fn an_unknown_field_is_named_with_its_line() {
        let err = RepoConfig::parse("image = \"x\"\n\n[agent]\ncomand = \"x\"\n").unwrap_err();
        assert_eq!(err.line, Some(4));
        assert!(err.message.contains("unknown field `comand`"), "{}", err.message);
    }

    #[test]
    fn setup_is_a_list_of_commands_or_a_table() {
        let list = RepoConfig::parse("setup = [\"make deps\", \"make tools\"]\n").unwrap();
        assert_eq!(list.setup.commands, ["make deps", "make tools"]);
        assert!(!list.setup.network, "setup has no network unless it asks");
        assert_eq!(list.setup.depends_on(), DEFAULT_DEPENDS_ON);

        let table = RepoConfig::parse(
            "[setup]\ncommands = [\"pip install --user -r requirements.txt\"]\nnetwork = true\ndepends_on = [\"requirements.txt\", \"tools/\"]\n",
        )
        .unwrap();
        assert_eq!(table.setup.commands, ["pip install --user -r requirements.txt"]);
        assert!(table.setup.network);
        assert_eq!(table.setup.depends_on(), ["requirements.txt", "tools/"]);
        assert_eq!(RepoConfig::parse("").unwrap().setup, SetupConfig::default());
    }

    #[test]
    fn a_wrong_setup_is_named_with_its_line_or_field() {
        let unknown = RepoConfig::parse("image = \"x\"\n\n[setup]\ncommands = [\"x\"]\nnetwrok = true\n").unwrap_err();
        assert_eq!(unknown.line, Some(5));
        assert!(unknown.message.contains("unknown field `netwrok`"), "{unknown}");
        let number = RepoConfig::parse("setup = 3\n").unwrap_err();
        assert_eq!(number.line, Some(1));
        assert!(number.message.contains("a list of commands"), "{number}");
        for (text, says) in [
            ("[setup]\nnetwork = true\n", "`[setup]` has no `commands`"),
            ("setup = [\" \"]\n", "empty command"),
            ("[setup]\ncommands = [\"x\"]\ndepends_on = [\"../secrets\"]\n", "setup.depends_on: `../secrets`"),
            ("[setup]\ncommands = [\"x\"]\ndepends_on = [\"/etc/passwd\"]\n", "setup.depends_on: `/etc/passwd`"),
        ] {
            let err = RepoConfig::parse(text).unwrap_err();
            assert!(err.message.contains(says), "{text}: {err}");
        }
    }

    #[test]
    fn an_allowlist_names_its_hosts_and_hosts_need_an_allowlist() {
        let config = RepoConfig::parse("network = \"allowlist\"\nallow_hosts = [\"api.openai.com\"]\n").unwrap();
        assert_eq!(config.network, NetworkPolicy::Allowlist);
        assert_eq!(config.allow_hosts, ["api.openai.com"]);
        for (text, field) in [
            ("network = \"allowlist\"\n", "`allow_hosts`"),
            ("allow_hosts = [\"api.openai.com\"]\n", "`network = \"allowlist\"`"),
            ("network = \"open\"\nallow_hosts = [\"api.openai.com\"]\n", "`network = \"allowlist\"`"),
            ("network = \"allowlist\"\nallow_hosts = [\"https://api.openai.com\"]\n", "allow_hosts: `https://"),
        ] {
            let err = RepoConfig::parse(text).unwrap_err();
            assert!(err.message.contains(field), "{text}: {err}");
        }
    }

    #[test]
    fn a_wrong_type_is_named() {
        let err = RepoConfig::parse("timeout = \"soon\"\n").unwrap_err();
        assert_eq!(err.line, Some(1));
        assert!(err.to_string().starts_with("line 1:"), "{err}");
    }

    #[test]
    fn checks_are_detected_without_a_config_file() {
        let detect = |files: &[&str]| {
            let config = RepoConfig::detected(&files.iter().map(|f| (*f).to_owned()).collect::<Vec<_>>());
            (config.checks.get("test").cloned(), config.detected_from)
        };
        let found = |command: &str, file: &str| (Some(command.to_owned()), Some(file.to_owned()));
        assert_eq!(detect(&["Cargo.toml", "src"]), found("cargo test", "Cargo.toml"));
        assert_eq!(detect(&["package.json", "pnpm-lock.yaml"]), found("pnpm test", "pnpm-lock.yaml"));
        assert_eq!(detect(&["package.json", "yarn.lock"]), found("yarn test", "yarn.lock"));
        assert_eq!(detect(&["package.json"]), found("npm test", "package.json"));
        assert_eq!(detect(&["go.mod", "Makefile"]), found("go test ./...", "go.mod"));
        assert_eq!(detect(&["tox.ini"]), found("python -m pytest", "tox.ini"));
        assert_eq!(detect(&["GNUmakefile"]), found("make test", "GNUmakefile"));
        assert_eq!(detect(&["README.md"]), (None, None));
        assert_eq!(RepoConfig::parse("").unwrap().detected_from, None);
    }
}
