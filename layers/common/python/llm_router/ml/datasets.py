"""Readers for the public per-prompt outcome data (folders shaped like `shared/data/routing/{routellm,dcrouter}`).

Splits: RouteLLM files have none, so a prompt whose SHA-256 (of its UTF-8 text, read as a number) is even is held
out for testing and never trained on; dcrouter ships its own train and test files. Prompts RouteLLM lists as
contaminated are dropped, as RouteLLM's own evaluation does.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

Split = Literal["train", "test", "all"]

ROUTELLM_STRONG = "gpt-4-1106-preview"
ROUTELLM_WEAK = "mistralai/Mixtral-8x7B-Instruct-v0.1"

DOMAINS = ("code", "math", "medical", "legal", "science", "general")

# MMLU subject -> domain. Subjects not listed are `general` (humanities, social sciences, business, misc.), among
# them computer_security (policy and attacks more than programming) and human_aging (closer to psychology than to
# clinical questions): cross-validation on the training half confused both with `general` more often than not.
MMLU_DOMAINS: dict[str, str] = {
    **dict.fromkeys(["college_computer_science", "high_school_computer_science", "machine_learning"], "code"),
    **dict.fromkeys(
        [
            "abstract_algebra",
            "college_mathematics",
            "elementary_mathematics",
            "high_school_mathematics",
            "high_school_statistics",
        ],
        "math",
    ),
    **dict.fromkeys(
        [
            "anatomy",
            "clinical_knowledge",
            "college_medicine",
            "medical_genetics",
            "nutrition",
            "professional_medicine",
            "virology",
        ],
        "medical",
    ),
    **dict.fromkeys(["international_law", "jurisprudence", "professional_law"], "legal"),
    **dict.fromkeys(
        [
            "astronomy",
            "college_biology",
            "college_chemistry",
            "college_physics",
            "conceptual_physics",
            "electrical_engineering",
            "high_school_biology",
            "high_school_chemistry",
            "high_school_physics",
        ],
        "science",
    ),
}

# dcrouter task_name -> domain. `mmlu` is left out: its items carry no subject, so their domain is unknown.
DCROUTER_DOMAINS: dict[str, str] = {
    "mbpp": "code",
    "human_eval": "code",
    "math": "math",
    "gsm8k": "math",
    "agentverse-mgsm": "math",
    "gpqa": "science",
    "arc_challenge": "science",
    "openbook_qa": "science",
    "natural_qa": "general",
    "trivia_qa": "general",
    "commonsense_qa": "general",
    "commongen": "general",
    "agentverse-logicgrid": "general",
}

# MT-Bench category -> domain.
MT_BENCH_DOMAINS: dict[str, str] = {"coding": "code", "math": "math", "stem": "science"}


def is_heldout(prompt: str) -> bool:
    """True for the evaluation half of a RouteLLM file: SHA-256 of the prompt is even (its last byte is even)."""
    return hashlib.sha256(prompt.encode("utf-8")).digest()[-1] % 2 == 0


def split_of(prompt: str) -> Literal["train", "test"]:
    return "test" if is_heldout(prompt) else "train"


def _wanted(split: Split, prompt_split: str) -> bool:
    return split == "all" or split == prompt_split


@dataclass(frozen=True)
class Example:
    """One prompt with its source, group (MMLU subject, task, category), split and per-model outcomes."""

    id: str
    prompt: str
    source: str
    group: str
    split: str
    domain: str | None = None
    outcomes: dict[str, float] = field(default_factory=dict)
    responses: dict[str, str] = field(default_factory=dict)


def _contaminated(folder: Path) -> set[str]:
    path = folder / "contaminated_prompts.jsonl"
    if not path.exists():
        return set()
    with path.open(encoding="utf-8") as handle:
        return {json.loads(line)["eval_prompt"] for line in handle if line.strip()}


def _truth(value: str) -> float:
    return 1.0 if value.strip().lower() in ("true", "1", "1.0") else 0.0


def _model_columns(header: Iterable[str]) -> list[str]:
    return [c for c in header if c != "prompt" and not c.endswith("_response")]


def read_routellm_mmlu(src: Path, split: Split = "all") -> Iterator[Example]:
    """MMLU prompts (`mmlu/mmlu_<subject>.csv`), one correctness per model, contaminated prompts dropped."""
    folder = src / "mmlu"
    contaminated = _contaminated(folder)
    files = sorted(folder.glob("mmlu_*.csv"))
    if not files:
        raise FileNotFoundError(f"no mmlu/mmlu_<subject>.csv files under {src}")
    for path in files:
        subject = path.stem.removeprefix("mmlu_")
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            models = _model_columns(reader.fieldnames or [])
            for row_number, row in enumerate(reader):
                prompt = row["prompt"]
                part = split_of(prompt)
                if prompt in contaminated or not _wanted(split, part):
                    continue
                yield Example(
                    id=f"mmlu/{subject}/{row_number}",
                    prompt=prompt,
                    source="routellm-mmlu",
                    group=subject,
                    split=part,
                    domain=MMLU_DOMAINS.get(subject, "general"),
                    outcomes={m: _truth(row[m]) for m in models},
                )


def read_routellm_gsm8k(src: Path, split: Split = "all") -> Iterator[Example]:
    """GSM8K prompts (`gsm8k/gsm8k_responses.csv`) with correctness and each model's response."""
    folder = src / "gsm8k"
    path = folder / "gsm8k_responses.csv"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found")
    contaminated = _contaminated(folder)
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        models = _model_columns(reader.fieldnames or [])
        for row_number, row in enumerate(reader):
            prompt = row["prompt"]
            part = split_of(prompt)
            if prompt in contaminated or not _wanted(split, part):
                continue
            yield Example(
                id=f"gsm8k/{row_number}",
                prompt=prompt,
                source="routellm-gsm8k",
                group="gsm8k",
                split=part,
                domain="math",
                outcomes={m: _truth(row[m]) for m in models},
                responses={m: row.get(f"{m}_response") or "" for m in models},
            )


def read_routellm_mt_bench(src: Path, split: Split = "all") -> Iterator[Example]:
    """MT-Bench first turns with their category (used for domain labels only)."""
    folder = src / "mt_bench"
    path = folder / "question.jsonl"
    if not path.exists():
        return
    contaminated = _contaminated(folder)
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            item = json.loads(line)
            prompt = item["turns"][0]
            part = split_of(prompt)
            if any(t in contaminated for t in item["turns"]) or not _wanted(split, part):
                continue
            yield Example(
                id=f"mt_bench/{item['question_id']}",
                prompt=prompt,
                source="routellm-mt_bench",
                group=item["category"],
                split=part,
                domain=MT_BENCH_DOMAINS.get(item["category"], "general"),
            )


def read_dcrouter(src: Path, split: Split = "all") -> Iterator[Example]:
    """dcrouter questions with per-model scores (0..1) and their task name, from its own train and test files."""
    parts = ("train", "test") if split == "all" else (split,)
    for part in parts:
        scores_path = src / f"dcrouter_{part}.json"
        if not scores_path.exists():
            raise FileNotFoundError(f"{scores_path} not found")
        tasks: dict[str, str] = {}
        query_path = src / f"default_query_{part}.jsonl"
        if query_path.exists():
            with query_path.open(encoding="utf-8") as handle:
                for line in handle:
                    if line.strip():
                        item = json.loads(line)
                        tasks[item["query"]] = item["task_name"]
        with scores_path.open(encoding="utf-8") as handle:
            items = json.load(handle)
        for number, item in enumerate(items):
            task = tasks.get(item["question"], "unknown")
            yield Example(
                id=f"dcrouter/{part}/{number}",
                prompt=item["question"],
                source="dcrouter",
                group=task,
                split=part,
                domain=DCROUTER_DOMAINS.get(task),
                outcomes={m: float(v) for m, v in item["scores"].items()},
            )


def dcrouter_prices(src: Path) -> dict[str, tuple[float, float]]:
    """USD per million input and output tokens per dcrouter model, from its `default_llm.json`."""
    path = src / "default_llm.json"
    if not path.exists():
        return {}
    with path.open(encoding="utf-8") as handle:
        models = json.load(handle)
    return {name: (float(m["input_price"]), float(m["output_price"])) for name, m in models.items()}


def overlap_key(text: str) -> str:
    """A key that identifies the same question across sources despite formatting (case, punctuation, suffixes)."""
    stem = text.split("\nA. ", 1)[0]
    return re.sub(r"\W+", " ", stem.lower()).strip()[:100]
