#pragma once
// Linux interfaces that Glibc's Swift module does not export.
#include <sys/signalfd.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/prctl.h>
