"""The seed's selector server ("1. Asynchronous TCP server"), rewritten here
with the same behaviour, as the baseline for bench/hello.c.

What is kept from the seed, since it is what the benchmark measures:
  - one DefaultSelector; the listening socket, non-blocking, listen(1024);
  - one generator per connection, resumed by the loop on each event;
  - the accept generator takes ONE connection per readable event and logs
    it with logging.debug (the seed configures DEBUG logging to stdout);
  - reads of buf_size (64) bytes, one per readable event, until a chunk
    ENDS with b'\\n\\n' (so a request must arrive with its blank line at the
    end of a chunk: the bench's short single-write requests do);
  - the reply b'Hello ' + data sent in buf_size slices, one per writable
    event, then on the next writable event: unregister, close.
Also kept: a client that closes before its blank line leaves its generator
resumed on every loop turn (recv returns b''), and a reset escapes mainloop.

Added for the benchmark: the port may be 0 (any free one); once listening,
"listening on HOST:PORT" is printed to stdout and flushed; --count N exits
with status 0 after N connections have been closed; SIGTERM exits with
status 0; --log FILE sends the DEBUG log there instead of stdout (the bench
passes /dev/null, which is the seed's stdout redirected to /dev/null: every
record is still formatted and written).

Usage: hello_baseline.py [--host A] [--port N] [--count N] [--log FILE]
"""
import logging
import signal
import sys
from selectors import DefaultSelector, EVENT_READ, EVENT_WRITE
from socket import AF_INET, SOCK_STREAM, socket


class Server:
    def __init__(self, host, port, buf_size=64, count=0):
        self.addr = (host, port)
        self.poll = DefaultSelector()
        self.m = {}  # socket -> its generator, as in the seed
        self.buf_size = buf_size
        self.count = count
        self.closed = 0

    def handle_read(self, sock):
        size = self.buf_size

        def reading():
            parts = []
            while True:
                chunk = sock.recv(size)
                if chunk.endswith(b'\n\n'):
                    parts.append(chunk[:-2])
                    break
                parts.append(chunk)
                yield
            self.handle_write(sock, b''.join(parts))

        gen = reading()
        self.m[sock] = gen
        self.poll.register(sock, EVENT_READ, gen)

    def handle_write(self, sock, data):
        size = self.buf_size

        def writing():
            reply = b'Hello ' + data
            pos = 0
            while pos < len(reply):
                sock.send(reply[pos:pos + size])
                pos += size
                yield
            self.poll.unregister(sock)
            del self.m[sock]
            sock.close()
            self.closed += 1

        gen = writing()
        self.m[sock] = gen
        self.poll.modify(sock, EVENT_WRITE, gen)

    def handle_accept(self, sock):
        while True:
            conn, addr = sock.accept()
            logging.debug(f'Accept the connection from {addr}')
            self.handle_read(conn)
            yield

    def mainloop(self):
        sock = socket(AF_INET, SOCK_STREAM)
        try:
            sock.bind(self.addr)
            sock.setblocking(False)
            sock.listen(1024)
            self.addr = sock.getsockname()
            print(f'listening on {self.addr[0]}:{self.addr[1]}', flush=True)
            self.m[sock] = self.handle_accept(sock)
            self.poll.register(sock, EVENT_READ, self.m[sock])
            logging.info(f'Server is running at {self.addr}')
            while not self.count or self.closed < self.count:
                for key, _ in self.poll.select():
                    try:
                        next(key.data)
                    except StopIteration:
                        pass
        finally:
            sock.close()
            self.poll.close()


def main(argv):
    opts = {'--host': '127.0.0.1', '--port': '0', '--count': '0', '--log': '-'}
    it = iter(argv)
    for a in it:
        if a not in opts:
            sys.exit(__doc__)
        opts[a] = next(it, None) or sys.exit(__doc__)
    log = sys.stdout if opts['--log'] == '-' else open(opts['--log'], 'w')
    logging.basicConfig(stream=log, level=logging.DEBUG)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    Server(opts['--host'], int(opts['--port']), count=int(opts['--count'])).mainloop()


if __name__ == '__main__':
    main(sys.argv[1:])
