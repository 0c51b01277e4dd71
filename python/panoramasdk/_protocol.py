"""The Vantage app protocol (docs/app-protocol.md): framing, message types and the connection.

Every message is a 12-byte little-endian header (``u32 length`` of what follows, ``u16 type``, ``u16 flags``,
``u32 requestId``) and a payload. Requests carry a non-zero id and get one reply with the same id (``put`` gets
none unless it fails); replies may come in any order.

:class:`Connection` lets several threads wait at once without a reader thread of its own: the first waiter
becomes the *leader* and reads messages off the socket (a blocking ``recv_into``, which releases the GIL); replies
meant for other waiters are stashed under a condition variable and those waiters woken; once the leader has its
own reply it hands the socket over to the next waiter.
"""

import itertools
import select
import socket
import struct
import sys
import threading
import time

# Message types.
HELLO, GET, PUT, INFER, EVENT, BYE = 1, 2, 3, 4, 5, 6
CONFIG, FRAMES, END, TIMEOUT, INFER_RESULT, OK, ERROR = 101, 102, 103, 104, 105, 106, 199

# Error codes of `error` replies.
BAD_REQUEST, UNKNOWN_MODEL, UNKNOWN_PORT, INFERENCE_FAILED, UNKNOWN_FRAME, EVENT_REJECTED = 1, 2, 3, 4, 5, 6

PROTOCOL_VERSION = 1

HEADER = struct.Struct("<IHHI")
U8 = struct.Struct("<B")
U32 = struct.Struct("<I")
I32 = struct.Struct("<i")
U64 = struct.Struct("<Q")
I64 = struct.Struct("<q")
# FrameRef: u32 camera, u32 slot, u64 sequence.
FRAME_REF = struct.Struct("<IIQ")
# Frame: FrameRef, u32 width, u32 height, u32 stride, i64 timestamp (µs), bool isCached.
FRAME = struct.Struct("<IIQIIIqB")
# Overlay without its text bytes: u8 kind, f32 x0, y0, x1, y1, u32 color, u32 text byte count.
OVERLAY = struct.Struct("<BffffII")
# Tensor of an `infer` request after its name: u8 elementType, u8 rank (dims follow), then u32 slot, u64 bytes.
TENSOR_HEAD = struct.Struct("<BB")
TENSOR_TAIL = struct.Struct("<IQ")

_SMALL = 64 * 1024  # payloads up to this size are read into the reading thread's reusable buffer


def string(text):
    """A protocol string: u32 byte count, then UTF-8."""
    data = text.encode("utf-8")
    return U32.pack(len(data)) + data


def message(kind, request_id, payload):
    return HEADER.pack(8 + len(payload), kind, 0, request_id) + payload


class ProtocolError(RuntimeError):
    """The runtime sent something this SDK cannot read."""


class ConnectionClosed(RuntimeError):
    """The connection to the runtime is gone."""


def read_error(payload):
    """(code, message) of an `error` payload."""
    try:
        code = U32.unpack_from(payload, 0)[0]
        (n,) = U32.unpack_from(payload, 4)
        text = bytes(payload[8:8 + n]).decode("utf-8", "replace")
        return code, text
    except struct.error:
        return 0, "unknown error"


class Connection(object):
    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.sock.connect(path)
        except OSError:
            self.sock.close()
            raise
        self._send_lock = threading.Lock()
        self._cond = threading.Condition(threading.Lock())
        self._replies = {}  # request id -> (type, payload memoryview) for waiters that are not reading
        self._waiting = set()  # request ids someone waits for
        self._abandoned = {}  # request id -> callback (or None) for replies nobody waits for any more
        self._notes = {}  # request id -> what it was, for requests without a reply (put): names errors
        self._reading = False
        self._closed = None  # why the connection is unusable
        self._local = threading.local()
        self._ids = itertools.count(1)

    # -- sending

    def next_id(self):
        rid = next(self._ids) & 0xFFFFFFFF
        while rid == 0:
            rid = next(self._ids) & 0xFFFFFFFF
        return rid

    def send(self, data):
        if self._closed is not None:
            raise ConnectionClosed(self._closed)
        try:
            with self._send_lock:
                self.sock.sendall(data)
        except OSError as e:
            raise self._close("the connection to the Vantage runtime is broken (%s)" % (e,))

    def send_unanswered(self, request_id, data, note):
        """Sends a request that gets no reply unless it fails (put); ``note`` names it if an error comes back."""
        notes = self._notes
        notes[request_id] = note
        if len(notes) > 256:
            try:
                del notes[next(iter(notes))]
            except (KeyError, StopIteration, RuntimeError):
                pass
        self.send(data)

    def request(self, request_id, data, deadline=None, on_abandon=None):
        """Sends a request and waits for its reply: (type, payload memoryview, owned).

        ``owned`` is False when the payload lies in this thread's reusable buffer (valid until this thread reads
        again). With ``deadline`` (time.monotonic()), raises TimeoutError when the reply has not come by then. If
        the wait ends without the reply (timeout, KeyboardInterrupt), the late reply is dropped when it comes and
        ``on_abandon`` is called then.
        """
        with self._cond:
            if self._closed is not None:
                raise ConnectionClosed(self._closed)
            self._waiting.add(request_id)
        try:
            self.send(data)
        except BaseException:
            with self._cond:
                self._waiting.discard(request_id)
            raise
        return self.wait(request_id, deadline, on_abandon)

    # -- receiving

    def _abandon(self, request_id, on_abandon):
        # Called with self._cond held.
        self._waiting.discard(request_id)
        self._abandoned[request_id] = on_abandon

    def wait(self, request_id, deadline=None, on_abandon=None):
        cond = self._cond
        with cond:
            try:
                while True:
                    reply = self._replies.pop(request_id, None)
                    if reply is not None:
                        self._waiting.discard(request_id)
                        return reply
                    if self._closed is not None:
                        self._waiting.discard(request_id)
                        raise ConnectionClosed(self._closed)
                    if not self._reading:
                        self._reading = True
                        break
                    if deadline is None:
                        cond.wait()
                    else:
                        remaining = deadline - time.monotonic()
                        if remaining <= 0:
                            raise TimeoutError()
                        cond.wait(remaining)
            except ConnectionClosed:
                raise
            except BaseException:
                self._abandon(request_id, on_abandon)
                raise
        # This thread reads the socket until its own reply comes.
        try:
            while True:
                if deadline is not None and not self._readable(deadline):
                    raise TimeoutError()
                kind, rid, payload, owned = self._read()
                if rid == request_id:
                    with cond:
                        self._reading = False
                        self._waiting.discard(request_id)
                        cond.notify_all()
                    return kind, payload, owned
                self._dispatch(kind, rid, payload, owned)
        except BaseException as e:
            with cond:
                self._reading = False
                if self._closed is None:
                    self._abandon(request_id, on_abandon)
                else:
                    self._waiting.discard(request_id)
                cond.notify_all()
            if isinstance(e, ConnectionClosed) or self._closed is None:
                raise
            raise ConnectionClosed(self._closed)

    def _readable(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        try:
            ready, _, _ = select.select([self.sock], [], [], remaining)
        except (OSError, ValueError) as e:
            raise self._close("the connection to the Vantage runtime is broken (%s)" % (e,))
        return bool(ready)

    def _dispatch(self, kind, rid, payload, owned):
        callback = None
        with self._cond:
            if rid in self._waiting:
                if not owned:
                    payload = memoryview(bytearray(payload))
                self._replies[rid] = (kind, payload, True)
                self._cond.notify_all()
                return
            if rid in self._abandoned:
                callback = self._abandoned.pop(rid)
                if callback is None:
                    return
        if callback is not None:
            try:
                callback()
            except Exception:
                pass
            return
        if kind == ERROR:
            code, text = read_error(payload)
            note = self._notes.get(rid)
            where = " (%s)" % note if note else ""
            try:
                sys.stderr.write("panoramasdk: the runtime reported an error%s: %s\n" % (where, text))
                sys.stderr.flush()
            except Exception:
                pass

    def _buffers(self):
        local = self._local
        try:
            return local.header, local.buffer
        except AttributeError:
            local.header = memoryview(bytearray(HEADER.size))
            local.buffer = memoryview(bytearray(_SMALL))
            return local.header, local.buffer

    def _fill(self, view, started):
        """Reads exactly len(view) bytes. ``started``: bytes of this message already consumed."""
        recv_into = self.sock.recv_into
        got = 0
        size = len(view)
        try:
            while got < size:
                n = recv_into(view[got:], size - got)
                if n == 0:
                    raise self._close("the Vantage runtime closed the connection")
                got += n
        except ConnectionClosed:
            raise
        except OSError as e:
            raise self._close("the connection to the Vantage runtime is broken (%s)" % (e,))
        except BaseException:
            if started or got:
                # Interrupted in the middle of a message: the stream is out of step for good.
                self._close("a read from the Vantage runtime was interrupted in the middle of a message")
            raise

    def _read(self):
        """Reads one message: (type, request id, payload memoryview, owned)."""
        header, buffer = self._buffers()
        self._fill(header, 0)
        length, kind, _flags, rid = HEADER.unpack_from(header)
        size = length - 8
        if size < 0:
            raise self._close("the Vantage runtime sent a malformed message (length %d)" % length)
        if size <= _SMALL:
            payload = buffer[:size]
            owned = False
        else:
            payload = memoryview(bytearray(size))
            owned = True
        if size:
            self._fill(payload, HEADER.size)
        return kind, rid, payload, owned

    def read_one(self):
        """Reads one message outside the request machinery (start-up): (type, request id, bytes)."""
        kind, rid, payload, _ = self._read()
        return kind, rid, bytes(payload)

    def _close(self, why):
        """Marks the connection unusable and wakes every waiter; returns the exception to raise."""
        with self._cond:
            if self._closed is None:
                self._closed = why
            self._cond.notify_all()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        return ConnectionClosed(self._closed)

    def close(self):
        self._close("the connection to the Vantage runtime was closed")
        try:
            self.sock.close()
        except OSError:
            pass
