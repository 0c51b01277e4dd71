"""People counter, written the way AWS Panorama's sample applications were.

Every frame: OpenCV pre-processing in Python (resize to the model's 300x300, BGR -> RGB), the model node called by
name with `self.call({"data": x}, "model_node")`, boxes and labels attached with `add_rect`/`add_label`, the count
drawn on the image with OpenCV, the frames sent to the display with `put`. When the count of a camera changes, an
event is published (`publish` is Vantage's addition to panoramasdk; the rest is the Panorama API unchanged). An event
the runtime cannot store (a full disk) is logged, at most once every ten seconds, and the counting goes on: an
exception that escapes the loop ends the process, and the runtime restarts it over and over while the disk stays full.
"""
import logging
import sys
import time
from logging.handlers import RotatingFileHandler

import cv2
import numpy as np
import panoramasdk

MODEL_SIZE = 300
PERSON = 1  # COCO class id


class Application(panoramasdk.node):
    def __init__(self):
        # Parameters are read as self.inputs.<name>.get(), as on Panorama.
        self.threshold = self.inputs.threshold.get()
        self.max_people = self.inputs.max_people.get()
        self.draw_boxes = self.inputs.draw_boxes.get()
        self.site = self.inputs.site.get()
        self.counts = {}
        self.recent = {}
        self.frames = 0
        self.publish_errors = ThrottledLog(every=10.0)
        logger.info(
            "parameters: threshold=%r max_people=%r draw_boxes=%r site=%r",
            self.threshold, self.max_people, self.draw_boxes, self.site)

    def preprocess(self, img):
        resized = cv2.resize(img, (MODEL_SIZE, MODEL_SIZE), interpolation=cv2.INTER_LINEAR)
        rgb = cv2.cvtColor(resized, cv2.COLOR_BGR2RGB)
        return np.expand_dims(rgb, axis=0)  # uint8 [1, 300, 300, 3], what the TensorFlow SSD takes

    def process_streams(self):
        streams = self.inputs.video_in.get()
        for stream in streams:
            if stream.is_cached:
                continue
            boxes, classes, scores, count = self.call({"data": self.preprocess(stream.image)}, "model_node")
            people = []
            for i in range(int(count[0])):
                if int(classes[0][i]) == PERSON and scores[0][i] >= self.threshold:
                    people.append((boxes[0][i], scores[0][i]))
            for (top, left, bottom, right), score in people:
                if self.draw_boxes:
                    stream.add_rect(float(left), float(top), float(right), float(bottom))
                    stream.add_label("person %d%%" % int(score * 100), float(left), float(top))
            self.report(stream, self.smoothed(stream.stream_id, len(people)))
        self.outputs.video_out.put(streams)
        self.frames += 1

    def smoothed(self, stream_id, count):
        # The median of the last five frames, so one missed detection does not make two events.
        window = self.recent.setdefault(stream_id, [])
        window.append(count)
        del window[:-5]
        return sorted(window)[len(window) // 2]

    def report(self, stream, count):
        over = count > self.max_people
        color = (48, 48, 255) if over else (255, 255, 255)
        h = stream.image.shape[0]
        cv2.putText(stream.image, "%s %s: %d people" % (self.site, stream.stream_id, count), (12, int(h * 0.06)),
                    cv2.FONT_HERSHEY_SIMPLEX, max(0.5, h / 900.0), color, 2)
        previous = self.counts.get(stream.stream_id)
        self.counts[stream.stream_id] = count
        if previous == count:
            return
        crossed = (previous or 0) <= self.max_people < count
        event = {"type": "over_threshold" if crossed else "count_changed", "site": self.site,
                 "stream": stream.stream_id, "count": count, "previous": previous or 0,
                 "maxPeople": self.max_people, "frame": self.frames, "time": stream.time_stamp[0]}
        logger.info("%s: %d people", stream.stream_id, count)
        try:
            self.publish(event, snapshot=stream if crossed or previous is None else None)
        except RuntimeError as error:  # the runtime refused the event (e.g. its disk is full): it was not stored
            self.publish_errors.report("could not publish the %s event (counting goes on): %s", event["type"], error)


class ThrottledLog:
    """Logs a recurring error at most once per interval, with how many were held back meanwhile."""

    def __init__(self, every):
        self.every = every
        self.last = None
        self.held_back = 0

    def report(self, message, *args):
        now = time.monotonic()
        if self.last is not None and now - self.last < self.every:
            self.held_back += 1
            return
        if self.held_back:
            message += " (and %d more since the last report)" % self.held_back
        logger.warning(message, *args)
        self.last = now
        self.held_back = 0


def get_logger(name=__name__, level=logging.INFO):
    logger = logging.getLogger(name)
    logger.setLevel(level)
    handler = RotatingFileHandler("/opt/aws/panorama/logs/app.log", maxBytes=100000000, backupCount=2)
    handler.setFormatter(logging.Formatter("%(asctime)s - %(levelname)s - %(message)s"))
    logger.addHandler(handler)
    return logger


def main():
    try:
        logger.info("INITIALIZING APPLICATION")
        app = Application()
        logger.info("PROCESSING STREAMS")
        started = time.time()
        try:
            while True:
                app.process_streams()
        finally:
            elapsed = time.time() - started
            logger.info("processed %d batches in %.1f s; counts %s", app.frames, elapsed, app.counts)
    except Exception:
        logger.exception("Exception during processing")
        sys.exit(1)


logger = get_logger(level=logging.INFO)
main()
