"""The scan: checks (plug-ins), their registry, and the runner that builds a report."""

from bastion.scan.check import CHECKS, Check, Need, ScanContext, Target

__all__ = ["CHECKS", "Check", "Need", "ScanContext", "Target"]
