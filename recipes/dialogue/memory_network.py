"""Dialogue with a memory network: Mem2Seq-style copying decoder (mem2seq_dialog).

With no arguments: generates the bAbI-style restaurant-booking task (sub-task 5, full
dialogs: API calls, updates, proposing options, phone numbers and addresses) under
data/dialogue_memory_network/, trains, exports `exported/dialogue_memory_network/N/`,
checks the export on the TF Serving (Session) path, and prints per-response accuracy,
per-dialog accuracy and entity F1 on the test set and on the OOV test set (restaurants,
cuisines and locations never seen in training), greedy and beam.

Original bAbI-dialog files work unchanged:
    python recipes/dialogue/memory_network.py --train dialog-babi-task5-full-dialogs-trn.txt \\
        --valid dialog-babi-task5-full-dialogs-dev.txt \\
        --test dialog-babi-task5-full-dialogs-tst-OOV.txt
JSONL ({"context": [...], "kb": [...], "response": "..."} per line) works the same way.
"""

from s2s_zoo.training.runner import Recipe, main

RECIPE = Recipe(
    name="dialogue_memory_network",
    task="dialogue",
    model="mem2seq_dialog",
    # half the training examples get invented cuisines and cities: copying what it never saw
    options={"entity_substitution": 0.5},
)

if __name__ == "__main__":
    main(RECIPE, description=__doc__)
