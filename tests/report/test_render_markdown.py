from bastion.report.render_markdown import render_markdown
from bastion.testing.renderers import rich_report


def test_markdown_has_summary_findings_links_errors_skips_and_metadata() -> None:
    text = render_markdown(rich_report())
    assert text.index("critical finding") < text.index("info finding")
    assert "[ML01" in text and "owasp.org" in text
    assert "AML.T0043" in text and "atlas.mitre.org" in text
    assert "robust accuracy" in text and "ratio" in text
    assert "boom" in text and "needs training data" in text
    assert "ab" * 32 in text
    assert "\\|" in text  # pipes in cells are escaped so tables keep their shape
