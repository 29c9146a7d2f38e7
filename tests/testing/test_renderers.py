import pytest

from bastion.report.write import RENDERERS
from bastion.testing.renderers import check_renderer


@pytest.mark.parametrize("name", RENDERERS.names())
def test_every_registered_renderer_passes_the_contract(name: str) -> None:
    check_renderer(name, RENDERERS.get(name))


def test_the_contract_rejects_a_renderer_that_leaks_markup() -> None:
    with pytest.raises(AssertionError, match="escaped"):
        check_renderer("html", lambda r: "<script>boom needs training data")
