import matplotlib
import pytest

from bastion.report.charts import chart_svg
from bastion.report.finding import Chart, Series


@pytest.mark.parametrize("kind", ["line", "bar", "hist"])
def test_each_kind_is_a_titled_deterministic_svg(kind: str) -> None:
    chart = Chart(title="robust accuracy vs eps", kind=kind, x_label="eps", y_label="acc",
                  series=[Series(name="pgd", x=[0.0, 0.1, 0.2], y=[0.9, 0.5, 0.1]),
                          Series(name="fgsm", x=[0.0, 0.1, 0.2], y=[0.9, 0.7, 0.4])])
    svg = chart_svg(chart)
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    assert "robust accuracy vs eps" in svg
    assert chart_svg(chart) == svg


def test_leaves_global_matplotlib_state_alone() -> None:
    backend, salt = matplotlib.get_backend(), matplotlib.rcParams["svg.hashsalt"]
    chart_svg(Chart(title="t", kind="line", x_label="x", y_label="y",
                    series=[Series(name="s", x=[0, 1], y=[1, 0])]))
    assert (matplotlib.get_backend(), matplotlib.rcParams["svg.hashsalt"]) == (backend, salt)
