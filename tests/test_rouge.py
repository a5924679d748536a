"""ROUGE (rouge-score underneath), the Unicode tokenizer, copy and repeated-trigram rates."""

from __future__ import annotations

import pytest
from rouge_score.tokenizers import DefaultTokenizer

from s2s_zoo.metrics import UnicodeTokenizer, copy_rate, repeated_trigram_rate, rouge


def test_rouge_hand_computed() -> None:
    # tokens: the cat sat on the mat / the cat is on the mat
    # R1: 5 common unigrams of 6 each -> F 5/6; R2: 3 common bigrams of 5 -> F 3/5;
    # RL: LCS "the cat on the mat" = 5 -> F 5/6
    scores = rouge(["the cat sat on the mat"], ["the cat is on the mat"])
    assert scores == pytest.approx({"rouge1": 500 / 6, "rouge2": 60.0, "rougeL": 500 / 6})


def test_rouge_is_the_mean_over_pairs_and_hypothesis_reference_order_matters() -> None:
    # second pair: hypothesis "a b c d" (4) vs reference "a b" (2): P 2/4, R 2/2, F 2/3
    scores = rouge(["the cat sat on the mat", "a b c d"], ["the cat is on the mat", "a b"])
    assert scores["rouge1"] == pytest.approx((500 / 6 + 200 / 3) / 2)
    assert scores["rouge2"] == pytest.approx((60.0 + 100 * (2 * (1 / 3) * 1) / (1 / 3 + 1)) / 2)


def test_stemming_is_on() -> None:
    # Porter: running -> run, runs -> run, dogs -> dog; "dog" (3 letters) is left alone
    assert rouge(["running dogs"], ["runs dog"])["rouge1"] == pytest.approx(100.0)


def test_default_tokenizer_drops_non_ascii_and_the_unicode_one_keeps_it() -> None:
    # default: "café crème" -> caf, cr, me; "café noir" -> caf, noir: P 1/3, R 1/2, F 0.4
    assert rouge(["café crème"], ["café noir"])["rouge1"] == pytest.approx(40.0)
    assert rouge(["café crème"], ["café noir"], UnicodeTokenizer())["rouge1"] == pytest.approx(50)
    assert rouge(["привет мир"], ["привет мир"])["rouge1"] == 0.0
    assert rouge(["привет мир"], ["привет мир"], UnicodeTokenizer())["rouge1"] == 100.0


def test_unicode_tokenizer_equals_the_default_on_ascii() -> None:
    texts = [
        "The QUICK brown_fox jumped over 2 lazy dogs, v1.2-beta (running!)",
        "Libraries: parsing/formatting e.g. JSON & YAML -- it's 100% relational",
        "  ",
    ]
    for stem in (False, True):
        ours, theirs = UnicodeTokenizer(stem), DefaultTokenizer(stem)
        for text in texts:
            assert ours.tokenize(text) == theirs.tokenize(text)


def test_unicode_tokenizer_keeps_marks_and_splits_han() -> None:
    tokenizer = UnicodeTokenizer(use_stemmer=False)
    assert tokenizer.tokenize("हिन्दी Naïve 北京大学, x_y") == [
        "हिन्दी",
        "naïve",
        "北",
        "京",
        "大",
        "学",
        "x",
        "y",
    ]
    # decomposed "e" + combining acute is composed first, so it matches the precomposed form
    assert tokenizer.tokenize("cafe\u0301") == tokenizer.tokenize("caf\u00e9") == ["café"]
    # the English stemmer leaves non-ASCII words alone
    assert UnicodeTokenizer().tokenize("généralisations generalisations") == [
        "généralisations",
        "generalis",
    ]


def test_rouge_rejects_mismatched_or_empty_input() -> None:
    with pytest.raises(ValueError, match="2 hypotheses for 1 references"):
        rouge(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="empty corpus"):
        rouge([], [])


def test_copy_rate_pools_tokens_over_the_corpus() -> None:
    # pair 1: "the", "sat" copied, "dog" not -> 2 of 3; pair 2: "y" copied -> 1 of 1
    # pooled 3/4 (a mean of per-summary rates would be 5/6)
    rate = copy_rate(["The cat sat.", "x y"], ["the dog sat", "Y"])
    assert rate == pytest.approx(0.75)
    assert copy_rate(["a"], [""]) == 0.0
    with pytest.raises(ValueError, match="2 sources for 1 summaries"):
        copy_rate(["a", "b"], ["a"])


def test_repeated_trigram_rate() -> None:
    # "a b c a b c": abc bca cab abc -> 1 repeat of 4; "a b a b a": aba bab aba -> 1 of 3;
    # "x y" has no trigram
    assert repeated_trigram_rate(["a b c a b c", "a b a b a", "x y"]) == pytest.approx(2 / 7)
    assert repeated_trigram_rate(["one two three four"]) == 0.0
    assert repeated_trigram_rate(["x y"]) == 0.0
