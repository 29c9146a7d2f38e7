"""Built-in checks: every public module here registers its checks in ``CHECKS``."""
