"""CPython's asyncio as the peer of conc's datagram endpoints
(tests/test_aio_net.c): a UDP endpoint on 127.0.0.1 that prints its port,
answers each datagram with the same bytes upper-cased, and after `count`
datagrams prints "done" and exits 0. A wait of more than 30 s fails."""
import asyncio
import sys

WAIT = 30.0


class Echo(asyncio.DatagramProtocol):
    def __init__(self, count, done):
        self.count, self.done = count, done

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.transport.sendto(data.upper(), addr)
        self.count -= 1
        if self.count == 0:
            self.done.set_result(None)


async def main(count):
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: Echo(count, done), local_addr=("127.0.0.1", 0))
    print(transport.get_extra_info("sockname")[1], flush=True)
    await asyncio.wait_for(done, WAIT)
    transport.close()
    print("done", flush=True)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
