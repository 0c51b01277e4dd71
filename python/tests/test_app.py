"""A Panorama application, unchanged, in its own process against the fake runtime; and the SDK's overhead."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np

import panoramasdk
from conftest import EVENT, INFER, INFER_RESULT, PUT, SDK_ROOT

APP = textwrap.dedent('''
    import logging
    from logging.handlers import RotatingFileHandler

    import numpy as np
    import panoramasdk

    logger = logging.getLogger(__name__)
    logger.setLevel(logging.INFO)
    logger.addHandler(RotatingFileHandler("/opt/aws/panorama/logs/app.log", maxBytes=100000000, backupCount=2))


    class Application(panoramasdk.node):
        def __init__(self):
            self.threshold = self.inputs.threshold.get()
            with open("/panorama/labels.txt") as f:
                self.labels = f.read().split()
            self.frames = 0

        def process_streams(self):
            streams = self.inputs.video_in.get()
            for stream in streams:
                if stream.is_cached:
                    continue
                x = stream.image[::8, ::8].astype(np.float32).transpose(2, 0, 1)[None]
                scores, _ = self.call({"data": x}, "model_node")
                stream.add_rect(0.1, 0.1, 0.5, 0.5)
                stream.add_label("%s %.0f" % (self.labels[1], scores[0]), 0.1, 0.1)
            self.outputs.video_out.put(streams)
            self.frames += 1
            self.publish({"frames": self.frames})


    def main():
        try:
            app = Application()
            while True:
                app.process_streams()
        except Exception:
            logger.exception("Exception during processing")
            raise SystemExit(1)
        finally:
            logger.info("done")


    main()
''')


def run_app(fake, vantage_env, tmp_path, code):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [SDK_ROOT, os.path.join(SDK_ROOT, "vantage_boot")] + [p for p in sys.path if p.endswith(".deps/python")]
        + [os.path.dirname(os.path.dirname(np.__file__))])
    env["VANTAGE_SDK_STATS"] = str(tmp_path / "stats.json")
    script = tmp_path / "app.py"
    script.write_text(code)
    return subprocess.run([sys.executable, str(script)], env=env, cwd=str(vantage_env["source"]),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=60)


def test_panorama_app_runs_unchanged_and_exits_zero_at_the_end(fake, vantage_env, tmp_path):
    (vantage_env["source"] / "labels.txt").write_text("background person")
    for i in range(3):
        fake.get_replies.append([fake.frame(0, i % 3), fake.frame(1, i % 3, cached=i > 0)])
    fake.cameras[0].memory[:] = 2
    out = run_app(fake, vantage_env, tmp_path, APP)
    assert out.returncode == 0, out.stderr
    assert "every source of video_in has ended; exiting" in out.stderr
    puts = fake.messages(PUT)
    assert len(puts) == 3
    # Camera b was cached after the first batch: only a's frames were inferred then.
    assert len(fake.messages(INFER)) == 4
    ref, overlays = puts[0].frames[0]
    assert [o["kind"] for o in overlays] == [1, 2]
    assert overlays[1]["text"] == "person %d" % (6 * 8 * 3 * 2)  # sum of a 6x8x3 array of 2s
    assert [m.event for m in fake.messages(EVENT)] == [{"frames": 1}, {"frames": 2}, {"frames": 3}]
    assert "done" in (vantage_env["logs"] / "app.log").read_text()
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["get"]["count"] == 4 and stats["call"]["count"] == 4 and stats["put"]["count"] == 3
    assert stats["publish"]["count"] == 3
    assert all(stats[op]["total_ns"] > 0 for op in ("get", "call", "put", "publish"))


def test_per_frame_overhead_at_1080p_is_well_under_a_millisecond(make_fake):
    fake = make_fake(slot_capacity=1920 * 1080 * 3, slot_count=3, arena_capacity=300 * 300 * 3 * 4)
    batches = 300
    for i in range(batches):
        fake.get_replies.append([fake.frame(0, i % 3, width=1920, height=1080),
                                 fake.frame(1, i % 3, width=1920, height=1080)])
    outputs = [("boxes", np.zeros((1, 100, 4), np.float32)), ("classes", np.zeros((1, 100), np.float32)),
               ("scores", np.zeros((1, 100), np.float32)), ("count", np.zeros(1, np.float32))]
    reply = fake.infer_result(outputs)  # an SSD's outputs
    fake.on_infer = lambda fake, msg: fake.reply(INFER_RESULT, msg.rid, reply)
    model_input = np.zeros((1, 3, 300, 300), dtype=np.float32)
    n = panoramasdk.node()
    for _ in range(batches):
        streams = n.inputs.video_in.get()
        for s in streams:
            img = s.image
            assert img.shape == (1080, 1920, 3)
            n.call({"data": model_input}, "model_node")
            s.add_rect(0.1, 0.1, 0.2, 0.2)
            s.add_label("person", 0.1, 0.1)
        n.outputs.video_out.put(streams)
    stats = panoramasdk.sdk_stats()
    assert stats["get"]["count"] == batches and stats["call"]["count"] == 2 * batches
    per_batch_us = (stats["get"]["total_ns"] + stats["call"]["total_ns"] + stats["put"]["total_ns"]) / batches / 1e3
    # Two 1080p frames and two model calls with a 1 MB tensor per batch. Typically ~100 µs here; the bound is
    # loose so a busy machine does not fail it.
    assert per_batch_us < 1000, stats
    print("SDK overhead per batch of two 1080p frames: %.0f us; %s" % (per_batch_us, stats))
