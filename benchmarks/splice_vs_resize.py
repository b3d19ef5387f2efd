"""Per-step training time and memory: splice forward vs. the resize-vocabulary formulation.

Both train the same subject (identifier + k latent tokens) on the same batches of recognition
conversations with precomputed image features, on the same frozen model:

* **splice** (ours): only the subject's ``[k+1, H]`` input and output tensors are parameters;
* **resize** (the paper's code): the vocabulary is resized, the whole input-embedding and lm_head
  matrices are trainable, and the old rows are restored after each step.

Each formulation runs in its own subprocess so peak resident memory (ru_maxrss) is its own.
Results go to ``benchmarks/results/splice_vs_resize.json``.

    python benchmarks/splice_vs_resize.py [--model toyworld|PATH] [--steps 30]
"""

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.conftest helpers
from transformers.modeling_outputs import BaseModelOutputWithPooling
from transformers.utils import logging as transformers_logging

from personalization.engine import Engine
from personalization.modeling import TinyLlavaSpec, build_tiny_llava, load_model, preferred_dtype
from personalization.prompts import personal_prompt
from personalization.splice import SubjectTable
from personalization.subject import new_subject
from personalization.trainer import answer_loss

RESULTS = Path(__file__).parent / "results" / "splice_vs_resize.json"
MEDIUM_SPEC = TinyLlavaSpec(
    image_size=224,
    patch_size=14,
    vision_hidden=256,
    vision_layers=4,
    vision_heads=4,
    text_hidden=1024,
    text_layers=8,
    text_heads=16,
    text_intermediate=2816,
    max_positions=1024,
)
MEDIUM_VOCAB = 32000


def _batches(engine: Engine, subject, steps: int, batch_size: int):
    from tests.conftest import make_photo

    table = SubjectTable.of([subject])
    prompt = engine.encoder.user_turn(
        f"{personal_prompt(subject)} Is {subject.identifier} in this photo?", with_image=True
    )
    encoded = [
        engine.encoder.encode(prompt, f"{'Yes' if i % 2 else 'No'}, {subject.identifier} is here.", table)
        for i in range(batch_size)
    ]
    features = engine.image_features([make_photo((200, 30, 30), i) for i in range(batch_size)])
    return table, encoded, features


def run_one(mode: str, model_path: str, steps: int, batch_size: int, k: int) -> dict[str, float]:
    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    torch.set_num_threads(2)
    loaded = load_model(model_path, device="cpu", dtype=preferred_dtype(torch.device("cpu")))
    engine = Engine(loaded)
    subject = new_subject(loaded, display_name="Bo", kind="dog", k=k)
    table, encoded, features = _batches(engine, subject, steps, batch_size)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if mode == "splice":
        for tensor in subject.parameters():
            tensor.requires_grad_(True)
        optimizer = torch.optim.AdamW(subject.parameters(), lr=1e-3, weight_decay=0.0)

        def step() -> float:
            loss = answer_loss(
                engine.spliced, encoded, table, [[subject]] * batch_size, features, pad_id=engine.pad_id
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            return loss.item()
    else:
        model = loaded.model
        vocab = engine.spliced.vocab_size
        model.resize_token_embeddings(vocab + table.size)
        embedding, head = model.get_input_embeddings().weight, model.lm_head.weight
        with torch.no_grad():
            embedding[vocab:] = table.input_matrix().to(embedding.dtype)
            head[vocab:] = table.output_matrix().to(head.dtype)
        original_embedding, original_head = embedding[:vocab].detach().clone(), head[:vocab].detach().clone()
        embedding.requires_grad_(True)
        head.requires_grad_(True)
        optimizer = torch.optim.AdamW([embedding, head], lr=1e-3, weight_decay=0.0)
        from personalization.batching import collate

        batch = collate(encoded, pad_id=engine.pad_id)
        ids = torch.where(
            batch.input_ids >= engine.spliced.first_slot_id,
            batch.input_ids - engine.spliced.first_slot_id + vocab,
            batch.input_ids,
        )
        labels = batch.labels.clone()
        image_outputs = {"image": BaseModelOutputWithPooling(pooler_output=list(features))}

        def step() -> float:
            output = model(
                input_ids=ids, attention_mask=batch.attention_mask, mm_encoder_outputs=dict(image_outputs)
            )
            logits = output.logits[:, :-1].float()
            loss = torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1), ignore_index=-100
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            with torch.no_grad():  # the paper's code restores the frozen rows after every step
                embedding[:vocab] = original_embedding
                head[:vocab] = original_head
            return loss.item()

    step()  # warm-up
    started = time.perf_counter()
    losses = [step() for _ in range(steps)]
    seconds = (time.perf_counter() - started) / steps
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "seconds_per_step": seconds,
        "peak_rss_mib": rss_after / 1024,
        "extra_peak_rss_mib": (rss_after - rss_before) / 1024,
        "base_parameters": sum(p.numel() for p in loaded.model.parameters()),
        "trainable_parameters": sum(p.numel() for p in optimizer.param_groups[0]["params"]),
        "first_loss": losses[0],
        "last_loss": losses[-1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--model", default=None, help="model path or 'toyworld' (default: build a ~150M random LLaVA)"
    )
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--k", type=int, default=16)
    parser.add_argument("--mode", choices=["splice", "resize"], default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mode:
        print(json.dumps(run_one(args.mode, args.model, args.steps, args.batch_size, args.k)))
        return
    with tempfile.TemporaryDirectory() as scratch:
        model = args.model
        if model is None:
            from tests.conftest import TINY_CORPUS

            words = [f"w{i}" for i in range(MEDIUM_VOCAB)]
            corpus = TINY_CORPUS * 50 + [" ".join(words[i : i + 64]) for i in range(0, MEDIUM_VOCAB, 64)]
            model = str(
                build_tiny_llava(
                    Path(scratch) / "medium", corpus=corpus, vocab_size=MEDIUM_VOCAB, spec=MEDIUM_SPEC
                )
            )
        results = {}
        for mode in ("splice", "resize"):
            command = [
                sys.executable,
                __file__,
                "--mode",
                mode,
                "--model",
                model,
                "--steps",
                str(args.steps),
                "--batch-size",
                str(args.batch_size),
                "--k",
                str(args.k),
            ]
            output = subprocess.run(command, capture_output=True, text=True, check=True)
            results[mode] = json.loads(output.stdout.strip().splitlines()[-1])
            print(mode, results[mode], flush=True)
    report = {
        "model": args.model or "random LLaVA built from MEDIUM_SPEC",
        "steps": args.steps,
        "batch_size": args.batch_size,
        "k": args.k,
        "dtype": "bfloat16",
        "threads": 2,
        "results": results,
        "speedup": results["resize"]["seconds_per_step"] / results["splice"]["seconds_per_step"],
        "note": "wall-clock on a shared 2-core CPU; compare the two modes of one run only",
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
