#!/usr/bin/python3
"""Headless Chromium against conc's WebSocket engine.

  ws_chromium.py SERVER_CMD...

Starts the server (ws_chromium_peer: first line "listening on PORT"),
opens its page in headless Chromium (Debian's chromium), and waits for
the server to exit: it does once the page's WebSocket has exchanged text,
binary and a 1 MiB message with permessage-deflate on, sent the page's
verdict and closed with code 4321. The server's status is the result;
everything is bounded by TIMEOUT seconds."""
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile

TIMEOUT = 45


def stop(p):
    if p.poll() is None:
        os.killpg(p.pid, signal.SIGKILL)
    p.wait()


def main():
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if not browser:
        sys.exit("ws_chromium: no chromium on PATH; it comes from Debian's "
                 "chromium package (make deps)")
    server = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, text=True,
                              start_new_session=True)
    chrome = None
    profile = tempfile.mkdtemp(prefix="conc-chromium-")
    try:
        r, _, _ = select.select([server.stdout], [], [], 10)
        line = server.stdout.readline() if r else ""
        if not line.startswith("listening on "):
            sys.exit("ws_chromium: the server printed %r" % line)
        url = "http://127.0.0.1:%s/" % line.split()[2]
        chrome = subprocess.Popen(
            [browser, "--headless", "--no-sandbox", "--disable-gpu",
             "--no-first-run", "--disable-extensions",
             "--user-data-dir=" + profile, url],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        try:
            out, _ = server.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            sys.exit("ws_chromium: no result from the page within %d s"
                     % TIMEOUT)
        sys.stdout.write(out)
        return server.returncode
    finally:
        for p in (chrome, server):
            if p:
                stop(p)
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
