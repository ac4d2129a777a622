"""The no-op jobs each queue library runs, and each library's worker configuration.

Workers (started by bench.py, the same for every round):
- RQ:       2 × `rq worker --worker-class rq.worker.SimpleWorker bench` (no fork per job)
- arq:      2 × `arq qtasks.ArqSettings` (asyncio, max_jobs 10, library defaults otherwise)
- Celery:   `celery -A qtasks worker -c 2 -Q bench` (prefork, acks_late: acknowledged after running)
- Dramatiq: `dramatiq qtasks -p 2 -t 8 -Q bench` (library's default 8 threads)
"""
import os

URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6479/0")


def noop():
    return None


# arq
async def arq_noop(ctx):
    return None


class ArqSettings:
    from arq.connections import RedisSettings

    functions = [arq_noop]
    redis_settings = RedisSettings.from_dsn(URL)


# Celery
from celery import Celery  # noqa: E402

celery_app = Celery("bench", broker=URL)
celery_app.conf.update(task_acks_late=True, task_ignore_result=True, task_default_queue="bench",
                       worker_hijack_root_logger=False, broker_connection_retry_on_startup=True)


@celery_app.task(name="noop")
def celery_noop():
    return None


# Dramatiq
import dramatiq  # noqa: E402
from dramatiq.brokers.redis import RedisBroker  # noqa: E402

dramatiq.set_broker(RedisBroker(url=URL))


@dramatiq.actor(queue_name="bench", max_retries=0)
def dramatiq_noop():
    return None
