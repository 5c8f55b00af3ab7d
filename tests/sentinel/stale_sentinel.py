#!/usr/bin/python3
"""A Sentinel that has not learnt of a failover, for tests/sentinel/run.sh:
it answers SENTINEL get-master-addr-by-name with a fixed address (a replica)
and AUTH with +OK, and nothing else. A worker that asks it must find the
named server is no master (ROLE) and ask another Sentinel first next time.

usage: stale_sentinel.py PORT HOST NAMED_PORT"""

import socketserver
import sys


def bulk(s):
    b = s.encode()
    return b"$%d\r\n%s\r\n" % (len(b), b)


class Handler(socketserver.StreamRequestHandler):

    def command(self):
        """One RESP array of bulk strings, or None at the end."""
        line = self.rfile.readline()
        if not line.startswith(b"*"):
            return None
        args = []
        for _ in range(int(line[1:])):
            size = int(self.rfile.readline()[1:])
            args.append(self.rfile.read(size + 2)[:-2].decode())
        return args

    def handle(self):
        while True:
            args = self.command()
            if args is None:
                return
            name = args[0].upper() if args else ""
            if name == "AUTH":
                self.wfile.write(b"+OK\r\n")
            elif name == "SENTINEL" and len(args) == 3 and \
                    args[1].lower() == "get-master-addr-by-name":
                self.wfile.write(b"*2\r\n" + bulk(HOST) + bulk(str(NAMED)))
            else:
                self.wfile.write(b"-ERR not a command of this stale Sentinel\r\n")


if __name__ == "__main__":
    PORT, HOST, NAMED = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    socketserver.ThreadingTCPServer.allow_reuse_address = True
    socketserver.ThreadingTCPServer.daemon_threads = True
    with socketserver.ThreadingTCPServer(("127.0.0.1", PORT), Handler) as server:
        server.serve_forever()
