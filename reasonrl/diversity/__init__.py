"""Diversity metrics of a model's responses: is its output distribution collapsing?

* :mod:`~reasonrl.diversity.partition` -- NoveltyBench's greedy, order-dependent partition into
  equivalence classes, and the equivalence tests by name (``rouge1``, ``embedding``).
* :mod:`~reasonrl.diversity.novelty` -- ``distinct_k`` and the patience-weighted ``utility_k``.
* :mod:`~reasonrl.diversity.hivemind` -- Artificial-Hivemind intra- / inter-model similarity and
  its 10-bin histogram.
* :mod:`~reasonrl.diversity.ngrams` -- distinct-n.  :mod:`~reasonrl.diversity.rouge` -- ROUGE-1.
* :mod:`~reasonrl.diversity.vendi` -- the Vendi score (``vendi_score``; G-Vendi reuses it).
* :mod:`~reasonrl.diversity.groups` -- cheap per-group signals the RL loop logs.
* :mod:`~reasonrl.diversity.prompts` -- the vendored NoveltyBench prompt sets.

Formulas and their sources: ``/work/shared/docs/methods.md`` sections 4a and 4b, and each
module's docstring. Embeddings come from ``reasonrl.models.SentenceEncoder``.
"""

from reasonrl.diversity.groups import distinct_fraction, group_diversity
from reasonrl.diversity.hivemind import (
    cross_model_similarity,
    fraction_above,
    mean_pairwise_similarity,
    similarity_histogram,
)
from reasonrl.diversity.ngrams import distinct_n
from reasonrl.diversity.novelty import (
    NOVELTYBENCH_REWARD_THRESHOLDS,
    PATIENCE,
    NoveltyScores,
    novelty_scores,
    quality_buckets,
)
from reasonrl.diversity.partition import (
    DEFAULT_THRESHOLDS,
    EQUIVALENCE_TESTS,
    partition,
    short_response_rule,
)
from reasonrl.diversity.prompts import (
    BENCHMARK_FILES,
    DiversityPrompt,
    PromptFileError,
    load_prompts,
)
from reasonrl.diversity.rouge import mean_pairwise_rouge1, rouge1_fmeasure
from reasonrl.diversity.vendi import vendi_score

__all__ = [
    "BENCHMARK_FILES",
    "DEFAULT_THRESHOLDS",
    "DiversityPrompt",
    "EQUIVALENCE_TESTS",
    "NOVELTYBENCH_REWARD_THRESHOLDS",
    "NoveltyScores",
    "PATIENCE",
    "PromptFileError",
    "cross_model_similarity",
    "distinct_fraction",
    "distinct_n",
    "fraction_above",
    "group_diversity",
    "load_prompts",
    "mean_pairwise_rouge1",
    "mean_pairwise_similarity",
    "novelty_scores",
    "partition",
    "quality_buckets",
    "rouge1_fmeasure",
    "short_response_rule",
    "similarity_histogram",
    "vendi_score",
]
