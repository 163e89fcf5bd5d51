"""Developer tooling: the local control plane and the quick-start orchestration. Not used in production."""
