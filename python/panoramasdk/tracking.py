"""Multi-object tracking, zones and counting lines for Panorama-style apps (Vantage addition).

The same tracker and scene rules as Vantage's Swift ``VantageAnalytics`` module, with the same defaults, so an
application counts the same people whichever SDK it is written with::

    from panoramasdk.tracking import ByteTracker, CountingLine, Point, SceneAnalyzer, TrackerDetection, Rect

    tracker = ByteTracker()
    scene = SceneAnalyzer(lines=[CountingLine("door", Point(0.3, 0.62), Point(0.3, 0.30))])
    seen = tracker.update([TrackerDetection(1, 0.8, Rect(0.1, 0.2, 0.2, 0.5))], time=frame_seconds)
    for event in scene.update(seen, tracker.ended, time=frame_seconds):
        print(event)
    print(scene.counts["door"])       # (in, out)

Coordinates are fractions of the frame (0-1, y down); times are seconds on any monotonic clock.

**Tracker** (ByteTrack-style): each track's box is predicted by a constant-velocity Kalman filter (one per box
coordinate: centre x, centre y, width, height; time-aware, so uneven frame rates are fine). High-score detections
(>= ``high_score``) are matched to all tracks first, then low-score ones (>= ``low_score``) to the tracks still
unmatched, lost ones included (this keeps people through partial occlusion), each greedily by IoU of predicted box and
detection (best pair first) above ``match_iou``, never across classes. An unmatched detection scoring at least
``new_track_score`` starts a tentative track, unless it overlaps a box matched this frame by ``match_iou`` (a second
box on the same person); it is confirmed after ``confirm_frames`` consecutive hits and dropped at its first miss. An
unmatched confirmed track is *lost* (its box keeps moving) and ends ``max_lost_seconds`` after it was last seen.

**Lines**: "in" is a crossing from the line's left to its right as seen walking from ``from_`` to ``to``; "out" the
other way::

            to
            ^
     left   |   right        walking from `from_` to `to`:
     (out)  |   (in)         left -> right = "in", right -> left = "out"
            |
          from_

A crossing counts when the anchor's path between two sightings passes through the line *segment* and the anchor then
settles beyond ``hysteresis`` on the other side: wobbling on the line counts nothing. Each track counts at most once
per direction per line (out and back in counts one of each). Only confirmed tracks count; a crossing made while
tentative counts when the track is confirmed, never if it is dropped.

**Zones**: enter, leave (also when the track ends inside), dwell (once, after ``dwell_seconds``) and occupancy (only
when the count changes), for confirmed tracks whose anchor is inside the polygon.
"""

import math
from collections import namedtuple

__all__ = [
    "Point",
    "Rect",
    "TrackerDetection",
    "TrackerConfiguration",
    "Track",
    "ByteTracker",
    "Zone",
    "CountingLine",
    "SceneEvent",
    "SceneAnalyzer",
    "TENTATIVE",
    "CONFIRMED",
    "LOST",
    "BOTTOM_CENTER",
    "CENTER",
    "IN",
    "OUT",
]

TENTATIVE, CONFIRMED, LOST = "tentative", "confirmed", "lost"
BOTTOM_CENTER, CENTER = "bottomCenter", "center"
IN, OUT = "in", "out"

# Kalman filter noise, relative to the box's height (people far away move fewer frame fractions than people close
# by). Shared with the Swift implementation: change both together.
_MEASUREMENT_NOISE = 0.05  # detector's box jitter, x height
_INITIAL_VELOCITY_NOISE = 1.0  # x height per second
_ACCELERATION_NOISE = 0.5  # x height per second squared: people walk at a steady pace
_MIN_SIZE = 1e-4


Point = namedtuple("Point", "x y")
Point.__doc__ = "A point in fractions of the frame (0 = left/top edge, 1 = right/bottom)."


class Rect(namedtuple("Rect", "x_min y_min x_max y_max")):
    """An axis-aligned box in fractions of the frame."""

    __slots__ = ()

    @property
    def width(self):
        return max(0.0, self.x_max - self.x_min)

    @property
    def height(self):
        return max(0.0, self.y_max - self.y_min)

    @property
    def center(self):
        return Point((self.x_min + self.x_max) / 2, (self.y_min + self.y_max) / 2)

    @property
    def bottom_center(self):
        """Where a standing person's feet are."""
        return Point((self.x_min + self.x_max) / 2, self.y_max)

    def iou(self, other):
        """Intersection over union; 0 for boxes that do not overlap."""
        iw = min(self.x_max, other.x_max) - max(self.x_min, other.x_min)
        ih = min(self.y_max, other.y_max) - max(self.y_min, other.y_min)
        if iw <= 0 or ih <= 0:
            return 0.0
        intersection = iw * ih
        union = self.width * self.height + other.width * other.height - intersection
        return intersection / union if union > 0 else 0.0


TrackerDetection = namedtuple("TrackerDetection", "class_id score box")
TrackerDetection.__doc__ = "One detection handed to the tracker: class id, score (0-1) and box."


class TrackerConfiguration(object):
    """The tracker's thresholds. Scores are the detector's (0-1); times are seconds."""

    __slots__ = ("high_score", "low_score", "new_track_score", "match_iou", "confirm_frames", "max_lost_seconds")

    def __init__(self, high_score=0.5, low_score=0.1, new_track_score=0.6, match_iou=0.2, confirm_frames=3,
                 max_lost_seconds=1.5):
        self.high_score = high_score  # detections scoring at least this are matched first and may start tracks
        self.low_score = low_score  # below: ignored; between this and high_score: only extend existing tracks
        self.new_track_score = new_track_score  # an unmatched detection starts a track only if it scores this
        self.match_iou = match_iou  # least IoU between a track's predicted box and a detection for them to match
        self.confirm_frames = confirm_frames  # consecutive frames a new track must be seen to be confirmed
        self.max_lost_seconds = max_lost_seconds  # seconds (not frames) a confirmed track may go unseen

    def __repr__(self):
        return "TrackerConfiguration(%s)" % ", ".join("%s=%r" % (k, getattr(self, k)) for k in self.__slots__)


class Track(namedtuple("Track", "id class_id box score state first_seen last_seen hits")):
    """A tracked object as the tracker reports it: ``id`` is stable and increasing from 1; ``state`` is
    ``"tentative"``, ``"confirmed"`` or ``"lost"``; ``first_seen``/``last_seen`` are seconds; ``hits`` counts the
    frames it was matched in."""

    __slots__ = ()

    @property
    def is_confirmed(self):
        return self.state == CONFIRMED


class _Axis(object):
    """A constant-velocity Kalman filter on one box coordinate: position and velocity with their covariance."""

    __slots__ = ("p", "v", "p00", "p01", "p11")

    def __init__(self, z, scale):
        self.p = z
        self.v = 0.0
        r = 2 * _MEASUREMENT_NOISE * scale
        q = _INITIAL_VELOCITY_NOISE * scale
        self.p00, self.p01, self.p11 = r * r, 0.0, q * q

    def predict(self, dt, scale):
        if dt <= 0:
            return
        self.p += self.v * dt
        a = _ACCELERATION_NOISE * scale
        q = a * a
        p00 = self.p00 + dt * (2 * self.p01 + dt * self.p11) + q * dt * dt * dt / 3
        p01 = self.p01 + dt * self.p11 + q * dt * dt / 2
        self.p11 = self.p11 + q * dt
        self.p00, self.p01 = p00, p01

    def correct(self, z, scale):
        r = _MEASUREMENT_NOISE * scale
        s = self.p00 + r * r
        k0 = self.p00 / s
        k1 = self.p01 / s
        y = z - self.p
        self.p += k0 * y
        self.v += k1 * y
        p00, p01, p11 = self.p00, self.p01, self.p11
        self.p00 = (1 - k0) * p00
        self.p01 = (1 - k0) * p01
        self.p11 = p11 - k1 * p01


class _TrackState(object):
    __slots__ = ("id", "class_id", "score", "state", "first_seen", "last_seen", "hits", "axes")

    def __init__(self, id, detection, time):
        self.id = id
        self.class_id = detection.class_id
        self.score = detection.score
        self.state = TENTATIVE
        self.first_seen = time
        self.last_seen = time
        self.hits = 1
        b = detection.box
        h = max(b.height, _MIN_SIZE)
        self.axes = (
            _Axis((b.x_min + b.x_max) / 2, h),
            _Axis((b.y_min + b.y_max) / 2, h),
            _Axis(b.width, h),
            _Axis(b.height, h),
        )

    @property
    def box(self):
        cx, cy, w, h = (a.p for a in self.axes)
        w = max(w, _MIN_SIZE)
        h = max(h, _MIN_SIZE)
        return Rect(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)

    def predict(self, dt):
        scale = max(self.axes[3].p, _MIN_SIZE)
        if self.state == LOST:  # an unseen box keeps moving but stops growing or shrinking
            self.axes[2].v = 0.0
            self.axes[3].v = 0.0
        for a in self.axes:
            a.predict(dt, scale)

    def correct(self, box):
        scale = max(box.height, _MIN_SIZE)
        self.axes[0].correct((box.x_min + box.x_max) / 2, scale)
        self.axes[1].correct((box.y_min + box.y_max) / 2, scale)
        self.axes[2].correct(box.width, scale)
        self.axes[3].correct(box.height, scale)

    def public(self):
        return Track(self.id, self.class_id, self.box, self.score, self.state, self.first_seen, self.last_seen,
                     self.hits)


class ByteTracker(object):
    """ByteTrack-style multi-object tracker; see the module's documentation for the rules."""

    def __init__(self, configuration=None):
        self.configuration = configuration or TrackerConfiguration()
        self._tracks = []
        self._next_id = 1
        self._last_time = None
        self._ended = []

    @property
    def tracks(self):
        """All live tracks: tentative, confirmed and lost (lost ones at their predicted box)."""
        return [t.public() for t in self._tracks]

    @property
    def ended(self):
        """The tracks removed by the last update (dropped tentative ones and lost ones gone too long)."""
        return list(self._ended)

    def update(self, detections, time):
        """One frame's detections at ``time`` (seconds). Answers the tracks seen in this frame, oldest first."""
        config = self.configuration
        dt = 0.0 if self._last_time is None else max(0.0, time - self._last_time)
        self._last_time = time
        self._ended = []
        for t in self._tracks:
            t.predict(dt)

        high = [i for i, d in enumerate(detections) if d.score >= config.high_score]
        low = [i for i, d in enumerate(detections) if config.low_score <= d.score < config.high_score]
        detection_of = [None] * len(self._tracks)
        used = [False] * len(detections)

        boxes = [t.box for t in self._tracks]
        # 1. high-score detections against every track
        self._associate(high, detections, boxes, detection_of, used)
        # 2. low-score detections against the tracks still unmatched (lost ones too: a person the detector missed for
        #    a frame is still the best owner of a faint box where they walk)
        self._associate(low, detections, boxes, detection_of, used)

        survivors = []
        seen = []
        for i, t in enumerate(self._tracks):
            j = detection_of[i]
            if j is not None:
                d = detections[j]
                t.correct(d.box)
                t.score = d.score
                t.last_seen = time
                t.hits += 1
                if t.state == LOST or (t.state == TENTATIVE and t.hits >= config.confirm_frames):
                    t.state = CONFIRMED
                survivors.append(t)
                seen.append(t)
            elif t.state == TENTATIVE:
                self._ended.append(t.public())
            elif time - t.last_seen > config.max_lost_seconds:
                t.state = LOST
                self._ended.append(t.public())
            else:
                t.state = LOST
                survivors.append(t)
        # 3. new tracks from confident detections nobody claimed, unless the detection is a second box on an object
        #    tracked in this frame (detectors sometimes give a person two overlapping boxes)
        claimed = [detections[j] for j in detection_of if j is not None]
        for j in high:
            d = detections[j]
            if used[j] or d.score < config.new_track_score:
                continue
            if any(c.class_id == d.class_id and c.box.iou(d.box) >= config.match_iou for c in claimed):
                continue
            t = _TrackState(self._next_id, d, time)
            self._next_id += 1
            claimed.append(d)
            if config.confirm_frames <= 1:
                t.state = CONFIRMED
            survivors.append(t)
            seen.append(t)
        self._tracks = survivors
        return [t.public() for t in seen]

    def _associate(self, detection_indices, detections, boxes, detection_of, used):
        threshold = self.configuration.match_iou
        pairs = []
        for i, t in enumerate(self._tracks):
            if detection_of[i] is not None:
                continue
            for j in detection_indices:
                if used[j] or detections[j].class_id != t.class_id:
                    continue
                iou = boxes[i].iou(detections[j].box)
                if iou >= threshold:
                    pairs.append((-iou, i, j))
        pairs.sort()  # best IoU first; ties by track, then detection (as in Swift)
        for _, i, j in pairs:
            if detection_of[i] is None and not used[j]:
                detection_of[i] = j
                used[j] = True


def _anchor(box, anchor):
    return box.center if anchor == CENTER else box.bottom_center


def _inside(point, polygon):
    """Even-odd rule: is ``point`` inside the polygon (a list of Points, not closed)?"""
    inside = False
    n = len(polygon)
    j = n - 1
    for i in range(n):
        a, b = polygon[i], polygon[j]
        if (a.y > point.y) != (b.y > point.y):
            x = a.x + (point.y - a.y) * (b.x - a.x) / (b.y - a.y)
            if point.x < x:
                inside = not inside
        j = i
    return inside


def _orientation(a, b, c):
    return (b.x - a.x) * (c.y - a.y) - (b.y - a.y) * (c.x - a.x)


def _segments_intersect(p, q, a, b):
    """Do segments p-q and a-b share a point (touching counts)?"""
    d1 = _orientation(a, b, p)
    d2 = _orientation(a, b, q)
    d3 = _orientation(p, q, a)
    d4 = _orientation(p, q, b)
    if ((d1 > 0 and d2 < 0) or (d1 < 0 and d2 > 0)) and ((d3 > 0 and d4 < 0) or (d3 < 0 and d4 > 0)):
        return True

    def on(s, t, r):
        return min(s.x, t.x) <= r.x <= max(s.x, t.x) and min(s.y, t.y) <= r.y <= max(s.y, t.y)

    return ((d1 == 0 and on(a, b, p)) or (d2 == 0 and on(a, b, q)) or (d3 == 0 and on(p, q, a))
            or (d4 == 0 and on(p, q, b)))


class Zone(object):
    """A polygon zone: ``polygon`` is a list of Points (3 or more); ``classes`` limits it to those class ids (None =
    all); ``dwell_seconds`` emits one dwell event per visit that lasts that long; ``anchor`` is the box point that
    must be inside (``"bottomCenter"``, the feet, or ``"center"``)."""

    __slots__ = ("name", "polygon", "classes", "dwell_seconds", "anchor")

    def __init__(self, name, polygon, classes=None, dwell_seconds=None, anchor=BOTTOM_CENTER):
        if len(polygon) < 3:
            raise ValueError("zone %r needs at least 3 points, got %d: list its corners in order"
                             % (name, len(polygon)))
        if anchor not in (BOTTOM_CENTER, CENTER):
            raise ValueError("zone %r: anchor must be 'bottomCenter' or 'center', not %r" % (name, anchor))
        self.name = name
        self.polygon = [Point(*p) for p in polygon]
        self.classes = None if classes is None else list(classes)
        self.dwell_seconds = dwell_seconds
        self.anchor = anchor

    def contains(self, point):
        return _inside(point, self.polygon)


class CountingLine(object):
    """A directed counting line from ``from_`` to ``to``: "in" is a crossing from its left to its right as seen
    walking from ``from_`` to ``to``. ``hysteresis`` (frame fractions) is how far past the line the anchor must
    settle for a crossing to count."""

    __slots__ = ("name", "from_", "to", "classes", "anchor", "hysteresis")

    def __init__(self, name, from_, to, classes=None, anchor=BOTTOM_CENTER, hysteresis=0.01):
        from_, to = Point(*from_), Point(*to)
        if from_ == to:
            raise ValueError("line %r has the same start and end point: give two different points" % (name,))
        if anchor not in (BOTTOM_CENTER, CENTER):
            raise ValueError("line %r: anchor must be 'bottomCenter' or 'center', not %r" % (name, anchor))
        self.name = name
        self.from_ = from_
        self.to = to
        self.classes = None if classes is None else list(classes)
        self.anchor = anchor
        self.hysteresis = hysteresis

    def side(self, point):
        """Signed distance of ``point`` from the (infinite) line: positive on the right ("in" side)."""
        dx, dy = self.to.x - self.from_.x, self.to.y - self.from_.y
        return (dx * (point.y - self.from_.y) - dy * (point.x - self.from_.x)) / math.sqrt(dx * dx + dy * dy)


SceneEvent = namedtuple("SceneEvent", "kind zone line track direction seconds count count_in count_out")
SceneEvent.__new__.__defaults__ = (None,) * 9
SceneEvent.__doc__ = """What happened in a zone or on a line. ``kind`` is one of ``"zoneEnter"``, ``"zoneLeave"``
(``seconds`` = time inside), ``"zoneDwell"`` (``seconds`` = time inside so far), ``"zoneOccupancy"`` (``count``) and
``"lineCross"`` (``direction`` "in"/"out", ``count_in``/``count_out`` after it)."""


class _LineState(object):
    __slots__ = ("side", "crossed", "pending_in", "pending_out", "counted_in", "counted_out")

    def __init__(self):
        self.side = 0  # the side the anchor last settled on: -1 left, 1 right, 0 not yet
        self.crossed = False  # the anchor's path went through the segment since it last settled
        self.pending_in = self.pending_out = False
        self.counted_in = self.counted_out = False


class _ZoneState(object):
    __slots__ = ("inside", "entered_at", "dwelled")

    def __init__(self):
        self.inside = False
        self.entered_at = 0.0
        self.dwelled = False


class _TrackSlot(object):
    __slots__ = ("anchors", "lines", "zones", "last_seen", "track")

    def __init__(self, n_lines, n_zones):
        self.track = None
        self.anchors = {}
        self.lines = [_LineState() for _ in range(n_lines)]
        self.zones = [_ZoneState() for _ in range(n_zones)]
        self.last_seen = 0.0


class SceneAnalyzer(object):
    """Turns tracks into zone and line events; see the module's documentation for the rules."""

    #: state of a track never reported ended and not seen for this long is dropped (its zones are left)
    FORGET_SECONDS = 60.0

    def __init__(self, zones=(), lines=()):
        self.zones = list(zones)
        self.lines = list(lines)
        names = [z.name for z in self.zones] + [l.name for l in self.lines]
        for name in names:
            if names.count(name) > 1:
                raise ValueError("zone and line names must be unique; %r is used twice" % (name,))
        self._slots = {}
        self._counts = [[0, 0] for _ in self.lines]
        self._occupancy = [0 for _ in self.zones]

    @property
    def counts(self):
        """Crossings so far per line: ``{name: (in, out)}``."""
        return {l.name: (c[0], c[1]) for l, c in zip(self.lines, self._counts)}

    @property
    def occupancy(self):
        """Confirmed tracks inside each zone now: ``{name: count}``."""
        return {z.name: n for z, n in zip(self.zones, self._occupancy)}

    def update(self, tracks, ended=(), time=0.0):
        """Feed the tracks seen this frame and the tracks that ended; answers the events, in this order: leaves of
        ended tracks, then per seen track its line crossings and zone events, then occupancy changes."""
        events = []
        for track in ended:
            slot = self._slots.pop(track.id, None)
            if slot is not None:
                self._leave_all(slot, track, track.last_seen, events)
        for id in [i for i, s in self._slots.items() if time - s.last_seen > self.FORGET_SECONDS]:
            slot = self._slots.pop(id)
            self._leave_all(slot, slot.track, slot.last_seen, events)
        for track in tracks:
            slot = self._slots.get(track.id)
            if slot is None:
                slot = self._slots[track.id] = _TrackSlot(len(self.lines), len(self.zones))
            slot.last_seen = time
            slot.track = track
            self._lines(slot, track, events)
            self._zones(slot, track, time, events)
            slot.anchors[BOTTOM_CENTER] = track.box.bottom_center
            slot.anchors[CENTER] = track.box.center
        for k, zone in enumerate(self.zones):
            n = sum(1 for s in self._slots.values() if s.zones[k].inside)
            if n != self._occupancy[k]:
                self._occupancy[k] = n
                events.append(SceneEvent("zoneOccupancy", zone=zone.name, count=n))
        return events

    def _lines(self, slot, track, events):
        for k, line in enumerate(self.lines):
            if line.classes is not None and track.class_id not in line.classes:
                continue
            state = slot.lines[k]
            p = _anchor(track.box, line.anchor)
            q = slot.anchors.get(line.anchor)
            if q is not None and _segments_intersect(q, p, line.from_, line.to):
                state.crossed = True
            d = line.side(p)
            if abs(d) >= line.hysteresis:
                s = 1 if d > 0 else -1
                if state.side != 0 and s != state.side and state.crossed:
                    if s > 0:
                        state.pending_in = True
                    else:
                        state.pending_out = True
                state.side = s
                state.crossed = False
            if track.state != CONFIRMED:
                continue
            counts = self._counts[k]
            if state.pending_in and not state.counted_in:
                state.counted_in = True
                counts[0] += 1
                events.append(SceneEvent("lineCross", line=line.name, track=track, direction=IN, count_in=counts[0],
                                         count_out=counts[1]))
            if state.pending_out and not state.counted_out:
                state.counted_out = True
                counts[1] += 1
                events.append(SceneEvent("lineCross", line=line.name, track=track, direction=OUT, count_in=counts[0],
                                         count_out=counts[1]))
            state.pending_in = state.pending_out = False

    def _zones(self, slot, track, time, events):
        if track.state != CONFIRMED:
            return
        for k, zone in enumerate(self.zones):
            if zone.classes is not None and track.class_id not in zone.classes:
                continue
            state = slot.zones[k]
            inside = zone.contains(_anchor(track.box, zone.anchor))
            if inside and not state.inside:
                state.inside, state.entered_at, state.dwelled = True, time, False
                events.append(SceneEvent("zoneEnter", zone=zone.name, track=track))
            elif inside:
                stay = time - state.entered_at
                if zone.dwell_seconds is not None and not state.dwelled and stay >= zone.dwell_seconds:
                    state.dwelled = True
                    events.append(SceneEvent("zoneDwell", zone=zone.name, track=track, seconds=stay))
            elif state.inside:
                state.inside = False
                events.append(SceneEvent("zoneLeave", zone=zone.name, track=track, seconds=time - state.entered_at))

    def _leave_all(self, slot, track, time, events):
        for k, zone in enumerate(self.zones):
            state = slot.zones[k]
            if state.inside:
                state.inside = False
                events.append(SceneEvent("zoneLeave", zone=zone.name, track=track,
                                         seconds=max(0.0, time - state.entered_at)))
