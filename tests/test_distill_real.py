"""`edgec build --distill layers:3` on the real sentiment teacher, on a short schedule.

Twelve steps on 384 training sentences (an eighth of an epoch) cannot show the
>= 97 % retention of a full run (that is measured once, by hand: see the distill notes
in the README); this test checks that the whole chain works on a real model, that the
student learnt from the teacher, and that the numbers it records agree with each
other, with the teacher's own metrics and with the models' shapes.
"""

from __future__ import annotations

import copy

import pytest
from conftest import write_csv

pytestmark = pytest.mark.slow

# What 12 steps keep of the quick teacher's test accuracy. Measured on the 2-core
# machine with today's student (layers 1, 3, 5; hidden-state term on): 70.0 % vs
# 80.25 %, retention 0.872 (0.861 without the hidden term), where the same 3-layer copy
# before training scores 58.1 % (retention 0.72; it answers one class for 91 % of the
# balanced test split). The floor leaves 4 points of accuracy (2.5 standard errors on
# 800 sentences) for other machines' numerics, and the untrained copy fails it by 8.
MIN_SHORT_RUN_RETENTION = 0.82


def test_build_distill_on_the_real_teacher(sentiment_teacher, sentiment_splits, tmp_path):
    import sentiment
    from transformers import AutoConfig

    from edgec.distill.students import expected_speedup
    from edgec.model import load_source_model
    from edgec.pipeline import BuildRequest, build
    from edgec.targets import get_target

    rows = [{"text": t, "label": y} for t, y in sentiment.read_split(sentiment_splits["train"])]
    train = write_csv(tmp_path / "train.csv", rows[:384])
    out = tmp_path / "pkg"
    manifest = build(
        BuildRequest(
            model=sentiment_teacher,
            target=get_target("x86-cpu"),
            precision="fp32",  # a barely trained student has tiny margins: int8 could flip them
            output=out,
            eval_data=sentiment_splits["test"],
            distill="layers:3",
            train_data=train,
            min_retention=0.0,  # a truncated schedule: the gate itself is tested on tiny models
            # the recipe the floor below was measured with: 12 steps of augmented copies
            # at lr 1e-4 (the defaults then: alpha 0.5, hidden weight 1) were a different,
            # noisier start (59 %)
            distill_options={
                "max_steps": 12, "batch_size": 32, "eval_steps": 6,
                "augment": 0, "learning_rate": 5e-5, "alpha": 0.5, "hidden_weight": 1.0,
            },  # fmt: skip
        )
    )
    record = manifest["distillation"]
    teacher_metrics = sentiment.teacher_metrics(sentiment_teacher)
    assert record["teacher"]["accuracy"] == pytest.approx(
        teacher_metrics["test_accuracy"] * 100, abs=0.5
    )
    assert record["teacher"]["sha256"] == load_source_model(sentiment_teacher).weights_sha256
    assert record["student"]["layers"] == 3
    assert record["student"]["kept_teacher_layers"] == [1, 3, 5]
    assert record["training_steps"] == 12
    assert record["retention"] == pytest.approx(
        record["student"]["accuracy"] / record["teacher"]["accuracy"]
    )
    assert record["retention"] >= MIN_SHORT_RUN_RETENTION, record["student"]["accuracy"]
    # The FLOP ratio from the shapes: the student is the teacher's width at 3 of its 6
    # layers, so 2.0 at any sequence length. The measured speedup is a timing: recorded,
    # not asserted here; benchmarks/ measures its size.
    teacher_config = AutoConfig.from_pretrained(sentiment_teacher)
    student_config = copy.deepcopy(teacher_config)
    student_config.num_hidden_layers = record["student"]["layers"]
    flop_ratio = expected_speedup(teacher_config, student_config)
    assert flop_ratio == pytest.approx(2.0)
    assert record["expected_speedup"] == pytest.approx(flop_ratio, abs=0.005)  # 2 decimals
    assert record["recipe"]["data"]["train"]["rows"] == 346  # 10 % held out for validation
    # Parity was measured against the student, not the teacher.
    parity = manifest["verification"]["parity"]
    assert manifest["verification"]["status"] == "passed"
    assert parity["reference"]["accuracy"] == pytest.approx(record["student"]["accuracy"], abs=0.2)
    assert manifest["source_model"]["num_layers"] == 3
