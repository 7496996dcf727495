"""Synthetic data: verifiable toy tasks for learning tests, and distillation data from a teacher."""
