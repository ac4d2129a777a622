"""Ingest peer (b): a Slack Bolt app (slack_bolt.async_app.AsyncApp behind aiohttp).

Bolt verifies Slack's signature (`X-Slack-Signature`: HMAC-SHA256 over `v0:timestamp:body`, and
the timestamp's age), parses the Events API JSON, runs its middleware (authorization through a
local `authorize` function: no Slack API call, self-event filter) and the `app_mention` listener,
which dedups (SET NX) and LPUSHes the job before the answer (`process_before_response=True`).

Slack's delivery id (`event_id`) is inside the signed body; wrk sends one constant body, so the
dedup key is `event_id` plus the per-request `X-Bench-Delivery-Id` header wrk generates.
"""
import os

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult

from common import dedup_and_enqueue, redis_client, run


def make_app():
    state = {}

    async def authorize(enterprise_id, team_id, user_id, logger):
        return AuthorizeResult(enterprise_id=enterprise_id, team_id=team_id, bot_token="xoxb-bench",
                               bot_user_id="U0AGENT01", bot_id="B0AGENT01")

    bolt = AsyncApp(signing_secret=os.environ["BENCH_SECRET"], authorize=authorize,
                    process_before_response=True, request_verification_enabled=True)

    @bolt.event("app_mention")
    async def on_mention(body, event, request):
        delivery = request.headers.get("x-bench-delivery-id", [""])[0]
        text = event.get("text", "")
        job = {
            "repo": None,
            "source": "slack",
            "requested_by": event.get("user"),
            "task": {"instruction": text.split(">", 1)[-1].strip(), "url": None},
            "reply": {"channel": event.get("channel"), "ts": event.get("ts")},
        }
        await dedup_and_enqueue(state["redis"], f"slack:{body['event_id']}:{delivery}", job)

    async def startup(app):
        state["redis"] = redis_client()

    async def events(request):
        return await to_aiohttp_response(await bolt.async_dispatch(await to_bolt_request(request)))

    app = web.Application(client_max_size=25 * 1024 * 1024)
    app.on_startup.append(startup)
    app.router.add_post("/slack/events", events)
    return app


if __name__ == "__main__":
    run(make_app)
