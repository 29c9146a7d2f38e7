"""Detectors: poisoned or mislabeled training rows (``detection.poisoning``)."""
