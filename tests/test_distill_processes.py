"""Distillation that holds: several processes, interruptions and seeds, for real.

Tiny random models (their accuracy means nothing), real processes: `edgec distill
--processes 2` trains with two CPU processes (gloo) through torch's launcher and must
give the student one process trains with the same global batch; a run killed by
SIGINT or SIGKILL once a checkpoint exists must resume to the student of an
uninterrupted run; a seed must fix the student and another seed must change it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner
from conftest import random_sentences, write_csv

from edgec.cli import cli
from edgec.distill import DistillConfig, Hyperparameters, distill
from edgec.distill.processes import cores
from edgec.distill.progress import PAUSE_ENV
from edgec.distill.training import complete_checkpoint, resume_checkpoint
from edgec_runtime.errors import BadInput

# Two float32 processes sum the gradients of two half batches where one process sums
# one whole batch: the same numbers in another order, ~1e-7 apart per step (measured:
# at most 3.5e-7 on any weight after 16 steps at lr 5e-3 with the default hidden-state
# term, whose token count per_process shares; 5.8e-3 when each process divided by its
# own count). 1e-5 is 30x that, and 1000x below how far these runs move the weights.
PROCESS_TOLERANCE = 1e-5


def weights(folder):
    from safetensors.torch import load_file

    return load_file(folder / "model.safetensors")


def max_difference(a, b) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max()) for k in a)


def edgec(*args, timeout=180, **kwargs):
    """`python -m edgec ...` in a new process, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "edgec", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        **kwargs,
    )


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """64 training rows (a whole number of global batches of 8: no padded last batch)
    and 16 validation rows."""
    import random

    folder = tmp_path_factory.mktemp("processes")
    rng = random.Random(5)

    def rows(n, seed):
        return [
            {"text": t, "label": rng.choice(["class_0", "class_1"])}
            for t in random_sentences(n, seed)
        ]

    return {
        "train": write_csv(folder / "train.csv", rows(64, 11)),
        "validation": write_csv(folder / "validation.csv", rows(16, 12)),
    }


@pytest.fixture(scope="module")
def teacher_without_dropout(tiny_bert, tmp_path_factory):
    """The tiny BERT with dropout 0: each process draws its own dropout masks, which
    no split of the batch reproduces, so only a dropout-free run can be compared
    between one process and two."""
    import transformers as t

    out = tmp_path_factory.mktemp("nodropout") / "bert"
    shutil.copytree(tiny_bert, out)
    config = t.AutoConfig.from_pretrained(out)
    config.hidden_dropout_prob = config.attention_probs_dropout_prob = 0.0
    config.save_pretrained(out)
    return out


def test_two_processes_train_what_one_trains_with_the_same_global_batch(
    teacher_without_dropout, data, tmp_path
):
    """2 processes x 4 rows vs 1 process x 8 rows, 16 steps (two epochs, reshuffled):
    the Trainer's seeded sampler gives both the same order, and each global batch of
    8 is split 4 + 4 across the processes."""
    common = [
        teacher_without_dropout, "--student", "layers:1", "--train-data", data["train"],
        "--validation-data", data["validation"], "--max-steps", "16", "--eval-steps", "16",
        "--lr", "5e-3", "--seed", "7",
        "--augment", "0",  # 64 rows: 8 global batches an epoch, none cut short
    ]  # fmt: skip
    launch = ["--processes", "2"]
    prefix = []
    if cores() < 2:  # --processes refuses more processes than cores: torchrun does not
        prefix = ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"]
        launch = []
    two = tmp_path / "two"
    args = [*common, "--batch-size", "4", *launch, "--json", "-o", two]
    if prefix:
        result = subprocess.run(
            [sys.executable, *prefix, "-m", "edgec", "distill", *map(str, args)],
            capture_output=True, text=True, timeout=180,
        )  # fmt: skip
    else:
        result = edgec("distill", *args)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)  # rank 0's report, and nothing from rank 1
    training = report["training"]
    assert training["processes"] == 2 and training["global_batch_size"] == 8
    assert training["steps"] == 16 and training["device"] == "cpu"
    assert sorted(p.name for p in two.iterdir()) == [
        "config.json", "distill-report.json", "model.safetensors", "tokenizer.json",
        "tokenizer_config.json",
    ]  # fmt: skip
    assert "Traceback" not in result.stderr

    one = tmp_path / "one"
    hp = Hyperparameters(
        max_steps=16, eval_steps=16, batch_size=8, learning_rate=5e-3, seed=7, augment=0
    )
    single = distill(
        DistillConfig(
            teacher_without_dropout, "layers:1", data["train"], one,
            validation_data=data["validation"], hp=hp,
        )
    )  # fmt: skip
    assert single["training"]["processes"] == 1 and single["training"]["global_batch_size"] == 8
    w1, w2 = weights(one), weights(two)
    teacher = weights(teacher_without_dropout)
    moved = max(float((w1[k] - teacher[k]).abs().max()) for k in w1)
    assert moved > 1000 * PROCESS_TOLERANCE  # the runs really trained
    assert max_difference(w1, w2) < PROCESS_TOLERANCE
    losses = [[e["loss"] for e in r["training"]["log"] if "loss" in e] for r in (single, report)]
    assert losses[0] == pytest.approx(losses[1], abs=1e-6)


def _halves_loss(rank, world, port, batch, out):
    """One process of `test_counted_terms_average_over_the_processes`: its half of the
    batch, the loss of each counted term, written to out/rank.json."""
    import torch

    from edgec.distill import losses

    torch.distributed.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world
    )
    half = {k: v.chunk(world)[rank] for k, v in batch.items()}
    values = {
        "ce": losses.ce_loss(half["logits"], half["labels"]),
        "token_kd": losses.token_kd_loss(half["tokens"], half["teacher_tokens"], half["mask"], 2.0),
        "hidden": losses.hidden_loss([half["hidden"]], [half["teacher_hidden"]], [(0, 0)], half["mask"]),
    }  # fmt: skip
    (out / f"{rank}.json").write_text(json.dumps({k: float(v) for k, v in values.items()}))
    torch.distributed.destroy_process_group()


def test_counted_terms_average_over_the_processes(tmp_path):
    """Terms averaged over labelled rows, tagged words or real tokens: two processes
    whose halves hold unequal counts (2 + 1 labels, 7 + 3 tokens) average, as DDP
    averages their gradients, to the whole batch's loss in one process."""
    import socket

    import torch
    import torch.multiprocessing as mp

    from edgec.distill import losses

    g = torch.Generator().manual_seed(0)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0], [1, 1, 0, 0], [1, 0, 0, 0]])
    batch = {
        "logits": torch.randn(4, 3, generator=g),
        "labels": torch.tensor([0, 2, losses.IGNORE, 1]),  # process 0: 2, process 1: 1
        "tokens": torch.randn(4, 4, 5, generator=g),
        "teacher_tokens": torch.randn(4, 4, 5, generator=g),
        "hidden": torch.randn(4, 4, 8, generator=g),
        "teacher_hidden": torch.randn(4, 4, 8, generator=g),
        "mask": mask,  # process 0: 7 tokens, process 1: 3
    }
    whole = {
        "ce": losses.ce_loss(batch["logits"], batch["labels"]),
        "token_kd": losses.token_kd_loss(batch["tokens"], batch["teacher_tokens"], mask, 2.0),
        "hidden": losses.hidden_loss([batch["hidden"]], [batch["teacher_hidden"]], [(0, 0)], mask),
    }  # fmt: skip
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_halves_loss, args=(2, port, batch, tmp_path), nprocs=2)
    halves = [json.loads((tmp_path / f"{r}.json").read_text()) for r in (0, 1)]
    for term, value in whole.items():
        assert (halves[0][term] + halves[1][term]) / 2 == pytest.approx(float(value), rel=1e-5)
    # and the reason: each half's own mean would not average to it
    pieces = zip(
        batch["hidden"].chunk(2), batch["teacher_hidden"].chunk(2), mask.chunk(2), strict=True
    )
    own = [losses.hidden_loss([h], [t], [(0, 0)], m) for h, t, m in pieces]
    assert float(sum(own) / 2) != pytest.approx(float(whole["hidden"]), rel=1e-3)


def test_an_error_in_the_processes_is_one_line(tiny_bert, data, tmp_path):
    """A mistake the processes meet after launch (here the teacher's depth) comes back
    through the launcher as edgec's line and exit code, once."""
    if cores() < 2:
        pytest.skip("--processes 2 needs 2 cores")  # the refusal is tested in test_distill
    result = edgec(
        "distill", tiny_bert, "--student", "layers:5", "--train-data", data["train"],
        "--processes", "2", "-o", tmp_path / "s", timeout=120,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines == ["error: --student layers:5: the teacher has 2 layers, so N must be 1..1"]
    assert not (tmp_path / "s").exists()


# ---------------------------------------------------------------- interrupted runs

# 16 steps of 4 rows an epoch, so a kill at step 20 resumes in the second (reshuffled)
# epoch; a checkpoint, and a validation, every 4 steps; no early stop.
RECIPE = dict(max_steps=24, eval_steps=4, batch_size=4, learning_rate=1e-3, patience=100)
RECIPE_FLAGS = [x for k, v in RECIPE.items() for x in (f"--{k.replace('_', '-')}", str(v))]


@pytest.fixture(scope="module")
def uninterrupted(tiny_bert, data, tmp_path_factory):
    """The reference: the same recipe (dropout on, as the tiny BERT has it) run through."""
    out = tmp_path_factory.mktemp("uninterrupted") / "s"
    config = DistillConfig(
        tiny_bert, "layers:1", data["train"], out, validation_data=data["validation"],
        hp=Hyperparameters(**RECIPE),
    )  # fmt: skip
    report = distill(config)
    return out, report


def run_and_kill(teacher, data, out, sig, at_step: int):
    """Start `edgec distill` and send `sig` once checkpoint `at_step` is complete."""
    process = subprocess.Popen(
        [sys.executable, "-m", "edgec", "distill", str(teacher), "--student", "layers:1",
         "--train-data", str(data["train"]), "--validation-data", str(data["validation"]),
         *RECIPE_FLAGS, "-o", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, PAUSE_ENV: "1.5"},  # time to signal it at the checkpoint
        # a background job (`make test &`, nohup) inherits SIGINT ignored, and Python then
        # never raises KeyboardInterrupt: give the run the default a terminal gives
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip

    def reached() -> bool:  # any complete checkpoint at or past the step (older ones rotate)
        found = (out / "checkpoints").glob("checkpoint-*")
        return any(int(c.name.split("-")[1]) >= at_step and complete_checkpoint(c) for c in found)

    deadline = time.monotonic() + 120
    signalled = False
    while process.poll() is None and time.monotonic() < deadline:
        if reached():
            process.send_signal(sig)
            signalled = True
            break
        time.sleep(0.005)
    _, stderr = process.communicate(timeout=120)
    assert signalled, (
        f"the run ended (exit {process.returncode}) before checkpoint {at_step}: {stderr}"
    )
    return process.returncode, stderr


@pytest.mark.parametrize(
    "sig, at_step", [(signal.SIGINT, 4), (signal.SIGKILL, 20)], ids=["SIGINT", "SIGKILL"]
)
def test_resume_after_a_signal_equals_the_uninterrupted_run(
    tiny_bert, data, uninterrupted, tmp_path, sig, at_step
):
    out = tmp_path / "s"
    code, stderr = run_and_kill(tiny_bert, data, out, sig, at_step)
    if sig == signal.SIGINT:
        assert code == 130 and "continue with --resume" in stderr, stderr
    else:
        assert code == -signal.SIGKILL
    assert not (out / "distill-report.json").exists()  # it did not finish
    last = resume_checkpoint(out)
    assert last is not None and int(last.name.split("-")[1]) >= at_step
    # what a kill in the middle of a save leaves: a newer folder without its state file
    partial = out / "checkpoints" / "checkpoint-23"
    shutil.copytree(last, partial)
    (partial / "trainer_state.json").write_text('{"global_step": 3')
    assert resume_checkpoint(out) == last

    result = CliRunner().invoke(
        cli,
        ["distill", str(tiny_bert), "--student", "layers:1", "--train-data", str(data["train"]),
         "--validation-data", str(data["validation"]), *RECIPE_FLAGS, "--resume", "--json",
         "-o", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["training"]["resumed_from"] == last.name and report["training"]["steps"] == 24
    reference_dir, reference = uninterrupted
    assert report["training"]["best_checkpoint"] == reference["training"]["best_checkpoint"]
    # the same weights, optimizer, schedule, data position and RNG states (dropout is on):
    # bit for bit on the machines this ran on; 1e-6 allows another BLAS's rounding
    assert max_difference(weights(out), weights(reference_dir)) <= 1e-6


def test_resume_needs_a_complete_checkpoint(tiny_bert, data, tmp_path):
    out = tmp_path / "s"
    (out / "checkpoints" / "checkpoint-4").mkdir(parents=True)
    (out / "checkpoints" / "checkpoint-4" / "model.safetensors").write_bytes(b"")
    result = CliRunner().invoke(
        cli,
        ["distill", str(tiny_bert), "--student", "layers:1", "--train-data", str(data["train"]),
         "--resume", "-o", str(out)],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "holds only incomplete checkpoints to resume from; drop --resume" in result.output


# ---------------------------------------------------------------- seeds


def test_a_seed_fixes_the_student_and_another_changes_it(tiny_bert, data, tmp_path):
    """Dropout on, a layers:1 student: the seed decides the data order and the dropout
    masks (and the held-out validation rows), so it decides the student."""

    def student(seed, name):
        hp = Hyperparameters(max_steps=8, batch_size=8, learning_rate=1e-3, seed=seed)
        distill(DistillConfig(tiny_bert, "layers:1", data["train"], tmp_path / name, hp=hp))
        return weights(tmp_path / name)

    first, again, other = student(42, "a"), student(42, "b"), student(1, "c")
    assert max_difference(first, again) == 0.0
    assert max_difference(first, other) > 1e-4


def test_processes_run_one_process_without_a_launcher(monkeypatch):
    """Outside a launcher this is rank 0 of 1; under one it reads the launcher's
    environment (torchrun and accelerate launch set the same variables)."""
    from edgec.distill import processes

    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(key, raising=False)
    assert processes.world_size() == 1 and processes.is_main()
    assert processes.local_device("cuda") == "cuda"
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert not processes.is_main() and processes.local_device("cuda") == "cuda:1"
    monkeypatch.delenv(processes.ERRORS_DIR, raising=False)
    with pytest.raises(BadInput, match="already one of 2 processes started by a launcher"):
        processes.check_processes(2, "auto")
