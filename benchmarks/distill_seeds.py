"""Distillation recipes at several seeds, on the real sentiment teacher.

One seed proves nothing about a recipe: fine-tuning a small student moves by a point
between seeds, and 800 test sentences resolve 0.125 points each. This runs each named
recipe (edgec's defaults with a few hyperparameters changed, optionally with the
example's unlabeled review sentences) at each seed with `edgec.distill`, exactly as
`edgec distill --student layers:3` would, and reports the student's test accuracy,
its retention of the teacher and the training time, with mean and standard deviation
over the seeds.

    .venv/bin/python benchmarks/distill_seeds.py --recipes defaults,augment4 --seeds 42,1,2

Each (recipe, seed) result is kept in benchmarks/distill_seeds.json, keyed by the
recipe's full hyperparameters, so a rerun only trains what changed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import asdict, replace
from pathlib import Path
from typing import NamedTuple

HERE = Path(__file__).resolve().parent
for example in ("sentiment", "ner"):
    sys.path.insert(0, str(HERE.parent / "examples" / example))

RESULTS = HERE / "distill_seeds.json"
STUDENT = "layers:3"  # the task's own spread: 1,3,5 of a classifier, 0,2,4 of the others
BAR = 0.97  # the retention the issue asks of every seed


class Recipe(NamedTuple):
    """Hyperparameters overrides, unlabeled review sentences, the --student spec."""

    hp: dict
    unlabeled: int = 0
    student: str = STUDENT


# "defaults" is whatever edgec's defaults are now; the others spell out every knob they
# were measured with that has since changed, so their names keep meaning the same run.
BOTTOM = "layers:0,2,4"  # what layers:3 kept before 2026-12-02 (late)
# no hidden-state transfer and CE beside the KD: the defaults before then
PLAIN = {"hidden_weight": 0.0, "alpha": 0.5}
OLD = {**PLAIN, "learning_rate": 5e-5, "augment": 0}  # the defaults before 2026-12-02
AUGMENT4 = {**PLAIN, "augment": 4, "learning_rate": 1e-4}  # the defaults of 2026-12-02
TOP = "layers:1,3,5"
RECIPES: dict[str, Recipe] = {
    "defaults": Recipe({}),
    "defaults+unlabeled6000": Recipe({}, 6000),
    "before-2026-12-02": Recipe(OLD, 0, BOTTOM),
    "before-2026-12-02+unlabeled6000": Recipe(OLD, 6000, BOTTOM),
    "augment4": Recipe({**AUGMENT4, "learning_rate": 5e-5}, 0, BOTTOM),
    "augment4-lr1e-4": Recipe(AUGMENT4, 0, BOTTOM),
    "augment4-lr1e-4+unlabeled6000": Recipe(AUGMENT4, 6000, BOTTOM),
    "augment8-lr1e-4": Recipe({**AUGMENT4, "augment": 8}, 0, BOTTOM),
    "augment4-lr1e-4-top": Recipe(AUGMENT4, 0, TOP),
    "augment4-lr1e-4-alpha1-top": Recipe({**AUGMENT4, "alpha": 1.0}, 0, TOP),
    "augment8-lr1e-4-2epochs-top": Recipe({**AUGMENT4, "augment": 8, "epochs": 2.0}, 0, TOP),
    # what the defaults became (late 2026-12-02): layers:3 keeps 1,3,5, hidden weight 1
    "augment4-lr1e-4-hidden1-top": Recipe({**AUGMENT4, "hidden_weight": 1.0}, 0, TOP),
    "augment4-lr1e-4-hidden1": Recipe({**AUGMENT4, "hidden_weight": 1.0}, 0, BOTTOM),
    # candidates screened at seed 2, the seed the defaults above lose (2026-12-03)
    "augment4-lr1e-4-hidden1-alpha1-top": Recipe(
        {**AUGMENT4, "hidden_weight": 1.0, "alpha": 1.0}, 0, TOP
    ),
    "augment4-lr1e-4-hidden1-alpha1": Recipe(  # the tagger's defaults, KD only
        {**AUGMENT4, "hidden_weight": 1.0, "alpha": 1.0}, 0, BOTTOM
    ),
    # what the classifier's defaults became (2026-12-03, late)
    "augment4-lr1e-4-hidden3-alpha1-top": Recipe(
        {**AUGMENT4, "hidden_weight": 3.0, "alpha": 1.0}, 0, TOP
    ),
}


def sentiment_task() -> dict:
    import sentiment

    splits = sentiment.prepare_splits()
    return {"teacher": sentiment.train_teacher("full"), **splits, "unlabeled": sentiment}


def ner_task() -> dict:
    import ner

    splits = ner.prepare_splits()
    return {"teacher": ner.train_teacher("quick"), **splits, "unlabeled": None}


def embedding_task() -> dict:
    """all-MiniLM-L6-v2 itself (a real sentence embedder, no fine-tuning needed) on the
    sentiment sentences: their texts only."""
    import sentiment

    splits = sentiment.prepare_splits()
    return {"teacher": sentiment.fetch_base_model(), **splits, "unlabeled": sentiment}


TASKS = {"sentiment": sentiment_task, "ner": ner_task, "embedding": embedding_task}


def run_one(task: str, name: str, seed: int) -> dict:
    from edgec.distill import DistillConfig, Hyperparameters, distill
    from edgec.ui import SilentUI
    from edgec_runtime.paths import cache_dir

    recipe = RECIPES[name]
    unlabeled = recipe.unlabeled
    hp = replace(Hyperparameters(), **recipe.hp, seed=seed)
    data = TASKS[task]()
    if unlabeled and data["unlabeled"] is None:
        raise SystemExit(f"{task} has no unlabeled texts for recipe {name}")
    report = distill(
        DistillConfig(
            teacher=data["teacher"],
            student=recipe.student,
            train_data=data["train"],
            output=cache_dir("bench", "distill") / f"{task}-{name}-{seed}",
            validation_data=data["validation"],
            eval_data=data["test"],
            unlabeled=data["unlabeled"].prepare_unlabeled(unlabeled) if unlabeled else None,
            hp=hp,
            force=True,
        ),
        SilentUI(),
    )
    return {
        "task": task,
        "recipe": name,
        "seed": seed,
        "hyperparameters": asdict(hp),
        "unlabeled": unlabeled,
        "student_spec": recipe.student,
        "teacher": report["teacher"],
        "student": report["student"],
        "retention": report["retention"],
        "agreement": report["agreement"],
        "train_seconds": report["training"]["seconds"],
        "steps": report["training"]["steps"],
        "rows": report["recipe"]["augmented_rows"] + report["recipe"]["unlabeled_rows"],
        "speed": report.get("speed"),
    }


def _same_run(result: dict, hyperparameters: dict, recipe: Recipe) -> bool:
    return (
        result["hyperparameters"] == hyperparameters
        and result["unlabeled"] == recipe.unlabeled
        and result["student_spec"] == recipe.student
    )


def load() -> list[dict]:
    return json.loads(RESULTS.read_text()) if RESULTS.exists() else []


def summary(results: list[dict]) -> list[str]:
    """A markdown table: per task and recipe, the student's figure per seed, mean ± std
    and worst retention, mean training seconds."""
    lines = [
        "| task | recipe | student per seed | retention mean ± std | worst | train s (mean) |",
        "|---|---|---|---|---|---|",
    ]
    for task, name in dict.fromkeys((r["task"], r["recipe"]) for r in results):
        runs = [r for r in results if (r["task"], r["recipe"]) == (task, name)]
        runs.sort(key=lambda r: r["seed"])
        kept = [r["retention"] * 100 for r in runs]
        std = statistics.stdev(kept) if len(kept) > 1 else 0.0
        per_seed = " / ".join(f"{_figure(r)} ({r['seed']})" for r in runs)
        seconds = statistics.mean(r["train_seconds"] for r in runs)
        lines.append(
            f"| {task} | {name} | {per_seed} | {statistics.mean(kept):.2f} ± {std:.2f} % | "
            f"{min(kept):.2f} % | {seconds:.0f} |"
        )
    return lines


def _figure(run: dict) -> str:
    """The student's own figure: accuracy, entity F1 or similarity Spearman."""
    student = run["student"]
    for key, fmt in (("accuracy", "{:.2f}"), ("entity_f1", "{:.2f}"),
                     ("similarity_spearman", "{:.4f}")):  # fmt: skip
        if student.get(key) is not None:
            return fmt.format(student[key])
    return "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="sentiment", choices=sorted(TASKS))
    parser.add_argument("--recipes", default="defaults", help=f"of: {', '.join(RECIPES)}")
    parser.add_argument("--seeds", default="42,1,2")
    args = parser.parse_args()
    from edgec.distill import Hyperparameters

    results = load()
    for name in args.recipes.split(","):
        if name not in RECIPES:
            parser.error(f"unknown recipe {name!r}; choose from {', '.join(RECIPES)}")
        recipe = RECIPES[name]
        for seed in (int(s) for s in args.seeds.split(",")):
            wanted = asdict(replace(Hyperparameters(), **recipe.hp, seed=seed))
            key = (args.task, name, seed)
            same = [r for r in results if (r["task"], r["recipe"], r["seed"]) == key]
            if any(_same_run(r, wanted, recipe) for r in same):
                continue
            result = run_one(args.task, name, seed)
            # read again before writing: another run may have added its own meanwhile
            results = [r for r in load() if (r["task"], r["recipe"], r["seed"]) != key]
            results.append(result)
            RESULTS.write_text(json.dumps(results, indent=1) + "\n")
            print(json.dumps(result), flush=True)
    print("\n".join(summary(results)))


if __name__ == "__main__":
    main()
