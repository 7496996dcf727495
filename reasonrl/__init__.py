"""reasonrl."""
