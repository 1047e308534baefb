from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.unit.notify.endpoints import BlackHole, HttpReceiver, SmtpReceiver


@pytest.fixture()
def http_receiver() -> Iterator[HttpReceiver]:
    r = HttpReceiver()
    yield r
    r.close()


@pytest.fixture()
def smtp_receiver() -> Iterator[SmtpReceiver]:
    r = SmtpReceiver()
    yield r
    r.close()


@pytest.fixture()
def black_hole() -> Iterator[BlackHole]:
    b = BlackHole()
    yield b
    b.close()
