"""Evasion attacks, one module per paper; each registers itself in ``ATTACKS`` on import."""
