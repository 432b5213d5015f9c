"""The job queue's one limit: how many generate jobs may wait.

Gradio's own `max_size` counts every waiting event of every kind, so with the generate queue full it refused
Stop, status and memory calls from gradio_client (which always goes through the queue): a client could not stop
its own job. Here the limit applies to the generate group only; control calls are never refused for a full
queue. Relies on Gradio 6.31's `Queue.push` and `event_queue_per_concurrency_id` (pinned in pyproject.toml).
"""
from __future__ import annotations

GENERATE_GROUP = "generate"     # the concurrency id every generate event shares (one job at a time)


def waiting(queue, group: str = GENERATE_GROUP) -> list:
    """The events of this group waiting in the queue, first in line first."""
    event_queue = getattr(queue, "event_queue_per_concurrency_id", {}).get(group)
    return list(event_queue.queue) if event_queue is not None else []


def limit_waiting_jobs(demo, max_size: int, group: str = GENERATE_GROUP) -> None:
    """Refuse a new event of `group` when max_size of them already wait, with Gradio's own "queue full" answer
    (gradio_client reports it as QUEUE_FULL); every other event is let through."""
    queue = demo._queue
    queue.max_size = None
    push = queue.push

    async def limited_push(body, request, username):
        from gradio import route_utils

        try:
            fn = route_utils.get_fn(demo, None, body)
        except Exception:  # noqa: BLE001 - Gradio's own push answers a bad fn_index
            fn = None
        if fn is not None and fn.concurrency_id == group and len(waiting(queue, group)) >= max_size:
            return False, f"Queue is full. Max size is {max_size} and size is {len(waiting(queue, group))}.", \
                "queue_full"
        return await push(body, request, username)

    queue.push = limited_push
