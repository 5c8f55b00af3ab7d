#!/usr/bin/python3
"""Redis memory per tracked event: publishes N events through Bloodbank,
each the child of the one before (so every event has one parent and every
record but the last one child), and prints the INFO used_memory delta per
event. usage: memory.py BASE_URL REDIS_PORT [N]"""
import socket
import sys

import requests


def used_memory(port):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"INFO memory\r\n")
    data = b""
    while b"used_memory:" not in data or not data.endswith(b"\r\n"):
        data += s.recv(65536)
    s.close()
    for line in data.decode().splitlines():
        if line.startswith("used_memory:"):
            return int(line.split(":")[1])
    raise RuntimeError("no used_memory in INFO")


def main():
    base, port = sys.argv[1], int(sys.argv[2])
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 10000
    session = requests.Session()
    body = '{"prompt":"Test prompt","model":"gpt-4","temperature":0.7}'
    headers = {"Content-Type": "application/json"}

    def publish(parent):
        h = dict(headers)
        if parent:
            h["X-Correlation-Ids"] = parent
        r = session.post(base + "/events/llm/prompt", data=body, headers=h)
        r.raise_for_status()
        return r.json()["event_id"]

    parent = publish(None)  # the root, before measuring
    before = used_memory(port)
    for _ in range(n):
        parent = publish(parent)
    after = used_memory(port)
    print("redis events=%d used_memory_delta=%d bytes_per_event=%.0f"
          % (n, after - before, (after - before) / n))


if __name__ == "__main__":
    main()
