// Only makes FFmpeg's C API callable from Swift: the headers, and the function-like macros that Swift
// cannot import, as static inline functions with a vantage_ prefix.
#pragma once
#include <libavformat/avformat.h>
#include <libavcodec/avcodec.h>
#include <libavutil/avutil.h>
#include <libavutil/imgutils.h>
#include <libavutil/opt.h>
#include <libavutil/error.h>
#include <libavutil/dict.h>
#include <libswscale/swscale.h>

static inline int vantage_averror_eagain(void) { return AVERROR(EAGAIN); }
static inline int vantage_averror_eof(void) { return AVERROR_EOF; }
static inline int vantage_averror_exit(void) { return AVERROR_EXIT; }
static inline int vantage_averror_enomem(void) { return AVERROR(ENOMEM); }
static inline int64_t vantage_av_nopts_value(void) { return AV_NOPTS_VALUE; }
static inline int vantage_averror_invaliddata(void) { return AVERROR_INVALIDDATA; }
