"""A TCP proxy on loopback that injects network faults between a node and PostgreSQL (issue #19): the
kernel here has no netem, so faults are made in user space, one proxy per node.

    proxy = FaultProxy(target_port)          # listens on proxy.port, forwards to 127.0.0.1:target_port
    proxy.latency(0.2)                       # every chunk, both ways, 200 ms late
    proxy.stall()                            # nothing forwarded (held, not lost) until heal()
    proxy.blackhole()                        # the open connections go half-open for good: their bytes are
                                             # dropped and their sockets never closed, as when a peer vanishes
    proxy.cut()                              # every open connection reset (RST) at once, mid-transaction or not
    proxy.heal()                             # pass everything again (new connections work; blackholed ones stay dead)
    proxy.close()

TLS passes through untouched: the proxy sees only ciphertext.
"""
import socket
import struct
import threading
import time


class FaultProxy:
    def __init__(self, target_port, target_host="127.0.0.1"):
        self.target = (target_host, target_port)
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(128)
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Condition()
        self.mode = "pass"
        self.delay = 0.0
        self.connections = []  # [client socket, server socket, dead flag (list of one bool)]
        self.closed = False
        self.accepted = 0
        threading.Thread(target=self._accept, daemon=True).start()

    # -- faults

    def latency(self, seconds):
        with self.lock:
            self.mode, self.delay = "pass", seconds
            self.lock.notify_all()

    def stall(self):
        with self.lock:
            self.mode = "stall"

    def blackhole(self):
        with self.lock:
            for connection in self.connections:
                connection[2][0] = True
            self.lock.notify_all()

    def cut(self):
        with self.lock:
            doomed, self.connections = self.connections, []
        for client, server, _ in doomed:
            for sock in (client, server):
                try:
                    # Linger 0: the close resets the connection. The shutdown first wakes the pump thread
                    # blocked in recv() (closing a socket another thread reads does not, on Linux: the
                    # connection would stay open, silent).
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                try:
                    sock.close()
                except OSError:
                    pass

    def heal(self):
        with self.lock:
            self.mode, self.delay = "pass", 0.0
            self.lock.notify_all()

    def close(self):
        self.closed = True
        self.cut()
        self.listener.close()

    # -- plumbing

    def _accept(self):
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target, timeout=5)
                server.settimeout(None)
            except OSError:
                client.close()
                continue
            dead = [False]
            with self.lock:
                self.connections.append([client, server, dead])
                self.accepted += 1
            threading.Thread(target=self._pump, args=(client, server, dead), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, dead), daemon=True).start()

    def _pump(self, source, destination, dead):
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                data = b""
            if not data:
                if not dead[0]:
                    for sock in (source, destination):
                        try:
                            sock.shutdown(socket.SHUT_RDWR)
                        except OSError:
                            pass
                return
            with self.lock:
                while self.mode == "stall" and not dead[0] and not self.closed:
                    self.lock.wait(0.1)
                delay = self.delay
            if dead[0]:
                continue  # half-open: swallowed, and the socket stays open
            if delay:
                time.sleep(delay)
            try:
                destination.sendall(data)
            except OSError:
                return
