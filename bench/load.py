#!/usr/bin/env python3
"""Plays HAProxies against one check port: RATE check connections a second
for SECONDS, each sending HAProxy's request and reading the whole answer.

    load.py PORT RATE SECONDS PATH

Prints one line: sent, complete 200s, errors, achieved checks/s, p50 and p99
latency in ms (connect to the answer's last byte). An error is anything but
a complete `HTTP/1.1 200` response whose body matches its Content-Length.
"""
import asyncio
import sys
import time


async def check(port, path, latencies, errors):
    start = time.monotonic()
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)
        writer.write(f"GET {path} HTTP/1.1\r\nhost: pgsqlchk\r\nConnection: close\r\n\r\n".encode())
        data = await asyncio.wait_for(reader.read(-1), 5)
        writer.close()
        head, _, body = data.partition(b"\r\n\r\n")
        lengths = [line.split(b":", 1)[1].strip() for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")]
        if not head.startswith(b"HTTP/1.1 200 ") or len(lengths) != 1 or int(lengths[0]) != len(body):
            errors.append(data[:60])
            return
        latencies.append((time.monotonic() - start) * 1000)
    except Exception as error:  # noqa: BLE001 - every failure is one error
        errors.append(repr(error)[:60])


async def main(port, rate, seconds, path):
    latencies, errors, tasks = [], [], []
    start = time.monotonic()
    total = int(rate * seconds)
    for index in range(total):
        delay = start + index / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(check(port, path, latencies, errors)))
    await asyncio.gather(*tasks)
    elapsed = time.monotonic() - start
    latencies.sort()

    def percentile(p):
        return latencies[min(len(latencies) - 1, int(len(latencies) * p))] if latencies else float("nan")

    print(f"{total}\t{len(latencies)}\t{len(errors)}\t{len(latencies) / elapsed:.1f}\t{percentile(0.5):.2f}\t{percentile(0.99):.2f}")
    if errors:
        print(f"first error: {errors[0]!r}", file=sys.stderr)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]))
