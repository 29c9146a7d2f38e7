"""PGD-AT, TRADES and fast AT: they buy robustness, follow their schedule, never touch the
user's model, and fast AT's catastrophic-overfitting check fires. Their attack steps in bf16
are as strong as in fp32 and stay exactly in the budget; fp32 is the plain loop bit for bit."""

from __future__ import annotations

import platform
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from sklearn.ensemble import RandomForestClassifier

from bastion.attacks._ops import Norm, project, random_in_ball, steepest_step
from bastion.attacks.evasion.pgd import PGD
from bastion.data import Dataset
from bastion.defenses import adversarial_training as at
from bastion.defenses import build_hardener, check_applicable
from bastion.defenses.adversarial_training import (
    FastAdversarialTraining,
    PGDAdversarialTraining,
    bf16_is_fast,
    pgd_inner,
)
from bastion.errors import ConfigError, UnsupportedModelError
from bastion.models import SklearnClassifier
from bastion.models.torch import TorchClassifier

EPS = 0.15


def _robust_accuracy(model: TorchClassifier, data: Dataset, n: int = 200) -> float:
    assert data.y is not None
    result = PGD(eps=EPS, steps=20)(model, data.x[:n], data.y[:n],
                                    generator=torch.Generator().manual_seed(0))
    return result.robust_accuracy


@pytest.mark.parametrize("method", [pytest.param("pgd-at", marks=pytest.mark.slow),
                                    pytest.param("trades", marks=pytest.mark.slow), "fast-at"])
def test_training_buys_robustness_without_touching_the_user_model(
    method: str, plain_cnn: TorchClassifier, small_train: Dataset,
    digits: tuple[Dataset, Dataset],
) -> None:
    before = {k: v.clone() for k, v in plain_cnn.module.state_dict().items()}
    hardener = build_hardener(method, {"eps": str(EPS), "epochs": "3", "steps": "5",
                                       "warmup-epochs": "1", "n-val": "128", "lr": "3e-3"})

    result = hardener.apply(plain_cnn, small_train, seed=0)

    test = digits[1]
    after, before_acc = _robust_accuracy(result.model, test), _robust_accuracy(plain_cnn, test)
    assert after > before_acc + 0.1
    assert result.module is not plain_cnn.module and result.model is not plain_cnn
    assert all(torch.equal(before[k], v) for k, v in plain_cnn.module.state_dict().items())
    assert not result.masks_gradients and result.method == method
    assert [row["epoch"] for row in result.log] == [1.0, 2.0, 3.0]
    assert 0.0 <= result.metrics["validation_robust_accuracy"] <= 1.0


def test_same_seed_same_weights(plain_cnn: TorchClassifier, small_train: Dataset) -> None:
    hardener = FastAdversarialTraining(eps=EPS, epochs=1, n_val=32)
    a = hardener.apply(plain_cnn, small_train, seed=3).module
    b = hardener.apply(plain_cnn, small_train, seed=3).module
    c = hardener.apply(plain_cnn, small_train, seed=4).module
    assert a is not None and b is not None and c is not None
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert not all(torch.equal(p, q) for p, q in zip(a.parameters(), c.parameters(),
                                                     strict=True))


@pytest.mark.parametrize(("warmup", "t", "expected"), [
    (2.0, 0.0, 0.0), (2.0, 1.0, 0.05), (2.0, 2.0, 0.1), (2.0, 5.0, 0.1), (0.0, 0.0, 0.1),
])
def test_eps_warms_up_linearly(warmup: float, t: float, expected: float) -> None:
    assert FastAdversarialTraining(eps=0.1, warmup_epochs=warmup).eps_at(t) == \
        pytest.approx(expected)


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_inner_maximisation_stays_in_budget_and_raises_the_loss(
    norm: str, plain_cnn: TorchClassifier, digits: tuple[Dataset, Dataset],
) -> None:
    test = digits[1]
    assert test.y is not None
    x = torch.as_tensor(test.x[:64])
    y = torch.as_tensor(test.y[:64]).long()
    eps = EPS if norm == "linf" else 1.0
    gen = torch.Generator().manual_seed(0)
    x_adv = pgd_inner(plain_cnn, x, y, eps=eps, norm=norm, steps=10,  # type: ignore[arg-type]
                      step_size=2.5 * eps / 10, generator=gen)
    delta = (x_adv - x).flatten(1)
    size = delta.abs().amax(1) if norm == "linf" else delta.norm(dim=1)
    assert float(size.max()) <= eps + 1e-5
    assert float(x_adv.min()) >= 0.0 and float(x_adv.max()) <= 1.0
    with torch.no_grad():
        ce = torch.nn.functional.cross_entropy
        assert float(ce(plain_cnn.logits(x_adv), y)) > 3 * float(ce(plain_cnn.logits(x), y))


@pytest.mark.parametrize(("fgsm", "pgd", "flagged"), [
    (0.80, 0.70, False), (0.80, 0.61, False), (0.80, 0.59, True), (0.90, 0.05, True),
])
def test_catastrophic_overfitting_is_an_fgsm_pgd_gap(fgsm: float, pgd: float,
                                                      flagged: bool) -> None:
    reason = FastAdversarialTraining(overfit_gap=0.2).check_overfitting(fgsm, pgd)
    assert (reason is not None) == flagged
    if flagged:
        assert reason is not None and "catastrophic overfitting" in reason


def test_fast_at_with_a_huge_step_overfits_and_is_caught(
    plain_cnn: TorchClassifier, small_train: Dataset,
) -> None:
    # FGSM steps of 4x eps with a tiny gap tolerance: the check must stop the run.
    hardener = FastAdversarialTraining(eps=0.2, step_size=0.8, epochs=4, warmup_epochs=0,
                                       overfit_gap=0.0, n_val=64, lr=3e-3)
    result = hardener.apply(plain_cnn, small_train, seed=0)
    assert any("catastrophic overfitting" in note for note in result.notes)
    assert len(result.log) < 4


def test_a_tree_ensemble_is_refused_with_the_methods_that_would_work(
    small_train: Dataset,
) -> None:
    assert small_train.y is not None
    x = small_train.x.reshape(len(small_train), -1)
    forest = RandomForestClassifier(n_estimators=3, random_state=0).fit(x, small_train.y)
    model = SklearnClassifier(forest)
    with pytest.raises(UnsupportedModelError, match=r"pgd-at.*Differentiable"):
        check_applicable(build_hardener("pgd-at"), model)
    flat = Dataset(x=x, y=small_train.y)
    with pytest.raises(UnsupportedModelError, match="trains a torch network"):
        build_hardener("trades").apply(model, flat)


@pytest.mark.parametrize(("params", "message"), [
    ({"epsilon": "0.1"}, "no parameter 'epsilon'; known: .*eps"),
    ({"eps": "big"}, "must be a number"),
    ({"norm": "l1"}, "must be one of linf, l2"),
    ({"from-scratch": "maybe"}, "true or false"),
    ({"patience": "x"}, "does not parse"),
    ({"attack-precision": "fp16"}, "must be one of auto, fp32, bf16"),
])
def test_bad_parameters_are_one_line_config_errors(params: dict[str, str],
                                                   message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_hardener("pgd-at", params)


def test_cli_strings_parse_by_field_type() -> None:
    hardener = build_hardener("trades", {"eps": "8/255", "epochs": "2", "beta": "3",
                                         "patience": "none", "from-scratch": "yes"})
    assert hardener == build_hardener("trades", {"eps": 8 / 255, "epochs": 2, "beta": 3.0,
                                                 "patience": None, "from_scratch": True})


def test_unlabelled_or_misshaped_data_is_refused(plain_cnn: TorchClassifier,
                                                 small_train: Dataset) -> None:
    from bastion.errors import InvalidDataError, ShapeMismatchError

    hardener = FastAdversarialTraining(epochs=1)
    with pytest.raises(InvalidDataError, match="no labels"):
        hardener.apply(plain_cnn, Dataset(x=small_train.x), val=small_train)
    with pytest.raises(ShapeMismatchError, match="shape"):
        hardener.apply(plain_cnn, Dataset(x=np.zeros((10, 64), np.float32),
                                          y=np.zeros(10, np.int64)), val=small_train)


@pytest.mark.parametrize(("method", "params", "message"), [
    ("trades", {"beta": "-1"}, "beta must be >= 0"),
    ("fast-at", {"overfit-gap": "2"}, "overfit-gap must lie in"),
    ("pgd-at", {"eps": "0"}, "needs eps > 0"),
    ("pgd-at", {"steps": "0"}, "at least 1"),
])
def test_bad_hyper_parameters_fail_before_training(
    method: str, params: dict[str, str], message: str, plain_cnn: TorchClassifier,
    small_train: Dataset,
) -> None:
    with pytest.raises(ConfigError, match=message):
        build_hardener(method, params).apply(plain_cnn, small_train)


def test_training_reports_progress_per_epoch(plain_cnn: TorchClassifier,
                                             small_train: Dataset) -> None:
    from bastion.progress import ProgressEvent

    events: list[ProgressEvent] = []
    FastAdversarialTraining(eps=EPS, epochs=2, n_val=16).apply(
        plain_cnn, small_train, progress=events.append)
    assert [(e.task, e.completed, e.total) for e in events] == [
        ("fast-at", 0, 2), ("fast-at", 1, 2), ("fast-at", 2, 2)]
    assert events[-1].done


def _tiny_rgb(seed: int = 0) -> tuple[TorchClassifier, Dataset]:
    """A one-convolution network on 96 random 3x8x8 images of 3 classes: fast to train."""
    torch.manual_seed(seed)
    module = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(),
                                 torch.nn.Flatten(), torch.nn.Linear(8 * 8 * 8, 3))
    rng = np.random.default_rng(seed)
    data = Dataset(x=rng.random((96, 3, 8, 8), dtype=np.float32), y=rng.integers(0, 3, 96))
    return TorchClassifier(module, input_shape=(3, 8, 8)), data


def _plain_pgd(net: TorchClassifier, x: torch.Tensor, y: torch.Tensor, *, eps: float,
               norm: Norm, steps: int, step_size: float,
               generator: torch.Generator) -> torch.Tensor:
    """The inner loop as it was before attack precision existed: the fp32 oracle."""
    lo, hi = net.bounds
    x_adv = project(x + random_in_ball(x, eps, norm, generator), x, eps, norm, lo, hi)
    for _ in range(steps):
        x_adv.requires_grad_(True)
        loss = F.cross_entropy(net.logits(x_adv), y, reduction="sum")
        (grad,) = torch.autograd.grad(loss, x_adv)
        x_adv = project(x_adv.detach() + step_size * steepest_step(grad, norm), x, eps, norm,
                        lo, hi)
    return x_adv.detach()


@pytest.mark.parametrize(("norm", "eps"), [("linf", EPS), ("l2", 1.0)])
def test_bf16_attack_steps_are_as_strong_as_fp32_and_stay_exactly_in_budget(
    norm: Norm, eps: float, plain_cnn: TorchClassifier, digits: tuple[Dataset, Dataset],
) -> None:
    test = digits[1]
    assert test.y is not None
    x, y = torch.as_tensor(test.x[:128]), torch.as_tensor(test.y[:128]).long()
    adv = {p: pgd_inner(plain_cnn, x, y, eps=eps, norm=norm, steps=10, step_size=2.5 * eps / 10,
                        generator=torch.Generator().manual_seed(0), precision=p)
           for p in ("fp32", "bf16")}

    with torch.no_grad():
        logits = {p: plain_cnn.logits(a) for p, a in adv.items()}  # judged in fp32
    loss = {p: float(F.cross_entropy(z, y)) for p, z in logits.items()}
    robust = {p: float((z.argmax(1) == y).float().mean()) for p, z in logits.items()}
    assert not torch.equal(adv["bf16"], adv["fp32"])  # bf16 really ran
    assert loss["bf16"] >= 0.9 * loss["fp32"]
    assert robust["bf16"] <= robust["fp32"] + 0.05
    delta = (adv["bf16"] - x).flatten(1)
    size = delta.abs().amax(1) if norm == "linf" else delta.norm(dim=1)
    assert adv["bf16"].dtype == torch.float32
    assert float(size.max()) <= eps + 1e-6  # fp32 rounding; a bf16 projection is off by 1e-2
    assert float(adv["bf16"].min()) >= 0.0 and float(adv["bf16"].max()) <= 1.0


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_fp32_attack_steps_are_the_plain_loop_bit_for_bit(
    norm: Norm, plain_cnn: TorchClassifier, digits: tuple[Dataset, Dataset],
) -> None:
    test = digits[1]
    assert test.y is not None
    x, y = torch.as_tensor(test.x[:64]), torch.as_tensor(test.y[:64]).long()
    kwargs = {"eps": EPS, "norm": norm, "steps": 5, "step_size": 0.05}
    ours = pgd_inner(plain_cnn, x, y, generator=torch.Generator().manual_seed(0),
                     precision="fp32", **kwargs)  # type: ignore[arg-type]
    plain = _plain_pgd(plain_cnn, x, y, generator=torch.Generator().manual_seed(0),
                       **kwargs)  # type: ignore[arg-type]
    assert torch.equal(ours, plain)


def test_fp32_training_is_the_plain_loop_bit_for_bit(monkeypatch: pytest.MonkeyPatch) -> None:
    net, data = _tiny_rgb()
    hardener = PGDAdversarialTraining(eps=0.05, epochs=1, steps=3, n_val=16, warmup_epochs=0,
                                      attack_precision="fp32", channels_last=False)
    ours = hardener.apply(net, data, seed=0).module
    monkeypatch.setattr(at, "pgd_inner", lambda *a, precision, **k: _plain_pgd(*a, **k))
    plain = hardener.apply(net, data, seed=0).module
    assert ours is not None and plain is not None
    assert all(torch.equal(p, q) for p, q in zip(ours.parameters(), plain.parameters(),
                                                 strict=True))


@pytest.mark.parametrize(("setting", "fast", "dtype", "expected"), [
    ("auto", True, torch.float32, "bf16"),
    ("auto", False, torch.float32, "fp32"),
    ("auto", True, torch.float64, "fp32"),
    ("bf16", False, torch.float32, "bf16"),
    ("fp32", True, torch.float32, "fp32"),
])
def test_auto_precision_is_bf16_only_where_it_is_native(
    monkeypatch: pytest.MonkeyPatch, setting: at.AttackPrecision, fast: bool,
    dtype: torch.dtype, expected: at.Precision,
) -> None:
    monkeypatch.setattr(at, "bf16_is_fast", lambda device: fast)
    net, _ = _tiny_rgb()
    net = TorchClassifier(net.module.to(dtype), input_shape=(3, 8, 8))
    assert PGDAdversarialTraining(attack_precision=setting).precision_for(net) == expected


def test_bf16_on_a_float64_model_is_a_config_error() -> None:
    net, _ = _tiny_rgb()
    net = TorchClassifier(net.module.double(), input_shape=(3, 8, 8))
    with pytest.raises(ConfigError, match="needs a float32 model"):
        PGDAdversarialTraining(attack_precision="bf16").precision_for(net)


@pytest.mark.parametrize("method", ["pgd-at", "trades", "fast-at"])
def test_auto_trains_like_fp32_without_native_bf16_and_in_bf16_with_it(
    monkeypatch: pytest.MonkeyPatch, method: str,
) -> None:
    net, data = _tiny_rgb()
    params = {"eps": 0.05, "epochs": 1, "steps": 3, "n_val": 16, "warmup_epochs": 0.0}

    def train(precision: str, fast: bool) -> tuple[list[torch.Tensor], tuple[str, ...]]:
        monkeypatch.setattr(at, "bf16_is_fast", lambda device: fast)
        result = build_hardener(method, {**params, "attack_precision": precision}).apply(
            net, data, seed=0)
        assert result.module is not None
        return [p.detach() for p in result.module.parameters()], result.notes

    fp32, fp32_notes = train("fp32", True)
    fallback, fallback_notes = train("auto", False)
    bf16, bf16_notes = train("auto", True)
    assert all(torch.equal(p, q) for p, q in zip(fp32, fallback, strict=True))
    assert not any("bfloat16" in n for n in (*fp32_notes, *fallback_notes))
    assert not all(torch.equal(p, q) for p, q in zip(fp32, bf16, strict=True))
    assert all(bool(p.isfinite().all()) for p in bf16)
    assert any("attack steps ran in bfloat16" in n for n in bf16_notes)


@pytest.mark.parametrize(("machine", "avx512_bf16", "amx", "mkldnn", "expected"), [
    ("x86_64", True, False, True, True),
    ("x86_64", False, True, True, True),
    ("x86_64", False, False, True, False),  # oneDNN emulates bf16 on plain AVX-512: no gain
    ("aarch64", False, False, True, True),
    ("arm64", False, False, False, False),
    ("x86_64", None, None, True, False),  # a torch without the private probes
])
def test_bf16_is_fast_on_cpus_with_native_bf16_only(
    monkeypatch: pytest.MonkeyPatch, machine: str, avx512_bf16: bool | None,
    amx: bool | None, mkldnn: bool, expected: bool,
) -> None:
    monkeypatch.setattr(platform, "machine", lambda: machine)
    for probe, value in (("_is_avx512_bf16_supported", avx512_bf16),
                         ("_is_amx_tile_supported", amx)):
        if value is None:
            monkeypatch.delattr(torch.cpu, probe)
        else:
            monkeypatch.setattr(torch.cpu, probe, lambda value=value: value)
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: mkldnn)
    assert bf16_is_fast(torch.device("cpu")) is expected


@pytest.mark.parametrize(("capability", "expected"), [((7, 5), False), ((8, 0), True),
                                                     ((9, 0), True)])
def test_bf16_is_fast_on_gpus_from_ampere_on(monkeypatch: pytest.MonkeyPatch,
                                             capability: tuple[int, int],
                                             expected: bool) -> None:
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    assert bf16_is_fast(torch.device("cuda")) is expected
    assert not bf16_is_fast(torch.device("meta"))


def test_channels_last_training_leaves_the_user_model_alone_and_returns_it_contiguous(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    net, data = _tiny_rgb()
    before = {k: (v.clone(), v.stride()) for k, v in net.module.state_dict().items()}
    layouts: list[torch.memory_format] = []
    relayout = at._set_memory_format

    def spy(module: torch.nn.Module, layout: torch.memory_format) -> None:
        layouts.append(layout)
        relayout(module, layout)

    monkeypatch.setattr(at, "_set_memory_format", spy)

    result = PGDAdversarialTraining(eps=0.05, epochs=1, steps=2, n_val=16,
                                    warmup_epochs=0).apply(net, data)

    assert layouts == [torch.channels_last, torch.contiguous_format]
    after = net.module.state_dict()
    assert all(torch.equal(v, after[k]) and s == after[k].stride()
               for k, (v, s) in before.items())
    assert result.module is not None and result.module is not net.module
    state = result.module.state_dict()
    assert all(t.is_contiguous() for t in state.values())
    save_file(state, str(tmp_path / "hardened.safetensors"))  # refuses strided tensors


class _ViewAfterConv(torch.nn.Module):
    """A forward that flattens with ``view``, which channels-last activations refuse."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.head = torch.nn.Linear(4 * 8 * 8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.conv(x)
        return self.head(z.view(z.shape[0], -1))  # type: ignore[no-any-return]


def test_a_forward_that_needs_contiguous_activations_trains_in_the_usual_layout() -> None:
    _, data = _tiny_rgb()
    net = TorchClassifier(_ViewAfterConv(), input_shape=(3, 8, 8))
    probe = torch.as_tensor(data.x[:2])
    assert not at._try_channels_last(net, probe)
    assert all(p.is_contiguous() for p in net.module.parameters())
    result = PGDAdversarialTraining(eps=0.05, epochs=1, steps=2, n_val=16,
                                    warmup_epochs=0).apply(net, data)
    assert result.module is not None


def test_an_unknown_attack_precision_from_code_fails_before_training(
    plain_cnn: TorchClassifier, small_train: Dataset,
) -> None:
    hardener = PGDAdversarialTraining(attack_precision="fp16")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="attack-precision must be auto, fp32 or bf16"):
        hardener.apply(plain_cnn, small_train)
