"""Spectrum tuning's evals (Sorensen et al. 2025): steerability, coverage and distributional
alignment on held-out tasks with known output distributions.

The data side lives with the other tasks (`reasonrl.data.spectrum_format`, the `spectrum` data
task), the objective with the other cross-entropies (`spectrum` in
`reasonrl.objectives.cross_entropy`), the task generator in `reasonrl.synthetic.spectrum_suite`.
"""

from reasonrl.spectrum.evaluate import (
    SpectrumEvalSettings,
    evaluate_spectrum,
    write_spectrum_reports,
)
from reasonrl.spectrum.suite import DEFAULT_SUITE, SuiteError, load_suite

__all__ = [
    "DEFAULT_SUITE",
    "SpectrumEvalSettings",
    "SuiteError",
    "evaluate_spectrum",
    "load_suite",
    "write_spectrum_reports",
]
