#!/usr/bin/env python3
"""Serve every fake device of the test bed from one process (fakenos 1.2.1 + paramiko).

    fakenos_launch.py SPEC READY

SPEC has one device per line: ``name address port platform username password``
(blank lines and ``#`` comments are ignored). Each device gets its own SSH server on
``address:port`` -- any 127.x.y.z works on Linux without configuring an interface, which
lets every NetBox device have a distinct primary IP.

READY is written (``name address port platform`` lines) once every port is listening;
the parent script waits for it. It is removed again when the process stops.

Why not ``fakenos -i inventory.yaml``:
  * the stock CLI loads a platform's command YAML once per device and decodes the
    built-in RSA host key once per device; here each platform file is loaded once and
    the key is decoded once, then shared by all servers;
  * readiness is read from /proc/net/tcp: probing the ports with a TCP connect would make
    each server log an SSH banner error and keep a thread around;
  * SIGTERM / SIGINT end the process immediately (FakeNOS' own shutdown joins every
    server's accept loop in turn, roughly a second each).
"""

import io
import logging
import os
import signal
import socket
import struct
import sys
import threading
import time
from unittest import mock

import paramiko
from fakenos.core.nos import Nos, available_platforms
from fakenos.plugins.nos import nos_plugins
from fakenos.plugins.servers import ssh_server_paramiko
from fakenos.plugins.servers.ssh_server_paramiko import ParamikoSshServer
from fakenos.plugins.shell.cmd_shell import CMDShell

LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp


def parse_spec(path):
    devices = []
    with open(path, encoding="utf-8") as fh:
        for number, raw in enumerate(fh, 1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            fields = line.split()
            if len(fields) != 6:
                sys.exit(f"{path}:{number}: expected 6 fields, got {len(fields)}")
            name, address, port, platform, username, password = fields
            if platform not in available_platforms:
                sys.exit(f"{path}:{number}: fakenos has no platform {platform!r}")
            socket.inet_aton(address)  # raises on a malformed address
            devices.append((name, address, int(port), platform, username, password))
    return devices


def proc_key(address, port):
    """The local-address column of /proc/net/tcp: host-order hex IPv4 ':' hex port."""
    (addr,) = struct.unpack("<I", socket.inet_aton(address))
    return f"{addr:08X}:{port:04X}"


def listening():
    found = set()
    with open("/proc/net/tcp", encoding="ascii") as fh:
        next(fh)
        for row in fh:
            cols = row.split()
            if cols[3] == LISTEN:
                found.add(cols[1])
    return found


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    spec, ready = sys.argv[1], sys.argv[2]
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    def quit_now(*_):
        try:
            os.remove(ready)
        except FileNotFoundError:
            pass
        logging.shutdown()
        os._exit(0)

    signal.signal(signal.SIGTERM, quit_now)
    signal.signal(signal.SIGINT, quit_now)

    started = time.monotonic()
    devices = parse_spec(spec)
    platforms = {p: Nos(filename=nos_plugins[p]) for p in sorted({d[3] for d in devices})}
    host_key = paramiko.RSAKey(file_obj=io.StringIO(ssh_server_paramiko.DEFAULT_SSH_KEY))

    servers = []
    # Each ParamikoSshServer decodes its host key in __init__; hand it the decoded one.
    with mock.patch.object(ssh_server_paramiko.paramiko, "RSAKey", lambda *a, **k: host_key):
        for name, address, port, platform, username, password in devices:
            servers.append(
                ParamikoSshServer(
                    shell=CMDShell,
                    shell_configuration={"base_prompt": name},
                    nos=platforms[platform],
                    nos_inventory_config={},
                    port=port,
                    username=username,
                    password=password,
                    address=address,
                    timeout=1,
                )
            )
    for server in servers:
        server.start()

    wanted = {proc_key(d[1], d[2]) for d in devices}
    deadline = time.monotonic() + 30
    while not wanted <= listening():
        if time.monotonic() > deadline:
            missing = sorted(wanted - listening())
            print(f"fakenos_launch: not listening after 30 s: {missing}", file=sys.stderr, flush=True)
            os._exit(1)
        time.sleep(0.05)

    with open(ready + ".tmp", "w", encoding="utf-8") as fh:
        for name, address, port, platform, _, _ in devices:
            fh.write(f"{name} {address} {port} {platform}\n")
    os.replace(ready + ".tmp", ready)
    print(
        f"fakenos_launch: pid {os.getpid()}: {len(devices)} devices listening "
        f"after {time.monotonic() - started:.2f} s",
        flush=True,
    )
    threading.Event().wait()  # until a signal ends the process


if __name__ == "__main__":
    main()
