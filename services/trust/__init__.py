"""Who may say what (docs/trust.md): proctor and endpoint signatures, per-platform signal
MACs derived from the roster master secret, the signed roster, and the worker's admission
check that refuses everything else.

Layered above ``services.core`` and ``services.contract`` only.
"""
