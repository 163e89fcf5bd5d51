"""Atoma settlement operator: settles Atoma compute stacks on Sui, Kubernetes-natively."""

__version__ = "0.1.0"
