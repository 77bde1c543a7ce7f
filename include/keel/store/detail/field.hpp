// How indexers read a field of an object: a getter is anything std::invoke
// can call with `const T&` (a lambda, a function pointer, a pointer to a data
// member or to a const member function). It yields the value, or a
// std::optional of it, where an empty optional means "no value".
//
// Thread safety: pure type computations and calls of the user's getter.
#pragma once

#include <functional>
#include <optional>
#include <type_traits>
#include <utility>

namespace keel::store::detail {

template <class X>
inline constexpr bool is_optional_v = false;
template <class X>
inline constexpr bool is_optional_v<std::optional<X>> = true;

/// R without reference and cv, and without std::optional around it.
template <class R>
struct unwrap_optional {
  using type = std::remove_cvref_t<R>;
};
template <class R>
  requires is_optional_v<std::remove_cvref_t<R>>
struct unwrap_optional<R> {
  using type = typename std::remove_cvref_t<R>::value_type;
};

/// What a getter returns for a T.
template <class Get, class T>
using field_result_t = std::invoke_result_t<const Get&, const T&>;

/// The value type a getter yields for a T (optional unwrapped).
template <class Get, class T>
using field_value_t = typename unwrap_optional<field_result_t<Get, T>>::type;

/// Calls fn(value) with the getter's value for obj and returns what fn
/// returns (a bool: whether the value counts as present); returns false
/// without calling fn when the getter yields an empty std::optional.
template <class Get, class T, class Fn>
bool visit_field(const Get& get, const T& obj, Fn&& fn) {
  decltype(auto) value = std::invoke(get, obj);
  if constexpr (is_optional_v<std::remove_cvref_t<decltype(value)>>) {
    if (!value) return false;
    return std::forward<Fn>(fn)(*value);
  } else {
    return std::forward<Fn>(fn)(value);
  }
}

/// The result type of a getter whose signature can be read without knowing
/// the object type: a non-generic lambda or function object, a function
/// pointer, a pointer to a data member or to a const member function.
/// No `result` member for generic lambdas.
template <class G>
struct getter_signature {};

template <class G>
  requires requires { &G::operator(); }
struct getter_signature<G> : getter_signature<decltype(&G::operator())> {};

template <class R, class C, class A>
struct getter_signature<R (C::*)(A) const> {
  using result = R;
};
template <class R, class C, class A>
struct getter_signature<R (C::*)(A) const noexcept> {
  using result = R;
};
template <class R, class C, class A>
struct getter_signature<R (C::*)(A)> {
  using result = R;
};
template <class R, class C, class A>
struct getter_signature<R (C::*)(A) noexcept> {
  using result = R;
};
template <class R, class A>
struct getter_signature<R (*)(A)> {
  using result = R;
};
template <class R, class A>
struct getter_signature<R (*)(A) noexcept> {
  using result = R;
};
template <class R, class C>
struct getter_signature<R (C::*)() const> {
  using result = R;
};
template <class R, class C>
struct getter_signature<R (C::*)() const noexcept> {
  using result = R;
};
template <class M, class C>
  requires(!std::is_function_v<M>)
struct getter_signature<M C::*> {
  using result = const M&;
};

/// The value type of a getter read from its signature (optional unwrapped).
template <class G>
using getter_value_t = typename unwrap_optional<typename getter_signature<G>::result>::type;

}  // namespace keel::store::detail
