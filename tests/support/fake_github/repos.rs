//! Repository endpoints: a repository's contents, its branches, collaborator permissions and
//! check runs (`GET /repos/{owner}/{repo}` itself is answered in the route table).

use base64::Engine as _;
use serde_json::{Value, json};

use super::FakeCheckRun;
use super::auth::Caller;
use super::git::{git, git_ok, read_blob, resolve, safe_for_git};
use super::json::TEMPLATES;
use super::routes::{Call, Reply};
use super::world::{Repo, World};

/// GitHub wraps base64 file contents at 60 characters.
const BASE64_LINE: usize = 60;

impl World {
    pub(super) fn contents(&self, call: &Call, repo: &str, path: &str) -> Reply {
        const DOCS: &str = "https://docs.github.com/rest/repos/contents#get-repository-content";
        let r = self.repo(repo);
        let git_ref = call.query("ref").filter(|r| !r.is_empty()).unwrap_or("main");
        let path = path.trim_matches('/');
        if !safe_for_git(git_ref) || resolve(&r.bare, git_ref).is_none() {
            return Reply::error(404, &format!("No commit found for the ref {git_ref}"), DOCS);
        }
        let spec = if path.is_empty() { format!("{git_ref}^{{tree}}") } else { format!("{git_ref}:{path}") };
        let kind = git(&r.bare, &["cat-file", "-t", &spec]);
        match String::from_utf8_lossy(&kind.stdout).trim() {
            "blob" => {
                let bytes = read_blob(&r.bare, git_ref, path).unwrap_or_default();
                let sha = git_ok(&r.bare, &["rev-parse", &spec]).trim().to_owned();
                let encoded = base64::engine::general_purpose::STANDARD.encode(&bytes);
                let mut wrapped: String = encoded
                    .as_bytes()
                    .chunks(BASE64_LINE)
                    .map(|line| String::from_utf8_lossy(line).into_owned())
                    .collect::<Vec<_>>()
                    .join("\n");
                wrapped.push('\n');
                let mut entry = self.content_entry(r, git_ref, path, "file", &sha, bytes.len());
                entry["encoding"] = json!("base64");
                entry["content"] = json!(wrapped);
                Reply::json(200, entry)
            }
            "tree" => {
                let listing = git_ok(&r.bare, &["ls-tree", "-l", &spec]);
                let entries: Vec<Value> = listing
                    .lines()
                    .filter_map(|line| {
                        let (meta, name) = line.split_once('\t')?;
                        let fields: Vec<&str> = meta.split_whitespace().collect();
                        let (mode, kind, sha, size) = (fields.first()?, fields.get(1)?, fields.get(2)?, fields.get(3)?);
                        let kind = match (*kind, *mode) {
                            ("blob", "120000") => "symlink",
                            ("blob", _) => "file",
                            ("tree", _) => "dir",
                            _ => "submodule",
                        };
                        let child = if path.is_empty() { name.to_owned() } else { format!("{path}/{name}") };
                        Some(self.content_entry(r, git_ref, &child, kind, sha, size.parse().unwrap_or(0)))
                    })
                    .collect();
                Reply::json(200, Value::Array(entries))
            }
            _ => Reply::not_found(DOCS),
        }
    }

    fn content_entry(&self, repo: &Repo, git_ref: &str, path: &str, kind: &str, sha: &str, size: usize) -> Value {
        let url = self.api_repo(repo, &format!("/contents/{path}?ref={git_ref}"));
        let git_url = self.api_repo(repo, &format!("/git/{}/{sha}", if kind == "dir" { "trees" } else { "blobs" }));
        let html_url = self.html(repo, &format!("/{}/{git_ref}/{path}", if kind == "dir" { "tree" } else { "blob" }));
        let name = path.rsplit('/').next().unwrap_or(path);
        json!({
            "type": kind,
            "size": size,
            "name": name,
            "path": path,
            "sha": sha,
            "url": url,
            "git_url": git_url,
            "html_url": html_url,
            "download_url": (kind == "file").then(|| self.html(repo, &format!("/raw/{git_ref}/{path}"))),
            "_links": { "self": url, "git": git_url, "html": html_url },
        })
    }

    pub(super) fn permission(&self, repo: &str, user: &str) -> Reply {
        const DOCS: &str =
            "https://docs.github.com/rest/collaborators/collaborators#get-repository-permissions-for-a-user";
        if !self.known_users.contains(user) {
            return Reply::error(404, &format!("{user} is not a user"), DOCS);
        }
        // A public repository: anyone GitHub knows may read it.
        let role = self.repo(repo).permissions.get(user).map_or("read", String::as_str);
        // `permission` is the legacy field: maintain shows as write, triage as read.
        let permission = match role {
            "maintain" => "write",
            "triage" => "read",
            other => other,
        };
        let mut value = TEMPLATES.collaborator_permission.clone();
        value["permission"] = json!(permission);
        value["role_name"] = json!(role);
        let mut user_json = self.user_json(user);
        user_json["permissions"] = json!({
            "admin": role == "admin",
            "maintain": matches!(role, "admin" | "maintain"),
            "push": matches!(role, "admin" | "maintain" | "write"),
            "triage": matches!(role, "admin" | "maintain" | "write" | "triage"),
            "pull": role != "none",
        });
        user_json["role_name"] = json!(role);
        value["user"] = user_json;
        Reply::json(200, value)
    }

    pub(super) fn get_branch(&self, repo: &str, branch: &str) -> Reply {
        let r = self.repo(repo);
        match resolve(&r.bare, &format!("refs/heads/{branch}")) {
            Some(sha) => Reply::json(200, self.branch_detail_json(r, branch, &sha)),
            None => {
                Reply::error(404, "Branch not found", "https://docs.github.com/rest/branches/branches#get-a-branch")
            }
        }
    }

    fn check_runs_allowed(&self, call: &Call) -> Result<(), Reply> {
        match call.caller {
            Caller::Installation => Ok(()),
            Caller::User(_) if !self.token_mode_restrictions => Ok(()),
            Caller::User(_) => Err(Reply::error(
                403,
                "Resource not accessible by personal access token",
                "https://docs.github.com/rest/checks/runs#create-a-check-run",
            )),
            _ => Err(Reply::unauthenticated()),
        }
    }

    pub(super) fn create_check_run(&mut self, call: &Call, repo: &str) -> Reply {
        const DOCS: &str = "https://docs.github.com/rest/checks/runs#create-a-check-run";
        if let Err(refusal) = self.check_runs_allowed(call) {
            return refusal;
        }
        let (Some(name), Some(head_sha)) = (call.text("name"), call.text("head_sha")) else {
            return Reply::validation_failed(
                json!([{"resource": "CheckRun", "code": "missing_field", "field": "name"}]),
                DOCS,
            );
        };
        if resolve(&self.repo(repo).bare, head_sha).is_none() {
            return Reply::validation_failed(
                json!([{"resource": "CheckRun", "code": "invalid", "field": "head_sha"}]),
                DOCS,
            );
        }
        let id = self.next_id();
        let mut run = FakeCheckRun {
            id,
            name: name.to_owned(),
            head_sha: head_sha.to_owned(),
            status: "queued".to_owned(),
            conclusion: None,
            external_id: None,
            output_title: None,
            output_summary: None,
            output_text: None,
        };
        apply_check_run_fields(&mut run, &call.body);
        let value = self.check_run_json(self.repo(repo), &run);
        self.repo_mut(repo).check_runs.insert(id, run);
        Reply::json(201, value)
    }

    pub(super) fn update_check_run(&mut self, call: &Call, repo: &str, id: &str) -> Reply {
        if let Err(refusal) = self.check_runs_allowed(call) {
            return refusal;
        }
        let Some(run) = id.parse::<u64>().ok().and_then(|id| self.repo_mut(repo).check_runs.get_mut(&id)) else {
            return Reply::not_found("https://docs.github.com/rest/checks/runs#update-a-check-run");
        };
        apply_check_run_fields(run, &call.body);
        let run = run.clone();
        Reply::json(200, self.check_run_json(self.repo(repo), &run))
    }
}

fn apply_check_run_fields(run: &mut FakeCheckRun, body: &Value) {
    let text = |field: &str| body.get(field).and_then(Value::as_str).map(str::to_owned);
    if let Some(name) = text("name") {
        run.name = name;
    }
    if let Some(status) = text("status") {
        run.status = status;
    }
    if let Some(conclusion) = text("conclusion") {
        run.conclusion = Some(conclusion);
        // GitHub completes a run whose conclusion is set.
        run.status = "completed".to_owned();
    }
    if let Some(external_id) = text("external_id") {
        run.external_id = Some(external_id);
    }
    if let Some(output) = body.get("output") {
        let field = |name: &str| output.get(name).and_then(Value::as_str).map(str::to_owned);
        run.output_title = field("title").or(run.output_title.take());
        run.output_summary = field("summary").or(run.output_summary.take());
        run.output_text = field("text").or(run.output_text.take());
    }
}
