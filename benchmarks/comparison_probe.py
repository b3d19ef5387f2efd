"""Can a fresh toy language model learn to check a description against an image?

Recognition ("Is Bo in this photo?") rests on comparing what the prompt says with what the image
shows. This probe isolates the language model: a fresh toy LLaVA (the shipped sizes) is trained on
yes/no questions (:func:`personalization.toyworld.corpus.comparison_turn`) with *ideal* image
tokens in place of the projector's (per patch, the sum of the embeddings of the words naming its
entity, see ``personalization.toyworld.pretrain.ideal_image_tokens``), so neither tower nor
projector can be blamed. Scenes hold one to three entities of distinct kinds; half the questions are true. Two
question forms (``--questions``):

* ``colour``: ``Is there a <colour> <kind>?``; false ones name a wrong colour of a present kind or
  an absent kind;
* ``named``: ``Pim is a red striped dog with a hat. Is Pim in this photo?``, as the
  text-description method asks; false ones are one named attribute off a present entity (a
  look-alike) or an absent kind.

Three answer forms:

* ``direct``: ``Yes`` / ``No``;
* ``reading-first``: the model first says what it sees, then decides —
  ``The dog is blue. No.`` / ``There is no cat. No.`` — so the decision compares words of the
  text instead of words with image tokens;
* ``checked``: each named attribute read and checked on its own, then the decision —
  ``The dog: blue not red, striped yes, hat yes. No.`` — so each step compares one word.

Every ``--eval-every`` steps it reports, on 192 held-out questions (64 scenes):
``decision_forced`` (Yes/No right when the earlier answer words are given, i.e. teacher-forced),
``reading_forced`` (the attribute words of the reading right, teacher-forced; reading-first only) and
``decision_greedy`` (the Yes/No of the model's own greedy answer right, the end-to-end figure).

    python benchmarks/comparison_probe.py --answers reading-first --questions named --steps 300 \\
        --json benchmarks/results/comparison_probe_named_reading_first.json
"""

import argparse
import json
import platform
import random
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from personalization.modeling import TinyLlavaSpec, build_llava, build_processor, cpu_autocast
from personalization.toyworld.corpus import (
    ANSWER_FORMS,
    QUESTION_FORMS,
    Conversation,
    comparison_turn,
)
from personalization.toyworld.pretrain import (
    TOYWORLD_SPEC,
    _ProjectorTap,
    attribute_word_ids,
    build_toy_tokenizer,
    collate,
    ideal_image_tokens,
    image_token_count,
)
from personalization.toyworld.world import (
    ACCESSORIES,
    COLOURS,
    KINDS,
    PATTERNS,
    random_entity,
    render_scene_with_owners,
)

QUESTIONS_PER_SCENE = 3
EVAL_SCENES = 64
MAX_ANSWER_TOKENS = 24


def scene(
    rng: random.Random, answers: str | tuple[str, ...], form: str, *, mark_direct: bool = False
) -> Conversation:
    """A scene of one to three entities of distinct kinds with three questions of ``form``, each
    answered in ``answers`` (or in one of several, picked at random per question). With
    ``mark_direct`` a question to be answered directly ends with ``Answer yes or no.``, so a model
    taught several answer forms is told which one to give."""
    entities = [random_entity(rng, kind=kind) for kind in rng.sample(KINDS, rng.choice((1, 2, 3)))]
    image, owners = render_scene_with_owners(entities, rng)
    forms = (answers,) if isinstance(answers, str) else answers
    turns = []
    for _ in range(QUESTIONS_PER_SCENE):
        chosen = forms[0] if len(forms) == 1 else rng.choice(forms)
        turns.append(comparison_turn(entities, rng, form=form, answers=chosen, mark_direct=mark_direct))
    return Conversation(image=image, turns=turns, entities=entities, owners=owners)


class Probe:
    def __init__(self, answers: str, seed: int) -> None:
        self.answers = answers
        self.tokenizer = build_toy_tokenizer(seed)
        self.spec = TinyLlavaSpec(**{**asdict(TOYWORLD_SPEC), "seed": seed})
        self.processor = build_processor(
            self.tokenizer, image_size=self.spec.image_size, patch_size=self.spec.patch_size
        )
        self.model = build_llava(self.tokenizer, self.spec)
        self.model.config.vision_feature_layer = -1
        self.model.model.vision_tower.requires_grad_(False)
        self.word_ids = attribute_word_ids(self.tokenizer)
        self.tap = _ProjectorTap()
        self.model.model.multi_modal_projector.register_forward_hook(self.tap)
        self.image_tokens = image_token_count(self.spec)
        encode = self.tokenizer.encode
        self.decision_ids = {encode(f" {w}", add_special_tokens=False)[0]: w for w in ("Yes", "No")}
        # First token of every named attribute value a reading can say (colour, pattern, accessory).
        values = [*COLOURS, *PATTERNS, *(a for a in ACCESSORIES if a != "none")]
        self.reading_ids = {encode(f" {v}", add_special_tokens=False)[0] for v in values}

    def _feed_ideal(self, batch: list[Conversation]) -> None:
        embeddings = self.model.get_input_embeddings().weight.detach().float()
        self.tap.ideal = ideal_image_tokens(batch, embeddings, self.word_ids, self.spec.patch_size)
        self.tap.replace = torch.ones(len(batch), dtype=torch.bool)

    def batch(self, examples: list[Conversation]) -> dict[str, torch.Tensor]:
        self._feed_ideal(examples)
        return collate(
            examples, self.processor, image_tokens=self.image_tokens, max_positions=self.spec.max_positions
        )

    @torch.no_grad()
    def forced(self, scenes: list[Conversation]) -> tuple[float, float]:
        decisions = readings = decisions_right = readings_right = 0
        for start in range(0, len(scenes), 32):
            batch = self.batch(scenes[start : start + 32])
            labels = batch.pop("labels")
            with cpu_autocast():
                predicted = self.model(**batch).logits[:, :-1].argmax(-1)
            gold = labels[:, 1:]
            for token in self.decision_ids:
                decisions += int((gold == token).sum())
                decisions_right += int(((gold == token) & (predicted == token)).sum())
            for token in self.reading_ids:
                readings += int((gold == token).sum())
                readings_right += int(((gold == token) & (predicted == token)).sum())
        return decisions_right / decisions, readings_right / readings if readings else float("nan")

    @torch.no_grad()
    def greedy(self, scenes: list[Conversation]) -> float:
        """Share of single-question prompts whose greedy answer ends with the right Yes/No."""
        singles = [
            Conversation(image=s.image, turns=[turn], entities=s.entities, owners=s.owners)
            for s in scenes
            for turn in s.turns
        ]
        right = 0
        pad, eos = self.tokenizer.pad_token_id, self.tokenizer.eos_token_id
        for start in range(0, len(singles), 32):
            chunk = singles[start : start + 32]
            prompts = [replace(c, turns=[(c.turns[0][0], "")]) for c in chunk]
            batch = self.batch(prompts)
            # Drop the empty answer (" " and </s>): keep everything up to "ASSISTANT:".
            lengths = [int((row != -100).nonzero()[0]) for row in batch["labels"]]
            rows = [batch["input_ids"][i, :n].tolist() for i, n in enumerate(lengths)]
            width = max(lengths)
            # Left padding: rotary positions make attention shift-invariant.
            ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows])
            mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
            answers: list[list[int]] = [[] for _ in rows]
            for _ in range(MAX_ANSWER_TOKENS):
                with cpu_autocast():
                    logits = self.model(
                        input_ids=ids, attention_mask=mask, pixel_values=batch["pixel_values"]
                    ).logits[:, -1]
                step = logits.argmax(-1)
                for i, token in enumerate(step.tolist()):
                    if not answers[i] or answers[i][-1] != eos:
                        answers[i].append(token)
                ids = torch.cat([ids, step[:, None]], dim=1)
                mask = torch.cat([mask, torch.ones_like(step)[:, None]], dim=1)
                if all(a and a[-1] == eos for a in answers):
                    break
            for conversation, answer in zip(chunk, answers, strict=True):
                # The first Yes/No it says is its decision (a reading says neither).
                said = [self.decision_ids[t] for t in answer if t in self.decision_ids]
                truth = conversation.turns[0][1].rstrip(".").split()[-1]
                right += bool(said) and said[0] == truth
        return right / len(singles)


def parse_curriculum(text: str) -> list[tuple[str, int | None]]:
    """``colour:200,partial`` → ``[("colour", 200), ("partial", None)]`` (None: until the end)."""
    stages: list[tuple[str, int | None]] = []
    parts = text.split(",")
    for index, part in enumerate(parts):
        form, _, steps = part.partition(":")
        if form not in QUESTION_FORMS:
            raise ValueError(f"--questions: {form!r} is not one of {', '.join(QUESTION_FORMS)}")
        last = index == len(parts) - 1
        if not last and not steps.isdigit():
            raise ValueError(f"--questions: every stage but the last needs FORM:STEPS, got {part!r}")
        stages.append((form, None if last else int(steps)))
    return stages


def form_at(curriculum: list[tuple[str, int | None]], step: int) -> str:
    """The question form of training step ``step`` (1-based)."""
    for form, steps in curriculum:
        if steps is None or step <= steps:
            return form
        step -= steps
    return curriculum[-1][0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--answers",
        required=True,
        help=f"answer form of the training questions, one of {ANSWER_FORMS}, or several joined by "
        "commas (each question picks one)",
    )
    parser.add_argument(
        "--questions",
        default="colour",
        help=f"question form of the training questions, one of {QUESTION_FORMS}, or a curriculum "
        "FORM:STEPS,FORM:STEPS,…,FORM (each form for that many steps, the last for the rest)",
    )
    parser.add_argument(
        "--eval-answers", choices=ANSWER_FORMS, help="held-out answer form (default: the first of --answers)"
    )
    parser.add_argument(
        "--eval-questions", choices=QUESTION_FORMS, help="held-out question form (default: --questions)"
    )
    parser.add_argument(
        "--mark-direct",
        action="store_true",
        help="end every question to be answered directly with 'Answer yes or no.' (training and held out)",
    )
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args(argv)
    answers = tuple(args.answers.split(","))
    if unknown := [a for a in answers if a not in ANSWER_FORMS]:
        parser.error(f"--answers: {', '.join(unknown)} not among {', '.join(ANSWER_FORMS)}")
    try:
        curriculum = parse_curriculum(args.questions)
    except ValueError as error:
        parser.error(str(error))
    eval_answers = args.eval_answers or answers[0]
    eval_questions = args.eval_questions or curriculum[-1][0]
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    probe = Probe(eval_answers, args.seed)
    held_out_rng = random.Random(10_000 + args.seed)
    held_out = [
        scene(held_out_rng, eval_answers, eval_questions, mark_direct=args.mark_direct)
        for _ in range(EVAL_SCENES)
    ]
    optimizer = torch.optim.AdamW(
        [p for p in probe.model.parameters() if p.requires_grad], lr=args.lr, betas=(0.9, 0.98)
    )
    rng = random.Random(args.seed)
    curve: list[dict[str, float]] = []
    started = time.monotonic()
    smoothed = float("nan")

    def record(step: int) -> None:
        probe.model.eval()
        forced, reading = probe.forced(held_out)
        point = {
            "step": step,
            "seconds": round(time.monotonic() - started, 1),
            "loss": round(smoothed, 4),
            "decision_forced": round(forced, 4),
            "reading_forced": round(reading, 4),
            "decision_greedy": round(probe.greedy(held_out), 4),
        }
        curve.append(point)
        print(json.dumps(point), flush=True)
        probe.model.train()
        probe.model.model.vision_tower.eval()

    record(0)
    for step in range(1, args.steps + 1):
        for group in optimizer.param_groups:
            group["lr"] = args.lr * min(1.0, step / 30)
        batch = probe.batch(
            [
                scene(
                    rng,
                    answers if len(answers) > 1 else answers[0],
                    form_at(curriculum, step),
                    mark_direct=args.mark_direct,
                )
                for _ in range(args.batch_size)
            ]
        )
        with cpu_autocast():
            loss = probe.model(**batch).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(probe.model.parameters(), 1.0)
        optimizer.step()
        value = float(loss.detach())
        smoothed = value if smoothed != smoothed else 0.9 * smoothed + 0.1 * value
        if step % args.eval_every == 0 or step == args.steps:
            record(step)
    result = {
        "command": " ".join(["python", "benchmarks/comparison_probe.py", *(argv or sys.argv[1:])]),
        "answers": args.answers,
        "questions": args.questions,
        "eval_answers": eval_answers,
        "eval_questions": eval_questions,
        "mark_direct": args.mark_direct,
        "steps": args.steps,
        "batch_size": args.batch_size,
        "learning_rate": args.lr,
        "seed": args.seed,
        "held_out_questions": EVAL_SCENES * QUESTIONS_PER_SCENE,
        "machine": f"{platform.processor() or platform.machine()}, {args.threads} threads, "
        f"torch {torch.__version__}",
        "curve": curve,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
