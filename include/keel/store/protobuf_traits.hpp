// Object traits for protobuf messages shaped like keel's example objects
// (proto/keel/objects.proto): a `string id` field and a `Meta meta` field with
// `uint64 version` (and optionally `int64 created_at`, `int64 updated_at`).
//
// This header includes nothing from protobuf: it calls the generated members
// (id(), meta(), mutable_meta(), SerializeToString, ParseFromArray) of the
// type it is instantiated with, so keel's core builds without protobuf and a
// program that uses these traits already includes its generated headers and
// links libprotobuf.
//
// Use: inherit, and add what only the user knows, the table and its indexes:
//
//   template <>
//   struct keel::store::object_traits<Task> : keel::store::protobuf_traits<Task> {
//     static constexpr std::string_view table = "task";
//     static constexpr auto indexes() { return std::tuple{ ... }; }
//   };
//
// Encoding: the message's protobuf wire format. It is not canonical (map
// entries are written in hash order), so compare objects, not their bytes.
//
// Thread safety: static functions; see object_traits.hpp.
#pragma once

#include <cassert>
#include <climits>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "keel/errc.hpp"
#include "keel/result.hpp"

namespace keel::store {

// clang-format off
/// A generated protobuf message with an id and a Meta carrying the version:
///  - m.id() converts to std::string_view;
///  - m.meta().version() is the version, m.mutable_meta()->set_version(v) sets it;
///  - m.SerializeToString(std::string*) and m.ParseFromArray(const void*, int)
///    are protobuf's (MessageLite) codec.
template <class M>
concept protobuf_object =
    std::copy_constructible<M> && std::default_initializable<M> &&
    requires(const M& obj, M& mutable_obj, std::string* out, const void* data, int size,
             std::uint64_t version) {
      { obj.id() } -> std::convertible_to<std::string_view>;
      { obj.meta().version() } -> std::convertible_to<std::uint64_t>;
      mutable_obj.mutable_meta()->set_version(version);
      { obj.SerializeToString(out) } -> std::same_as<bool>;
      { mutable_obj.ParseFromArray(data, size) } -> std::same_as<bool>;
    };
// clang-format on

/// The traits of a protobuf object, minus `table` and `indexes()`, which the
/// user's specialization of object_traits adds.
template <protobuf_object M>
struct protobuf_traits {
  /// The message's id field.
  static std::string_view id(const M& obj) { return obj.id(); }

  /// meta.version.
  static std::uint64_t version(const M& obj) { return obj.meta().version(); }

  /// Sets meta.version.
  static void set_version(M& obj, std::uint64_t version) {
    obj.mutable_meta()->set_version(version);
  }

  // clang-format off
  /// Sets meta.created_at, when the message's Meta has it.
  static void set_created_at(M& obj, std::int64_t unix_nanos)
    requires requires { obj.mutable_meta()->set_created_at(unix_nanos); }
  {
    obj.mutable_meta()->set_created_at(unix_nanos);
  }

  /// Sets meta.updated_at, when the message's Meta has it.
  static void set_updated_at(M& obj, std::int64_t unix_nanos)
    requires requires { obj.mutable_meta()->set_updated_at(unix_nanos); }
  {
    obj.mutable_meta()->set_updated_at(unix_nanos);
  }
  // clang-format on

  /// The message in protobuf's wire format.
  /// Requires: the encoding is under 2 GiB, protobuf's limit (a proto3
  /// message cannot fail to serialize otherwise); the store bounds object
  /// sizes well below that.
  static std::string encode(const M& obj) {
    std::string bytes;
    [[maybe_unused]] const bool ok = obj.SerializeToString(&bytes);
    assert(ok && "protobuf_traits::encode: the message is too large to serialize");
    return bytes;
  }

  /// Parses bytes written by encode; errc::invalid_object for anything that is
  /// not a valid message (truncated, malformed, invalid UTF-8 in a string
  /// field, over 2 GiB).
  static result<M> decode(std::string_view bytes) {
    if (bytes.size() > static_cast<std::size_t>(INT_MAX)) return errc::invalid_object;
    M obj;
    if (!obj.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
      return errc::invalid_object;
    }
    return obj;
  }
};

}  // namespace keel::store
