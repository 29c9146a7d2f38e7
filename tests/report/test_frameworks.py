import json
import sys
from pathlib import Path

import pytest

from bastion.errors import ConfigError, UnknownPluginError
from bastion.report import frameworks

ROOT = Path(__file__).resolve().parents[2]
ATLAS_YAML = ROOT.parent / "shared" / "reference" / "ATLAS.yaml"


@pytest.mark.parametrize(
    ("fid", "name"),
    [("ML01", "Input Manipulation Attack"), ("ML10", "Model Poisoning"),
     ("AML.T0043", "Craft Adversarial Data"), ("AML.TA0001", None),
     ("AML.T0024.000", "Infer Training Data Membership")],
)
def test_known_ids(fid: str, name: str | None) -> None:
    entry = frameworks.lookup(fid)
    assert frameworks.is_known(fid)
    assert entry.url.startswith("https://")
    if name:
        assert entry.name == name


@pytest.mark.parametrize("fid", ["ML11", "ML00", "AML.T9999", "T0043", "AML.T0043.999"])
def test_unknown_ids(fid: str) -> None:
    assert not frameworks.is_known(fid)
    with pytest.raises(UnknownPluginError):
        frameworks.lookup(fid)


def test_tables_have_every_owasp_risk_and_the_atlas_version() -> None:
    assert [e.id for e in frameworks.entries("owasp")] == [f"ML{i:02d}" for i in range(1, 11)]
    assert frameworks.atlas_version() == "5.6.0"
    assert frameworks.lookup("AML.T0024.000").parent == "AML.T0024"


@pytest.mark.skipif(not ATLAS_YAML.exists(), reason="the shared ATLAS.yaml is not beside the repo")
def test_committed_atlas_table_is_what_the_generator_makes() -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    from generate_frameworks import atlas_table, dump

    committed = (ROOT / "src/bastion/report/data/atlas.json").read_text()
    assert committed == dump(atlas_table(ATLAS_YAML))
    assert "description" not in json.loads(committed)["techniques"][0]



def test_kind_specific_lookups_refuse_the_other_kinds() -> None:
    assert frameworks.owasp("ML05").name == "Model Theft"
    assert frameworks.atlas_technique("AML.T0043").kind == "technique"
    with pytest.raises(UnknownPluginError, match="tactic"):
        frameworks.atlas_technique("AML.TA0001")
    with pytest.raises(UnknownPluginError):
        frameworks.owasp("AML.T0043")


def test_unknown_framework_name_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="owasp or atlas"):
        frameworks.entries("nist")
