"""Subcommand groups of ``atoma-dev``; each module exposes ``register(subparsers)``."""
