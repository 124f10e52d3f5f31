"""Shared fixtures: tiny synthetic data so unit tests run in seconds on two cores."""
import pytest

from normlib import data as datalib


@pytest.fixture(scope="session")
def tiny():
    return datalib.synthetic(n_train=200, n_test=100, seed=0)


@pytest.fixture(scope="session")
def tiny_splits(tiny):
    return datalib.splits(tiny, train_size=0, test_size=0, val_size=0, seed=0)
