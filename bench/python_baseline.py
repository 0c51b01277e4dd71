#!/usr/bin/env python3
"""The benchmark's baseline: a plain Python loop doing what an AWS Panorama application did.

For each frame, in one process and one loop, one frame at a time:
  OpenCV reads and decodes it (cv2.VideoCapture on a file or an rtsp:// URL), resizes it to
  300x300, converts BGR to RGB, OpenVINO (Python API, CPU) infers the SSDLite person detector on it
  synchronously, and the loop counts the detections of class 1 (person) with score >= 0.5.
With --copies N it opens N captures and serves them round-robin in the same loop, like a Panorama
application with N cameras.

Prints one JSON line on stdout:
  {"frames": ..., "seconds": ..., "fps": ..., "mean_people": ..., ...context...}
where seconds is the wall time of the loop (loading and compiling the model and opening the
captures excluded: they are reported as setup_seconds and open_seconds) and fps = frames / seconds.

Needs openvino, opencv-python-headless and numpy: `scripts/setup --bench` installs them into
.deps/python, so run it as
  PYTHONPATH=.deps/python python3 bench/python_baseline.py \\
      --model .deps/models/ssdlite/frozen_inference_graph.pb --video .deps/media/vtest.mp4
"""

import argparse
import json
import os
import sys
import time

try:
    import cv2
    import numpy as np
    import openvino as ov
except ImportError as error:
    sys.exit(
        f"python_baseline: {error}. Run `scripts/setup --bench` and set PYTHONPATH=.deps/python "
        f"(this is {sys.executable}, Python {sys.version.split()[0]})."
    )

INPUT_SIZE = 300
PERSON = 1
THRESHOLD = 0.5


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="SSDLite frozen_inference_graph.pb (TF OD API)")
    parser.add_argument("--video", required=True, help="video file or rtsp:// URL")
    parser.add_argument(
        "--frames", type=int, default=None,
        help="frames to process in all (default: one pass over the file per copy; 300 per copy "
        "for a stream). A file shorter than that is played again from the start.",
    )
    parser.add_argument("--copies", type=int, default=1, help="captures of the video served round-robin (default 1)")
    parser.add_argument(
        "--seconds", type=float, default=None,
        help="stop after this many seconds of the loop instead of after --frames (for live streams: a camera's "
        "frames come at its rate, so frames per second over a fixed time says whether the loop kept up)",
    )
    parser.add_argument(
        "--warmup", type=float, default=0,
        help="with --seconds: seconds of the loop before counting starts (connecting, the first burst)",
    )
    arguments = parser.parse_args()
    if arguments.copies < 1:
        parser.error("--copies must be at least 1")
    if arguments.frames is not None and arguments.frames < 1:
        parser.error("--frames must be at least 1")
    return arguments


def is_stream(source):
    return "://" in source


def open_capture(source):
    capture = cv2.VideoCapture(source, cv2.CAP_FFMPEG)
    if not capture.isOpened():
        sys.exit(f"python_baseline: OpenCV could not open {source}")
    return capture


def output_named(compiled, name):
    for output in compiled.outputs:
        if name in output.get_names() or f"{name}:0" in output.get_names():
            return output
    sys.exit(f"python_baseline: the model has no output {name}")


def main():
    arguments = parse_arguments()
    if not os.path.isfile(arguments.model):
        sys.exit(f"python_baseline: {arguments.model}: no such file (run scripts/setup)")
    stream = is_stream(arguments.video)
    if not stream and not os.path.isfile(arguments.video):
        sys.exit(f"python_baseline: {arguments.video}: no such file (run scripts/setup)")
    if stream:
        # RTSP over TCP, as Vantage reads cameras.
        os.environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS", "rtsp_transport;tcp")

    # The model, compiled once for CPU with a fixed 1x300x300x3 uint8 input.
    setup_started = time.perf_counter()
    core = ov.Core()
    model = core.read_model(arguments.model)
    model.reshape({model.input(0).get_any_name(): [1, INPUT_SIZE, INPUT_SIZE, 3]})
    compiled = core.compile_model(model, "CPU")
    request = compiled.create_infer_request()
    scores_out = output_named(compiled, "detection_scores")
    classes_out = output_named(compiled, "detection_classes")
    count_out = output_named(compiled, "num_detections")
    setup_seconds = time.perf_counter() - setup_started

    opening = time.perf_counter()
    captures = [open_capture(arguments.video) for _ in range(arguments.copies)]
    open_seconds = time.perf_counter() - opening
    width = int(captures[0].get(cv2.CAP_PROP_FRAME_WIDTH))
    height = int(captures[0].get(cv2.CAP_PROP_FRAME_HEIGHT))
    if arguments.frames is not None:
        total = arguments.frames
    elif stream:
        total = 300 * arguments.copies
    else:
        per_copy = int(captures[0].get(cv2.CAP_PROP_FRAME_COUNT))
        if per_copy <= 0:
            sys.exit(f"python_baseline: cannot tell how many frames {arguments.video} has: give --frames")
        total = per_copy * arguments.copies

    frames = 0
    people = 0
    index = 0
    started = time.perf_counter()
    if arguments.seconds is not None:
        total = float("inf")
    counting_from = started + arguments.warmup
    counted_frames = 0
    while frames < total:
        now = time.perf_counter()
        if arguments.seconds is not None and now - started >= arguments.warmup + arguments.seconds:
            break
        capture = captures[index]
        index = (index + 1) % len(captures)
        ok, frame = capture.read()
        if not ok:
            if stream:
                sys.exit(f"python_baseline: the stream {arguments.video} ended after {frames} frames")
            capture.set(cv2.CAP_PROP_POS_FRAMES, 0)  # play the file again
            ok, frame = capture.read()
            if not ok:
                sys.exit(f"python_baseline: cannot read {arguments.video}")
        resized = cv2.resize(frame, (INPUT_SIZE, INPUT_SIZE))
        rgb = cv2.cvtColor(resized, cv2.COLOR_BGR2RGB)
        request.infer({0: rgb[np.newaxis]})
        count = int(request.get_tensor(count_out).data.reshape(-1)[0])
        classes = request.get_tensor(classes_out).data.reshape(-1)[:count]
        scores = request.get_tensor(scores_out).data.reshape(-1)[:count]
        people += int(np.count_nonzero((classes.astype(np.int64) == PERSON) & (scores >= THRESHOLD)))
        frames += 1
        if now >= counting_from:
            counted_frames += 1
    seconds = time.perf_counter() - started
    if arguments.seconds is not None:  # the counted window only
        frames, seconds = counted_frames, seconds - arguments.warmup
    for capture in captures:
        capture.release()

    print(json.dumps({
        "frames": frames,
        "seconds": round(seconds, 3),
        "fps": round(frames / seconds, 2),
        "mean_people": round(people / frames, 3),
        "copies": arguments.copies,
        "video": arguments.video,
        "width": width,
        "height": height,
        "setup_seconds": round(setup_seconds, 3),
        "open_seconds": round(open_seconds, 3),
        "openvino": ov.__version__.split("-")[0],
        "opencv": cv2.__version__,
        "cpu_count": os.cpu_count(),
    }), flush=True)


if __name__ == "__main__":
    main()
