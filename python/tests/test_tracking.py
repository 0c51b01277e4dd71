"""panoramasdk.tracking: the ByteTrack-style tracker, zones and counting lines, with the same behaviour as Swift's
VantageAnalytics (the shared scripted scene in Tests/GroundTruth/tracker-scenario.json checks both)."""

import json
import os

import pytest

from panoramasdk.tracking import (CONFIRMED, IN, LOST, OUT, TENTATIVE, ByteTracker, CountingLine, Point, Rect,
                                  SceneAnalyzer, Track, TrackerConfiguration, TrackerDetection, Zone)
from conftest import SDK_ROOT

SCENARIO = os.path.join(os.path.dirname(SDK_ROOT), "Tests", "GroundTruth", "tracker-scenario.json")
DOOR = CountingLine("door", Point(0.5, 0.9), Point(0.5, 0.1))  # drawn upwards: left to right is "in"


def box(x, feet, width=0.06, height=0.2):
    return Rect(x - width / 2, feet - height, x + width / 2, feet)


def person(x, feet, score=0.9, class_id=1):
    return TrackerDetection(class_id, score, box(x, feet))


def track(id, x, feet, state=CONFIRMED, class_id=1, time=0.0):
    return Track(id, class_id, box(x, feet), 0.9, state, 0.0, time, 1 if state == TENTATIVE else 10)


def steps(a, b, step):
    n = int(round(abs(b - a) / step))
    return [a + (step if b > a else -step) * i for i in range(n + 1)]


def walk(scene, xs, id=1, feet=0.6, state=CONFIRMED, class_id=1, start=0):
    events = []
    for i, x in enumerate(xs):
        time = (start + i) / 10.0
        events += scene.update([track(id, x, feet, state, class_id, time)], [], time)
    return events


def directions(events):
    return [e.direction for e in events if e.kind == "lineCross"]


def ids_of(actors, tracks, result):
    """The confirmed track IDs each actor's detection was matched to (the one of its class it overlaps most)."""
    for t in tracks:
        if t.state != CONFIRMED:
            continue
        candidates = [(t.box.iou(d.box), name) for name, d in actors.items() if d.class_id == t.class_id]
        if candidates:
            result.setdefault(max(candidates)[1], set()).add(t.id)


# -- tracker -------------------------------------------------------------------------------------------------------

def test_defaults_match_the_swift_tracker():
    c = TrackerConfiguration()
    assert (c.high_score, c.low_score, c.new_track_score, c.match_iou, c.confirm_frames, c.max_lost_seconds) == (
        0.5, 0.1, 0.6, 0.2, 3, 1.5)


def test_a_person_keeps_their_id_while_hidden_and_is_reported_lost_meanwhile():
    tracker = ByteTracker()
    ids = set()
    for frame in range(41):
        hidden = 15 <= frame <= 19
        seen = tracker.update([] if hidden else [person(0.1 + 0.02 * frame, 0.6)], frame / 10.0)
        if hidden:
            assert seen == []
            assert [t.state for t in tracker.tracks] == [LOST]
        elif frame >= 2:
            assert [t.state for t in seen] == [CONFIRMED]
        ids.update(t.id for t in seen)
    assert ids == {1}
    assert abs(tracker.tracks[0].box.center.x - 0.9) < 0.01


@pytest.mark.parametrize("hide_the_one_behind", [False, True])
def test_two_people_crossing_paths_keep_their_ids(hide_the_one_behind):
    tracker = ByteTracker()
    ids = {}
    for frame in range(31):
        a, b = 0.2 + 0.02 * frame, 0.8 - 0.02 * frame
        actors = {"a": person(a, 0.6), "b": person(b, 0.63)}
        if hide_the_one_behind and abs(a - b) < 0.05:
            del actors["a"]
        seen = tracker.update(sorted(actors.values(), key=lambda d: d.box.x_min), frame / 10.0)
        ids_of(actors, seen, ids)
    assert ids == {"a": {1}, "b": {2}}


@pytest.mark.parametrize("fps", [5.0, 10.0, 30.0])
def test_stale_tracks_end_after_max_lost_seconds_whatever_the_frame_rate(fps):
    tracker = ByteTracker(TrackerConfiguration(max_lost_seconds=1.5))
    ended_at = ended = None
    frame = 0
    while ended_at is None and frame < 10 * fps:
        time = frame / fps
        tracker.update([person(0.3 + 0.2 * time, 0.6)] if time < 1 else [], time)
        if tracker.ended:
            ended_at, ended = time, tracker.ended[0]
        frame += 1
    gap = ended_at - ended.last_seen
    assert 1.5 < gap <= 1.5 + 1 / fps + 1e-9
    assert ended.state == LOST
    assert tracker.tracks == []
    assert [t.id for t in tracker.update([person(0.3, 0.6)], ended_at + 0.1)] == [2]  # IDs are never reused


def test_tracks_start_from_confident_detections_confirm_after_three_frames_and_flickers_drop():
    tracker = ByteTracker()
    assert tracker.update([person(0.5, 0.6, score=0.55)], 0.0) == []
    states = []
    for frame in range(1, 5):
        states += [t.state for t in tracker.update([person(0.5 + 0.02 * frame, 0.6)], frame / 10.0)]
    assert states == [TENTATIVE, TENTATIVE, CONFIRMED, CONFIRMED]
    tracker.update([person(0.6, 0.6), person(0.1, 0.3)], 0.5)
    assert len(tracker.tracks) == 2
    tracker.update([person(0.62, 0.6)], 0.6)
    assert [(t.id, t.state) for t in tracker.ended] == [(2, TENTATIVE)]
    assert [t.id for t in tracker.tracks] == [1]


def test_faint_detections_extend_tracks_but_never_start_one():
    tracker = ByteTracker()
    for frame in range(5):
        tracker.update([person(0.2 + 0.02 * frame, 0.6)], frame / 10.0)
    for frame in range(5, 15):
        seen = tracker.update([person(0.2 + 0.02 * frame, 0.6, score=0.2)], frame / 10.0)
        assert [(t.id, t.state) for t in seen] == [(1, CONFIRMED)]
    assert tracker.update([person(0.9, 0.3, score=0.4)], 1.5) == []


def test_a_person_never_matches_a_car():
    # A person stands still, then a car's box appears exactly where the person was: it starts its own track.
    tracker = ByteTracker()
    ids = {}
    for frame in range(20):
        actor = ("person", person(0.5, 0.6)) if frame < 10 else ("car", person(0.5, 0.6, class_id=3))
        seen = tracker.update([actor[1]], frame / 10.0)
        ids_of(dict([actor]), seen, ids)
        assert all(t.class_id == (1 if t.id == 1 else 3) for t in seen)
    assert ids == {"person": {1}, "car": {2}}
    assert [t.state for t in tracker.tracks if t.id == 1] == [LOST]


def test_a_second_box_on_a_tracked_person_starts_no_track():
    tracker = ByteTracker()
    for frame in range(10):
        x = 0.3 + 0.02 * frame
        detections = [person(x, 0.6)]
        if frame >= 4:
            detections.append(person(x + 0.012, 0.61, score=0.8))
        tracker.update(detections, frame / 10.0)
    assert [t.id for t in tracker.tracks] == [1]


# -- lines and zones -------------------------------------------------------------------------------------------------

def test_direction_follows_the_line_as_drawn():
    scene = SceneAnalyzer(lines=[DOOR])
    assert directions(walk(scene, steps(0.3, 0.7, 0.02), id=1)) == [IN]
    left = walk(scene, steps(0.7, 0.3, 0.02), id=2, start=30)
    assert directions(left) == [OUT]
    assert (left[0].count_in, left[0].count_out) == (1, 1)
    assert scene.counts == {"door": (1, 1)}
    reversed_door = SceneAnalyzer(lines=[CountingLine("door", DOOR.to, DOOR.from_)])
    assert directions(walk(reversed_door, steps(0.3, 0.7, 0.02))) == [OUT]
    kerb = SceneAnalyzer(lines=[CountingLine("kerb", (0.1, 0.5), (0.9, 0.5))])  # drawn left to right: down is in
    events = []
    for i, y in enumerate(steps(0.3, 0.7, 0.02)):
        events += kerb.update([track(1, 0.5, y)], [], i / 10.0)
    assert directions(events) == [IN]


def test_a_track_wobbling_on_the_line_counts_once():
    scene = SceneAnalyzer(lines=[DOOR])
    xs = steps(0.3, 0.52, 0.02) + [0.492 if i % 2 == 0 else 0.508 for i in range(50)] + steps(0.52, 0.7, 0.02)
    assert directions(walk(scene, xs)) == [IN]
    assert scene.counts["door"] == (1, 0)


def test_pacing_counts_at_most_one_in_and_one_out():
    scene = SceneAnalyzer(lines=[DOOR])
    xs = (steps(0.4, 0.6, 0.02) + steps(0.6, 0.4, 0.02)) * 4
    assert directions(walk(scene, xs)) == [IN, OUT]


def test_tentative_tracks_never_count_but_a_crossing_counts_once_confirmed():
    scene = SceneAnalyzer(lines=[DOOR])
    events = walk(scene, [0.46, 0.5, 0.54], id=1, state=TENTATIVE)
    events += scene.update([], [track(1, 0.54, 0.6, TENTATIVE, time=0.2)], 0.3)
    assert events == [] and scene.counts["door"] == (0, 0)
    assert walk(scene, [0.46, 0.54], id=2, state=TENTATIVE, start=10) == []
    events = walk(scene, [0.58, 0.62], id=2, start=12)
    assert [e.track.id for e in events if e.kind == "lineCross"] == [2]


def test_passing_beyond_the_end_of_the_line_is_not_a_crossing():
    scene = SceneAnalyzer(lines=[DOOR])
    assert walk(scene, steps(0.3, 0.7, 0.02), feet=0.95) == []
    assert len(walk(scene, steps(0.3, 0.7, 0.02), id=2, feet=0.85)) == 1


def test_lines_and_zones_count_only_their_classes():
    line = CountingLine("door", DOOR.from_, DOOR.to, classes=[1])
    zone = Zone("yard", [(0.6, 0.3), (0.9, 0.3), (0.9, 0.9), (0.6, 0.9)], classes=[1])
    scene = SceneAnalyzer(zones=[zone], lines=[line])
    assert walk(scene, steps(0.3, 0.8, 0.02), id=1, class_id=3) == []
    events = walk(scene, steps(0.3, 0.8, 0.02), id=2, start=30)
    assert [e.track.id for e in events if e.kind == "lineCross"] == [2]
    assert ("zoneOccupancy", 1) in [(e.kind, e.count) for e in events]


def test_the_anchor_decides_which_point_crosses():
    feet = CountingLine("feet", (0.1, 0.5), (0.9, 0.5))
    centre = CountingLine("centre", (0.1, 0.5), (0.9, 0.5), anchor="center")
    scene = SceneAnalyzer(lines=[feet, centre])
    events = []
    for i, y in enumerate(steps(0.45, 0.6, 0.01)):
        events += scene.update([track(1, 0.5, y)], [], i / 10.0)
    assert [e.line for e in events if e.kind == "lineCross"] == ["feet"]


def test_zone_enter_dwell_leave_and_occupancy():
    zone = Zone("queue", [(0.4, 0.4), (0.8, 0.4), (0.8, 0.8), (0.4, 0.8)], dwell_seconds=1.95)
    scene = SceneAnalyzer(zones=[zone])
    log = []
    for frame in range(60):
        time = frame / 10.0
        x = 0.31 + 0.02 * min(frame, 10) + 0.02 * max(0, frame - 40)
        tracks = [track(1, x, 0.6, time=time)]
        if 10 <= frame <= 20:
            tracks.append(track(2, 0.6, 0.7, time=time))
        for e in scene.update(tracks, [], time):
            if e.kind == "zoneOccupancy":
                log.append("%d occupancy %d" % (frame, e.count))
            elif e.kind == "zoneEnter":
                log.append("%d enter %d" % (frame, e.track.id))
            else:
                log.append("%d %s %d %.1f" % (frame, e.kind[4:].lower(), e.track.id, e.seconds))
    assert log == ["5 enter 1", "5 occupancy 1", "10 enter 2", "10 occupancy 2", "25 dwell 1 2.0", "55 leave 1 5.0",
                   "55 occupancy 1"]
    assert scene.occupancy == {"queue": 1}
    events = scene.update([], [track(2, 0.6, 0.7, LOST, time=2.0)], 6.0)
    assert [(e.kind, e.track and e.track.id) for e in events] == [("zoneLeave", 2), ("zoneOccupancy", None)]
    assert abs(events[0].seconds - 1.0) < 1e-9 and events[1].count == 0


def test_zones_and_lines_that_cannot_work_are_refused_with_what_to_fix():
    with pytest.raises(ValueError, match="zone 'flat' needs at least 3 points"):
        Zone("flat", [(0, 0), (1, 1)])
    with pytest.raises(ValueError, match="same start and end point: give two different points"):
        CountingLine("dot", (0.5, 0.5), (0.5, 0.5))
    with pytest.raises(ValueError, match="'door' is used twice"):
        SceneAnalyzer(lines=[DOOR, DOOR])


# -- the scene shared with the Swift tests --------------------------------------------------------------------------

def test_the_scripted_scene_gives_the_stored_ids_events_and_counts():
    with open(SCENARIO) as f:
        scenario = json.load(f)
    line, zone = scenario["line"], scenario["zone"]
    tracker = ByteTracker()
    scene = SceneAnalyzer(
        zones=[Zone(zone["name"], [(p["x"], p["y"]) for p in zone["polygon"]], zone.get("classes"),
                    zone.get("dwellSeconds"))],
        lines=[CountingLine(line["name"], (line["from"]["x"], line["from"]["y"]), (line["to"]["x"], line["to"]["y"]),
                            line.get("classes"))])
    events, ended, actor_tracks = [], [], {}
    for frame, f in enumerate(scenario["frames"]):
        actors = [(d["actor"], TrackerDetection(d["classId"], d["score"], Rect(*d["box"]))) for d in f["detections"]]
        seen = tracker.update([d for _, d in actors], f["time"])
        for t in seen:
            if t.state != CONFIRMED:
                continue
            same_class = [(t.box.iou(d.box), name) for name, d in actors if d.class_id == t.class_id]
            actor_tracks.setdefault(max(same_class)[1], set()).add(t.id)
        ended += [{"frame": frame, "track": t.id, "state": t.state} for t in tracker.ended]
        for e in scene.update(seen, tracker.ended, f["time"]):
            event = {"frame": frame, "type": e.kind, "name": e.zone or e.line}
            if e.track is not None:
                event["track"] = e.track.id
            if e.kind == "lineCross":
                event.update(direction=e.direction, countIn=e.count_in, countOut=e.count_out)
            if e.kind == "zoneOccupancy":
                event["count"] = e.count
            if e.seconds is not None:
                event["seconds"] = e.seconds
            events.append(event)
    expected = scenario["expected"]
    assert actor_tracks == {k: set(v) for k, v in expected["actorTracks"].items() if v}
    assert ended == expected["ended"]
    assert [t.id for t in tracker.tracks] == expected["liveAtEnd"]
    assert len(events) == len(expected["events"]), events
    for got, want in zip(events, expected["events"]):
        assert abs(got.get("seconds", 0) - want.get("seconds", 0)) < 0.01, (got, want)
        got.pop("seconds", None)
        want = dict(want)
        want.pop("seconds", None)
        assert got == want
    assert {k: {"in": v[0], "out": v[1]} for k, v in scene.counts.items()} == expected["counts"]
