"""Ingest peer (a): aiohttp + gidgethub, doing what `errand serve` does for a webhook.

gidgethub's `Event.from_http` checks `X-Hub-Signature-256` (HMAC-SHA256, constant-time compare)
and parses the JSON; the handler keeps `issue_comment`/`created` comments that mention `@agent`
(not by a bot), dedups on `X-GitHub-Delivery` (SET NX) and LPUSHes the job on Redis; 202.
"""
import os

from aiohttp import web
from gidgethub import BadRequest, ValidationFailure, sansio

from common import dedup_and_enqueue, redis_client, run

SECRET = os.environ["BENCH_SECRET"]
MENTION = "@agent"


def make_app():
    state = {}

    async def startup(app):
        state["redis"] = redis_client()

    async def webhook(request):
        body = await request.read()
        try:
            event = sansio.Event.from_http(request.headers, body, secret=SECRET)
        except ValidationFailure as e:
            return web.json_response({"error": str(e)}, status=401)
        except BadRequest as e:
            return web.json_response({"error": str(e)}, status=400)
        data = event.data
        if event.event != "issue_comment" or data.get("action") != "created":
            return web.json_response({"ignored": "not a new comment"})
        comment = data.get("comment") or {}
        text = comment.get("body") or ""
        if MENTION not in text or (comment.get("user") or {}).get("type") == "Bot":
            return web.json_response({"ignored": "no mention"})
        issue = data.get("issue") or {}
        job = {
            "repo": data["repository"]["full_name"],
            "source": "github_issue_comment",
            "requested_by": comment["user"]["login"],
            "task": {"instruction": text.split(MENTION, 1)[1].strip(), "title": issue.get("title"),
                     "body": issue.get("body"), "url": comment.get("html_url")},
            "reply": {"issue": issue.get("number"), "comment_id": comment.get("id")},
        }
        job_id = await dedup_and_enqueue(state["redis"], event.delivery_id, job)
        if job_id is None:
            return web.json_response({"duplicate": True})
        return web.json_response({"job_id": job_id}, status=202)

    app = web.Application(client_max_size=25 * 1024 * 1024)
    app.on_startup.append(startup)
    app.router.add_post("/github/webhook", webhook)
    return app


if __name__ == "__main__":
    run(make_app)
