#pragma once
// The encoder, for the tests that make compressed responses: the worker links the decoder only.
#include <brotli/encode.h>
