"""Producer and clock for the queue benchmark of one Python library.

    python queue_peer.py LIB N      (LIB: rq, arq, celery, dramatiq; workers already running)

Enqueues one warm-up job and waits for it (so the workers are up), then starts the clock,
enqueues N no-op jobs one after the other with the library's own API and stops the clock when
the library's own Redis state says every job ran and was acknowledged (polled every 2 ms; the
state must hold for 3 polls in a row). Prints one JSON line like the Rust harness.
"""
import asyncio
import json
import sys
import time

import redis

import qtasks

URL = qtasks.URL


def sync_lib(lib):
    r = redis.Redis.from_url(URL)
    if lib == "rq":
        from rq import Queue

        q = Queue("bench", connection=r)
        # A finished job stays in the finished registry (result_ttl 500 s): count those.
        base = q.finished_job_registry.count
        return (lambda: q.enqueue(qtasks.noop)), (lambda n: q.finished_job_registry.count - base >= n and q.count == 0)
    if lib == "celery":
        # acks_late: a message leaves `unacked` only once it ran.
        return qtasks.celery_noop.delay, (lambda n: r.llen("bench") == 0 and r.hlen("unacked") == 0)
    if lib == "dramatiq":
        # A message's body stays in `.msgs` until it is acknowledged.
        return qtasks.dramatiq_noop.send, (lambda n: r.hlen("dramatiq:bench.msgs") == 0)
    raise SystemExit(f"unknown library {lib}")


def wait(drained, n):
    stable = 0
    while stable < 3:
        stable = stable + 1 if drained(n) else 0
        time.sleep(0.002)


def run_sync(lib, n):
    enqueue, drained = sync_lib(lib)
    enqueue()
    wait(drained, 1)
    start = time.perf_counter()
    for _ in range(n):
        enqueue()
    enqueued = time.perf_counter() - start
    wait(drained, n + 1)
    return enqueued, time.perf_counter() - start


async def run_arq(n):
    from arq import create_pool

    pool = await create_pool(qtasks.ArqSettings.redis_settings)

    async def drained():
        # arq removes a job from its queue zset when it finishes.
        return await pool.zcard("arq:queue") == 0 and not [k async for k in pool.scan_iter("arq:in-progress:*")]

    async def wait_async():
        stable = 0
        while stable < 3:
            stable = stable + 1 if await drained() else 0
            await asyncio.sleep(0.002)

    await pool.enqueue_job("arq_noop")
    await wait_async()
    start = time.perf_counter()
    for _ in range(n):
        await pool.enqueue_job("arq_noop")
    enqueued = time.perf_counter() - start
    await wait_async()
    return enqueued, time.perf_counter() - start


def main():
    lib, n = sys.argv[1], int(sys.argv[2])
    enqueued, total = asyncio.run(run_arq(n)) if lib == "arq" else run_sync(lib, n)
    print(json.dumps({"lib": lib, "n": n, "enqueue_s": enqueued, "total_s": total, "jobs_per_s": n / total}))


if __name__ == "__main__":
    main()
