"""bastion: attack, audit and harden machine-learning models, their data and their files.

Importing this package is cheap on purpose: torch, scikit-learn and the other heavy
libraries are imported only by the modules that need them.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
