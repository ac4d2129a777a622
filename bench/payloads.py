"""Builds the two ingest payloads (deterministic) and their signatures.

GitHub: tests/data/github/webhooks/issue_comment.created.with-organization.json, compact, with the
API link fields (`*_url` other than html_url, clone_url, issue_url, repository_url) left out, and the comment body replaced by a realistic
`@agent fix this` request padded to make the whole payload BODY_BYTES. Slack: an Events API
`event_callback` / `app_mention` of the same size with the same text.

    python payloads.py OUTDIR GITHUB_SECRET SLACK_SECRET
writes OUTDIR/github.json, OUTDIR/slack.json and OUTDIR/signatures.json.
"""
import hashlib
import hmac
import json
import pathlib
import sys
import time

BODY_BYTES = 6 * 1024
ROOT = pathlib.Path(__file__).resolve().parent.parent
SOURCE = ROOT / "tests/data/github/webhooks/issue_comment.created.with-organization.json"

REQUEST = """@agent fix this

The README's install section still tells people to run `make install`, which was removed in the
last release; it fails with `make: *** No rule to make target 'install'`. Please update it to the
new `cargo install --path .` flow and check the other docs for the same mistake.

Steps to reproduce:

1. Clone the repository on a fresh machine.
2. Follow the README from the top.
3. `make install` fails.

Logs from CI:

```
"""
LOG_LINE = "2026-11-24T09:14:{s:02d}Z step[{i}] running `make install` ... error: no rule to make target\n"


KEEP_URLS = {"html_url", "clone_url", "issue_url", "repository_url", "url"}


def dropped(key, value):
    """The API link fields (`followers_url`, `.../{/number}` templates...) that make up half of a
    real payload; the ones errand or a peer could use are kept."""
    return key.endswith("_url") and key not in KEEP_URLS


def strip_templates(value):
    if isinstance(value, dict):
        return {k: strip_templates(v) for k, v in value.items() if not dropped(k, v)}
    if isinstance(value, list):
        return [strip_templates(v) for v in value]
    return value


def padded_text(base_size):
    text = REQUEST
    i = 0
    while True:
        line = LOG_LINE.format(s=i % 60, i=i)
        candidate = text + line + "```\n\nThanks!"
        if base_size + len(json.dumps(candidate)) - 2 > BODY_BYTES:
            break
        text += line
        i += 1
    return text + "```\n\nThanks!"


def github_payload():
    data = strip_templates(json.loads(SOURCE.read_text()))
    data["comment"]["body"] = ""
    base = len(json.dumps(data, separators=(",", ":")))
    data["comment"]["body"] = padded_text(base)
    return json.dumps(data, separators=(",", ":")).encode()


def slack_payload():
    event = {
        "client_msg_id": "1b2c3d4e-5f60-4718-8293-a4b5c6d7e8f9",
        "type": "app_mention",
        "text": "",
        "user": "U061F7AUR",
        "ts": "1795500000.000200",
        "team": "T061EG9R6",
        "blocks": [{"type": "rich_text", "block_id": "b1", "elements": [{"type": "rich_text_section", "elements": [{"type": "user", "user_id": "U0AGENT01"}, {"type": "text", "text": " fix this"}]}]}],
        "channel": "C0LAN2Q65",
        "event_ts": "1795500000.000200",
    }
    data = {
        "token": "ZZZZZZWSxiZZZ2yIvs3peJ",
        "team_id": "T061EG9R6",
        "context_team_id": "T061EG9R6",
        "api_app_id": "A0MDYCDME",
        "event": event,
        "type": "event_callback",
        "event_id": "Ev0MDYHUEL",
        "event_time": 1795500000,
        "authorizations": [{"enterprise_id": None, "team_id": "T061EG9R6", "user_id": "U0AGENT01", "is_bot": True, "is_enterprise_install": False}],
        "is_ext_shared_channel": False,
        "event_context": "4-eyJldCI6ImFwcF9tZW50aW9uIiwidGlkIjoiVDA2MUVHOVI2IiwiYWlkIjoiQTBNRFlDRE1FIiwiY2lkIjoiQzBMQU4yUTY1In0",
    }
    base = len(json.dumps(data, separators=(",", ":")))
    event["text"] = padded_text(base).replace("@agent", "<@U0AGENT01>", 1)
    return json.dumps(data, separators=(",", ":")).encode()


def main():
    out, github_secret, slack_secret = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    out.mkdir(parents=True, exist_ok=True)
    github, slack = github_payload(), slack_payload()
    (out / "github.json").write_bytes(github)
    (out / "slack.json").write_bytes(slack)
    ts = str(int(time.time()))
    signatures = {
        "github": "sha256=" + hmac.new(github_secret.encode(), github, hashlib.sha256).hexdigest(),
        "slack_timestamp": ts,
        "slack": "v0=" + hmac.new(slack_secret.encode(), b"v0:" + ts.encode() + b":" + slack, hashlib.sha256).hexdigest(),
        "github_bytes": len(github),
        "slack_bytes": len(slack),
    }
    (out / "signatures.json").write_text(json.dumps(signatures))
    print(json.dumps(signatures))


if __name__ == "__main__":
    main()
