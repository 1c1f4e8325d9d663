"""Tests for tfcnn.data.worker_pool."""

from tests.data import crashing_worker
from tfcnn.data import worker_pool


def test_results_in_order_and_a_crash_costs_one_item():
    chunks = [[1, 2], [3, "die", 4], [5], [6, 7], [8]]
    results = list(worker_pool.map_in_order(
        crashing_worker.double_or_die, chunks, workers=2,
        on_crash=lambda item: f"crashed on {item}", inflight_per_worker=1))
    assert results == [2, 4, 6, "crashed on die", 8, 10, 12, 14, 16]


def test_bounded_submission_over_a_generator():
    chunks = ([i] for i in range(40))
    results = list(worker_pool.map_in_order(
        crashing_worker.double_or_die, chunks, workers=2,
        on_crash=lambda item: None))
    assert results == [2 * i for i in range(40)]


def test_crash_while_more_chunks_are_submitted():
    # Many small chunks in flight: the pool breaks while others are queued
    # or being submitted; every item still gets exactly one result.
    chunks = [[i] for i in range(12)] + [["die"]] + [[i] for i in range(12)]
    results = list(worker_pool.map_in_order(
        crashing_worker.double_or_die, chunks, workers=2,
        on_crash=lambda item: "crashed", inflight_per_worker=8))
    expected = [2 * i for i in range(12)]
    assert results == expected + ["crashed"] + expected
