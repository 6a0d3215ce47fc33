"""The tests' server ports: below the kernel's ephemeral range (no connection elsewhere can take one
between the choice and the bind), a slice of their own per xdist worker, each handed out once."""

import socket

from tests.support.servers import _port_pool, free_port


def test_ports_are_distinct_bindable_and_outside_the_kernels_range():
    low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
    ports = [free_port() for _ in range(5)]
    assert len(set(ports)) == 5 and all(port < low and port in _port_pool() for port in ports)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", ports[-1]))


def test_a_port_something_else_holds_is_passed_over():
    candidate = free_port() + 1  # the next one in this process's slice
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", candidate))
        assert free_port() > candidate


def test_xdist_workers_get_disjoint_slices(monkeypatch):
    slices = []
    for worker in ("gw0", "gw1", "gw2"):
        monkeypatch.setenv("PYTEST_XDIST_WORKER", worker)
        monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "3")
        slices.append(set(_port_pool()))
    assert all(slices) and not (slices[0] & slices[1] or slices[1] & slices[2] or slices[0] & slices[2])


def test_without_ports_below_the_kernels_range_the_kernel_chooses(monkeypatch):
    import tests.support.servers as servers

    monkeypatch.setattr(servers, "_port_pool", lambda: range(0))
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
