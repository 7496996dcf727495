"""Prismatic Synthesis (Jung et al. 2025, arXiv 2505.20161): gradient-diversity data selection
(G-Vendi) and self-consistency labelling.

Library pieces, each a pure function tested against a NumPy reference:

* :mod:`.projection`: seeded per-leaf, per-block Rademacher projection (never materialised).
* :mod:`.features`: per-example response-NLL gradients of a fixed proxy (``vmap(grad)``),
  projected and unit-normalised.
* :mod:`.gvendi`: G-Vendi through the d x d covariance (``reasonrl.diversity.vendi_score``).
* :mod:`.kmeans`: k-means++ and Lloyd in JAX.
* :mod:`.select`: the water-filling budget rule over clusters, the greedy G-Vendi reference
  selector, random-subset baselines.
* :mod:`.self_consistency`: majority vote over answers grouped by the grader's equivalence.

The command (:mod:`.cli`): ``python -m reasonrl.synthetic.prismatic {label,features,select,score}``;
the paper's loop is label -> features -> select -> SFT data. Files: :mod:`.feature_store`,
:mod:`.feature_run`, :mod:`.select_run`, :mod:`.label_run`.
"""
