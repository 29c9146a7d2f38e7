"""bastion: attack, audit and harden machine-learning models, their data and their files.

Importing this package is cheap on purpose: torch, scikit-learn and the other heavy
libraries are imported only by the modules that need them.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("bastion-ml")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
