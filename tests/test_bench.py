"""`edgec bench` mechanics on a tiny model: shapes, ratios, cold start, JSON, plot.

Never asserts a wall-clock time: the machines are shared, so only structure and
relations that hold under any load are checked.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))

from tiny_models import make_tiny_classifier  # noqa: E402

from edgec import bench, machine  # noqa: E402
from edgec.cli import cli  # noqa: E402
from edgec.machine import CpuLoad, describe_machine, read_proc_stat  # noqa: E402

TEXTS = [
    "a good movie",
    "the plot was dull and boring",
    "i love this film, it is witty and fun",
    "awful",
    "not a great story, but the acting is very good",
]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench")
    model = make_tiny_classifier("bert", root / "model")
    package = bench.build_for_bench(model, "onnxruntime:int8", root, TEXTS)
    data = root / "texts.csv"
    with data.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text"])
        w.writerows([t] for t in TEXTS)
    return {"root": root, "model": model, "package": package, "data": data}


def test_summarize_and_ratios():
    stats = bench.summarize([1.0, 2.0, 3.0, 4.0], items_per_call=8)
    assert stats["p50"] == pytest.approx(2.5)
    assert stats["p50"] <= stats["p90"] <= stats["p95"] <= stats["p99"]
    assert stats["throughput"] == pytest.approx(8 * 1000 / 2.5)
    base = bench.summarize([2.0, 4.0, 6.0, 8.0], items_per_call=8)
    r = bench.ratios(stats, base)
    assert r["speedup"] == pytest.approx(2.0)
    assert r["p50"] == pytest.approx(0.5)
    assert r["throughput"] == pytest.approx(2.0)


def test_synthetic_inputs_shapes():
    x = bench.synthetic_inputs(["input_ids", "attention_mask"], 3, 7, vocab_size=50)
    assert set(x) == {"input_ids", "attention_mask"}
    assert x["input_ids"].shape == (3, 7) and x["input_ids"].dtype == np.int64
    assert x["input_ids"].max() < 50 and x["attention_mask"].all()


def test_interleaved_counts_every_run():
    calls = {"a": lambda i: None, "b": lambda i: None}
    times = bench.interleaved(calls, runs=7, warmup=1)
    assert [len(v) for v in times.values()] == [7, 7]


def test_describe_machine():
    m = describe_machine()
    assert m["cores"] >= 1 and m["cpu"]


def _ticks() -> int:
    return sum(read_proc_stat()[:8])


@pytest.mark.skipif(read_proc_stat() is None, reason="no /proc/stat here: nothing to sample")
def test_machine_and_cpu_load():
    """On a real /proc/stat the shares are measured, and are shares of the whole CPU."""
    with CpuLoad() as load:
        start = _ticks()
        while _ticks() == start:  # work until the kernel has counted at least a tick
            sum(range(200_000))
    d = load.as_dict()
    assert d["busy"] is not None and d["steal"] is not None and d["others"] is not None
    assert 0 <= d["busy"] <= 1 and 0 <= d["steal"] <= 1 and 0 <= d["others"] <= 1
    assert d["others"] <= d["busy"]


def test_cpu_load_shares_from_proc_stat_samples(monkeypatch):
    """The arithmetic on two /proc/stat samples, on any OS: of 1000 ticks, 700 idle or
    iowait, 100 stolen, none of them this process's, so 20% busy, all of it others'."""
    #          user nice system idle iowait irq softirq steal
    samples = iter([[100, 0, 100, 600, 100, 0, 0, 0], [200, 0, 200, 1200, 200, 0, 0, 100]])
    monkeypatch.setattr(machine, "read_proc_stat", lambda: next(samples))
    monkeypatch.setattr(machine, "_own_cpu_seconds", lambda: 0.0)
    d = CpuLoad().start().stop().as_dict()
    assert (d["busy"], d["steal"], d["others"]) == (0.2, 0.1, 0.2)
    assert d["contended"] is True  # others over 15% and steal over 5% of the CPU


def test_cpu_load_without_proc_stat(monkeypatch):
    """Where /proc/stat cannot be read the shares are unknown (None), never a made-up 0."""
    monkeypatch.setattr(machine, "read_proc_stat", lambda: None)
    d = CpuLoad().start().stop().as_dict()
    assert (d["busy"], d["steal"], d["others"]) == (None, None, None)
    assert d["contended"] is False and d["seconds"] >= 0


def test_model_only_with_baselines(tiny):
    subjects = bench.collect_subjects([tiny["package"]], threads=1)
    names = [s.name for s in subjects]
    # the source model is found through the manifest and timed both ways, here only
    here = bench.omp_policy()
    assert names == [
        bench.baseline_name(bench.BASELINE_DYNAMIC, here),
        bench.baseline_name(bench.BASELINE_PADDED, here),
        "onnxruntime int8",
    ]
    config = bench.BenchConfig(batches=[1, 2], seq_lens=[8], runs=3, warmup=1, cold_runs=1)
    report = bench.measure(subjects, config)
    assert len(report["results"]) == 2 * 3
    for r in report["results"]:
        assert r["stats"]["runs"] == 3 and len(r["latencies_ms"]) == 3
        assert set(r["vs"]) == {bench.BASELINE_DYNAMIC, bench.BASELINE_PADDED}
        assert set(r["cpu"]) >= {"busy", "steal", "others"}
    dyn = [r for r in report["results"] if r["subject"] == names[0]]
    assert all(r["vs"][bench.BASELINE_DYNAMIC]["speedup"] == pytest.approx(1.0) for r in dyn)
    assert {r["vs"][bench.BASELINE_PADDED]["against"] for r in report["results"]} == {names[1]}
    package = report["subjects"][2]
    assert package["cold_start"]["torch_imported"] is False
    assert package["cold_start"]["seconds"] > 0 and package["cold_start"]["peak_rss_mb"] > 0
    json.dumps(report)  # JSON-ready


def test_end_to_end_predicts_the_same_labels(tiny):
    subjects = bench.collect_subjects([tiny["package"]], threads=1, padded=False)
    config = bench.BenchConfig(batches=[2], texts=TEXTS, runs=2, warmup=0, cold_runs=0)
    report = bench.measure(subjects, config)
    assert [r["seq_len"] for r in report["results"]] == [None, None]
    labels = [s.predict(TEXTS) for s in subjects]
    package_labels = [p["label"] for p in labels[1]]
    assert package_labels == labels[0]  # the int8 package agrees with PyTorch here
    gold = list(package_labels)
    gold[0] = "class_1" if gold[0] == "class_0" else "class_0"  # one of five now wrong
    assert bench.accuracy(subjects[1], TEXTS, gold, batch=2) == pytest.approx(0.8)


def test_onnx_file_subject_uses_the_packages_tokenizer(tiny):
    onnx = tiny["package"] / "model.onnx"
    s = bench.onnx_file_subject(onnx, tiny["package"], "peer", threads=1)
    ref = bench.package_subject(tiny["package"], threads=1)
    assert s.predict(TEXTS) == ref.predict(TEXTS)


def test_cli_bench_writes_json_and_plot(tiny):
    out = tiny["root"] / "out"
    out.mkdir()
    result = CliRunner().invoke(
        cli,
        [
            "bench",
            str(tiny["package"]),
            "--lengths-from",
            str(tiny["data"]),
            "--batch",
            "1,2",
            "--runs",
            "2",
            "--warmup",
            "0",
            "--threads",
            "1",
            "--cold-runs",
            "0",
            "--no-baseline",
            "--json",
            str(out / "b.json"),
            "--plot",
            str(out / "b.png"),
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads((out / "b.json").read_text())
    assert report["config"]["mode"] == "end-to-end"
    assert {r["batch"] for r in report["results"]} == {1, 2}
    assert (out / "b.png").read_bytes()[:4] == b"\x89PNG"
    assert "onnxruntime int8" in result.output


def test_cli_bench_bad_input(tmp_path):
    runner = CliRunner()
    result = runner.invoke(cli, ["bench", str(tmp_path / "missing")])
    assert result.exit_code == 2 and "does not exist" in result.output
    result = runner.invoke(cli, ["bench", str(tmp_path), "--batch", "0"])
    assert result.exit_code == 2


def test_cli_bench_filters_packages_by_backend(tiny):
    result = CliRunner().invoke(
        cli, ["bench", str(tiny["package"]), "--backend", "onnxruntime:fp32", "--no-baseline"]
    )
    assert result.exit_code == 2 and "no package matches" in result.output


def test_cli_bench_rejects_a_malformed_backend(tiny):
    result = CliRunner().invoke(
        cli, ["bench", str(tiny["package"]), "--backend", "onnxruntime:", "--no-baseline"]
    )
    assert result.exit_code == 2 and "is not BACKEND[:PRECISION]" in result.output


def test_cold_child_reports_one_json_line_without_torch(tiny):
    """The child `edgec bench` spawns for cold start, run as it is run there."""
    import subprocess

    from edgec.bench.cold import child_argv

    argv = child_argv("package", tiny["package"], threads=1)
    assert argv[1:4] == ["-m", "edgec.bench.cold_child", "package"]
    done = subprocess.run(argv, capture_output=True, text=True, check=True)
    report = json.loads(done.stdout)
    assert set(report) == {"seconds", "torch_imported", "rss_mb", "peak_rss_mb"}
    assert report["torch_imported"] is False
    assert report["rss_mb"] > 0 and report["peak_rss_mb"] > 0


def test_ort_sessions_do_not_spin_unless_asked(tiny):
    from edgec_runtime.runners.onnxruntime import session

    key = "session.intra_op.allow_spinning"
    model = tiny["package"] / "model.onnx"
    assert session(model).get_session_options().get_session_config_entry(key) == "0"
    on = session(model, allow_spinning=True)
    assert on.get_session_options().get_session_config_entry(key) == "1"


@pytest.mark.parametrize("spec", ["openvino:fp32", "openvino:int8"])
def test_bench_runs_packages_of_every_available_backend(tiny, spec):
    """Both modes and cold start on an OpenVINO package, next to the ONNX Runtime one."""
    pytest.importorskip("openvino")
    package = bench.build_for_bench(tiny["model"], spec, tiny["root"], TEXTS)
    out = tiny["root"] / f"{spec.replace(':', '-')}.json"
    common = ["--runs", "2", "--warmup", "1", "--threads", "1", "--no-baseline", "--json", str(out)]
    modes = {
        "end-to-end": ["--lengths-from", str(tiny["data"]), "--batch", "1", "--cold-runs", "1"],
        "model": ["--batch", "2", "--seq-len", "16", "--cold-runs", "0"],
    }
    for mode, options in modes.items():
        result = CliRunner().invoke(
            cli, ["bench", str(tiny["package"]), str(package), *common, *options]
        )
        assert result.exit_code == 0, result.output
        report = json.loads(out.read_text())
        assert report["config"]["mode"] == mode
        backends = {s["name"]: s["backend"] for s in report["subjects"]}
        assert sorted(backends.values()) == ["onnxruntime", "openvino"]
        assert {r["subject"] for r in report["results"]} == set(backends)
        assert all(r["stats"]["runs"] == 2 for r in report["results"])
        if mode == "end-to-end":  # a new process loads the OpenVINO package, without torch
            cold = next(s for s in report["subjects"] if s["backend"] == "openvino")
            assert cold["cold_start"]["seconds"] > 0, cold["cold_start"]
            assert cold["cold_start"]["torch_imported"] is False


def test_cli_bench_times_pytorch_under_both_omp_policies(tiny):
    """Default --torch-omp-policy both: a PyTorch row per policy (libgomp's default in a
    worker process), and every ratio names the faster row and its policy."""
    out = tiny["root"] / "policies.json"
    result = CliRunner().invoke(
        cli,
        [
            "bench", str(tiny["package"]), "--batch", "1", "--seq-len", "8", "--runs", "3",
            "--warmup", "1", "--threads", "1", "--cold-runs", "0", "--json", str(out),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    torch_rows = {s["name"]: s for s in report["subjects"] if s["kind"] == "pytorch"}
    policies = {s["omp_wait_policy"] for s in torch_rows.values()}
    assert policies == {"PASSIVE", "default"} and len(torch_rows) == 4
    assert {s["process"].split()[0] for s in torch_rows.values()} == {"this", "worker"}
    assert set(report["config"]["torch_omp_policies"]) == policies
    for r in report["results"]:
        assert r["stats"]["runs"] == 3 and min(r["latencies_ms"]) > 0
        for base in bench.BASELINES:
            vs = r["vs"][base]
            assert vs["against"] in torch_rows
            assert torch_rows[vs["against"]]["baseline"] == base
            assert vs["omp_wait_policy"] == torch_rows[vs["against"]]["omp_wait_policy"]
    assert "against the faster OMP_WAIT_POLICY" in result.output


def test_cli_bench_help_documents_the_omp_policy_option():
    result = CliRunner().invoke(cli, ["bench", "--help"])
    assert result.exit_code == 0 and "--torch-omp-policy" in result.output
