"""A fake Vantage runtime for the panoramasdk tests.

It speaks the app protocol (docs/app-protocol.md) on a real Unix socket, from a thread, with real shared-memory
files under /dev/shm: camera frames and the tensor arena. Its decoding is written here from the spec, apart from
the SDK's. Tests script its answers and read what it received.
"""

import collections
import json
import os
import shutil
import socket
import struct
import sys
import tempfile
import threading
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
SDK_ROOT = os.path.dirname(HERE)
if SDK_ROOT not in sys.path:
    sys.path.insert(0, SDK_ROOT)
try:
    import numpy as np
except ImportError:  # the repository's base packages (scripts/setup installs numpy there)
    sys.path.append(os.path.join(os.path.dirname(SDK_ROOT), ".deps", "python"))
    import numpy as np

import pytest

import panoramasdk

HELLO, GET, PUT, INFER, EVENT, BYE = 1, 2, 3, 4, 5, 6
CONFIG, FRAMES, END, TIMEOUT, INFER_RESULT, OK, ERROR = 101, 102, 103, 104, 105, 106, 199
ELEMENT_DTYPES = {1: np.uint8, 2: np.float32, 3: np.int32, 4: np.int64, 5: np.float16}
ELEMENT_CODES = {np.dtype(v): k for k, v in ELEMENT_DTYPES.items()}


class Reader(object):
    """Reads little-endian protocol fields from a payload."""

    def __init__(self, data):
        self.data = bytes(data)
        self.offset = 0

    def take(self, fmt):
        values = struct.unpack_from("<" + fmt, self.data, self.offset)
        self.offset += struct.calcsize("<" + fmt)
        return values if len(values) > 1 else values[0]

    def string(self):
        n = self.take("I")
        text = self.data[self.offset:self.offset + n].decode("utf-8")
        self.offset += n
        return text

    def frame_ref(self):
        return self.take("IIQ")

    def overlays(self):
        out = []
        for _ in range(self.take("I")):
            kind, x0, y0, x1, y1, color = self.take("BffffI")
            out.append({"kind": kind, "x0": x0, "y0": y0, "x1": x1, "y1": y1, "color": color,
                        "text": self.string()})
        return out

    @property
    def remaining(self):
        return len(self.data) - self.offset


def pack_string(text):
    data = text.encode("utf-8")
    return struct.pack("<I", len(data)) + data


class Message(object):
    def __init__(self, kind, rid, **fields):
        self.kind = kind
        self.rid = rid
        self.__dict__.update(fields)

    def __repr__(self):
        return "Message(%d, rid=%d, %s)" % (self.kind, self.rid, {
            k: v for k, v in self.__dict__.items() if k not in ("kind", "rid")})


class Camera(object):
    def __init__(self, name, uri, slot_count, slot_capacity):
        self.name = name
        self.uri = uri
        self.slot_count = slot_count
        self.slot_capacity = slot_capacity
        self.path = "/dev/shm/vantage-pytest-%s-%s" % (uuid.uuid4().hex[:12], name)
        with open(self.path, "wb") as f:
            f.truncate(slot_count * slot_capacity)
        self.memory = np.memmap(self.path, dtype=np.uint8, mode="r+", shape=(slot_count * slot_capacity,))

    def pixels(self, slot, width, height, stride):
        """The fake's own view of a frame in shared memory (height, width, 3)."""
        base = slot * self.slot_capacity
        assert stride * (height - 1) + width * 3 <= self.slot_capacity and slot < self.slot_count
        return np.lib.stride_tricks.as_strided(
            self.memory[base:], shape=(height, width, 3), strides=(stride, 3, 1))


class FakeRuntime(object):
    """A scripted runtime on a thread. Before the SDK connects, tests may edit ``config``; ``get_replies`` is a
    queue of answers to ``get`` (a list of frame tuples, "end", "timeout", or ("error", code, text)); ``on_infer``
    and ``on_event`` answer those requests."""

    def __init__(self, directory, slot_capacity=256 * 48, slot_count=3, arena_slots=4,
                 arena_capacity=1 << 20):
        self.directory = directory
        self.socket_path = os.path.join(directory, "rt.sock")
        self.cameras = [
            Camera("cam_a", "rtsp://10.0.0.5/stream1", slot_count, slot_capacity),
            Camera("cam_b", "file:///videos/b.mp4", slot_count, slot_capacity),
        ]
        self.arena_path = "/dev/shm/vantage-pytest-%s-tensors" % uuid.uuid4().hex[:12]
        self.arena_capacity = arena_capacity
        with open(self.arena_path, "wb") as f:
            f.truncate(arena_slots * arena_capacity)
        self.arena = np.memmap(self.arena_path, dtype=np.uint8, mode="r+", shape=(arena_slots * arena_capacity,))
        self.config = {
            "protocolVersion": 1, "application": "people-counter", "node": "code_node",
            "inputs": [
                {"name": "video_in", "type": "media", "cameras": [0, 1]},
                {"name": "threshold", "type": "float32", "value": 0.30000001192092896},
                {"name": "max_people", "type": "int32", "value": 5},
                {"name": "draw_boxes", "type": "boolean", "value": True},
                {"name": "site", "type": "string", "value": "dock 4"},
            ],
            "outputs": [{"name": "video_out", "type": "media"}, {"name": "count_out", "type": "int32"}],
            "models": [
                {"name": "model_node", "decoder": "raw", "labels": [],
                 "inputs": [{"name": "data", "shape": [], "elementType": ""}], "outputs": ["scores", "echo"]},
                {"name": "two_inputs", "decoder": "raw", "labels": [],
                 "inputs": [{"name": "a", "shape": [], "elementType": ""},
                            {"name": "b", "shape": [], "elementType": ""}], "outputs": ["sum"]},
            ],
            "cameras": [
                {"name": c.name, "uri": c.uri, "sharedMemoryPath": c.path, "slotCount": c.slot_count,
                 "slotCapacity": c.slot_capacity} for c in self.cameras],
            "tensorArena": {"sharedMemoryPath": self.arena_path, "slotCount": arena_slots,
                            "slotCapacity": arena_capacity},
            "storageDirectory": os.path.join(directory, "storage"),
            "logsDirectory": os.path.join(directory, "logs"),
        }
        self.hello_error = None  # (code, text): refuse the hello
        self.get_replies = collections.deque()
        self.on_infer = self.echo_infer
        self.on_event = lambda fake, msg: fake.reply(OK, msg.rid)
        self.on_put = None
        self.received = []
        self.hello = None
        self.cond = threading.Condition()
        self.connection = None
        self.error = None
        self.sequence = 0
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.socket_path)
        self.listener.listen(4)
        self.thread = threading.Thread(target=self.serve, name="fake-runtime", daemon=True)
        self.thread.start()

    # -- scripting helpers

    def frame(self, camera, slot, width=64, height=48, stride=None, micros=1700000000123456, cached=False,
              sequence=None):
        """A Frame tuple for a `frames` reply (sequence numbers count up by default)."""
        if sequence is None:
            self.sequence += 1
            sequence = self.sequence
        return (camera, slot, sequence, width, height, stride or width * 3, micros, cached)

    def frames_payload(self, frames):
        return struct.pack("<I", len(frames)) + b"".join(struct.pack("<IIQIIIqB", *f) for f in frames)

    def infer_result(self, tensors, detections=(), classes=()):
        parts = [struct.pack("<I", len(detections))]
        parts += [struct.pack("<ifffff", *d) for d in detections]
        parts.append(struct.pack("<I", len(classes)))
        parts += [struct.pack("<if", *c) for c in classes]
        parts.append(struct.pack("<I", len(tensors)))
        for name, array in tensors:
            array = np.ascontiguousarray(array)
            parts.append(pack_string(name))
            parts.append(struct.pack("<BB", ELEMENT_CODES[array.dtype], array.ndim))
            parts.append(struct.pack("<%dq" % array.ndim, *array.shape))
            data = array.astype(array.dtype.newbyteorder("<")).tobytes()
            parts.append(struct.pack("<I", len(data)) + data)
        return b"".join(parts)

    def tensor(self, spec):
        """The array an infer request's tensor spec names in the arena."""
        dtype = np.dtype(ELEMENT_DTYPES[spec["type"]])
        start = spec["slot"] * self.arena_capacity
        raw = self.arena[start:start + spec["bytes"]]
        return np.frombuffer(raw.tobytes(), dtype=dtype).reshape(spec["shape"])

    @staticmethod
    def echo_infer(fake, msg):
        """Default model: kind 1 answers `scores` = [sum of every input] and `echo` = the first input; kind 0
        answers two fixed tensors. Both come after one detection and one class, which the SDK must skip."""
        if msg.input_kind == 1:
            arrays = [fake.tensor(t) for t in msg.tensors]
            total = np.array([sum(float(a.astype(np.float64).sum()) for a in arrays)], dtype=np.float32)
            tensors = [("scores", total), ("echo", arrays[0])]
        else:
            tensors = [("boxes", np.arange(8, dtype=np.float32).reshape(1, 2, 4)),
                       ("count", np.array([msg.frame_ref[1]], dtype=np.int64))]
        fake.reply(INFER_RESULT, msg.rid, fake.infer_result(
            tensors, detections=[(1, 0.9, 0.1, 0.2, 0.3, 0.4)], classes=[(2, 0.5)]))

    # -- plumbing

    def reply(self, kind, rid, payload=b""):
        self.connection.sendall(struct.pack("<IHHI", 8 + len(payload), kind, 0, rid) + payload)

    def error_reply(self, rid, code, text):
        self.reply(ERROR, rid, struct.pack("<I", code) + pack_string(text))

    def _recv_exact(self, n):
        chunks = []
        while n:
            chunk = self.connection.recv(n)
            if not chunk:
                raise EOFError
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def _read(self):
        length, kind, flags, rid = struct.unpack("<IHHI", self._recv_exact(12))
        return kind, rid, flags, self._recv_exact(length - 8)

    def serve(self):
        try:
            self.listener.settimeout(30)
            self.connection, _ = self.listener.accept()
            kind, rid, flags, payload = self._read()
            r = Reader(payload)
            self.hello = Message(kind, rid, version=r.take("I"), node=r.string())
            if self.hello_error is not None:
                self.error_reply(0, *self.hello_error)
                return
            self.reply(CONFIG, 0, json.dumps(self.config).encode("utf-8"))
            while True:
                kind, rid, flags, payload = self._read()
                msg = self.decode(kind, rid, payload)
                with self.cond:
                    self.received.append(msg)
                    self.cond.notify_all()
                self.handle(msg)
        except (EOFError, OSError):
            pass
        except Exception as e:  # a bug in the fake or a malformed message: fail the test that waits
            self.error = e
            with self.cond:
                self.cond.notify_all()

    def decode(self, kind, rid, payload):
        r = Reader(payload)
        if kind == GET:
            port, timeout = r.string(), r.take("i")
            images = bool(r.take("B")) if r.remaining else True
            msg = Message(kind, rid, port=port, timeout_millis=timeout, images=images)
        elif kind == PUT:
            port = r.string()
            frames = [(r.frame_ref(), r.overlays()) for _ in range(r.take("I"))]
            msg = Message(kind, rid, port=port, frames=frames)
        elif kind == INFER:
            model, wants, input_kind = r.string(), r.take("B"), r.take("B")
            msg = Message(kind, rid, model=model, wants=wants, input_kind=input_kind)
            if input_kind == 0:
                msg.frame_ref = r.frame_ref()
            else:
                msg.tensors = []
                for _ in range(r.take("I")):
                    name, etype, rank = r.string(), r.take("B"), r.take("B")
                    shape = [r.take("q") for _ in range(rank)]
                    slot, nbytes = r.take("I"), r.take("Q")
                    msg.tensors.append({"name": name, "type": etype, "shape": shape, "slot": slot,
                                        "bytes": nbytes})
        elif kind == EVENT:
            msg = Message(kind, rid, event=json.loads(r.string()))
            msg.snapshot = None
            if r.take("B"):
                msg.snapshot = (r.frame_ref(), r.overlays())
        else:
            msg = Message(kind, rid, payload=payload)
        assert r.remaining == 0, "trailing bytes in message %d" % kind
        return msg

    def handle(self, msg):
        if msg.kind == GET:
            reply = self.get_replies.popleft() if self.get_replies else "end"
            if reply == "end":
                self.reply(END, msg.rid)
            elif reply == "timeout":
                self.reply(TIMEOUT, msg.rid)
            elif isinstance(reply, tuple) and reply[0] == "error":
                self.error_reply(msg.rid, reply[1], reply[2])
            else:
                self.reply(FRAMES, msg.rid, self.frames_payload(reply))
        elif msg.kind == INFER:
            self.on_infer(self, msg)
        elif msg.kind == EVENT:
            self.on_event(self, msg)
        elif msg.kind == PUT and self.on_put is not None:
            self.on_put(self, msg)

    def wait_for(self, predicate, timeout=5.0):
        deadline = time.monotonic() + timeout
        with self.cond:
            while not predicate(self.received):
                if self.error is not None:
                    raise self.error
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError("the fake runtime did not get what the test waited for: %r" % self.received)
                self.cond.wait(remaining)

    def messages(self, kind):
        with self.cond:
            return [m for m in self.received if m.kind == kind]

    def close(self):
        for s in (self.connection, self.listener):
            if s is not None:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
        self.thread.join(5)
        for c in self.cameras:
            os.unlink(c.path)  # the memory goes when the last mapping does
        os.unlink(self.arena_path)
        if self.error is not None:
            raise self.error


@pytest.fixture
def vantage_env(tmp_path, monkeypatch):
    """The folders and variables the runtime gives a node (no socket)."""
    dirs = {}
    for name in ("storage", "logs", "source"):
        d = tmp_path / name
        d.mkdir()
        dirs[name] = d
    monkeypatch.setenv("VANTAGE_NODE", "code_node")
    monkeypatch.setenv("VANTAGE_APPLICATION", "people-counter")
    monkeypatch.setenv("VANTAGE_STORAGE", str(dirs["storage"]))
    monkeypatch.setenv("VANTAGE_LOGS", str(dirs["logs"]))
    monkeypatch.setenv("VANTAGE_SOURCE", str(dirs["source"]))
    monkeypatch.delenv("VANTAGE_SOCKET", raising=False)
    monkeypatch.delenv("VANTAGE_SDK_STATS", raising=False)
    return dirs


@pytest.fixture
def make_fake(vantage_env, monkeypatch):
    """Makes a FakeRuntime (keyword arguments: slot sizes) and points VANTAGE_SOCKET at it."""
    made = []
    directory = tempfile.mkdtemp(prefix="vt-", dir="/tmp")  # short: socket paths are limited to 107 bytes

    def make(**kwargs):
        fake = FakeRuntime(directory, **kwargs)
        made.append(fake)
        monkeypatch.setenv("VANTAGE_SOCKET", fake.socket_path)
        return fake

    panoramasdk._reset_for_tests()
    yield make
    panoramasdk._reset_for_tests()
    try:
        for fake in made:
            fake.close()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def fake(make_fake):
    return make_fake()
