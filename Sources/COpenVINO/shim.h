// Only makes OpenVINO's C API visible to Swift. The headers come from .deps/openvino/include
// (scripts/setup); Package.swift adds that include path.
#pragma once
#include <openvino/c/openvino.h>
