#!/usr/bin/env python3
"""Holds a standby's replication lag near a target that wanders around a
limit, for WARMUP + SECONDS: the primary commits WRITE_BYTES_PER_S of WAL (logical
messages, so no table grows), and every TICK the controller sets the
standby's recovery_min_apply_delay so that the WAL held back behind it
follows target = limit x (CENTER + SWING sin(2 pi t / 30 s) + uniform
noise of JITTER); by default CENTER 1, SWING 0.08 and JITTER 0.05:
hovering at the limit.

    flap.py PSQL SOCKET_DIR PRIMARY_PORT STANDBY_PORT LIMIT_BYTES WRITE_BYTES_PER_S WARMUP SECONDS [CENTER SWING JITTER]

Why a delay and not pg_wal_replay_pause()/resume(): replay is far faster
than the writes (it emptied 5 MB of lag before the first poll after a
resume), so bang-bang control swings from the limit to nothing. A standby
that applies each commit a delay after it was made holds about rate x delay
bytes of lag, smoothly. The lag is the one pgsqlchk's lag= compares: the
primary's WAL end as the receiver last heard it (latest_end_lsn) minus the
replay position. Prints one line: ticks after the warm-up (which the first
seconds' overshoot stays out of), and the lag's 10th, 50th and 90th
percentiles over them as shares of the limit. Resets the delay when done.
"""
import math
import random
import subprocess
import sys
import time

TICK = 0.1
# Share of the measured error corrected each tick: the loop settles within
# a few ticks and does not ring.
GAIN = 0.3
# One row even while no receiver runs (the first moments after a start).
LAG = ("SELECT 'lag ' || coalesce((SELECT pg_catalog.pg_wal_lsn_diff(latest_end_lsn, pg_catalog.pg_last_wal_replay_lsn()) "
       "FROM pg_catalog.pg_stat_wal_receiver)::text, 'unknown')")


def psql(binary, socket_dir, port, *commands):
    """The last line of output of `commands`, run in one psql as postgres."""
    arguments = [binary, "-XAtq", "-h", socket_dir, "-p", port, "-U", "postgres", "-d", "postgres"]
    for command in commands:
        arguments += ["-c", command]
    done = subprocess.run(arguments, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"flap.py: psql on port {port} failed: {done.stderr.strip()}")
    lines = done.stdout.strip().splitlines()
    return lines[-1] if lines else ""


def set_delay(milliseconds):
    return [f"ALTER SYSTEM SET recovery_min_apply_delay = '{milliseconds}ms'", "SELECT pg_catalog.pg_reload_conf()"]


def main():
    binary, socket_dir, primary, standby, limit, rate, warmup, seconds = sys.argv[1:9]
    limit, rate, warmup, seconds = int(limit), int(rate), float(warmup), float(seconds)
    center, swing, jitter = (float(argument) for argument in sys.argv[9:12]) if len(sys.argv) > 11 else (1.0, 0.08, 0.05)
    # One long-lived session writes; its statements need no answer.
    writer = subprocess.Popen([binary, "-XAtq", "-h", socket_dir, "-p", primary, "-U", "postgres", "-d", "postgres"],
                              stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    write = f"SELECT pg_catalog.pg_logical_emit_message(true, 'flap', repeat('x', {round(rate * TICK)}));\n"
    delay = limit / rate * 1000
    shares = []
    start = time.monotonic()
    next_tick = start
    try:
        while (now := time.monotonic()) - start < warmup + seconds:
            writer.stdin.write(write)
            writer.stdin.flush()
            lag = psql(binary, socket_dir, standby, *set_delay(round(delay)), LAG).removeprefix("lag ")
            if lag != "unknown":
                if now - start >= warmup:
                    shares.append(int(lag) / limit)
                target = limit * (center + swing * math.sin(2 * math.pi * (now - start) / 30) + random.uniform(-jitter, jitter))
                delay = max(0.0, delay + GAIN * (target - int(lag)) / rate * 1000)
            next_tick += TICK
            time.sleep(max(0.0, next_tick - time.monotonic()))
    finally:
        writer.stdin.close()
        writer.wait()
        psql(binary, socket_dir, standby, "ALTER SYSTEM RESET recovery_min_apply_delay", "SELECT pg_catalog.pg_reload_conf()")
    shares.sort()
    quantile = lambda q: shares[min(len(shares) - 1, int(q * len(shares)))] if shares else float("nan")  # noqa: E731
    print(f"ticks {len(shares)} lag/limit p10 {quantile(0.1):.2f} p50 {quantile(0.5):.2f} p90 {quantile(0.9):.2f}")


if __name__ == "__main__":
    main()
