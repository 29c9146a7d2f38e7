"""`bastion privacy dp-plan` in process: Opacus' numbers, both directions, bad input."""

from __future__ import annotations

import json

import pytest

from bastion.cli.main import main


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = 0
    try:
        main(["privacy", "dp-plan", *args])
    except SystemExit as stop:
        code = int(stop.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


GUIDE = ["--n-samples", "50000", "--batch-size", "64", "--epochs", "10", "--delta", "1e-5"]


def test_the_guides_noise_table_is_far_too_pessimistic(capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    # The user's guide says sigma 0.5 -> eps ~30 and sigma 1.0 -> eps ~8 for this setup.
    code, out, _ = _run([*GUIDE, "--noise-multiplier", "0.5,1,1.5,2,3", "--json"], capsys)
    assert code == 0
    plans = json.loads(out)["plans"]
    prv = [p["epsilon"] for p in plans if p["accountant"] == "prv"]
    rdp = [p["epsilon"] for p in plans if p["accountant"] == "rdp"]
    assert prv == sorted(prv, reverse=True) and all(a <= b for a, b in zip(prv, rdp, strict=True))
    assert 5 < prv[0] < 8 and prv[1] < 1.0


def test_planned_noise_gives_the_target_back(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = _run([*GUIDE, "--epsilon", "2", "--json"], capsys)
    planned = {p["accountant"]: p for p in json.loads(out)["plans"]}
    for accountant, plan in planned.items():
        assert plan["epsilon"] <= 2.0 + 0.02, accountant
    _, out, _ = _run([*GUIDE, "--noise-multiplier", str(planned["prv"]["noise_multiplier"]),
                      "--json"], capsys)
    back = {p["accountant"]: p["epsilon"] for p in json.loads(out)["plans"]}
    assert back["prv"] == pytest.approx(2.0, abs=0.03)


def test_a_weak_delta_is_warned_about(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(["--n-samples", "1000", "--batch-size", "64", "--epochs", "5",
                         "--delta", "0.01", "--noise-multiplier", "1"], capsys)
    assert code == 0 and "1/n" in err


@pytest.mark.parametrize(("extra", "words"), [
    ([], "exactly one of"),
    (["--epsilon", "1", "--noise-multiplier", "1"], "exactly one of"),
    (["--epsilon", "one"], "comma-separated numbers"),
    (["--epsilon", "-1"], "must be positive"),
])
def test_bad_input_is_one_line_exit_2(capsys: pytest.CaptureFixture[str], extra: list[str],
                                      words: str) -> None:
    code, out, err = _run([*GUIDE, *extra], capsys)
    assert code == 2 and words in err and err.count("\n") == 1 and out == ""


def test_batch_larger_than_the_data_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(["--n-samples", "10", "--batch-size", "64", "--epochs", "1",
                         "--epsilon", "1"], capsys)
    assert code == 2 and "batch_size" in err
