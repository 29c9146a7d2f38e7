"""atheris fuzz target for the pickle analyser: any bytes give a result, never an exception.

Run: ``python tests/supplychain/fuzz_pickle_analysis.py -max_total_time=60 [corpus_dir]``.
The seed corpus is made of benign and hostile pickles in every protocol; libFuzzer
mutates them. Nothing is ever unpickled.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["bastion.supplychain"]):
    from bastion.supplychain.pickle_analysis import analyse_pickle

_RULES = {
    "dangerous-global", "unknown-global", "dynamic-import", "dynamic-attribute",
    "call-computed", "build-on-global", "extension-code", "nested-pickle-opaque",
    "unexpected-arguments", "malformed-pickle", "trailing-data",
}


def one_input(data: bytes) -> None:
    """The property: analysis ends, stays in bounds and only reports known rules."""
    for joblib in (False, True):
        result = analyse_pickle(data, joblib=joblib, max_ops=200_000)
        if result.end > len(data) or any(i.rule not in _RULES for i in result.issues):
            raise AssertionError(f"bad result for {data!r}: {result}")


def main() -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
