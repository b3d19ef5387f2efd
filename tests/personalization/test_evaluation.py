"""The evaluation follows the paper's protocol: every test photo × every subject, MC accuracy."""

import json
from dataclasses import replace
from pathlib import Path

import pytest

from personalization.config import TrainConfig
from personalization.engine import Engine
from personalization.evaluation import Evaluator, Method, Probe, load_dataset, method_by_name
from personalization.metrics import choose_threshold, recognition_score
from tests.conftest import OTHER_COLOURS, SUBJECT_COLOUR, make_photo

COLOURS = {"kami": SUBJECT_COLOUR, "rex": OTHER_COLOURS[1]}


@pytest.fixture
def dataset_root(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    for number, (key, colour) in enumerate(COLOURS.items()):
        for split, count in (("train", 3), ("test", 2)):
            folder = root / split / key
            folder.mkdir(parents=True)
            for index in range(count):
                make_photo(colour, 1000 * number + 10 * (split == "test") + index).save(
                    folder / f"{index}.png"
                )
    (root / "negatives").mkdir()
    for index in range(8):
        make_photo(OTHER_COLOURS[2 + index % 3], 5000 + index).save(root / "negatives" / f"{index}.png")
    subjects = {key: {"kind": "dog", "description": f"a {key} dog"} for key in COLOURS}
    (root / "subjects.json").write_text(json.dumps(subjects))
    text_qa = {
        key: [
            {
                "question": f"What colour is <{key}>?",
                "options": {"A": "Red", "B": "Blue"},
                "correct_answer": "A",
            }
        ]
        for key in COLOURS
    }
    (root / "text_qa.json").write_text(json.dumps(text_qa))
    return root


def test_vanilla_recognition_is_every_photo_against_every_subject(
    tiny_engine: Engine, dataset_root: Path
) -> None:
    dataset = load_dataset(dataset_root)
    assert [s.key for s in dataset.subjects] == ["kami", "rex"]
    assert dataset.negatives == dataset_root / "negatives"
    evaluator = Evaluator(tiny_engine, dataset, TrainConfig())
    report = evaluator.run(method_by_name("vanilla"))

    from personalization.images import load_image

    for subject in dataset.subjects:
        other = next(s for s in dataset.subjects if s is not subject)
        name = subject.key.title()
        prompt = tiny_engine.encoder.user_turn(f"Is {name} in this photo?", with_image=True)

        def p_yes(path: Path, prompt: str = prompt) -> float:
            features = tiny_engine.image_features([load_image(path)])
            return float(
                tiny_engine.yes_share(tiny_engine.last_logits([prompt], features, evaluator_table()))[0]
            )

        own = [p_yes(p) for p in subject.test]
        others = [p_yes(p) for p in other.test]
        expected = recognition_score(own, others, 0.5)
        got = report["subjects"][subject.key]
        assert got["positive"] == pytest.approx(expected.positive)
        assert got["negative"] == pytest.approx(expected.negative)
        assert got["weighted"] == pytest.approx(0.5 * expected.positive + 0.5 * expected.negative)
        assert got["text_qa"] in (0.0, 1.0) and got["visual_qa"] is None
        assert got["scores"]["own"] == pytest.approx(own, abs=1e-4)
        assert got["scores"]["others"] == pytest.approx(others, abs=1e-4)
    assert report["weighted"] == pytest.approx(0.5 * report["positive"] + 0.5 * report["negative"], abs=1e-4)


def test_choice_by_answer_picks_the_option_the_model_finds_likeliest(
    tiny_engine: Engine, dataset_root: Path
) -> None:
    from personalization.trainer import answer_loss

    report = Evaluator(tiny_engine, load_dataset(dataset_root), TrainConfig()).run(method_by_name("vanilla"))
    table = evaluator_table()
    for key in COLOURS:
        prompt = tiny_engine.encoder.user_turn(f"What colour is {key.title()}?", with_image=False)
        loss = {
            option: float(
                answer_loss(
                    tiny_engine.spliced,
                    [tiny_engine.encoder.encode(prompt, option, table)],
                    table,
                    [[]],
                    [],
                    pad_id=tiny_engine.pad_id,
                )
            )
            for option in ("Red", "Blue")
        }
        expected = 1.0 if loss["Red"] < loss["Blue"] else 0.0  # "A" (Red) is the right option
        assert report["subjects"][key]["text_qa_by_answer"] == expected
        assert report["subjects"][key]["visual_qa_by_answer"] is None


def evaluator_table():
    from personalization.splice import SubjectTable

    return SubjectTable.of([])


def test_learned_method_trains_each_subject_and_reports_time(tiny_engine: Engine, dataset_root: Path) -> None:
    config = TrainConfig(
        epochs=1, positive_examples=4, hard_negatives_per_photo=1, easy_negatives=2, text_qa=False
    )
    report = Evaluator(tiny_engine, load_dataset(dataset_root), config).run(method_by_name("learned", k=2))
    assert report["method"] == "learned-k2"
    for key in COLOURS:
        assert report["subjects"][key]["train_seconds"] >= 0
        assert 0 <= report["subjects"][key]["weighted"] <= 1


def test_breakdown_by_scene_and_lookalike_kind_on_a_hand_made_case(
    tiny_engine: Engine, dataset_root: Path
) -> None:
    for index in range(3):
        folder = dataset_root / "test_lookalikes" / "kami"
        folder.mkdir(parents=True, exist_ok=True)
        make_photo(SUBJECT_COLOUR, 7000 + index).save(folder / f"{index}.png")
    scenes = {"kami": {"test/kami/0.png": {"others": 0}, "test/kami/1.png": {"others": 2}}}
    (dataset_root / "test_scenes.json").write_text(json.dumps(scenes))
    entries = [
        {"path": "test_lookalikes/kami/0.png", "differs": ["colour"], "fine_only": False},
        {"path": "test_lookalikes/kami/1.png", "differs": ["shade"], "fine_only": True},
        {"path": "test_lookalikes/kami/2.png", "differs": ["marking"], "fine_only": True},
    ]
    (dataset_root / "lookalikes.json").write_text(json.dumps({"kami": {"test": entries, "negatives": []}}))
    dataset = load_dataset(dataset_root)
    evaluator = Evaluator(tiny_engine, dataset, TrainConfig())
    probes = {"kami": Probe("", "Kami", [], threshold=0.6), "rex": Probe("", "Rex", [])}
    scores = {
        # own test photos 0 (alone) and 1 (with two others); look-alikes 0 (named), 1 and 2 (fine)
        "kami": {"own": [0.7, 0.59], "others": [0.1, 0.9], "lookalikes": [0.2, 0.65, 0.3]},
        # rex has no scene or look-alike records: it adds nothing to the breakdown
        "rex": {"own": [0.9, 0.1], "others": [0.1, 0.1], "lookalikes": []},
    }
    assert evaluator.breakdown(probes, scores) == {
        "positive_alone": [1.0],
        "positive_with_others": [0.0],
        "lookalike_named_rejected": [1.0],
        "lookalike_fine_rejected": [0.0, 1.0],
    }


def test_threshold_choice_and_scores_on_a_hand_made_case() -> None:
    positives, negatives = [0.9, 0.8, 0.3], [0.2, 0.1, 0.6, 0.5]
    score = recognition_score(positives, negatives, 0.55)
    assert (score.positive, score.negative) == (pytest.approx(2 / 3), pytest.approx(3 / 4))
    assert score.weighted == pytest.approx(0.5 * 2 / 3 + 0.5 * 3 / 4)
    threshold, accuracy = choose_threshold([0.9, 0.8], [0.2, 0.3])
    assert 0.3 < threshold < 0.8 and accuracy == 1.0
    assert threshold == pytest.approx(0.55)  # the middle of the widest gap
    assert choose_threshold([0.9], []) == (0.5, 0.0)


def test_method_names_choose_the_ablations() -> None:
    assert method_by_name("reading-init", k=8) == Method("reading-init-k8", "learned", k=8, reading_init=True)
    assert method_by_name("no-text-qa").text_qa is False
    assert method_by_name("no-hard-negatives").hard_negatives is False


def test_unknown_method_and_bad_layout_are_clear_errors(tmp_path: Path) -> None:
    from personalization.errors import PersonalizationError

    with pytest.raises(PersonalizationError, match="unknown method"):
        method_by_name("magic")
    with pytest.raises(PersonalizationError, match="train/<subject>"):
        load_dataset(tmp_path)


@pytest.mark.parametrize(
    ("flags", "calibrated", "style"),
    [
        ((), True, "sentence"),
        (("--recipe", "toy"), False, "word"),
        (("--recipe", "toy", "--answer-style", "sentence"), False, "sentence"),
        (
            ("--recipe", "toy", "--set", "calibrate_threshold=yes", "--set", "answer_style=sentence"),
            True,
            "sentence",
        ),
    ],
)
def test_eval_command_picks_the_recipe_asked_for(
    tiny_model_dir: Path,
    dataset_root: Path,
    tmp_path: Path,
    flags: tuple[str, ...],
    calibrated: bool,
    style: str,
) -> None:
    """Weights in a folder get the paper's recipe unless told they are toy-world weights."""
    import subprocess
    import sys

    out = tmp_path / "report.json"
    command = [str(Path(sys.executable).with_name("yollava")), "eval", "--data", str(dataset_root)]
    command += ["--model", str(tiny_model_dir), "--device", "cpu", "--dtype", "fp32", "--threads", "2"]
    command += ["--method", "vanilla", "--json", str(out), *flags]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    recipe = report["train_config"]
    assert (recipe["calibrate_threshold"], recipe["answer_style"]) == (calibrated, style)
    assert set(report["methods"]) == {"vanilla"}


def test_eval_refuses_an_unknown_recipe_field_in_one_line_before_loading(
    dataset_root: Path, tmp_path: Path
) -> None:
    import subprocess
    import sys

    command = [str(Path(sys.executable).with_name("yollava")), "eval", "--data", str(dataset_root)]
    command += ["--model", str(tmp_path / "no-such-model"), "--json", str(tmp_path / "r.json")]
    done = subprocess.run(
        [*command, "--set", "epochz=3"], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and "FIELD one of" in done.stderr
    assert "epochs" in done.stderr and not (tmp_path / "r.json").exists()


def test_members_are_scored_together_and_each_alone(tiny_engine: Engine, dataset_root: Path) -> None:
    config = TrainConfig(
        epochs=1, positive_examples=4, hard_negatives_per_photo=1, easy_negatives=2, text_qa=False, members=2
    )
    report = Evaluator(tiny_engine, load_dataset(dataset_root), config).run(method_by_name("learned", k=2))
    assert report["weighted_by_member"] is not None and len(report["weighted_by_member"]) == 2
    for key in COLOURS:
        subject = report["subjects"][key]
        first, second = subject["member_scores"]
        for group in ("own", "others"):
            mean = [(a + b) / 2 for a, b in zip(first[group], second[group], strict=True)]
            assert subject["scores"][group] == pytest.approx(mean, abs=2e-4)
        assert first["own"] != second["own"]
    single = Evaluator(tiny_engine, load_dataset(dataset_root), replace(config, members=1))
    alone = single.run(method_by_name("learned", k=2))
    assert alone["weighted_by_member"] is None and "member_scores" not in alone["subjects"]["kami"]
