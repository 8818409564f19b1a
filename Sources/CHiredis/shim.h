#pragma once
// hiredis 0.14 (Debian 12's libhiredis-dev): only its command formatter and reply reader, which
// work on bytes; the socket is the worker's own NIO channel (docs/rate-limits.md "Across hosts").
#include <hiredis/hiredis.h>
#include <hiredis/read.h>
