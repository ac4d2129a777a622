//! Where a Slack request goes and who may make it: the repository a message names (or its
//! channel's default), and the allowlist of channels, people and workspaces.
//!
//! Decisions on reading a repository from a message, strongest first (the first kind found
//! decides; two different repositories of that kind are ambiguous, and errand asks):
//! 1. A link to a repository, an issue or a pull request (`https://github.com/acme/webapp`,
//!    `.../issues/12`, `.../pull/7`; with or without `https://`, as Slack shows links people
//!    typed bare). The issue or pull request is returned too. The link (and an `in`/`on`/`for`
//!    before it) is removed from the instruction: it says where, not what.
//! 2. `owner/name` after `in`, `on` or `for` (optionally `the`, `repo`, `repository` between:
//!    "in the acme/webapp repo"), unless it looks like something else: a path (`in src/main.rs`,
//!    `in tests/cli.py`: a well-known folder first or a source-file extension last), a fraction
//!    or date (`in 1/2`), or a pair of ordinary words (`for async/await`, `on staging/prod`).
//!    Removed with its preposition.
//! 3. Any other link into a repository (a file, a commit): it names the repository, but stays in
//!    the instruction, where it says which file.
//! 4. A configured repository (a channel default of any channel) written anywhere as a word
//!    (`acme/webapp: fix the flaky test`). Removed.
//! 5. Otherwise the channel's default repository, and failing that: unresolved (errand asks,
//!    `SlackNotice::WhichRepository`).
//!
//! A bare `owner/name` that is neither configured nor after a preposition is never taken
//! (`and/or`, `src/main.rs`, `1/2`, `client/server` in prose): a wrong guess would run an agent
//! against the wrong repository, while a missed one only falls back to the channel's default or
//! a question. A link is always unambiguous.
//!
//! Allowlist: a request passes when its channel **or** its user is listed; a team list, when
//! given, only narrows that further. With no channel and no user listed, Slack is off: nobody's
//! request passes, so installing the Slack app never opens errand to a whole workspace by
//! accident. There is no wildcard.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::sync::LazyLock;

use regex::Regex;

use crate::job::RepoName;
use crate::request::ids::{GithubItem, IssueNumber};

/// The setting the channel defaults come from, for error messages.
pub const DEFAULT_REPOS_SETTING: &str = "ERRAND_SLACK_DEFAULT_REPOS";
pub const ALLOWED_CHANNELS_SETTING: &str = "ERRAND_SLACK_ALLOWED_CHANNELS";
pub const ALLOWED_USERS_SETTING: &str = "ERRAND_SLACK_ALLOWED_USERS";
const ALLOWED_TEAMS_SETTING: &str = "ERRAND_SLACK_ALLOWED_TEAMS";

/// The longest Slack id accepted in configuration (Slack's are about 9 to 11 characters).
const MAX_SLACK_ID_LEN: usize = 32;

/// Words that may introduce a repository: "fix the login test in acme/webapp".
const PREPOSITIONS: [&str; 3] = ["in", "on", "for"];

/// Words that may stand between the preposition and the repository, or follow it.
const REPO_WORDS: [&str; 3] = ["the", "repo", "repository"];

/// First path segments that make `x/y` a path in a repository rather than a repository.
const PATH_FOLDERS: [&str; 30] = [
    "src",
    "lib",
    "libs",
    "test",
    "tests",
    "spec",
    "specs",
    "doc",
    "docs",
    "bin",
    "cmd",
    "pkg",
    "internal",
    "app",
    "apps",
    "crates",
    "packages",
    "scripts",
    "config",
    "include",
    "examples",
    "benches",
    "assets",
    "public",
    "static",
    "vendor",
    "build",
    "dist",
    "target",
    "node_modules",
];

/// Last-segment extensions that make `x/y.ext` a file rather than a repository. `.js` is one,
/// so `in vercel/next.js` needs a link (or configuration) to be taken.
const FILE_EXTENSIONS: [&str; 28] = [
    "rs", "py", "go", "js", "ts", "tsx", "jsx", "java", "kt", "rb", "c", "h", "cc", "cpp", "hpp", "cs", "swift", "md",
    "txt", "toml", "yaml", "yml", "json", "lock", "sh", "html", "css", "sql",
];

/// Ordinary words; `x/y` where both are among them is prose (`and/or`, `client/server`).
const PROSE_WORDS: [&str; 40] = [
    "and",
    "or",
    "either",
    "read",
    "write",
    "async",
    "await",
    "input",
    "output",
    "i",
    "o",
    "on",
    "off",
    "yes",
    "no",
    "true",
    "false",
    "client",
    "server",
    "w",
    "n",
    "a",
    "he",
    "she",
    "his",
    "her",
    "before",
    "after",
    "pros",
    "cons",
    "dev",
    "prod",
    "staging",
    "production",
    "get",
    "post",
    "put",
    "delete",
    "tcp",
    "ip",
];

/// First path segments of github.com pages that are not repositories.
const GITHUB_RESERVED: [&str; 16] = [
    "orgs",
    "settings",
    "marketplace",
    "sponsors",
    "features",
    "apps",
    "topics",
    "collections",
    "explore",
    "notifications",
    "login",
    "about",
    "pricing",
    "enterprise",
    "search",
    "users",
];

/// A configuration value errand cannot use; the message names the setting and the entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlackConfigError {
    #[error("`{entry}` in {setting} is not `CHANNEL=owner/name`")]
    NotAPair { setting: &'static str, entry: String },
    #[error(
        "`{entry}` in {setting} is not a Slack id (like `C0123ABCD` or `U0123ABCD`): use the id Slack shows in the channel's details or the person's profile, not a name"
    )]
    NotAnId { setting: &'static str, entry: String },
    #[error("`{entry}` in {setting} does not name a repository as `owner/name`")]
    NotARepository { setting: &'static str, entry: String },
    #[error("channel `{channel}` appears more than once in {setting}")]
    DuplicateChannel { setting: &'static str, channel: String },
}

/// The repository each channel works in (`ERRAND_SLACK_DEFAULT_REPOS`: `C123=acme/webapp,...`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChannelDefaults {
    by_channel: BTreeMap<String, RepoName>,
}

impl ChannelDefaults {
    /// Parses `CHANNEL=owner/name` entries, comma-separated; spaces around entries and around
    /// `=` are ignored, empty entries skipped. A channel may appear once.
    pub fn parse(value: &str) -> Result<Self, SlackConfigError> {
        let mut by_channel = BTreeMap::new();
        for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let not_a_pair = || SlackConfigError::NotAPair { setting: DEFAULT_REPOS_SETTING, entry: entry.to_owned() };
            let (channel, repo) = entry.split_once('=').ok_or_else(not_a_pair)?;
            let (channel, repo) = (channel.trim(), repo.trim());
            if channel.is_empty() || repo.is_empty() {
                return Err(not_a_pair());
            }
            let channel = slack_id(channel)
                .ok_or_else(|| SlackConfigError::NotAnId { setting: DEFAULT_REPOS_SETTING, entry: entry.to_owned() })?;
            let repo: RepoName = repo.parse().map_err(|_| SlackConfigError::NotARepository {
                setting: DEFAULT_REPOS_SETTING,
                entry: entry.to_owned(),
            })?;
            if by_channel.insert(channel.clone(), repo).is_some() {
                return Err(SlackConfigError::DuplicateChannel { setting: DEFAULT_REPOS_SETTING, channel });
            }
        }
        Ok(Self { by_channel })
    }

    /// The channel's default repository.
    pub fn get(&self, channel: &str) -> Option<&RepoName> {
        self.by_channel.get(channel)
    }

    /// Every configured repository, sorted, each once.
    pub fn repositories(&self) -> Vec<RepoName> {
        self.by_channel.values().cloned().collect::<BTreeSet<_>>().into_iter().collect()
    }

    pub fn is_empty(&self) -> bool {
        self.by_channel.is_empty()
    }
}

/// How the repository was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepoSource {
    /// A github.com link.
    Link,
    /// `owner/name` written in the message.
    Named,
    /// The channel's default repository.
    ChannelDefault,
}

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    Resolved(ResolvedRepository),
    /// Nothing named a repository and the channel has no default, or the message named two.
    Unresolved,
}

/// The repository a request works in and what is left of its instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedRepository {
    pub repo: RepoName,
    /// The issue or pull request a link pointed at.
    pub item: Option<GithubItem>,
    /// The instruction without the words that named the repository.
    pub instruction: String,
    pub source: RepoSource,
}

/// Finds the repository `text` (a request's instruction) names, or the channel's default; see
/// the module documentation for the rules.
pub fn resolve_repository(text: &str, channel: &str, defaults: &ChannelDefaults) -> Resolution {
    let configured = defaults.repositories();
    let words = words(text);
    let mut found: [Vec<Found>; 4] = Default::default();
    for (index, word) in words.iter().enumerate() {
        let core = &text[word.core.clone()];
        if let Some(link) = github_link(core) {
            let span = with_preposition(&words, text, index);
            let tier = if link.removable { 0 } else { 2 };
            let remove = link.removable.then_some(span);
            found[tier].push(Found { repo: link.repo, item: link.item, remove, source: RepoSource::Link });
            continue;
        }
        let Ok(repo) = core.parse::<RepoName>() else {
            continue;
        };
        let configured_as = configured.iter().find(|c| same_repo(c, &repo));
        let span = with_preposition(&words, text, index);
        if span.start < word.wrapped.start && (configured_as.is_some() || looks_like_a_repository(&repo)) {
            let repo = configured_as.cloned().unwrap_or(repo);
            found[1].push(Found { repo, item: None, remove: Some(span), source: RepoSource::Named });
        } else if let Some(repo) = configured_as {
            found[3].push(Found { repo: repo.clone(), item: None, remove: Some(span), source: RepoSource::Named });
        }
    }
    if let Some(tier) = found.iter().find(|tier| !tier.is_empty()) {
        let first = &tier[0];
        if tier.iter().any(|other| !same_repo(&other.repo, &first.repo)) {
            return Resolution::Unresolved;
        }
        let instruction = match &first.remove {
            Some(span) => cut(text, span.clone()),
            None => text.trim().to_owned(),
        };
        return Resolution::Resolved(ResolvedRepository {
            repo: first.repo.clone(),
            item: first.item,
            instruction,
            source: first.source,
        });
    }
    match defaults.get(channel) {
        Some(repo) => Resolution::Resolved(ResolvedRepository {
            repo: repo.clone(),
            item: None,
            instruction: text.trim().to_owned(),
            source: RepoSource::ChannelDefault,
        }),
        None => Resolution::Unresolved,
    }
}

/// A repository named in the text, and the words to remove from the instruction.
struct Found {
    repo: RepoName,
    item: Option<GithubItem>,
    remove: Option<Range<usize>>,
    source: RepoSource,
}

/// A whitespace-separated word: the part without surrounding punctuation and Slack formatting
/// (`(`, quotes, `*bold*`, `` `code` ``, a trailing `,` or `.`), and that part with the
/// formatting around it (what is removed with it; punctuation stays).
struct Word {
    core: Range<usize>,
    wrapped: Range<usize>,
}

fn words(text: &str) -> Vec<Word> {
    static WORD: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\S+").expect("a valid regex"));
    const LEADING: &[char] = &['(', '[', '"', '\'', '<', '*', '_', '~', '`'];
    const TRAILING: &[char] = &[')', ']', '"', '\'', '>', '*', '_', '~', '`', '.', ',', ';', ':', '!', '?'];
    const WRAPPING: &[char] = &['"', '\'', '<', '>', '*', '_', '~', '`'];
    WORD.find_iter(text)
        .map(|m| {
            let word = m.as_str();
            let start = m.start() + (word.len() - word.trim_start_matches(LEADING).len());
            let end = (m.start() + word.trim_end_matches(TRAILING).len()).max(start);
            let wrapped_start =
                start - (text[m.start()..start].len() - text[m.start()..start].trim_end_matches(WRAPPING).len());
            let wrapped_end = end + (text[end..m.end()].len() - text[end..m.end()].trim_start_matches(WRAPPING).len());
            Word { core: start..end, wrapped: wrapped_start..wrapped_end }
        })
        .collect()
}

/// The span to remove for the word at `index`: the word with its formatting, extended back over a
/// preposition (`in`, `on`, `for`, optionally followed by `the`, `repo`, `repository`) and
/// forward over a `repo`/`repository` right after it. It starts at the word when no preposition
/// precedes it.
fn with_preposition(words: &[Word], text: &str, index: usize) -> Range<usize> {
    let lower = |i: usize| text[words[i].core.clone()].to_ascii_lowercase();
    let word = &words[index];
    let mut start = word.wrapped.start;
    let mut i = index;
    let mut fillers = 0;
    while i > 0 && fillers <= REPO_WORDS.len() {
        i -= 1;
        let word = lower(i);
        if PREPOSITIONS.contains(&word.as_str()) {
            start = words[i].core.start;
            break;
        }
        if !REPO_WORDS.contains(&word.as_str()) {
            break;
        }
        fillers += 1;
    }
    let mut end = word.wrapped.end;
    if start < word.wrapped.start
        && index + 1 < words.len()
        && ["repo", "repository"].contains(&lower(index + 1).as_str())
        && text[end..words[index + 1].wrapped.start].trim().is_empty()
    {
        end = words[index + 1].wrapped.end;
    }
    start..end
}

/// `text` without `span`, with the spaces around the cut made one (none before punctuation or
/// at a line's edge). A colon right after a cut that starts a line goes too ("acme/api: fix it").
fn cut(text: &str, span: Range<usize>) -> String {
    let before = text[..span.start].trim_end_matches([' ', '\t']);
    let mut after = &text[span.end..];
    if before.is_empty() || before.ends_with('\n') {
        after = after.strip_prefix(':').unwrap_or(after);
    }
    let after = after.trim_start_matches([' ', '\t']);
    let glue = if before.is_empty()
        || after.is_empty()
        || before.ends_with('\n')
        || after.starts_with(['\n', ',', '.', ';', ':', '!', '?', ')'])
    {
        ""
    } else {
        " "
    };
    format!("{before}{glue}{after}").trim().to_owned()
}

/// GitHub names are case-insensitive.
fn same_repo(a: &RepoName, b: &RepoName) -> bool {
    a.owner().eq_ignore_ascii_case(b.owner()) && a.name().eq_ignore_ascii_case(b.name())
}

/// Whether an `owner/name` written after a preposition is taken for a repository: not a path,
/// a file, a number or a pair of ordinary words.
fn looks_like_a_repository(repo: &RepoName) -> bool {
    let (owner, name) = (repo.owner().to_ascii_lowercase(), repo.name().to_ascii_lowercase());
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let is_file = name.rsplit_once('.').is_some_and(|(_, ext)| FILE_EXTENSIONS.contains(&ext));
    let is_prose = PROSE_WORDS.contains(&owner.as_str()) && PROSE_WORDS.contains(&name.as_str());
    !digits(&owner) && !digits(&name) && !PATH_FOLDERS.contains(&owner.as_str()) && !is_file && !is_prose
}

/// A github.com link to somewhere in a repository.
struct GithubLink {
    repo: RepoName,
    item: Option<GithubItem>,
    /// A link to the repository itself, an issue or a pull request: it only says where.
    removable: bool,
}

fn github_link(word: &str) -> Option<GithubLink> {
    // `<https://github.com/a/b|github.com/a/b>` when Slack markup was not resolved.
    let word = word.split('|').next().unwrap_or(word);
    let lower = word.to_ascii_lowercase();
    let rest = ["https://", "http://", ""].iter().find_map(|scheme| {
        ["github.com/", "www.github.com/"].iter().find_map(|host| {
            let prefix = format!("{scheme}{host}");
            lower.starts_with(&prefix).then(|| &word[prefix.len()..])
        })
    })?;
    let path = rest.split(['?', '#']).next().unwrap_or(rest);
    let mut segments = path.split('/');
    let owner = segments.next()?;
    let name = segments.next()?;
    let name = name.strip_suffix(".git").unwrap_or(name);
    if GITHUB_RESERVED.contains(&owner.to_ascii_lowercase().as_str()) {
        return None;
    }
    let repo = RepoName::new(owner, name).ok()?;
    let rest: Vec<&str> = segments.filter(|s| !s.is_empty()).collect();
    let number = |s: &str| s.parse::<u64>().ok().filter(|n| *n > 0);
    let (item, removable) = match rest.as_slice() {
        [] => (None, true),
        ["issues", n, ..] => match number(n) {
            Some(n) => (Some(GithubItem::Issue(IssueNumber(n))), true),
            None => (None, false),
        },
        ["pull", n, ..] => match number(n) {
            Some(n) => (Some(GithubItem::PullRequest(IssueNumber(n))), true),
            None => (None, false),
        },
        _ => (None, false),
    };
    Some(GithubLink { repo, item, removable })
}

/// Who may ask errand from Slack (`ERRAND_SLACK_ALLOWED_CHANNELS`, `ERRAND_SLACK_ALLOWED_USERS`,
/// and optionally `ERRAND_SLACK_ALLOWED_TEAMS`); see the module documentation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allowlist {
    /// Channel ids in which anyone may ask.
    pub channels: BTreeSet<String>,
    /// User ids who may ask in any channel errand is in.
    pub users: BTreeSet<String>,
    /// When not empty, only requesters of these workspaces pass.
    pub teams: BTreeSet<String>,
}

impl Allowlist {
    /// Parses three comma-separated lists of Slack ids (spaces and empty entries ignored; ids in
    /// upper case, as Slack writes them). An entry that is a name (`#general`, `@alice`) rather
    /// than an id is an error naming it.
    pub fn parse(channels: &str, users: &str, teams: &str) -> Result<Self, SlackConfigError> {
        Ok(Self {
            channels: Self::parse_channels(channels)?,
            users: Self::parse_users(users)?,
            teams: Self::parse_teams(teams)?,
        })
    }

    /// The channel list alone (`ERRAND_SLACK_ALLOWED_CHANNELS`), as [`Allowlist::parse`] reads it.
    pub fn parse_channels(value: &str) -> Result<BTreeSet<String>, SlackConfigError> {
        slack_ids(value, ALLOWED_CHANNELS_SETTING)
    }

    /// The user list alone (`ERRAND_SLACK_ALLOWED_USERS`), as [`Allowlist::parse`] reads it.
    pub fn parse_users(value: &str) -> Result<BTreeSet<String>, SlackConfigError> {
        slack_ids(value, ALLOWED_USERS_SETTING)
    }

    /// The team list alone (`ERRAND_SLACK_ALLOWED_TEAMS`), as [`Allowlist::parse`] reads it.
    pub fn parse_teams(value: &str) -> Result<BTreeSet<String>, SlackConfigError> {
        slack_ids(value, ALLOWED_TEAMS_SETTING)
    }

    /// Whether Slack requests are off: no channel and no user is listed.
    pub fn is_off(&self) -> bool {
        self.channels.is_empty() && self.users.is_empty()
    }

    /// Whether a request from `user` in `channel` (of workspace `team`: the requester's own,
    /// [`crate::chat::events::SlackRequest::requester_team`]) may start work.
    pub fn allows(&self, team: &str, channel: &str, user: &str) -> bool {
        let team_ok = self.teams.is_empty() || self.teams.contains(team);
        team_ok && (self.channels.contains(channel) || self.users.contains(user))
    }
}

fn slack_ids(value: &str, setting: &'static str) -> Result<BTreeSet<String>, SlackConfigError> {
    value
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|entry| slack_id(entry).ok_or_else(|| SlackConfigError::NotAnId { setting, entry: entry.to_owned() }))
        .collect()
}

/// A Slack id (`C0123ABCD`, `U0123ABCD`, `T0123ABCD`...): letters and digits, a letter first,
/// upper-cased.
fn slack_id(entry: &str) -> Option<String> {
    let valid = (2..=MAX_SLACK_ID_LEN).contains(&entry.len())
        && entry.bytes().all(|b| b.is_ascii_alphanumeric())
        && entry.as_bytes()[0].is_ascii_alphabetic();
    valid.then(|| entry.to_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(s: &str) -> RepoName {
        s.parse().unwrap()
    }

    fn defaults() -> ChannelDefaults {
        ChannelDefaults::parse("C0WEB=acme/webapp,C0API=acme/api").unwrap()
    }

    fn resolve(text: &str) -> Resolution {
        resolve_repository(text, "C0WEB", &defaults())
    }

    fn resolved(text: &str, channel: &str) -> ResolvedRepository {
        match resolve_repository(text, channel, &defaults()) {
            Resolution::Resolved(r) => r,
            Resolution::Unresolved => panic!("{text:?} in {channel} is unresolved"),
        }
    }

    /// Repository, instruction and source, for a message in a channel without a default.
    fn named(text: &str) -> (String, String, RepoSource) {
        let r = resolved(text, "C0NODEFAULT");
        (r.repo.to_string(), r.instruction, r.source)
    }

    #[test]
    fn a_repository_after_in_is_taken_and_removed() {
        assert_eq!(
            named("fix the flaky login test in acme/webapp"),
            ("acme/webapp".into(), "fix the flaky login test".into(), RepoSource::Named)
        );
        assert_eq!(
            named("fix the flaky login test in acme/billing, please"),
            ("acme/billing".into(), "fix the flaky login test, please".into(), RepoSource::Named)
        );
        assert_eq!(named("On acme/billing: bump serde").1, "bump serde");
        assert_eq!(named("add retries for octo-org/some.lib").0, "octo-org/some.lib");
    }

    #[test]
    fn the_repo_words_around_it_are_removed_too() {
        assert_eq!(named("fix it in the acme/billing repo").1, "fix it");
        assert_eq!(named("fix it in repository acme/billing now").1, "fix it now");
        assert_eq!(named("in the repo *acme/billing* fix it").1, "fix it");
    }

    #[test]
    fn a_repository_links_issue_or_pull_request_is_taken() {
        let r = resolved("fix https://github.com/acme/billing/issues/12", "C0WEB");
        assert_eq!(
            (r.repo, r.item, r.instruction.as_str()),
            (repo("acme/billing"), Some(GithubItem::Issue(IssueNumber(12))), "fix")
        );
        assert_eq!(r.source, RepoSource::Link);
        let r = resolved("address the review on https://github.com/acme/billing/pull/7/files#r1, thanks", "C0WEB");
        assert_eq!(
            (r.item, r.instruction.as_str()),
            (Some(GithubItem::PullRequest(IssueNumber(7))), "address the review, thanks")
        );
        let r = resolved("upgrade tokio in http://www.github.com/Acme/Billing.git", "C0WEB");
        assert_eq!(
            (r.repo.to_string(), r.item, r.instruction.as_str()),
            ("Acme/Billing".into(), None, "upgrade tokio")
        );
        // What Slack shows for a link typed without a scheme.
        assert_eq!(
            resolved("fix github.com/acme/billing/issues/3", "C0WEB").item,
            Some(GithubItem::Issue(IssueNumber(3)))
        );
        assert_eq!(resolved("fix <https://github.com/acme/billing|acme/billing>", "C0WEB").repo, repo("acme/billing"));
    }

    #[test]
    fn a_link_to_a_file_names_the_repository_and_stays_in_the_instruction() {
        let text = "the parser in https://github.com/acme/billing/blob/main/src/parse.rs#L10 panics";
        let r = resolved(text, "C0WEB");
        assert_eq!((r.repo, r.item, r.instruction.as_str()), (repo("acme/billing"), None, text));
        // An issue link beats it, and so does a named repository.
        let r = resolved("see https://github.com/acme/lib/blob/main/x.rs and fix it in acme/billing", "C0WEB");
        assert_eq!(r.repo, repo("acme/billing"));
    }

    #[test]
    fn github_pages_that_are_not_repositories_are_not_links() {
        assert_eq!(resolved("install https://github.com/apps/errand", "C0WEB").repo, repo("acme/webapp"));
        assert_eq!(resolved("see https://github.com/orgs/acme/people", "C0WEB").repo, repo("acme/webapp"));
        assert_eq!(resolved("see https://github.com/acme", "C0WEB").source, RepoSource::ChannelDefault);
        assert_eq!(resolved("see https://gitlab.com/acme/webapp", "C0API").repo, repo("acme/api"));
    }

    #[test]
    fn paths_numbers_and_prose_are_not_repositories() {
        for text in [
            "fix the bug in src/main.rs",
            "fix the bug in tests/cli.py",
            "the panic in utils/helpers.js",
            "it fails in 1/2 of the runs",
            "add support for async/await",
            "this is on staging/prod only",
            "use and/or here",
            "the client/server split in app/models is odd",
            "due on 12/25",
        ] {
            let r = resolved(text, "C0WEB");
            assert_eq!(
                (r.repo, r.source, r.instruction.as_str()),
                (repo("acme/webapp"), RepoSource::ChannelDefault, text),
                "{text}"
            );
        }
    }

    #[test]
    fn an_unconfigured_repository_without_a_preposition_is_not_taken() {
        assert_eq!(resolved("acme/billing is broken, fix it", "C0WEB").source, RepoSource::ChannelDefault);
        assert_eq!(resolve_repository("acme/billing is broken", "C0NONE", &defaults()), Resolution::Unresolved);
    }

    #[test]
    fn a_configured_repository_is_taken_anywhere() {
        assert_eq!(
            named("acme/api: make the rate limiter configurable"),
            ("acme/api".into(), "make the rate limiter configurable".into(), RepoSource::Named)
        );
        // Written in another case, it is still the configured one, spelled as configured.
        assert_eq!(named("ACME/API has a flaky test, fix it").0, "acme/api");
        // A configured repository whose name would look like a file still counts.
        let defaults = ChannelDefaults::parse("C1=acme/site.js").unwrap();
        let r = resolve_repository("fix the footer in acme/site.js", "C2", &defaults);
        assert!(
            matches!(r, Resolution::Resolved(ResolvedRepository { ref repo, .. }) if repo.to_string() == "acme/site.js")
        );
    }

    #[test]
    fn nothing_named_means_the_channels_default() {
        let r = resolved("  fix the flaky login test  ", "C0API");
        assert_eq!(
            r,
            ResolvedRepository {
                repo: repo("acme/api"),
                item: None,
                instruction: "fix the flaky login test".into(),
                source: RepoSource::ChannelDefault
            }
        );
        assert_eq!(resolve_repository("fix it", "C0NONE", &defaults()), Resolution::Unresolved);
        assert_eq!(resolve_repository("fix it", "C0WEB", &ChannelDefaults::default()), Resolution::Unresolved);
    }

    #[test]
    fn two_different_repositories_of_the_same_kind_are_ambiguous() {
        assert_eq!(resolve("port the fix from acme/api to acme/webapp"), Resolution::Unresolved);
        assert_eq!(
            resolve("compare https://github.com/acme/a/issues/1 with https://github.com/acme/b/issues/2"),
            Resolution::Unresolved
        );
        // The same repository twice is not ambiguous; the first link's issue counts.
        let r = resolved("fix https://github.com/acme/a/issues/1 like https://github.com/acme/a/pull/2", "C0WEB");
        assert_eq!((r.repo, r.item), (repo("acme/a"), Some(GithubItem::Issue(IssueNumber(1)))));
        // A preposition decides between two written repositories.
        assert_eq!(named("copy the limiter of acme/api in acme/webapp").0, "acme/webapp");
    }

    #[test]
    fn removing_keeps_line_breaks_and_the_rest_of_the_text() {
        assert_eq!(named("in acme/billing:\nfix the flaky test\nand the docs").1, "fix the flaky test\nand the docs");
        assert_eq!(named("fix the flaky test in acme/billing\nthen the docs").1, "fix the flaky test\nthen the docs");
    }

    #[test]
    fn channel_defaults_parse_and_name_bad_entries() {
        let d = ChannelDefaults::parse(" C0WEB = acme/webapp , ,c0api=acme/api,").unwrap();
        assert_eq!(d.get("C0WEB"), Some(&repo("acme/webapp")));
        assert_eq!(d.get("C0API"), Some(&repo("acme/api")));
        assert_eq!(d.get("C0NONE"), None);
        assert_eq!(d.repositories(), [repo("acme/api"), repo("acme/webapp")]);
        assert!(ChannelDefaults::parse("").unwrap().is_empty());

        let err = |value: &str| ChannelDefaults::parse(value).unwrap_err();
        assert_eq!(
            err("C1=acme/webapp,C2"),
            SlackConfigError::NotAPair { setting: DEFAULT_REPOS_SETTING, entry: "C2".into() }
        );
        assert!(matches!(err("=acme/webapp"), SlackConfigError::NotAPair { .. }));
        assert!(matches!(err("C1="), SlackConfigError::NotAPair { .. }));
        assert_eq!(
            err("#general=acme/webapp"),
            SlackConfigError::NotAnId { setting: DEFAULT_REPOS_SETTING, entry: "#general=acme/webapp".into() }
        );
        assert_eq!(
            err("C1=acme"),
            SlackConfigError::NotARepository { setting: DEFAULT_REPOS_SETTING, entry: "C1=acme".into() }
        );
        assert!(matches!(err("C1=https://github.com/acme/webapp"), SlackConfigError::NotARepository { .. }));
        assert_eq!(
            err("C1=acme/a,c1=acme/b"),
            SlackConfigError::DuplicateChannel { setting: DEFAULT_REPOS_SETTING, channel: "C1".into() }
        );
        let message = err("C1=acme/webapp,C2=oops").to_string();
        assert!(message.contains("`C2=oops`") && message.contains(DEFAULT_REPOS_SETTING), "{message}");
    }

    #[test]
    fn a_request_passes_when_its_channel_or_its_user_is_listed() {
        let list = Allowlist::parse("C0DEV, C0OPS", "U0ALICE", "").unwrap();
        assert!(list.allows("T1", "C0DEV", "U0ANYONE"));
        assert!(list.allows("T1", "C0RANDOM", "U0ALICE"));
        assert!(!list.allows("T1", "C0RANDOM", "U0BOB"));
        assert!(!list.is_off());
    }

    #[test]
    fn a_team_list_only_narrows() {
        let list = Allowlist::parse("C0DEV", "U0ALICE", "T0ACME").unwrap();
        assert!(list.allows("T0ACME", "C0DEV", "U0BOB"));
        assert!(!list.allows("T0PARTNER", "C0DEV", "U0BOB"));
        assert!(!list.allows("T0PARTNER", "C0RANDOM", "U0ALICE"));
        let teams_only = Allowlist::parse("", "", "T0ACME").unwrap();
        assert!(teams_only.is_off());
        assert!(!teams_only.allows("T0ACME", "C0DEV", "U0ALICE"));
    }

    #[test]
    fn an_empty_allowlist_turns_slack_off() {
        let list = Allowlist::parse("", " , ", "").unwrap();
        assert!(list.is_off());
        assert!(!list.allows("T1", "C1", "U1"));
        assert!(!Allowlist::default().allows("", "", ""));
    }

    #[test]
    fn allowlist_entries_must_be_ids() {
        assert_eq!(
            Allowlist::parse("C0DEV,#general", "", ""),
            Err(SlackConfigError::NotAnId { setting: ALLOWED_CHANNELS_SETTING, entry: "#general".into() })
        );
        assert_eq!(
            Allowlist::parse("", "@alice", ""),
            Err(SlackConfigError::NotAnId { setting: ALLOWED_USERS_SETTING, entry: "@alice".into() })
        );
        assert!(Allowlist::parse("", "", "T 1").is_err());
        assert!(Allowlist::parse("", "1U", "").is_err());
        let list = Allowlist::parse("c0dev", "", "").unwrap();
        assert!(list.allows("T1", "C0DEV", "U1"));
        let message = Allowlist::parse("", "alice smith", "").unwrap_err().to_string();
        assert!(message.contains("`alice smith`") && message.contains(ALLOWED_USERS_SETTING), "{message}");
    }
}
