"""CPython twin of bench_tls.c: TLS echo of 1 KiB messages with asyncio
streams and the ssl module, server and client on one loop, on asyncio's
own loop (impl "cpython") and on uvloop's (impl "uvloop"). The server's
certificate is made by the openssl program in a temporary directory."""
import asyncio
import os
import ssl
import subprocess
import tempfile

import bench_common as bc

MSG = 1024


def make_cert(d):
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert,
         "-days", "1", "-subj", "/CN=localhost", "-addext",
         "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True)
    return cert, key


def echo_run(new_loop, cert, key):
    """n round trips over one TLS connection; the handshake is not
    timed."""
    sctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    sctx.load_cert_chain(cert, key)
    cctx = ssl.create_default_context(cafile=cert)

    def run(n):
        loop = new_loop()
        handlers = []

        async def handle(reader, writer):
            handlers.append(asyncio.current_task())
            while data := await reader.read(65536):
                writer.write(data)
            writer.close()

        async def main():
            server = await asyncio.start_server(handle, "127.0.0.1", 0,
                                                ssl=sctx)
            port = server.sockets[0].getsockname()[1]
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", port, ssl=cctx, server_hostname="localhost")
            msg = bytes(MSG)
            t0 = bc.now()
            for _ in range(n):
                writer.write(msg)
                await reader.readexactly(MSG)
            t = bc.now() - t0
            writer.close()
            await writer.wait_closed()
            await asyncio.gather(*handlers, return_exceptions=True)
            server.close()
            await server.wait_closed()
            return t
        try:
            t = loop.run_until_complete(main())
        finally:
            loop.close()
        return t, n
    return run


def measure(opts, new_loop, impl):
    with tempfile.TemporaryDirectory() as d:
        cert, key = make_cert(d)
        bc.row(opts, "tls_echo_1", echo_run(new_loop, cert, key), True, 100,
               impl=impl)


def main():
    bc.asyncio_twin(__file__, measure, "tls_echo_1")


if __name__ == "__main__":
    main()
