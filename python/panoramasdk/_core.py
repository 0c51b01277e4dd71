"""panoramasdk on Vantage: nodes, ports, media and model calls over the Vantage app protocol."""

import atexit
import json
import math
import mmap
import os
import struct
import sys
import threading
import time

import numpy as np

from . import _protocol as P

__all__ = ["node", "media", "port", "sdk_stats"]

_perf = time.perf_counter_ns
_U32 = P.U32
_HEADER = P.HEADER
_FRAME = P.FRAME
_FRAME_SIZE = P.FRAME.size
_FRAME_REF = P.FRAME_REF
_OVERLAY = P.OVERLAY

# -- overhead counters --------------------------------------------------------------------------------------------

_OPS = ("get", "call", "put", "publish")
_stats_lock = threading.Lock()
_stats = {op: [0, 0, 0] for op in _OPS}  # count, SDK ns (encode/decode), ns blocked waiting for the runtime


def _record(op, sdk_ns, wait_ns):
    with _stats_lock:
        entry = _stats[op]
        entry[0] += 1
        entry[1] += sdk_ns
        entry[2] += wait_ns


def sdk_stats():
    """The SDK's own overhead so far, per operation (``get``, ``call``, ``put``, ``publish``).

    Each entry has ``count`` (calls), ``total_ns`` (time spent in the SDK encoding requests and decoding replies,
    excluding the time blocked waiting for the runtime), ``mean_us`` (``total_ns / count`` in µs) and ``wait_ns``
    (time blocked waiting for the runtime: frames to arrive, the model to run).
    """
    with _stats_lock:
        snapshot = {op: list(v) for op, v in _stats.items()}
    result = {}
    for op, (count, sdk_ns, wait_ns) in snapshot.items():
        result[op] = {
            "count": count,
            "total_ns": sdk_ns,
            "mean_us": (sdk_ns / count / 1000.0) if count else 0.0,
            "wait_ns": wait_ns,
        }
    return result


def _reset_stats():
    with _stats_lock:
        for entry in _stats.values():
            entry[0] = entry[1] = entry[2] = 0


def _write_stats_at_exit():
    target = os.environ.get("VANTAGE_SDK_STATS")
    if not target:
        return
    try:
        with open(target, "w") as f:
            json.dump(sdk_stats(), f, indent=2, sort_keys=True)
            f.write("\n")
    except Exception as e:  # never fail the application's exit
        try:
            sys.stderr.write("panoramasdk: cannot write VANTAGE_SDK_STATS to %s: %s\n" % (target, e))
        except Exception:
            pass


atexit.register(_write_stats_at_exit)

# -- tensors -------------------------------------------------------------------------------------------------------

# Element type codes of the protocol -> numpy dtypes (little-endian).
_ELEMENT_DTYPES = {
    1: np.dtype("u1"),
    2: np.dtype("<f4"),
    3: np.dtype("<i4"),
    4: np.dtype("<i8"),
    5: np.dtype("<f2"),
}
# (dtype kind, itemsize) of an input -> (element type code, dtype written to the arena). float64 is sent as
# float32 and bool as uint8, as models take them.
_INPUT_TYPES = {
    ("u", 1): (1, np.dtype("u1")),
    ("b", 1): (1, np.dtype("u1")),
    ("f", 4): (2, np.dtype("<f4")),
    ("f", 8): (2, np.dtype("<f4")),
    ("i", 4): (3, np.dtype("<i4")),
    ("i", 8): (4, np.dtype("<i8")),
    ("f", 2): (5, np.dtype("<f2")),
}
_SUPPORTED = "uint8, float32, int32, int64 and float16 (float64 is sent as float32, bool as uint8)"


def _float32_literal(value):
    """A float32 parameter as the number the user wrote: 0.3, not 0.30000001192092896."""
    try:
        return float(str(np.float32(value)))
    except (TypeError, ValueError):
        return float(value)


def _json_default(value):
    # numpy scalars and arrays in event payloads (scores, counts) become plain JSON numbers and lists.
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    raise TypeError("%s is not JSON serialisable" % type(value).__name__)


# -- media ---------------------------------------------------------------------------------------------------------


class media(object):
    """One camera frame, as ``inputs.<media port>.get()`` returns them (one per camera wired to the port).

    ``image`` is the frame's BGR pixels (numpy uint8, height x width x 3), a view over the runtime's shared memory:
    drawing on it (e.g. with OpenCV) shows in the live view and in event snapshots. Overlays added with
    :meth:`add_rect` and :meth:`add_label` travel with the frame when it is ``put`` or published.

    A frame stays valid until the next ``get()`` of its port. ``media(image)`` makes a detached frame (for
    tests of application code); it cannot be sent to the runtime.
    """

    __slots__ = (
        "_session", "_camera", "_slot", "_sequence", "_width", "_height", "_stride", "_images", "_view", "_img",
        "_overlays", "stream_id", "stream_uri", "time_stamp", "is_cached", "timestamp_us", "__weakref__",
    )

    def __init__(self, image=None, stream_id="", stream_uri="", time_stamp=(0, 0), is_cached=False):
        self._session = None
        self._camera = None
        self._slot = self._sequence = 0
        self._width = self._height = self._stride = 0
        self._images = True
        self._view = None
        self._img = image
        self._overlays = []
        self.stream_id = stream_id
        self.stream_uri = stream_uri
        self.time_stamp = tuple(time_stamp)
        self.timestamp_us = int(self.time_stamp[0]) * 1000000 + int(self.time_stamp[1])
        self.is_cached = bool(is_cached)

    @property
    def image(self):
        """The frame's pixels: numpy uint8 (height, width, 3), BGR, in shared memory (writable, no copy)."""
        img = self._img
        if img is None and self._session is not None:
            if not self._images:
                raise RuntimeError(
                    "this frame was asked for with get(images=False), so the runtime did not convert its pixels: "
                    "call get() without images=False to use media.image")
            img = self._view = self._img = self._session.image_view(
                self._camera, self._slot, self._width, self._height, self._stride)
        return img

    @image.setter
    def image(self, value):
        # Panorama let applications replace the image; its pixels are copied into the frame when it is sent.
        self._img = value

    @property
    def frame_ref(self):
        """(camera index, slot, sequence): the frame's name in the app protocol (Vantage addition)."""
        return (self._camera, self._slot, self._sequence)

    @property
    def overlays(self):
        """The overlays added so far, as tuples (kind, x0, y0, x1, y1, 0xRRGGBB, text) (Vantage addition)."""
        out = []
        for raw in self._overlays:
            kind, x0, y0, x1, y1, color, n = _OVERLAY.unpack_from(raw)
            text = raw[_OVERLAY.size:].decode("utf-8")
            out.append(("rect" if kind == 1 else "label", x0, y0, x1, y1, color, text))
        return out

    def add_rect(self, left, top, right, bottom, color=0x00FF00):
        """Adds a rectangle; coordinates are fractions (0-1) of the frame's width and height. ``color`` is an
        0xRRGGBB int (Vantage addition; Panorama drew them green)."""
        try:
            self._overlays.append(_OVERLAY.pack(1, left, top, right, bottom, _color(color), 0))
        except struct.error:
            raise TypeError("add_rect(left, top, right, bottom) takes numbers (0-1 of the frame), got %r"
                            % ((left, top, right, bottom),))

    def add_label(self, text, x, y, color=0xFFFFFF):
        """Adds a text label whose baseline starts at (x, y), fractions (0-1) of the frame. ``color``: 0xRRGGBB."""
        data = str(text).encode("utf-8")
        try:
            self._overlays.append(_OVERLAY.pack(2, x, y, x, y, _color(color), len(data)) + data)
        except struct.error:
            raise TypeError("add_label(text, x, y) takes numbers for x and y (0-1 of the frame), got %r"
                            % ((x, y),))

    def _wire(self, what):
        """FrameRef and overlays as sent with put and publish."""
        if self._session is None:
            raise ValueError(
                "%s needs frames from inputs.<media port>.get(); this media object was made by hand" % what)
        if self._img is not self._view and self._img is not None:
            self._sync_image()
        overlays = self._overlays
        head = _FRAME_REF.pack(self._camera, self._slot, self._sequence) + _U32.pack(len(overlays))
        if not overlays:
            return head
        return head + b"".join(overlays)

    def _sync_image(self):
        # The application replaced .image with an array of its own: copy it into the frame's shared memory.
        replacement = self._img
        view = self._view
        if view is None:
            view = self._view = self._session.image_view(
                self._camera, self._slot, self._width, self._height, self._stride)
        replacement = np.asarray(replacement)
        if replacement.shape != view.shape:
            _warn_once(
                "replaced-image",
                "panoramasdk: media.image of %s was replaced by an array of shape %s; the frame is %s, so the "
                "replacement was not shown (draw on media.image in place, or assign an image of the same size)"
                % (self.stream_id, replacement.shape, view.shape))
            self._img = view
            return
        np.copyto(view, replacement, casting="unsafe")
        self._img = view

    def __repr__(self):
        return "<panoramasdk.media %s %dx%d t=%d.%06d%s>" % (
            self.stream_id, self._width, self._height, self.time_stamp[0], self.time_stamp[1],
            " cached" if self.is_cached else "")


def _color(value):
    try:
        c = int(value.__index__()) if not isinstance(value, int) else value
    except AttributeError:
        raise TypeError("color must be an int 0xRRGGBB, got %r" % (value,))
    if not 0 <= c <= 0xFFFFFF:
        raise ValueError("color must be 0xRRGGBB (0 to 0xFFFFFF), got %#x" % c)
    return c


_warned = set()


def _warn_once(key, text):
    if key in _warned:
        return
    _warned.add(key)
    try:
        sys.stderr.write(text + "\n")
    except Exception:
        pass


def _new_frame(session, camera, slot, sequence, width, height, stride, micros, cached, images):
    m = object.__new__(media)
    m._session = session
    m._camera = camera
    m._slot = slot
    m._sequence = sequence
    m._width = width
    m._height = height
    m._stride = stride
    m._images = images
    m._view = None
    m._img = None
    m._overlays = []
    name, uri = session.camera_names[camera]
    m.stream_id = name
    m.stream_uri = uri
    m.time_stamp = divmod(micros, 1000000)
    m.timestamp_us = micros
    m.is_cached = cached
    return m


# -- ports ---------------------------------------------------------------------------------------------------------


class port(object):
    """A port of the node: ``node.inputs.<name>`` or ``node.outputs.<name>``."""

    def __init__(self, session, name, type, direction):
        self._session = session
        self.name = name
        self.type = type
        self.direction = direction

    def get(self, timeout=None):
        raise TypeError("%s %s is an output: only inputs have get()" % (self.type, self.name))

    def put(self, data):
        raise TypeError(
            "%s is an input: only media outputs have put()" % self.name)

    def __repr__(self):
        return "<panoramasdk.port %s %s (%s)>" % (self.direction, self.name, self.type)


class _ParameterInput(port):
    def __init__(self, session, name, type, value):
        port.__init__(self, session, name, type, "input")
        if value is None:
            self._value = None
        elif type == "int32":
            self._value = int(value)
        elif type == "float32":
            self._value = _float32_literal(value)
        elif type == "boolean":
            self._value = bool(value)
        elif type == "string":
            self._value = str(value)
        else:
            self._value = value

    def get(self, timeout=None):
        """The parameter's value: int (int32), float (float32), bool (boolean) or str (string)."""
        return self._value


class _MediaInput(port):
    def __init__(self, session, name, type, cameras):
        port.__init__(self, session, name, type, "input")
        self.cameras = list(cameras or [])
        self._bodies = {}
        self._port = P.string(name)

    def get(self, timeout=None, images=True):
        """The next frames: a list of ``media``, one per camera wired to this port (in the graph's order), at
        least one of them new (the others repeat their last frame with ``is_cached`` True).

        ``timeout`` (seconds) raises TimeoutError when no new frame came in time. When every source has ended
        (video files played to their end) the program exits with status 0 (SystemExit). ``images=False`` (Vantage
        addition) promises not to read the pixels, which spares the runtime converting them.
        """
        started = _perf()
        session = self._session
        conn = session.conn
        if timeout is None:
            millis = -1
        else:
            if timeout != timeout:  # NaN
                raise ValueError("timeout must be a number of seconds or None")
            millis = int(min(max(math.ceil(timeout * 1000.0), 0), 0x7FFFFFFF))
        images = bool(images)
        key = (millis, images)
        body = self._bodies.get(key)
        if body is None:
            body = self._bodies[key] = self._port + P.I32.pack(millis) + (b"\x01" if images else b"\x00")
        rid = conn.next_id()
        data = _HEADER.pack(8 + len(body), P.GET, 0, rid) + body
        sent = _perf()
        kind, payload, owned = conn.request(rid, data)
        received = _perf()
        try:
            if kind == P.FRAMES:
                (count,) = _U32.unpack_from(payload, 0)
                end = 4 + count * _FRAME_SIZE
                if len(payload) < end:
                    raise P.ProtocolError("frames message ends early")
                frames = []
                append = frames.append
                ncam = len(session.camera_names)
                for camera, slot, sequence, width, height, stride, micros, cached in _FRAME.iter_unpack(
                    payload[4:end]
                ):
                    if camera >= ncam:
                        raise P.ProtocolError("frame of camera %d, which the configuration does not list" % camera)
                    append(_new_frame(
                        session, camera, slot, sequence, width, height, stride, micros, cached != 0, images))
                return frames
            if kind == P.TIMEOUT:
                raise TimeoutError("no new frame on %s within %s s" % (self.name, timeout))
            if kind == P.END:
                try:
                    sys.stderr.write("panoramasdk: every source of %s has ended; exiting\n" % self.name)
                    sys.stderr.flush()
                except Exception:
                    pass
                raise SystemExit(0)
            if kind == P.ERROR:
                code, text = P.read_error(payload)
                raise RuntimeError(text)
            raise P.ProtocolError("unexpected reply %d to get()" % kind)
        finally:
            _record("get", (sent - started) + (_perf() - received), received - sent)


class _Output(port):
    def __init__(self, session, name, type):
        port.__init__(self, session, name, type, "output")
        self._port = P.string(name)

    def put(self, data):
        """Sends frames (what get() returned, with their overlays and whatever was drawn on their pixels)."""
        started = _perf()
        if self.type != "media":
            raise TypeError("output %s is of type %s: put() sends media (frames) only" % (self.name, self.type))
        if isinstance(data, media):
            data = [data]
        elif data is None:
            data = []
        else:
            data = list(data)
        if not data:
            raise ValueError(
                "put() needs a non-empty list of media: pass the list inputs.<media port>.get() returned "
                "(or some of its frames)")
        parts = [self._port, _U32.pack(len(data))]
        for m in data:
            if not isinstance(m, media):
                raise TypeError("put() takes a list of panoramasdk.media, got %s in it" % type(m).__name__)
            parts.append(m._wire("put()"))
        payload = b"".join(parts)
        conn = self._session.conn
        rid = conn.next_id()
        conn.send_unanswered(rid, _HEADER.pack(8 + len(payload), P.PUT, 0, rid) + payload,
                             "%s.put()" % self.name)
        _record("put", _perf() - started, 0)


class _Ports(object):
    """``node.inputs`` / ``node.outputs``: one attribute per port."""

    def __init__(self, direction, ports):
        object.__setattr__(self, "_direction", direction)
        object.__setattr__(self, "_ports", dict(ports))
        for name, p in ports.items():
            self.__dict__[name] = p

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        raise AttributeError(self._missing(name))

    def _missing(self, name):
        known = ", ".join(sorted(self._ports)) or "none"
        return ("this node has no %s named %r; its %ss are: %s (they come from the node's interface in its "
                "package descriptor and the graph)" % (self._direction, name, self._direction, known))

    def __getitem__(self, name):
        try:
            return self._ports[name]
        except KeyError:
            raise KeyError(self._missing(name))

    def __contains__(self, name):
        return name in self._ports

    def __iter__(self):
        return iter(self._ports)

    def __len__(self):
        return len(self._ports)

    def __dir__(self):
        return sorted(self._ports)

    def __repr__(self):
        return "<panoramasdk %ss: %s>" % (self._direction, ", ".join(self._ports))


# -- the session: one connection per process -----------------------------------------------------------------------


class _Slots(object):
    """Tensor-arena slots taken by one call, released once (when the reply came, or when a late one comes)."""

    __slots__ = ("session", "slots")

    def __init__(self, session, slots):
        self.session = session
        self.slots = slots

    def release(self):
        slots, self.slots = self.slots, None
        if slots:
            self.session.release_slots(slots)


class _Session(object):
    def __init__(self, socket_path, node_name):
        try:
            conn = P.Connection(socket_path)
        except OSError as e:
            raise RuntimeError(
                "cannot connect to the Vantage runtime at %s (%s): this program is a Vantage code node; start "
                "it with `vantage run APP_DIR`" % (socket_path, e))
        self.conn = conn
        try:
            conn.send(P.message(P.HELLO, 0, _U32.pack(P.PROTOCOL_VERSION) + P.string(node_name)))
            kind, _, payload = conn.read_one()
        except P.ConnectionClosed as e:
            conn.close()
            raise RuntimeError("the Vantage runtime closed the connection before sending this node's "
                               "configuration: %s" % e)
        if kind == P.ERROR:
            conn.close()
            raise RuntimeError("the runtime refused this node: %s" % P.read_error(payload)[1])
        if kind != P.CONFIG:
            conn.close()
            raise RuntimeError("the runtime sent message type %d instead of this node's configuration" % kind)
        try:
            config = json.loads(payload.decode("utf-8"))
        except ValueError as e:
            conn.close()
            raise RuntimeError("cannot read this node's configuration from the runtime: %s" % e)
        self.config = config
        self.node_name = config.get("node", node_name)
        self.cameras = list(config.get("cameras") or [])
        self.camera_names = [(c.get("name", ""), c.get("uri", "")) for c in self.cameras]
        self.models = {}
        for m in config.get("models") or []:
            self.models[m["name"]] = m
        self._maps_lock = threading.Lock()
        self._camera_maps = [None] * len(self.cameras)
        self._views = {}
        arena = config.get("tensorArena") or {}
        self.arena_path = arena.get("sharedMemoryPath")
        self.arena_slots = int(arena.get("slotCount") or 0)
        self.arena_capacity = int(arena.get("slotCapacity") or 0)
        self._arena = None
        self._free = list(range(self.arena_slots - 1, -1, -1))
        self._free_cond = threading.Condition(threading.Lock())
        inputs = {}
        for p in config.get("inputs") or []:
            name, ptype = p["name"], p.get("type", "")
            if ptype == "media" or p.get("cameras") is not None:
                inputs[name] = _MediaInput(self, name, ptype, p.get("cameras"))
            else:
                inputs[name] = _ParameterInput(self, name, ptype, p.get("value"))
        outputs = {}
        for p in config.get("outputs") or []:
            outputs[p["name"]] = _Output(self, p["name"], p.get("type", ""))
        self.inputs = _Ports("input", inputs)
        self.outputs = _Ports("output", outputs)

    # -- shared memory

    def _map(self, path, size, what):
        try:
            fd = os.open(path, os.O_RDWR)
        except OSError as e:
            raise RuntimeError("cannot open the shared memory of %s (%s): %s" % (what, path, e))
        try:
            return mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        except (OSError, ValueError) as e:
            raise RuntimeError("cannot map %d bytes of the shared memory of %s (%s): %s" % (size, what, path, e))
        finally:
            os.close(fd)

    def camera_map(self, camera):
        mm = self._camera_maps[camera]
        if mm is None:
            with self._maps_lock:
                mm = self._camera_maps[camera]
                if mm is None:
                    c = self.cameras[camera]
                    mm = self._map(c["sharedMemoryPath"], int(c["slotCount"]) * int(c["slotCapacity"]),
                                   "camera %s" % c.get("name"))
                    self._camera_maps[camera] = mm
        return mm

    def image_view(self, camera, slot, width, height, stride):
        key = (camera, slot, width, height, stride)
        view = self._views.get(key)
        if view is None:
            mm = self.camera_map(camera)
            capacity = int(self.cameras[camera]["slotCapacity"])
            offset = slot * capacity
            if stride < width * 3 or (height and stride * (height - 1) + width * 3 > capacity) \
                    or offset + capacity > len(mm):
                raise P.ProtocolError(
                    "frame %dx%d (stride %d) in slot %d does not fit camera %d's shared memory"
                    % (width, height, stride, slot, camera))
            view = np.ndarray((height, width, 3), np.uint8, buffer=mm, offset=offset, strides=(stride, 3, 1))
            self._views[key] = view
        return view

    def arena(self):
        mm = self._arena
        if mm is None:
            with self._maps_lock:
                mm = self._arena
                if mm is None:
                    if not self.arena_path or not self.arena_slots or not self.arena_capacity:
                        raise RuntimeError("the runtime gave this node no tensor arena; cannot send tensors")
                    mm = self._arena = self._map(
                        self.arena_path, self.arena_slots * self.arena_capacity, "the tensor arena")
        return mm

    def take_slots(self, count):
        if count > self.arena_slots:
            raise ValueError(
                "a call sends %d tensors but the runtime's tensor arena has %d slots" % (count, self.arena_slots))
        with self._free_cond:
            while len(self._free) < count:
                self._free_cond.wait()
            taken = self._free[-count:] if count else []
            del self._free[len(self._free) - count:]
        return taken

    def release_slots(self, slots):
        with self._free_cond:
            self._free.extend(slots)
            self._free_cond.notify_all()

    def close(self):
        try:
            self.conn.close()
        except Exception:
            pass
        self._views.clear()
        for mm in self._camera_maps + [self._arena]:
            if mm is not None:
                try:
                    mm.close()
                except (BufferError, ValueError):
                    pass  # arrays still look at it; it goes when they do

    # -- models

    def model(self, name):
        model = self.models.get(name)
        if model is None:
            known = ", ".join(sorted(self.models)) or "none"
            raise KeyError(
                "node %s has no model node named %r to call; the models it can call are: %s (a model node must be "
                "in the graph and connected to this code node)" % (self.node_name, name, known))
        return model

    def call(self, name, inputs, time_out=None):
        started = _perf()
        model = self.model(name)
        deadline = None
        if time_out is not None:
            deadline = time.monotonic() + float(time_out)
        frame = None
        if isinstance(inputs, media):
            frame = inputs
        elif isinstance(inputs, dict) and len(inputs) == 1:
            only = next(iter(inputs.values()))
            if isinstance(only, media):
                frame = only
        conn = self.conn
        slots = None
        if frame is not None:
            if frame._session is None:
                raise ValueError("call() needs a frame from inputs.<media port>.get(); this media was made by hand")
            body = P.string(name) + b"\x02\x00" + _FRAME_REF.pack(frame._camera, frame._slot, frame._sequence)
            if frame._img is not frame._view and frame._img is not None:
                frame._sync_image()
        else:
            if isinstance(inputs, dict):
                items = list(inputs.items())
            elif isinstance(inputs, (list, tuple)) and inputs and all(isinstance(i, np.ndarray) for i in inputs):
                names = [s.get("name") for s in model.get("inputs") or []]
                if len(names) < len(inputs):
                    raise ValueError(
                        "model %s takes %d inputs (%s); call() got %d arrays: pass a dict {input name: array}"
                        % (name, len(names), ", ".join(names), len(inputs)))
                items = list(zip(names, inputs))
            else:
                specs = model.get("inputs") or []
                input_name = specs[0].get("name") if specs else "data"
                items = [(input_name, inputs)]
            arrays = []
            capacity = self.arena_capacity
            for input_name, value in items:
                if isinstance(value, media):
                    raise TypeError(
                        "call() takes a frame alone (call(frame, model) or {name: frame}), not with other inputs")
                a = value if isinstance(value, np.ndarray) else np.asarray(value)
                spec = _INPUT_TYPES.get((a.dtype.kind, a.dtype.itemsize))
                if spec is None:
                    raise TypeError(
                        "input %r of model %s is %s; the runtime takes %s: convert it (e.g. x.astype(np.float32))"
                        % (input_name, name, a.dtype, _SUPPORTED))
                nbytes = a.size * spec[1].itemsize
                if nbytes > capacity:
                    raise ValueError(
                        "input %r of model %s has %d bytes; a tensor slot holds %d: start vantage run with a larger "
                        "--tensor-slot-mb" % (input_name, name, nbytes, capacity))
                if a.ndim > 255:
                    raise ValueError("input %r has more than 255 dimensions" % (input_name,))
                arrays.append((str(input_name), a, spec, nbytes))
            arena = self.arena()
            slots = _Slots(self, self.take_slots(len(arrays)))
            try:
                parts = [P.string(name), b"\x02\x01", _U32.pack(len(arrays))]
                for (input_name, a, (code, dtype, ), nbytes), slot in zip(arrays, slots.slots):
                    if nbytes:
                        dst = np.ndarray(a.shape, dtype, buffer=arena, offset=slot * capacity)
                        np.copyto(dst, a, casting="unsafe")
                    parts.append(P.string(input_name))
                    parts.append(P.TENSOR_HEAD.pack(code, a.ndim))
                    if a.ndim:
                        parts.append(_dims(a.ndim).pack(*a.shape))
                    parts.append(P.TENSOR_TAIL.pack(slot, nbytes))
                body = b"".join(parts)
            except BaseException:
                slots.release()
                raise
        rid = conn.next_id()
        data = _HEADER.pack(8 + len(body), P.INFER, 0, rid) + body
        sent = _perf()
        try:
            kind, payload, owned = conn.request(
                rid, data, deadline, slots.release if slots is not None else None)
        except TimeoutError:
            raise TimeoutError("model %s did not answer within %s s" % (name, time_out))
        except P.ConnectionClosed:
            if slots is not None:
                slots.release()
            raise
        received = _perf()
        if slots is not None:
            slots.release()
        try:
            if kind == P.INFER_RESULT:
                return _decode_tensors(payload, owned)
            if kind == P.ERROR:
                code, text = P.read_error(payload)
                if code == P.UNKNOWN_MODEL:
                    raise KeyError(text)
                raise RuntimeError(text)
            raise P.ProtocolError("unexpected reply %d to call()" % kind)
        finally:
            _record("call", (sent - started) + (_perf() - received), received - sent)

    # -- events

    def publish(self, event, snapshot=None):
        started = _perf()
        if not isinstance(event, dict):
            raise TypeError("publish() takes a dict (an event is a JSON object), got %s" % type(event).__name__)
        try:
            text = json.dumps(event, default=_json_default, allow_nan=False, separators=(",", ":"))
        except (TypeError, ValueError) as e:
            raise ValueError("publish(): the event cannot be written as JSON: %s" % e)
        parts = [P.string(text)]
        if snapshot is None:
            parts.append(b"\x00")
        else:
            if not isinstance(snapshot, media):
                raise TypeError("publish(snapshot=...) takes a panoramasdk.media, got %s" % type(snapshot).__name__)
            parts.append(b"\x01")
            parts.append(snapshot._wire("publish(snapshot=...)"))
        body = b"".join(parts)
        conn = self.conn
        rid = conn.next_id()
        data = _HEADER.pack(8 + len(body), P.EVENT, 0, rid) + body
        sent = _perf()
        kind, payload, owned = conn.request(rid, data)
        received = _perf()
        try:
            if kind == P.OK:
                return None
            if kind == P.ERROR:
                raise RuntimeError(P.read_error(payload)[1])
            raise P.ProtocolError("unexpected reply %d to publish()" % kind)
        finally:
            _record("publish", (sent - started) + (_perf() - received), received - sent)


_DIMS = {}


def _dims(rank):
    s = _DIMS.get(rank)
    if s is None:
        s = _DIMS[rank] = struct.Struct("<%dq" % rank)
    return s


def _decode_tensors(payload, owned):
    u32 = _U32.unpack_from
    (n,) = u32(payload, 0)
    offset = 4 + n * 24
    (m,) = u32(payload, offset)
    offset += 4 + m * 8
    (t,) = u32(payload, offset)
    offset += 4
    outputs = []
    for _ in range(t):
        (length,) = u32(payload, offset)
        offset += 4 + length
        code, rank = P.TENSOR_HEAD.unpack_from(payload, offset)
        offset += 2
        shape = _dims(rank).unpack_from(payload, offset) if rank else ()
        offset += 8 * rank
        (size,) = u32(payload, offset)
        offset += 4
        dtype = _ELEMENT_DTYPES.get(code)
        if dtype is None:
            raise P.ProtocolError("tensor with unknown element type %d" % code)
        count = 1
        for d in shape:
            count *= d
        if count * dtype.itemsize != size or offset + size > len(payload):
            raise P.ProtocolError("tensor of shape %s has %d bytes" % (shape, size))
        array = np.frombuffer(payload, dtype=dtype, count=count, offset=offset)
        if not owned or offset % dtype.itemsize:
            array = array.copy()
        outputs.append(array.reshape(shape))
        offset += size
    return tuple(outputs)


_session = None
_session_lock = threading.Lock()


def _get_session():
    global _session
    session = _session
    if session is None:
        with _session_lock:
            session = _session
            if session is None:
                path = os.environ.get("VANTAGE_SOCKET")
                if not path:
                    raise RuntimeError(
                        "VANTAGE_SOCKET is not set: this program is a Vantage code node and must be started with "
                        "`vantage run APP_DIR` (which starts it and connects it to cameras and models)")
                session = _session = _Session(path, os.environ.get("VANTAGE_NODE", ""))
    return session


def _reset_for_tests():
    """Closes the connection and forgets it, and zeroes the counters (for tests)."""
    global _session
    with _session_lock:
        session, _session = _session, None
    if session is not None:
        session.close()
    _reset_stats()
    _warned.clear()


# -- node ----------------------------------------------------------------------------------------------------------


def _call_arguments(args, kwargs):
    """(model name, inputs, time_out) from call(inputs, name), call(name, inputs) and keyword forms."""
    args = list(args)
    time_out = kwargs.pop("time_out", kwargs.pop("timeout", None))
    name = None
    for key in ("name", "model", "node_name", "model_name"):
        if key in kwargs:
            name = kwargs.pop(key)
            break
    inputs = None
    have_inputs = False
    for key in ("input", "inputs", "data"):
        if key in kwargs:
            inputs = kwargs.pop(key)
            have_inputs = True
            break
    if kwargs:
        raise TypeError("call() got unexpected keyword arguments: %s" % ", ".join(sorted(kwargs)))
    if name is None:
        for i, a in enumerate(args[:2]):
            if isinstance(a, str):
                name = args.pop(i)
                break
    if not have_inputs and args:
        inputs = args.pop(0)
        have_inputs = True
    if args:
        if time_out is not None:
            raise TypeError("call() got time_out twice")
        time_out = args.pop(0)
    if args:
        raise TypeError("call() takes (inputs, model name[, time_out]); got %d more arguments" % len(args))
    if name is None:
        raise TypeError("call() needs the model node's name (a str): call({'data': x}, 'model_node')")
    if not have_inputs or inputs is None:
        raise TypeError("call() needs the model's input: a dict {input name: array}, an array, or a media")
    return name, inputs, time_out


class node(object):
    """The code node. Subclass it (``class App(panoramasdk.node)``, no need to call ``super().__init__()``) or
    make one (``panoramasdk.node()``); either connects to the runtime the first time, once per process.

    ``inputs.<port>`` and ``outputs.<port>``: the node's ports. ``call(inputs, model)``: runs a model node.
    ``publish(event, snapshot=None)``: Vantage's event output.
    """

    def __new__(cls, *args, **kwargs):
        self = object.__new__(cls)
        session = _get_session()
        self._vantage_session = session
        self.inputs = session.inputs
        self.outputs = session.outputs
        return self

    def __init__(self, *args, **kwargs):
        pass

    def _vantage(self):
        try:
            return self._vantage_session
        except AttributeError:
            return _get_session()

    def call(self, *args, **kwargs):
        """Runs a model node and returns its outputs as a tuple of numpy arrays, in the model's output order.

        ``call(inputs, "model_node")`` (Panorama's samples) and ``call("model_node", inputs)`` (its reference) both
        work; an optional third argument ``time_out`` (seconds) raises TimeoutError if the model has not answered
        by then. ``inputs``: a dict {input name: array}, one array (the model's first input) or a ``media`` (the
        runtime scales and converts the frame for the model).
        """
        name, inputs, time_out = _call_arguments(args, kwargs)
        return self._vantage().call(name, inputs, time_out)

    def publish(self, event, snapshot=None):
        """Publishes an event (a JSON-serialisable dict), with an optional snapshot frame (a ``media``: its
        pixels as drawn, with its overlays). Returns once the runtime has stored it; raises RuntimeError with the
        runtime's message if it was rejected (e.g. the disk is full). Vantage addition."""
        return self._vantage().publish(event, snapshot)


for _cls in (node, media, port, _ParameterInput, _MediaInput, _Output):
    _cls.__module__ = "panoramasdk"
del _cls
