"""Fixtures for the fault tests: a fault-injection proxy in front of the session's SeaweedFS."""

from __future__ import annotations

import pytest

from .proxy import FaultProxy


@pytest.fixture
def proxy(s3server, request):
    """A proxy with no faults yet (the test sets `proxy.plan`); seeded from the test's name, so a rerun
    of one test injects the same sequence of faults."""
    seed = sum(request.node.name.encode())
    p = FaultProxy(s3server.endpoint_url, seed=seed).start()
    yield p
    p.stop()
