"""``socdef serve --uds PATH``: the worker on a Unix domain socket (nginx in front on the same
host), private to its account and group, removed on exit, never stealing a live one."""

from __future__ import annotations

import socket

import pytest

from tests.conftest import socdef, stop_server
from tests.nginx_edge import socket_get, socket_path, start_socket_worker


def test_the_socket_is_0660_answers_and_is_removed_on_exit(tmp_path):
    sock = tmp_path / "run" / "socdef.sock"
    sock.parent.mkdir()
    server = start_socket_worker(tmp_path / "data", tmp_path / "serve.log", "--uds", str(sock))
    try:
        assert socket_path(server) == sock
        assert sock.is_socket() and sock.stat().st_mode & 0o777 == 0o660
        healthz = socket_get(sock, "/healthz")
        assert healthz.status_code == 503 and healthz.json()["status"] == "no_build"
    finally:
        stop_server(server)
    assert server.proc.returncode == 0 or server.proc.returncode < 0
    assert not sock.exists()


def test_a_socket_left_by_a_killed_worker_is_replaced(tmp_path):
    sock = tmp_path / "w.sock"
    left = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    left.bind(str(sock))  # bound, never listening, closed: what a killed worker leaves
    left.close()
    assert sock.exists()
    server = start_socket_worker(tmp_path / "data", tmp_path / "serve.log", "--uds", str(sock))
    try:
        assert socket_get(sock, "/healthz").status_code == 503
    finally:
        stop_server(server)


def test_a_live_socket_is_refused_in_one_line(tmp_path):
    sock = tmp_path / "w.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as other:
        other.bind(str(sock))
        other.listen()
        result = socdef("serve", "--uds", str(sock), data_dir=tmp_path / "data", check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"Error: cannot listen on unix:{sock}: another server answers there "
        "(stop it, or choose another --uds)"
    )
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--uds", "{tmp}/plain.txt"], "a file that is not a socket is there"),
        (["--uds", "{tmp}/missing/w.sock"], "the folder {tmp}/missing does not exist"),
        (["--uds", "{tmp}/w.sock", "--port", "8123"], "--uds replaces --host and --port"),
        (["--uds", "{tmp}/w.sock", "--server", "uvicorn"], "--uds needs --server granian"),
        (["--uds", "/tmp/" + "x" * 120], "is too long (at most 107 bytes)"),
    ],
)
def test_bad_socket_settings_are_refused(tmp_path, args, message):
    (tmp_path / "plain.txt").write_text("not a socket\n")
    argv = [arg.format(tmp=tmp_path) for arg in args]
    result = socdef("serve", *argv, data_dir=tmp_path / "data", check=False)
    assert result.returncode != 0
    assert message.format(tmp=tmp_path) in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert (tmp_path / "plain.txt").read_text() == "not a socket\n"


def test_edge_nginx_with_an_address_keeps_tcp(tmp_path):
    """``--edge nginx --host/--port`` (nginx on another host) listens on TCP, no socket."""
    from tests.conftest import start_server

    server = start_server(tmp_path / "data", tmp_path / "serve.log", "--edge", "nginx")
    try:
        assert server.url.startswith("http://127.0.0.1:")
        assert not (tmp_path / "data" / "worker.sock").exists()
    finally:
        stop_server(server)
