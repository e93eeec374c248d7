"""The neighbours strategy passes the conformance suite every hpsearch strategy passes."""

from hpsearch.testing import SearcherConformance


class TestNeighboursConformance(SearcherConformance):
    strategy_name = "neighbours"
    space = {"width": [8, 16, 32], "n_layers": [1, 2, 3], "activation": ["ReLU", "Tanh"]}
    options = {"starts": 3}
    max_concurrent = 2
