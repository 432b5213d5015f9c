"""The job queue's one limit: how many generate jobs may wait.

Gradio's own `max_size` counts every waiting event of every kind, so with the generate queue full it refused
Stop, status and memory calls from gradio_client (which always goes through the queue): a client could not stop
its own job. Here the limit applies to the generate group only; control calls are never refused for a full
queue. Relies on Gradio 6.31's `Queue.push` and `event_queue_per_concurrency_id` (pinned in pyproject.toml).
"""
from __future__ import annotations

from i2v.core.words import render

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
            return False, render("queue_full", "en", max_size=max_size, size=len(waiting(queue, group))), \
                "queue_full"
        return await push(body, request, username)

    queue.push = limited_push


def waiting_jobs(queue, group: str = GENERATE_GROUP) -> list[dict]:
    """The waiting generate jobs as data: event id, session, the values sent (image first, then the settings
    table's rows in order, then the page's extra inputs), when they joined (monotonic seconds)."""
    jobs = []
    for event in waiting(queue, group):
        body = getattr(event, "data", None)
        jobs.append({"event": event._id, "owner": event.session_hash, "data": list(getattr(body, "data", None) or []),
                     "since": event.enqueue_time})
    return jobs


async def remove_waiting(demo, event_id: str, error: Exception) -> bool:
    """Take a waiting job out of the queue and end its call with `error` (a gr.Error: its page shows it,
    gradio_client raises it), as Gradio's own /cancel does for a caller's own job. True if it was waiting."""
    from gradio.server_messages import ProcessCompletedMessage
    from gradio.utils import error_payload

    queue = demo._queue
    event = queue.event_ids_to_events.get(event_id)
    if event is None or event not in waiting(queue, event.concurrency_id):
        return False
    await queue.remove_from_queue(event_id)
    content = error_payload(error, False)
    queue.send_message(event, ProcessCompletedMessage(output=content, title=content.get("title", "Error"),
                                                      success=False))
    return True


def waiting_upload_paths(queue, group: str = GENERATE_GROUP) -> set[str]:
    """The uploaded files the waiting jobs will read (their image input, sent first)."""
    paths = set()
    for job in waiting_jobs(queue, group):
        image = job["data"][0] if job["data"] else None
        path = image.get("path") if isinstance(image, dict) else image
        if isinstance(path, str):
            paths.add(path)
    return paths
