"""The StackSettlement and Attestation resources: pydantic models of spec and status
(the single source of truth) and the CRDs generated from them (`crd.py`, output in crds/).

Modules: `common` (scalar types, bases, conditions, names), `proofs` (per-stack proof
inputs), `submission` (shared spec fields, write-ahead record, per-transaction progress),
`stack_settlement`, `attestation`, `crd`.
"""
