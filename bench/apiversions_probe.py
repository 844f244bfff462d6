#!/usr/bin/env python3
"""Cold start of one broker process: starts COMMAND and returns how long it took, from just before the
exec to the first ApiVersions (v0) answered without error on 127.0.0.1:PORT, asked in a tight connect
loop (a new connection every millisecond until one is accepted). The process group is killed after.

    apiversions_probe.py PORT TIMEOUT_S LOG -- COMMAND [ARGS...]

Prints the milliseconds; exits 1 (with the log's tail) when the broker exits or does not answer in time.
"""
import os
import signal
import socket
import struct
import subprocess
import sys
import time

port, timeout, log_path = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
assert sys.argv[4] == "--"
command = sys.argv[5:]

# Request header v1 (api_key 18 ApiVersions, version 0, correlation id 7, client id "probe"), no body.
request = struct.pack(">hhih", 18, 0, 7, 5) + b"probe"
frame = struct.pack(">i", len(request)) + request


def recv_exactly(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    return buf


def answered():
    """One attempt: True when ApiVersions was answered with error code 0."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(2.0)
    try:
        s.connect(("127.0.0.1", port))
        s.sendall(frame)
        size = struct.unpack(">i", recv_exactly(s, 4))[0]
        body = recv_exactly(s, size)
        correlation, error = struct.unpack(">ih", body[:6])
        return correlation == 7 and error == 0
    except OSError:
        return False
    finally:
        s.close()


with open(log_path, "ab") as log:
    started = time.monotonic()
    proc = subprocess.Popen(command, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
try:
    while True:
        if answered():
            elapsed_ms = (time.monotonic() - started) * 1000.0
            break
        if proc.poll() is not None:
            sys.stderr.write(open(log_path, errors="replace").read()[-3000:])
            sys.exit(f"the broker exited with {proc.returncode} before answering ApiVersions")
        if time.monotonic() - started > timeout:
            sys.exit(f"no ApiVersions answer within {timeout} s")
        time.sleep(0.001)
    print(f"{elapsed_ms:.1f}")
finally:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
