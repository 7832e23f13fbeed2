"""The lean HTTP/1.1 client's own cost: client CPU per pipelined request for a 200-request
batch (an Alipay batch) over 2 to 32 keep-alive connections, against a minimal server in its
own process that answers each request with a fixed 600-byte reply (so nearly all the CPU
measured is the client's framing, writes, reads and reply parsing, and the per-connection
bookkeeping of ``Http1Pool.pipeline``). The difference between lane counts is what a lane
costs; ``AlipayConfig.concurrency`` is chosen from it."""

from __future__ import annotations

import asyncio
import multiprocessing
import time

import uvloop

from bench.report import Result
from channels.transport import Http1Pool
from infra.ports import free_port, wait_port

BATCH = 200
BODY = 300  # request body bytes (the server reads exactly this much after the head)
REPLY = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 600\r\n\r\n" + \
    b"x" * 600
ROUNDS = {"quick": 30, "full": 300}
LANES = (2, 8, 16, 32)


def _server(port: int) -> None:
    class Answer(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport: asyncio.Transport = transport  # type: ignore[assignment]
            self.buffer = b""

        def data_received(self, data: bytes) -> None:
            self.buffer += data
            answered = 0
            while (end := self.buffer.find(b"\r\n\r\n")) >= 0 and \
                    len(self.buffer) >= end + 4 + BODY:
                self.buffer = self.buffer[end + 4 + BODY:]
                answered += 1
            if answered:
                self.transport.write(REPLY * answered)

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(Answer, "127.0.0.1", port)
        await server.serve_forever()

    uvloop.run(main())


def _per_request_us(port: int, lanes: int, rounds: int) -> float:
    async def main() -> float:
        pool = Http1Pool(f"http://127.0.0.1:{port}")
        frame = pool.frame("/gateway.do?", "application/x-www-form-urlencoded")
        datas = [frame.build(b"n=%d" % i, b"y" * BODY) for i in range(BATCH)]
        for _ in range(10):  # connections opened and warm
            await pool.pipeline(datas, connections=lanes)
        started = time.process_time()
        for _ in range(rounds):
            replies = await pool.pipeline(datas, connections=lanes)
            if not all(isinstance(r, tuple) and r[0] == 200 for r in replies):
                raise RuntimeError("a pipelined request got no reply")
        pool.close()
        return (time.process_time() - started) / rounds / BATCH * 1e6

    return uvloop.run(main())


def run(*, size: str) -> list[Result]:
    port = free_port()
    server = multiprocessing.get_context("spawn").Process(target=_server, args=(port,),
                                                         daemon=True)
    server.start()
    try:
        if not wait_port("127.0.0.1", port, timeout=20):
            raise RuntimeError("the reply server did not start")
        # Lane counts alternate over two passes; the lower of each pair is kept.
        figures: dict[int, float] = {}
        for _ in range(2):
            for lanes in LANES:
                got = _per_request_us(port, lanes, ROUNDS[size])
                figures[lanes] = min(figures.get(lanes, got), got)
    finally:
        server.terminate()
        server.join(10)
    rows = [Result("channels_transport", f"client CPU per pipelined request, {BATCH} over "
                   f"{lanes} connections", round(us, 2), "µs") for lanes, us in figures.items()]
    lane_us = (figures[32] - figures[8]) * BATCH / (32 - 8)
    return [*rows, Result("channels_transport", "client CPU per connection per batch "
                          "(32 against 8 connections)", round(lane_us, 1), "µs")]
