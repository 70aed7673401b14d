// pbm's NVTX domain, registered strings and categories.
//
// Every host-side mailbox operation opens a scoped range in domain "pbm" with a category per
// operation kind, so Nsight Systems (and CUPTI MARKER records) attribute time and copies to it.
// Compiles to nothing when NVTX_DISABLE is defined (CMake: PBM_ENABLE_NVTX=OFF).
// Thread-safety: all functions are thread-safe (NVTX registration is internally synchronised).
#pragma once

#include <cstdint>

#ifndef NVTX_DISABLE  // disabled: not even the header, so nothing of NVTX reaches the object
#ifndef NVTX3_CPP_REQUIRE_EXPLICIT_VERSION
#define NVTX3_CPP_REQUIRE_EXPLICIT_VERSION
#endif
#include <nvtx3/nvtx3.hpp>
#endif

namespace pbm::nvtx {

/// Tag type naming pbm's NVTX domain.
struct domain {
  static constexpr char const* name{"pbm"};
};

/// Operation kinds; each is an NVTX category of domain "pbm".
enum class category : std::uint32_t { push = 1, pop = 2, wait = 3, alloc = 4, handoff = 5, telemetry = 6 };

namespace detail {
template <category C> struct category_name;
template <> struct category_name<category::push>      { static constexpr char const* name{"push"}; static constexpr std::uint32_t id{1}; };
template <> struct category_name<category::pop>       { static constexpr char const* name{"pop"}; static constexpr std::uint32_t id{2}; };
template <> struct category_name<category::wait>      { static constexpr char const* name{"wait"}; static constexpr std::uint32_t id{3}; };
template <> struct category_name<category::alloc>     { static constexpr char const* name{"alloc"}; static constexpr std::uint32_t id{4}; };
template <> struct category_name<category::handoff>   { static constexpr char const* name{"handoff"}; static constexpr std::uint32_t id{5}; };
template <> struct category_name<category::telemetry> { static constexpr char const* name{"telemetry"}; static constexpr std::uint32_t id{6}; };
}  // namespace detail

/// Registered range names: one type per host-side operation.
namespace msg {
struct push { static constexpr char const* message{"pbm::push"}; };
struct pop_bulk_async { static constexpr char const* message{"pbm::pop_bulk_async"}; };
struct wait { static constexpr char const* message{"pbm::wait"}; };
struct construct { static constexpr char const* message{"pbm::Mailbox"}; };
struct handoff { static constexpr char const* message{"pbm::handoff"}; };
struct refresh_stats { static constexpr char const* message{"pbm::refresh_stats"}; };
}  // namespace msg

#ifndef NVTX_DISABLE
/// A range named by a registered string literal type (see PBM_NVTX_RANGE).
template <class Message, category C>
class scoped_range {
 public:
  scoped_range() noexcept {
    using namespace nvtx3::v1;
    static const event_attributes attrs{
        registered_string_in<domain>::get<Message>(),
        named_category_in<domain>::get<detail::category_name<C>>()};
    nvtxDomainRangePushEx(domain_handle(), attrs.get());
  }
  ~scoped_range() noexcept { nvtxDomainRangePop(domain_handle()); }
  scoped_range(scoped_range const&) = delete;
  scoped_range& operator=(scoped_range const&) = delete;

 private:
  static nvtxDomainHandle_t domain_handle() noexcept { return nvtx3::v1::domain::get<domain>(); }
};
#define PBM_NVTX_CONCAT_(a, b) a##b
#define PBM_NVTX_CONCAT(a, b) PBM_NVTX_CONCAT_(a, b)
/// PBM_NVTX_RANGE(category, message): a scoped range for the rest of the enclosing block, named by
/// one of the registered messages in pbm::nvtx::msg.
#define PBM_NVTX_RANGE(cat, name)                                                              \
  ::pbm::nvtx::scoped_range<::pbm::nvtx::msg::name, ::pbm::nvtx::category::cat> PBM_NVTX_CONCAT( \
      pbm_nvtx_range_, __LINE__) {}
/// True when NVTX ranges are compiled in.
inline constexpr bool enabled = true;
#else
#define PBM_NVTX_RANGE(cat, literal) static_cast<void>(0)
inline constexpr bool enabled = false;
#endif

}  // namespace pbm::nvtx
