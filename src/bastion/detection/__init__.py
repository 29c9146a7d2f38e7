"""Detectors.

- ``detection.poisoning``: poisoned or mislabeled training rows, and backdoored models
  (Neural Cleanse) and triggered inputs (STRIP);
- ``detection.drift``: feature drift of recent inputs against a reference;
- ``detection.adversarial_input``: adversarial inputs by feature squeezing;
- ``detection.extraction``: per-client model-extraction detectors.
"""
