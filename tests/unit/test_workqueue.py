"""The keyed work queue the controller runs passes from (client-go's workqueue rules)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from atoma_operator.workqueue import WorkQueue


async def _until(cond: Callable[[], bool], within: float = 5.0) -> None:
    """Poll with a deadline: the conditions are plain state, nothing to await on."""
    async with asyncio.timeout(within):
        while not cond():  # noqa: ASYNC110
            await asyncio.sleep(0.001)


async def test_a_key_added_many_times_while_queued_runs_once() -> None:
    seen: list[str] = []
    gate = asyncio.Event()

    async def work(key: str) -> None:
        await gate.wait()
        seen.append(key)

    q: WorkQueue[str] = WorkQueue(work, workers=2)
    q.add("a")  # queued before the workers start
    for _ in range(5):
        q.add("a")
    q.start()
    gate.set()
    await _until(lambda: not q.is_active("a"))
    await q.stop()
    assert seen == ["a"]


async def test_a_key_added_while_running_runs_again_after_never_concurrently() -> None:
    running = 0
    most = 0
    runs = 0
    release = asyncio.Event()

    async def work(key: str) -> None:
        nonlocal running, most, runs
        running += 1
        most = max(most, running)
        runs += 1
        if runs == 1:
            await release.wait()
        running -= 1

    q: WorkQueue[str] = WorkQueue(work, workers=4)
    q.start()
    q.add("a")
    await _until(lambda: runs == 1)
    q.add("a")
    q.add("a")
    release.set()
    await _until(lambda: runs == 2 and not q.is_active("a"))
    await q.stop()
    assert most == 1 and runs == 2


async def test_an_earlier_due_time_wins_and_forget_cancels() -> None:
    seen: list[str] = []

    async def work(key: str) -> None:
        seen.append(key)

    q: WorkQueue[str] = WorkQueue(work, workers=1)
    q.start()
    q.add("slow", 30.0)
    q.add("slow", 0.01)  # sooner: replaces the 30 s timer
    q.add("gone", 0.01)
    q.forget("gone")
    await _until(lambda: seen == ["slow"])
    assert q.sizes()["delayed"] == 0
    await q.stop()
    assert "gone" not in seen


async def test_parked_keys_are_woken_first_come_first_served() -> None:
    seen: list[str] = []

    async def work(key: str) -> None:
        seen.append(key)

    q: WorkQueue[str] = WorkQueue(work, workers=1)
    q.start()
    for key in ("first", "second", "third"):
        q.park(key, ["badge"])
        q.add(key, 60.0)  # the safety-net timer
    q.wake("badge")
    await _until(lambda: seen == ["first"])
    q.wake("badge", count=2)
    await _until(lambda: seen == ["first", "second", "third"])
    assert q.parked_things() == []
    q.forget("first")
    await q.stop()


async def test_a_failing_work_item_does_not_kill_its_worker() -> None:
    seen: list[str] = []

    async def work(key: str) -> None:
        if key == "bad":
            raise RuntimeError("boom")
        seen.append(key)

    q: WorkQueue[str] = WorkQueue(work, workers=1)
    q.start()
    q.add("bad")
    q.add("good")
    await _until(lambda: seen == ["good"])
    await q.stop()
