"""The eval tests' tiny checkpoint, shared with the sweep."""

from tests.evals.conftest import tiny_checkpoint  # noqa: F401  (a fixture)
