"""Post-training INT8 quantization of a Vantage model with OpenVINO's NNCF, checked against the original.

`vantage models optimize MODEL --calibrate VIDEO` runs this package (`python3 -m vantage_optimize`) with NNCF and
OpenVINO for Python on its path (`scripts/setup` installs them into `.deps/nncf`). It reads frames from a video file
or camera URL with FFmpeg, scaled exactly as the runtime scales them (swscale, bilinear, to the model's input size, in
its colour order), quantizes the model on the first part of the frames, saves OpenVINO IR, and compares the INT8
model's detections with the original's on the held-out rest, with both models' speed on this CPU.
"""
