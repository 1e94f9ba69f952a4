#!/usr/bin/python3
"""libwebsockets' test server as a server for conc's WebSocket client.

  ws_lws.py CLIENT_CMD...

Starts libwebsockets-test-server (Debian's libwebsockets-test-server) on
loopback, finds the port it bound, and runs CLIENT_CMD with its URL
appended; the client's status is the result. Bounded by TIMEOUT seconds."""
import os
import shutil
import signal
import subprocess
import sys
import threading

TIMEOUT = 30
READY_TIMEOUT = 10
SERVER = "libwebsockets-test-server"


def listening_port(pid):
    """The TCP port the process listens on, read from /proc."""
    inodes = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for row in f.readlines()[1:]:
                cols = row.split()
                if cols[3] == "0A" and cols[9] in inodes:  # LISTEN
                    return int(cols[1].rsplit(":", 1)[1], 16)
    return None


def wait_operational(server, timeout):
    """Reads the server's log until it reports its context operational;
    False if it exits or says nothing of the kind within timeout."""
    result = []

    def scan():
        for line in server.stderr:
            if b"-> OPERATIONAL" in line:
                result.append(True)
                return

    reader = threading.Thread(target=scan, daemon=True)
    reader.start()
    reader.join(timeout)
    return bool(result)


def main():
    exe = shutil.which(SERVER)
    if not exe:
        sys.exit("ws_lws: no %s on PATH; it comes from Debian's "
                 "libwebsockets-test-server package (make deps)" % SERVER)
    # Info-level logging (-d 15) makes the server say when its context is
    # operational, that is, once its listening socket is bound: the port
    # is then read from /proc, with nothing to poll for.
    server = subprocess.Popen([exe, "--port=0", "-i", "lo", "-d", "15"],
                              stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE,
                              start_new_session=True)
    try:
        if not wait_operational(server, READY_TIMEOUT):
            sys.exit("ws_lws: %s did not start within %d s (status %s)" %
                     (SERVER, READY_TIMEOUT, server.poll()))
        # The rest of the log is drained so the server never blocks on it.
        threading.Thread(target=server.stderr.read, daemon=True).start()
        port = listening_port(server.pid)
        if port is None:
            sys.exit("ws_lws: %s is operational but listens on no port" %
                     SERVER)
        url = "ws://127.0.0.1:%d/" % port
        try:
            return subprocess.run(sys.argv[1:] + [url],
                                  timeout=TIMEOUT).returncode
        except subprocess.TimeoutExpired:
            sys.exit("ws_lws: the client did not finish within %d s" % TIMEOUT)
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


if __name__ == "__main__":
    sys.exit(main())
