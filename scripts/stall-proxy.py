#!/usr/bin/env python3
"""TCP proxy that lets a PostgreSQL login through, then stalls the first query.

    stall-proxy.py LISTEN_PORT TARGET_HOST TARGET_PORT [--pidfile PATH]

Simulates a server that accepts connections and authenticates but never
answers: bytes are relayed verbatim both ways until the client sends its first
query (simple 'Q', or 'P' that starts an extended-protocol query); from then on
the client's bytes are swallowed and the connection is held open, unanswered,
until the client closes it. Listens on 127.0.0.1 only, prints "ready" on stdout
once listening, logs one line per event on stderr, exits 0 on SIGTERM/SIGINT.
"""

import argparse
import os
import signal
import socket
import struct
import sys
import threading

SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
QUERY_MESSAGE_TYPES = (b"Q", b"P")
CHUNK = 65536


def log(message):
    print(f"stall-proxy: {message}", file=sys.stderr, flush=True)


def shutdown_quietly(sock):
    # shutdown(), unlike close(), wakes a thread blocked in recv() on the socket.
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def relay_server_to_client(server, client):
    try:
        while data := server.recv(CHUNK):
            client.sendall(data)
    except OSError:
        pass
    shutdown_quietly(client)


def relay_client_until_query(name, client, server):
    """Forwards complete frontend messages; returns when a query is seen.

    Returns False instead if the client went away or sent something that is
    not the PostgreSQL protocol, so the caller drops the connection.
    """
    buffer = b""
    in_startup = True  # startup-phase packets have a length but no type byte
    while data := client.recv(CHUNK):
        buffer += data
        while True:
            if in_startup:
                if len(buffer) < 8:
                    break
                length, code = struct.unpack("!II", buffer[:8])
                if length < 8:
                    log(f"{name}: malformed startup packet, dropping")
                    return False
                if len(buffer) < length:
                    break
                packet, buffer = buffer[:length], buffer[length:]
                if code in (SSL_REQUEST, GSSENC_REQUEST):
                    # Refusing encryption ourselves keeps the session plaintext,
                    # and so parseable, whatever the server's ssl setting.
                    client.sendall(b"N")
                    log(f"{name}: refused encryption request")
                    continue
                server.sendall(packet)
                in_startup = False
            else:
                if len(buffer) < 5:
                    break
                msg_type = buffer[:1]
                (length,) = struct.unpack("!I", buffer[1:5])
                if msg_type in QUERY_MESSAGE_TYPES:
                    log(f"{name}: login done, stalling at first query ({msg_type.decode()})")
                    return True
                if length < 4:
                    log(f"{name}: malformed message, dropping")
                    return False
                if len(buffer) < 1 + length:
                    break
                server.sendall(buffer[: 1 + length])
                buffer = buffer[1 + length :]
    return False


def handle_connection(name, client, target):
    try:
        server = socket.create_connection(target)
    except OSError as error:
        log(f"{name}: cannot reach {target[0]}:{target[1]}: {error}")
        client.close()
        return
    replies = threading.Thread(target=relay_server_to_client, args=(server, client), daemon=True)
    replies.start()
    try:
        if relay_client_until_query(name, client, server):
            while client.recv(CHUNK):
                pass
    except OSError:
        pass
    finally:
        log(f"{name}: closed")
        shutdown_quietly(client)
        shutdown_quietly(server)
        replies.join()
        client.close()
        server.close()


def exit_cleanly(_signum, _frame):
    raise SystemExit(0)  # unwinds main() so the pidfile is removed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("listen_port", type=int)
    parser.add_argument("target_host")
    parser.add_argument("target_port", type=int)
    parser.add_argument("--pidfile", help="write the proxy's pid here (removed on exit)")
    args = parser.parse_args()

    signal.signal(signal.SIGTERM, exit_cleanly)
    signal.signal(signal.SIGINT, exit_cleanly)
    try:
        listener = socket.create_server(("127.0.0.1", args.listen_port))
    except OSError as error:
        log(f"cannot listen on 127.0.0.1:{args.listen_port}: {error.strerror}")
        sys.exit(1)
    try:
        if args.pidfile:
            with open(args.pidfile, "w") as pidfile:
                pidfile.write(f"{os.getpid()}\n")
        print("ready", flush=True)
        count = 0
        while True:
            client, peer = listener.accept()
            count += 1
            name = f"conn {count} from port {peer[1]}"
            log(f"{name}: accepted")
            threading.Thread(
                target=handle_connection,
                args=(name, client, (args.target_host, args.target_port)),
                daemon=True,
            ).start()
    finally:
        listener.close()
        if args.pidfile:
            try:
                os.remove(args.pidfile)
            except FileNotFoundError:
                pass


if __name__ == "__main__":
    main()
