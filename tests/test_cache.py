"""The model cache with a stand-in loader: concurrency, failures and the memory budget."""

import threading
import time
from types import SimpleNamespace

import pytest

from dashboard.models.cache import ModelCache


class CountingLoader:
    def __init__(self, size=100, delay=0.2, fail_first=0):
        self.calls: dict[str, int] = {}
        self.size, self.delay, self.fail_first = size, delay, fail_first
        self.lock = threading.Lock()
        self.active = self.max_active = 0

    def __call__(self, key):
        with self.lock:
            self.calls[key] = self.calls.get(key, 0) + 1
            n = self.calls[key]
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        time.sleep(self.delay)
        with self.lock:
            self.active -= 1
        if n <= self.fail_first:
            raise RuntimeError(f"load {n} of {key} failed")
        return SimpleNamespace(info=SimpleNamespace(weight_bytes=self.size), key=key)


def test_twenty_threads_load_a_cold_model_once():
    loader = CountingLoader(delay=0.3)
    cache = ModelCache(loader, budget_bytes=10_000)
    barrier = threading.Barrier(20)
    results = []

    def ask():
        barrier.wait()
        results.append(cache.get("m"))

    threads = [threading.Thread(target=ask) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert loader.calls == {"m": 1}
    assert len({id(model) for model, _ in results}) == 1
    assert sum(not info.cached for _, info in results) == 1
    cold = next(info for _, info in results if not info.cached)
    assert cold.load_ms >= 300 * 0.9 and cache.load_ms["m"] == cold.load_ms


def test_failed_load_is_not_cached_and_is_retried():
    loader = CountingLoader(delay=0, fail_first=1)
    cache = ModelCache(loader, budget_bytes=10_000)
    with pytest.raises(RuntimeError, match="load 1"):
        cache.get("m")
    assert not cache.is_loaded("m")
    model, info = cache.get("m")
    assert model.key == "m" and not info.cached and loader.calls["m"] == 2


def test_least_recently_used_models_are_evicted_over_budget():
    cache = ModelCache(CountingLoader(size=100, delay=0), budget_bytes=250)
    cache.get("a")
    cache.get("b")
    cache.get("a")  # b is now least recently used
    cache.get("c")
    assert cache.loaded_keys() == ["a", "c"] and cache.evicted == ["b"]
    assert cache.loaded_bytes() == 200
    _, info = cache.get("b")  # reloads
    assert not info.cached and cache.loaded_keys() == ["c", "b"]


def test_a_model_larger_than_the_budget_still_serves():
    cache = ModelCache(CountingLoader(size=1000, delay=0), budget_bytes=10)
    cache.get("a")
    cache.get("big")
    assert cache.loaded_keys() == ["big"]


def test_different_models_load_in_parallel():
    loader = CountingLoader(delay=0.4)
    cache = ModelCache(loader, budget_bytes=10_000)
    threads = [threading.Thread(target=cache.get, args=(k,)) for k in "abcd"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert loader.max_active > 1  # not serialised behind one global lock
    assert sorted(cache.loaded_keys()) == list("abcd")
