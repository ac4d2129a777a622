"""Shared by the ingest peers: Redis, the dedup + enqueue step, and a multi-process aiohttp runner."""
import json
import os
import time
import uuid

import redis.asyncio as aioredis

DEDUP_TTL = 7 * 24 * 3600
QUEUE_KEY = "peer:jobs"


def redis_client():
    return aioredis.from_url(os.environ["BENCH_REDIS_URL"])


async def dedup_and_enqueue(r, delivery, job):
    """What errand's enqueue does for an ingress, in the way a small app would write it:
    SET NX on the delivery id (7 days), then LPUSH the job. Returns the job id, or None if the
    delivery was seen before."""
    job_id = str(uuid.uuid4())
    if not await r.set(f"peer:dedup:{delivery}", job_id, nx=True, ex=DEDUP_TTL):
        return None
    job["id"] = job_id
    job["created_at"] = time.time()
    await r.lpush(QUEUE_KEY, json.dumps(job))
    return job_id


def run(app_factory):
    """Serves on BENCH_PORT (loopback) with BENCH_PROCESSES processes sharing the port
    (SO_REUSEPORT), the way aiohttp apps are deployed on several cores."""
    from aiohttp import web

    processes = int(os.environ.get("BENCH_PROCESSES", "1"))
    for _ in range(processes - 1):
        if os.fork() == 0:
            break
    web.run_app(app_factory(), host="127.0.0.1", port=int(os.environ["BENCH_PORT"]), reuse_port=True,
                access_log=None, print=None)
