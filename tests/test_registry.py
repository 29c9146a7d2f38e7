import sys

import pytest

from bastion.errors import ConfigError, UnknownPluginError
from bastion.registry import Registry


def test_register_and_get_returns_the_object() -> None:
    reg: Registry[object] = Registry("thing")

    @reg.register("cw-l2")
    class CW:
        pass

    assert reg.get("cw-l2") is CW
    assert reg.names() == ["cw-l2"]
    assert "cw-l2" in reg and len(reg) == 1


@pytest.mark.parametrize("bad", ["CW", "cw_l2", "-pgd", "pgd-", "", "p gd"])
def test_names_must_be_kebab_case(bad: str) -> None:
    with pytest.raises(ConfigError):
        Registry("thing").register(bad)


def test_a_name_is_never_reused() -> None:
    reg: Registry[object] = Registry("thing")
    reg.register("pgd")(object())
    with pytest.raises(ConfigError, match="already registered"):
        reg.register("pgd")(object())


def test_unknown_name_suggests_close_matches() -> None:
    reg: Registry[int] = Registry("attack")
    reg.register("square")(1)
    reg.register("pgd")(2)
    with pytest.raises(UnknownPluginError, match="did you mean square"):
        reg.get("squar")


def test_modules_are_imported_only_on_first_lookup(tmp_path, monkeypatch) -> None:
    (tmp_path / "lazy_plugin_mod.py").write_text(
        "from tests_registry_target import REG\nREG.register('late')(42)\n"
    )
    (tmp_path / "tests_registry_target.py").write_text(
        "from bastion.registry import Registry\n"
        "REG = Registry('thing', modules=('lazy_plugin_mod',))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import tests_registry_target

    assert "lazy_plugin_mod" not in sys.modules
    assert tests_registry_target.REG.get("late") == 42
    assert "lazy_plugin_mod" in sys.modules


def test_name_of_and_accepting_read_what_plugins_declare() -> None:
    reg: Registry[object] = Registry("thing")

    @reg.register("needs-int")
    class NeedsInt:
        requires = (int,)

    @reg.register("needs-nothing")
    class Free:
        pass

    assert reg.name_of(NeedsInt) == "needs-int" and reg.name_of(object()) is None
    assert reg.accepting(3) == ["needs-int", "needs-nothing"]
    assert reg.accepting("x") == ["needs-nothing"]
