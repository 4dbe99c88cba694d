"""Ask a model for the prompts it has no cached reply to: a bounded thread pool, each reply cached as it lands.

Threads, not processes: calls wait on the network (the SDKs retry 429/5xx themselves with backoff). A failure of
one prompt is collected and the others go on; a failure that means no prompt can succeed (no such model, no
access, bad credentials) cancels what has not started yet. Either way every reply received is in the cache, so the
next run asks only for what is missing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from ftlib.errors import ConfigError, ProviderError
from ftlib.evaluate.cache import ReplyCache
from ftlib.evaluate.evalset import Case
from ftlib.evaluate.generator import Generator, ModelUnavailable, Settings


class _Skipped(Exception):
    """A queued call not started because the run is stopping."""


@dataclass
class CallResult:
    calls: int = 0  # requests made (answered or failed)
    failures: list[tuple[str, str]] = field(default_factory=list)  # (source, message)


def missing(cases: tuple[Case, ...], cache: ReplyCache) -> list[Case]:
    """One case per prompt that has no reply yet (identical prompts are asked once)."""
    seen: set[str] = set()
    out = []
    for case in cases:
        if case.key not in cache.replies and case.key not in seen:
            seen.add(case.key)
            out.append(case)
    return out


def ask(gen: Generator, model: str, todo: list[Case], settings: Settings, cache: ReplyCache, concurrency: int,
        say: Callable[[str], None]) -> CallResult:
    result = CallResult()
    if not todo:
        return result
    cap = getattr(gen, "max_concurrency", None)
    workers = max(1, min(concurrency, cap or concurrency, len(todo)))

    stop = threading.Event()  # set by the first failure that no prompt can survive: queued calls never start

    def one(case: Case) -> None:
        if stop.is_set():
            raise _Skipped
        try:
            reply = gen.generate(model, case.prompt, settings)
        except (ModelUnavailable, ConfigError):
            stop.set()
            raise
        cache.add(case.key, reply)

    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ftlib-eval")
    futures: dict[Future[None], Case] = {}
    try:
        futures = {pool.submit(one, case): case for case in todo}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_EXCEPTION)
            for fut in done:
                err = None if fut.cancelled() else fut.exception()
                if fut.cancelled() or isinstance(err, _Skipped):
                    continue
                result.calls += 1
                if err is None:
                    continue
                if isinstance(err, ModelUnavailable | ConfigError):
                    for other in pending:
                        other.cancel()
                    raise err
                if not isinstance(err, ProviderError):
                    raise err
                result.failures.append((futures[fut].source, str(err)))
        say(f"[{gen.name}] {result.calls} call(s) to {model}: {result.calls - len(result.failures)} answered, "
            f"{len(result.failures)} failed")
        return result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
