"""Notebook execution: values reach a notebook only as plain literals."""
import ast

import pytest

from normlib import execute


@pytest.mark.parametrize("value", ['x"); open("pwned", "w"); ("', 'a\\"b\\', "'''\n\"\"\"", "$(touch pwned) `id`",
                                   "{data} %s", "é ü 😀"])
def test_values_reach_the_notebook_only_as_literals(value):
    from papermill.translators import translate_parameters
    params = {"data": value, "lr": 0.5, "diagnostics": False, "seed": 3}
    assert execute.literal_parameters(params) == params
    tree = ast.parse(translate_parameters("python3", "python", params, "Parameters"))
    assert [n.targets[0].id for n in tree.body] == list(params)
    assert all(isinstance(n.value, ast.Constant) for n in tree.body)
    assert {n.targets[0].id: n.value.value for n in tree.body} == params


@pytest.mark.parametrize("value", [float("inf"), float("nan")])
def test_non_literal_values_are_refused(value):
    with pytest.raises(ValueError, match="not a plain literal"):
        execute.literal_parameters({"lr": value})
