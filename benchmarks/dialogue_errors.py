"""Where a dialogue export goes wrong: responses right per kind (API call, proposed
restaurant, phone/address, template), with a few wrong ones of each kind shown.

    python benchmarks/dialogue_errors.py EXPORT dialog-babi-task5-full-dialogs-tst-OOV.txt 300
"""

from __future__ import annotations

import argparse
from collections import Counter

import tensorflow as tf

from s2s_zoo.tasks.base import get_task
from s2s_zoo.tasks.dialogue.task import read_dialogue_examples
from s2s_zoo.training.runner import decode_with


def kind(response: str) -> str:
    if response.startswith("api_call"):
        return "api_call"
    if response.startswith("what do you think"):
        return "propose"
    if "_phone" in response or "_address" in response:
        return "info"
    return "template"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("export")
    p.add_argument("dialogs", help="a bAbI-dialog file")
    p.add_argument("limit", type=int, nargs="?", default=300, help="first N bot turns")
    p.add_argument("--show", type=int, default=6, help="wrong responses shown per kind")
    args = p.parse_args()
    examples = read_dialogue_examples(args.dialogs)[: args.limit]
    task = get_task("dialogue")
    signature = tf.saved_model.load(args.export).signatures["greedy"]
    names = sorted(signature.structured_input_signature[1])
    hyps = decode_with(signature, names, [task.serving_input(s) for s, _ in examples])
    total, wrong, shown = Counter(), Counter(), Counter()
    for (source, reference), hyp in zip(examples, hyps, strict=True):
        k = kind(reference)
        total[k] += 1
        if hyp != reference:
            wrong[k] += 1
            if shown[k] < args.show:
                shown[k] += 1
                print(f"[{k}] user={source.context[-1]!r}")
                print(f"    got  {hyp!r}\n    want {reference!r}")
    for k in total:
        print(f"{k} {total[k] - wrong[k]}/{total[k]} right")


if __name__ == "__main__":
    main()
