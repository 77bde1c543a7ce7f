// result<T>: a value or the std::error_code that explains why there is none.
// keel reports failures as values (STYLE.md "Errors"); this is the carrier for
// functions that also return something. C++23's std::expected would do, but
// keel targets C++20.
//
// Thread safety: a plain value.
#pragma once

#include <cassert>
#include <system_error>
#include <utility>
#include <variant>

#include "keel/errc.hpp"

namespace keel {

template <class T>
class [[nodiscard]] result {
 public:
  result(T value)
      : state_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  result(std::error_code error) : state_(std::in_place_index<1>, error) {  // NOLINT
    assert(error && "a result's error must be an error");
  }
  result(errc error) : result(make_error_code(error)) {}  // NOLINT

  bool has_value() const noexcept { return state_.index() == 0; }
  explicit operator bool() const noexcept { return has_value(); }

  /// Requires: has_value().
  T& value() & { return assert(has_value()), std::get<0>(state_); }
  const T& value() const& { return assert(has_value()), std::get<0>(state_); }
  T&& value() && { return assert(has_value()), std::get<0>(std::move(state_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  /// The error, or an empty error_code when there is a value.
  std::error_code error() const noexcept {
    return has_value() ? std::error_code{} : std::get<1>(state_);
  }

  template <class U>
  T value_or(U&& fallback) const& {
    return has_value() ? std::get<0>(state_) : static_cast<T>(std::forward<U>(fallback));
  }

 private:
  std::variant<T, std::error_code> state_;
};

}  // namespace keel
