#!/usr/bin/env python3
"""Log in to a fake device with paramiko and run commands in an interactive shell.

    ssh_probe.py HOST PORT USERNAME PASSWORD [COMMAND ...]

Run it with the fakenos venv's python (it has paramiko), e.g.
    $NBT_STATE/fakenos/venv/bin/python scripts/testbed/ssh_probe.py 127.0.0.11 6001 user user \
        enable 'terminal length 0' 'show version'
Prints the session transcript; exits 2 on an authentication failure, 1 on other errors.
Fake devices only offer an interactive shell channel (no exec), so commands are typed.
"""

import re
import sys
import time

import paramiko

PROMPT = re.compile(r"[\w.\-~()]+[>#$%]\s*$")


def read_until_prompt(chan, timeout=10.0):
    buf = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if chan.recv_ready():
            buf += chan.recv(65536).decode("utf-8", "replace")
            if PROMPT.search(buf.splitlines()[-1] if buf.splitlines() else ""):
                return buf
        elif chan.exit_status_ready() or chan.closed:
            return buf
        else:
            time.sleep(0.02)
    raise TimeoutError(f"no prompt within {timeout} s; got {buf!r}")


def main():
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    host, port, user, password, *commands = sys.argv[1:]
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    try:
        client.connect(host, int(port), user, password, timeout=10, allow_agent=False,
                       look_for_keys=False, banner_timeout=10, auth_timeout=10)
    except paramiko.AuthenticationException as exc:
        print(f"authentication failed: {exc}", file=sys.stderr)
        return 2
    chan = client.invoke_shell(width=511, height=1000)
    out = read_until_prompt(chan)
    for command in commands:
        chan.send(command + "\n")
        out += read_until_prompt(chan)
    print(out.replace("\r\n", "\n"))
    client.close()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as exc:  # noqa: BLE001 -- a probe reports, it does not crash
        print(f"error: {exc!r}", file=sys.stderr)
        sys.exit(1)
