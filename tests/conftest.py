"""Fixtures shared by every test module."""

from __future__ import annotations

import pytest


@pytest.fixture(params=["numpy", "python"])
def backend(request):
    """Every test taking this fixture runs once per backend."""
    return request.param
