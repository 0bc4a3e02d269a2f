"""The PyTorch baseline under another OpenMP wait policy, in a real worker process.

Never asserts a wall-clock time: only that the worker answers with the number of
timings asked for, each positive, and says which policy it ran under.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from tiny_models import make_tiny_classifier  # noqa: E402

from edgec import bench, machine  # noqa: E402
from edgec.bench.torch_worker import TorchWorker, worker_env  # noqa: E402

NAMES = ["input_ids", "attention_mask", "token_type_ids"]
TEXTS = ["a good movie", "the plot was dull and boring", "awful", "i love this film"]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return make_tiny_classifier("bert", tmp_path_factory.mktemp("torch-worker") / "model")


def test_worker_env_sets_or_unsets_the_policy(monkeypatch):
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    assert "OMP_WAIT_POLICY" not in worker_env("default")
    monkeypatch.delenv("OMP_WAIT_POLICY")
    assert worker_env("PASSIVE")["OMP_WAIT_POLICY"] == "PASSIVE"


def test_worker_times_the_calls_asked_for_and_reports_its_policy(tiny_model):
    policy = "default"  # libgomp's own: OMP_WAIT_POLICY unset in the worker
    worker = TorchWorker(tiny_model, threads=1, padded=True, policy=policy)
    try:
        assert worker.ready["policy"] == policy
        names = [d["name"] for d in worker.ready["subjects"]]
        assert names == [bench.baseline_name(b, policy) for b in bench.BASELINES]
        batches = bench.text_batches(TEXTS, 2, 6)
        call = worker.timer(names[0])("predict", batches)
        ms = bench.timed_calls(call, range(2, 7))
        assert len(ms) == 5 and all(t > 0 for t in ms)
        feed = bench.synthetic_inputs(NAMES, 2, 8, vocab_size=50)
        ms = worker.timer(names[1])("model", feed).timed(range(3))
        assert len(ms) == 3 and all(t > 0 for t in ms)
        # its CPU time is the bench's own, not "other processes'", while it lives
        assert worker.ready["pid"] in machine.HELPER_PIDS
        if Path("/proc/self/stat").is_file():  # Linux: its CPU time is read from /proc
            assert machine._cpu_seconds_of(worker.ready["pid"]) > 0
    finally:
        worker.close()
    assert worker.ready["pid"] not in machine.HELPER_PIDS


def test_worker_subjects_answer_like_the_same_model_here(tiny_model):
    """Both policies in one list: the one this process has runs here, the other in a
    worker; same labels, same logits, and measure() times both in the same rounds."""
    here = bench.omp_policy()
    other = next(p for p in bench.OMP_POLICIES if p != here)
    subjects = bench.pytorch_subjects(tiny_model, 1, padded=False, policies=[here, other])
    try:
        local, remote = subjects
        assert (local.extra["process"], remote.extra["process"].split()[0]) == ("this", "worker")
        assert (local.extra["omp_wait_policy"], remote.extra["omp_wait_policy"]) == (here, other)
        assert remote.cold is None and remote.timer is not None
        assert remote.predict(TEXTS) == local.predict(TEXTS)
        feed = bench.synthetic_inputs(NAMES, 2, 8, vocab_size=50)
        np.testing.assert_allclose(remote.model(feed), local.model(feed), rtol=1e-5, atol=1e-6)
        config = bench.BenchConfig(batches=[1], texts=TEXTS, runs=4, warmup=1, cold_runs=0)
        report = bench.measure(subjects, config)
        assert [r["stats"]["runs"] for r in report["results"]] == [4, 4]
        assert all(min(r["latencies_ms"]) > 0 for r in report["results"])
        assert report["config"]["torch_omp_policies"] == [here, other]
        faster = min(report["results"], key=lambda r: r["stats"]["p50"])["subject"]
        assert {r["vs"][bench.BASELINE_DYNAMIC]["against"] for r in report["results"]} == {faster}
    finally:
        for s in subjects:
            if s.close:
                s.close()


def test_a_worker_that_fails_says_why(tmp_path):
    with pytest.raises(RuntimeError, match="PyTorch worker"):
        TorchWorker(tmp_path / "missing", threads=1, padded=False, policy="default")
