// Joins records with API calls, applies the policy, counts and reports.
#include "engine.hpp"

#include "classify.hpp"
#include "fnv.hpp"
#include "thread_state.hpp"

#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <thread>

namespace pbm::telemetry::detail {
namespace {

std::string_view innermost(RangeStack const& ranges) noexcept {
  return ranges.empty() ? std::string_view{} : std::string_view(ranges.back().name);
}

std::uint64_t fallback_site(Violation const& v) noexcept {
  std::uint64_t h = kFnvOffset;
  auto mix = [&h](std::string_view s) { h = fnv1a("\xff", fnv1a(s, h)); };  // 0xff ends each field
  mix(to_string(v.rule));
  mix(v.api);
  for (Range const& r : v.ranges) { mix(r.domain); mix(r.name); }
  return h;
}

}  // namespace

void ObserverList::add(Observer& o) {
  std::lock_guard<std::mutex> lock(mu_);
  int const n = used_.load(std::memory_order_relaxed);
  Slot* free_slot = nullptr;
  for (int i = 0; i < n; ++i) {
    Observer* const current = slots_[i].observer.load(std::memory_order_relaxed);
    if (current == &o) throw std::invalid_argument("pbm telemetry: add_observer: this observer is registered already");
    if (current == nullptr && free_slot == nullptr) free_slot = &slots_[i];
  }
  if (free_slot == nullptr) {
    if (n == kMaxObservers) {
      throw std::length_error("pbm telemetry: add_observer: " + std::to_string(kMaxObservers) +
                              " observers are registered already");
    }
    free_slot = &slots_[n];
    free_slot->observer.store(&o, std::memory_order_seq_cst);
    used_.store(n + 1, std::memory_order_release);
    return;
  }
  free_slot->observer.store(&o, std::memory_order_seq_cst);
}

void ObserverList::remove(Observer& o) noexcept {
  std::lock_guard<std::mutex> lock(mu_);
  int const n = used_.load(std::memory_order_relaxed);
  for (int i = 0; i < n; ++i) {
    Slot& s = slots_[i];
    if (s.observer.load(std::memory_order_relaxed) != &o) continue;
    s.observer.store(nullptr, std::memory_order_seq_cst);
    // A reader that marked the slot busy before the store may still be calling `o`.
    while (s.busy.load(std::memory_order_seq_cst) != 0) std::this_thread::yield();
    return;
  }
}

Engine::Engine(std::size_t range_label_cap)
    : counters_(std::make_unique<Counters>(range_label_cap)), table_(kTableSize) {}

// Direct-mapped and bounded: a newer call evicts an older one with the same slot; its record
// then counts as unattributed rather than growing memory without limit.
void Engine::remember(std::uint64_t k, std::shared_ptr<CallContext> ctx) {
  std::lock_guard<std::mutex> lock(table_mu_);
  Slot& s = table_[k % kTableSize];
  s.key = k;
  s.ctx = std::move(ctx);
}

std::shared_ptr<CallContext> Engine::find(std::uint64_t k) const {
  std::lock_guard<std::mutex> lock(table_mu_);
  Slot const& s = table_[k % kTableSize];
  return s.key == k ? s.ctx : nullptr;
}

bool Engine::api_enter(ApiCall const& call) {
  // The runtime call in progress on this thread: driver calls the runtime makes underneath it are
  // aliases of it, not separate events.
  ThreadState& thread = cupti_fed();
  bool const joins = joins_records_.load(std::memory_order_relaxed);
  if (!call.runtime && thread.runtime_depth > 0) {
    if (joins && thread.runtime_call) remember(key(false, call.correlation), thread.runtime_call);
    return false;
  }
  bool const judges_sync = call.cls == ApiCall::Class::memcpy_sync || call.cls == ApiCall::Class::sync;
  bool const copies = call.cls == ApiCall::Class::memcpy_sync || call.cls == ApiCall::Class::memcpy_async ||
                      call.cls == ApiCall::Class::graph_launch;  // its memcpy nodes are judged as copies
  if (!judges_sync && !copies && !call.legacy_stream && !joins) {
    // Judged as nothing, and no record will look for it: only the depth that makes the driver calls
    // underneath aliases. No scope capture (it copies the range stack).
    if (call.runtime) {
      ++thread.runtime_depth;
      thread.runtime_call.reset();
    }
    return true;
  }
  CallContext local = capture_context();
  local.api = call.name;
  if (local.mode != Mode::off) {
    // The copy's record arrives later, on another thread: keep the call site now if a report may need it.
    if (copies && (local.mode >= Mode::warn || local.guard)) local.backtrace = Backtrace::capture();
    local.sync_judged = judges_sync;
  }
  // The context outlives the call only where something looks it up by correlation id: a copy's
  // judgement (on_memcpy, api_blocking_copy) and activity records. A sync judged here, with no
  // records coming, needs neither the heap nor the table's lock.
  std::shared_ptr<CallContext> kept;
  if (copies || joins) {
    kept = std::make_shared<CallContext>(std::move(local));
    remember(key(call.runtime, call.correlation), kept);
  }
  CallContext& ctx = kept ? *kept : local;
  if (call.runtime) {
    ++thread.runtime_depth;
    thread.runtime_call = kept;
  }
  if (ctx.mode == Mode::off) return true;
  if (call.legacy_stream) {
    SyncEvent legacy;
    legacy.api = SyncApi::legacy_stream;
    legacy.api_name = call.name;
    legacy.thread = ctx.thread;
    legacy.correlation = call.correlation;
    legacy.ranges = ctx.ranges;
    judge_sync(std::move(legacy), ctx, /*at_call_site=*/true);
  }
  if (!judges_sync) return true;

  SyncEvent ev;
  ev.api = call.cls == ApiCall::Class::memcpy_sync ? SyncApi::memcpy_sync : call.sync_api;
  ev.api_name = call.name;
  ev.stream = call.stream;
  ev.thread = ctx.thread;
  ev.correlation = call.correlation;
  ev.ranges = kept ? ctx.ranges : std::move(ctx.ranges);  // judge_sync reads the event's ranges only
  judge_sync(std::move(ev), ctx, /*at_call_site=*/true);
  return true;
}

void Engine::api_also(ApiCall const& call, SyncApi api) {
  std::shared_ptr<CallContext> const ctx = find(key(call.runtime, call.correlation));
  if (!ctx || ctx->mode == Mode::off) return;
  SyncEvent ev;
  ev.api = api;
  ev.api_name = call.name;
  ev.stream = call.stream;
  ev.thread = ctx->thread;
  ev.correlation = call.correlation;
  ev.ranges = ctx->ranges;
  judge_sync(std::move(ev), *ctx, /*at_call_site=*/true);
}

void Engine::api_capture_failure(ApiCall const& call, int error) {
  ThreadState* thread = this_thread_if_any();
  if (!call.runtime && thread != nullptr && thread->runtime_depth > 0) return;  // the runtime call reports it
  CallContext ctx = capture_context();
  if (ctx.mode == Mode::off) return;
  SyncEvent ev;
  ev.api = call.cls == ApiCall::Class::memcpy_sync    ? SyncApi::memcpy_sync
           : call.cls == ApiCall::Class::memcpy_async ? SyncApi::memcpy_blocking
                                                      : call.sync_api;
  ev.api_name = call.name;
  ev.stream = call.stream;
  ev.thread = ctx.thread;
  ev.correlation = call.correlation;
  ev.ranges = ctx.ranges;
  if (ctx.mode < Mode::warn) ctx.mode = Mode::warn;  // always said: the capture has failed
  Violation v = violation(Rule::sync_in_capture, ctx, std::string(call.name), ev.thread, ev.ranges,
                          /*at_call_site=*/true);
  v.sync = std::move(ev);
  (void)error;  // the three errors mean the same to the user: this call broke the capture
  Backtrace const bt = Backtrace::capture();
  report(std::move(v), ctx, &bt);
}

void Engine::api_exit(ApiCall const& call) noexcept {
  if (!call.runtime) return;
  ThreadState* thread = this_thread_if_any();
  if (thread == nullptr || thread->runtime_depth == 0) return;
  if (--thread->runtime_depth == 0) thread->runtime_call.reset();
}

void Engine::judge_sync(SyncEvent ev, CallContext const& ctx, bool at_call_site) {
  std::vector<std::string> const& allow = allow_list_cached();
  Verdict const verdict = classify_sync(ev.api, ctx.sync_rule, ctx.pbm_wait, ev.ranges, allow);
  counters_->add_sync(ev.api, verdict.expected, innermost(ev.ranges));
  observers_.each([&](Observer& o) { o.on_sync(ev, verdict.expected); });
  if (verdict.expected) return;
  Violation v = violation(verdict.rule, ctx, ev.api_name.empty() ? ctx.api : ev.api_name, ev.thread, ev.ranges,
                          at_call_site);
  v.sync = std::move(ev);
  Backtrace bt;
  bool const want_bt = at_call_site && (ctx.mode >= Mode::warn || ctx.guard);
  if (want_bt) bt = Backtrace::capture();
  report(std::move(v), ctx, want_bt ? &bt : nullptr);
}

CallContext const& Engine::attributed(CallContext const* ctx, CallContext& fallback) noexcept {
  if (ctx != nullptr) return *ctx;
  counters_->health().unattributed_records.fetch_add(1, std::memory_order_relaxed);
  fallback.mode = get_mode();
  return fallback;
}

Violation Engine::violation(Rule rule, CallContext const& ctx, std::string api, std::uint32_t thread,
                            RangeStack const& ranges, bool at_call_site) {
  counters_->add_violation(rule);
  Violation v;
  v.rule = rule;
  v.mode = ctx.mode;
  v.api = std::move(api);
  v.thread = thread;
  v.ranges = ranges;
  v.at_call_site = at_call_site;
  return v;
}

void Engine::report(Violation v, CallContext const& ctx, Backtrace const* bt) {
  if (bt != nullptr && bt->depth > 0) {
    v.backtrace = bt->symbolise();
    v.site = bt->site_hash();
  } else {
    v.site = fallback_site(v);
  }
  observers_.each([&](Observer& o) { o.on_violation(v); });
  if (ctx.guard) {  // thrown at the guard's scope exit, on its own thread
    ctx.guard->add(std::move(v));
    return;
  }
  switch (v.mode) {
    case Mode::off:
    case Mode::count:
      return;
    case Mode::warn: {
      std::lock_guard<std::mutex> lock(warned_mu_);
      if (!warned_sites_.insert(v.site).second) return;
      std::string const text = format_report(v);
      std::fputs(text.c_str(), stderr);
      return;
    }
    case Mode::assert_: {
      // Never throw through a CUPTI callback: report and abort.
      std::string const text = format_report(v);
      std::fputs(text.c_str(), stderr);
      std::fputs("pbm telemetry: aborting (mode assert)\n", stderr);
      std::fflush(stderr);
      std::abort();
    }
  }
}

void Engine::on_memcpy(MemcpyEvent ev, bool at_call_site) {
  if (!at_call_site) counters_->health().records_processed.fetch_add(1, std::memory_order_relaxed);  // records only
  std::shared_ptr<CallContext> ctx;
  if (ev.runtime_correlation != 0) ctx = find(key(true, ev.runtime_correlation));
  if (!ctx && ev.correlation != 0) ctx = find(key(false, ev.correlation));
  CallContext fallback;
  CallContext const& c = attributed(ctx.get(), fallback);
  if (c.mode == Mode::off) return;
  ev.thread = c.thread;
  ev.ranges = c.ranges;
  std::vector<std::string> const& allow = allow_list_cached();
  Verdict const verdict = classify_memcpy(ev, c.memcpy_rule, ev.ranges, allow);
  counters_->add_memcpy(ev.direction, host_side_memory(ev.src_kind, ev.dst_kind), verdict.expected,
                        innermost(ev.ranges), ev.bytes);
  observers_.each([&](Observer& o) { o.on_memcpy(ev, verdict.expected); });
  if (verdict.expected) return;
  Violation v = violation(verdict.rule, c, c.api, ev.thread, ev.ranges, at_call_site);
  v.is_memcpy = true;
  v.memcpy = std::move(ev);
  report(std::move(v), c, c.backtrace.depth > 0 ? &c.backtrace : nullptr);
}

void Engine::on_memset(MemsetEvent const& ev) {
  counters_->health().records_processed.fetch_add(1, std::memory_order_relaxed);
  if (get_mode() == Mode::off) return;
  counters_->add_memset(ev.bytes);
  observers_.each([&](Observer& o) { o.on_memset(ev); });
}

void Engine::on_sync(SyncEvent ev) {
  counters_->health().records_processed.fetch_add(1, std::memory_order_relaxed);
  std::shared_ptr<CallContext> ctx = find(key(true, ev.correlation));
  if (!ctx) ctx = find(key(false, ev.correlation));
  if (ctx && ctx->sync_judged) return;  // judged at the API callback, where the scope was known
  CallContext fallback;
  CallContext const& c = attributed(ctx.get(), fallback);
  if (c.mode == Mode::off) return;
  ev.thread = c.thread;
  ev.ranges = c.ranges;
  judge_sync(std::move(ev), c, /*at_call_site=*/false);
}

void Engine::on_marker(MarkerEvent const& ev) {
  counters_->health().records_processed.fetch_add(1, std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> lock(marker_mu_);
    if (ev.kind == MarkerEvent::Kind::start) {
      // Bounded: an end record lost with dropped records (or a range never ended) must not grow
      // memory for the life of the process. The oldest open range gives way; so does a new thread
      // once kMaxMarkerThreads threads have open ranges.
      auto stack = marker_stacks_.find(ev.thread);
      if (stack == marker_stacks_.end()) {
        if (marker_stacks_.size() >= kMaxMarkerThreads) marker_stacks_.erase(marker_stacks_.begin());
        stack = marker_stacks_.emplace(ev.thread, std::vector<std::pair<std::uint32_t, Range>>{}).first;
      }
      if (stack->second.size() >= kMaxMarkerDepth) stack->second.erase(stack->second.begin());
      stack->second.emplace_back(ev.id, Range{std::string(bounded_range_name(ev.domain)),
                                             std::string(bounded_range_name(ev.name))});
      if (observed_.size() < 1024) observed_.emplace(bounded_range_name(ev.domain), bounded_range_name(ev.name));
    } else if (ev.kind == MarkerEvent::Kind::end) {
      // Push/pop ranges end on their own thread; start/end ranges may end anywhere.
      auto erase_from = [&ev](std::vector<std::pair<std::uint32_t, Range>>& stack) {
        for (auto it = stack.rbegin(); it != stack.rend(); ++it) {
          if (it->first == ev.id) { stack.erase(std::next(it).base()); return true; }
        }
        return false;
      };
      auto hit = marker_stacks_.find(ev.thread);
      if (hit == marker_stacks_.end() || !erase_from(hit->second)) {
        for (hit = marker_stacks_.begin(); hit != marker_stacks_.end(); ++hit) {
          if (erase_from(hit->second)) break;
        }
      }
      if (hit != marker_stacks_.end() && hit->second.empty()) marker_stacks_.erase(hit);  // threads come and go
    } else if (ev.kind == MarkerEvent::Kind::instant) {
      if (observed_.size() < 1024) observed_.emplace(bounded_range_name(ev.domain), bounded_range_name(ev.name));
    }
  }
  observers_.each([&](Observer& o) { o.on_marker(ev); });
}

RangeStack Engine::marker_ranges(std::uint32_t thread) const {
  std::lock_guard<std::mutex> lock(marker_mu_);
  RangeStack out;
  auto it = marker_stacks_.find(thread);
  if (it != marker_stacks_.end()) {
    for (auto const& entry : it->second) out.push_back(entry.second);
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> Engine::observed_ranges() const {
  std::lock_guard<std::mutex> lock(marker_mu_);
  return {observed_.begin(), observed_.end()};
}

Engine& engine(std::size_t range_label_cap_if_new) {
  static Engine* const instance = new Engine(range_label_cap_if_new);
  return *instance;
}

}  // namespace pbm::telemetry::detail

namespace pbm::telemetry {

void add_observer(Observer& observer) { detail::engine().add_observer(observer); }
void remove_observer(Observer& observer) noexcept { detail::engine().remove_observer(observer); }

}  // namespace pbm::telemetry::detail
