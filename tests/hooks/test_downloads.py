"""Pre-signed downloads: a body cut off mid-way is fetched again, never leaves a ``.part`` file,
and fails with a clear RobocorpTransportError; a directory as dest_path is a local error."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_provider_robocorp.exceptions import RobocorpConfigError, RobocorpTransportError
from airflow_provider_robocorp.hooks.robocorp import RobocorpHook

from .support import Reply, ScriptedServer

BODY = bytes(range(256)) * 400


@pytest.mark.parametrize("to_file", [False, True])
def test_a_cut_off_body_is_fetched_again(loopback_conn: ScriptedServer, tmp_path: Path, sleeps, to_file) -> None:
    loopback_conn.script(Reply(body=BODY, action="short"), Reply(body=BODY, action="short"), Reply(body=BODY))
    dest = tmp_path / "asset.bin"
    got = RobocorpHook().download_presigned(f"{loopback_conn.origin}/files/asset.bin", dest if to_file else None)
    if to_file:
        assert got == str(dest) and dest.read_bytes() == BODY
    else:
        assert got == BODY
    assert len(loopback_conn.requests) == 3 and len(sleeps) == 2
    assert list(tmp_path.iterdir()) == ([dest] if to_file else [])
    assert all("authorization" not in r.headers for r in loopback_conn.requests)


def test_every_try_cut_off_is_a_transport_error_and_leaves_nothing(loopback_conn: ScriptedServer, tmp_path: Path,
                                                                    sleeps, monkeypatch) -> None:
    import json

    conn = json.loads(__import__("os").environ["AIRFLOW_CONN_ROBOCORP_DEFAULT"])
    conn["extra"]["max_retries"] = 2
    monkeypatch.setenv("AIRFLOW_CONN_ROBOCORP_DEFAULT", json.dumps(conn))
    loopback_conn.script(*[Reply(body=BODY, action="short") for _ in range(3)])
    dest = tmp_path / "asset.bin"
    with pytest.raises(RobocorpTransportError, match=r"cut off before its end 3 time\(s\).*nothing was written"):
        RobocorpHook().download_presigned(f"{loopback_conn.origin}/files/asset.bin?X-Sig=abc", dest)
    assert list(tmp_path.iterdir()) == [] and len(loopback_conn.requests) == 3


def test_an_existing_file_is_kept_when_the_download_fails(loopback_conn: ScriptedServer, tmp_path: Path, sleeps,
                                                          monkeypatch) -> None:
    import json

    conn = json.loads(__import__("os").environ["AIRFLOW_CONN_ROBOCORP_DEFAULT"])
    conn["extra"]["max_retries"] = 0
    monkeypatch.setenv("AIRFLOW_CONN_ROBOCORP_DEFAULT", json.dumps(conn))
    dest = tmp_path / "asset.bin"
    dest.write_bytes(b"old")
    loopback_conn.script(Reply(body=BODY, action="short"))
    with pytest.raises(RobocorpTransportError):
        RobocorpHook().download_presigned(f"{loopback_conn.origin}/files/asset.bin", dest)
    assert dest.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["asset.bin"]


def test_a_directory_as_dest_path_is_refused_before_the_download(loopback_conn: ScriptedServer, tmp_path: Path) -> None:
    with pytest.raises(RobocorpConfigError, match="is a directory"):
        RobocorpHook().download_presigned(f"{loopback_conn.origin}/files/a", tmp_path)
    with pytest.raises(RobocorpConfigError, match="does not exist"):
        RobocorpHook().download_presigned(f"{loopback_conn.origin}/files/a", tmp_path / "no" / "such" / "file")
    assert loopback_conn.requests == []
