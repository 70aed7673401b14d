// Test helper: an extra sample source registered for one scope.
#pragma once

#include <pbm/exporters/samples.hpp>

#include <cstddef>
#include <utility>

/// Registers `s` with pbm::exporters::add_source() and removes it at scope exit.
struct ScopedSource {
  explicit ScopedSource(pbm::exporters::SampleSource s) : id(pbm::exporters::add_source(std::move(s))) {}
  ~ScopedSource() { pbm::exporters::remove_source(id); }
  ScopedSource(ScopedSource const&) = delete;
  ScopedSource& operator=(ScopedSource const&) = delete;
  std::size_t id;
};
