import json

from typer.testing import CliRunner

from bastion.cli.main import app

runner = CliRunner()


def test_show_names_the_parent_and_link() -> None:
    result = runner.invoke(app, ["frameworks", "show", "AML.T0024.000"])
    assert result.exit_code == 0
    assert "Infer Training Data Membership" in result.output
    assert "sub-technique of AML.T0024" in result.output
    assert "https://atlas.mitre.org/techniques/AML.T0024.000" in result.output


def test_list_json_has_all_owasp_risks() -> None:
    result = runner.invoke(app, ["frameworks", "list", "--framework", "owasp", "--format", "json"])
    assert result.exit_code == 0
    assert [e["id"] for e in json.loads(result.output)] == [f"ML{i:02d}" for i in range(1, 11)]


def test_unknown_id_is_a_user_error() -> None:
    result = runner.invoke(app, ["frameworks", "show", "ML11"])
    assert result.exit_code != 0 and "ML11" in str(result.exception)
