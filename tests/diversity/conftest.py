"""The evals' tiny random checkpoint, shared with the diversity eval's end-to-end tests."""

from tests.evals.conftest import tiny_checkpoint  # noqa: F401  (a session fixture)
