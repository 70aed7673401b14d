// Pieces of the mailbox_ext module defined in other translation units.
#pragma once

#include <torch/extension.h>

namespace pbm::python {

/// Telemetry control, the forbid/expect guards (with Python stacks) and, when built with them, the
/// exporters (Prometheus, JSON report).
void bind_telemetry(pybind11::module_& m);

}  // namespace pbm::python
