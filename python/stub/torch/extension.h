// A stand-in for torch/extension.h where torch is not installed: pybind11 alone. Only for the
// compile check of telemetry_bindings.cpp (python/CMakeLists.txt); never part of mailbox_ext.
#pragma once

#include <pybind11/pybind11.h>

namespace py = pybind11;
