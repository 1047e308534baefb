"""The PostgreSQL harness itself: fails loudly without binaries, cleans up after itself."""

from __future__ import annotations

import socket
import tempfile
from pathlib import Path

import pytest

from tests.pg import PgServer, find_pg_bin


def test_missing_server_binaries_fail_with_the_fix(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADELAB_PG_BIN", str(tmp_path))
    with pytest.raises(pytest.fail.Exception, match=r"run `bash \.ci/system-deps`"):
        find_pg_bin()


@pytest.mark.postgres
def test_a_server_starts_on_a_private_port_and_is_removed_on_stop() -> None:
    server = PgServer(bin=find_pg_bin(), base=Path(tempfile.mkdtemp(prefix="tradelab-pg-")))
    try:
        server.start()
        url = server.create_database("probe")
        assert url == f"postgresql+psycopg://postgres@127.0.0.1:{server.port}/probe"
        assert (server.base / "sock" / f".s.PGSQL.{server.port}").exists()
    finally:
        server.stop()
    assert not server.base.exists()
    with socket.socket() as s, pytest.raises(OSError):
        s.connect(("127.0.0.1", server.port))
