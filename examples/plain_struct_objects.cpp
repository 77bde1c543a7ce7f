// Objects that are plain C++ structs, no protobuf: the object traits policy
// (keel::store::object_traits, store/object_traits.hpp).
//
// `volume` is an ordinary struct. Its traits specialization tells the store
// its table, its id, where its version lives, how it is encoded (a compact
// hand-written format, below) and which secondary indexes it has: a unique
// case-insensitive name and a non-unique driver. The example
//
//   1. uses it in a local store transaction and queries the driver index;
//   2. shows that decode refuses bytes that are not a volume;
//   3. replicates it on three runners over the in-process network, each
//      with its WAL on the real disk in a scratch directory: a create on the
//      leader, a query of the driver index on a follower, and an update
//      built on a stale version, which is refused.
//
// Encoding of a volume, version 1 of the format:
//
//   'V' 0x01  id  name  driver  size_mib  version
//
// where a string is its length as a LEB128 varint and its bytes, and a
// number is a LEB128 varint. decode refuses a wrong tag or format version,
// a varint longer than 10 bytes or over 64 bits, a string running past the
// end, trailing bytes and an empty id, with errc::invalid_object.
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <system_error>
#include <tuple>

#include "example_cluster.hpp"
#include "keel/keel.hpp"

namespace demo {

struct volume {
  std::string id;
  std::string name;
  std::string driver;
  std::uint64_t size_mib = 0;
  std::uint64_t version = 0;

  bool operator==(const volume&) const = default;
};

namespace codec {

inline void put_varint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

inline void put_string(std::string& out, std::string_view s) {
  put_varint(out, s.size());
  out.append(s);
}

inline bool get_varint(std::string_view& in, std::uint64_t& v) {
  v = 0;
  for (int shift = 0; shift < 70; shift += 7) {
    if (in.empty()) return false;
    const auto byte = static_cast<unsigned char>(in.front());
    in.remove_prefix(1);
    // The tenth byte may carry only the 64th bit.
    if (shift == 63 && byte > 1) return false;
    v |= std::uint64_t{byte & 0x7fu} << shift;
    if ((byte & 0x80) == 0) return true;
  }
  return false;  // More than 10 bytes.
}

inline bool get_string(std::string_view& in, std::string& s) {
  std::uint64_t size = 0;
  if (!get_varint(in, size) || size > in.size()) return false;
  s.assign(in.substr(0, size));
  in.remove_prefix(size);
  return true;
}

}  // namespace codec

/// The indexers, as constants so that indexes() is constexpr and its names
/// are checked at compile time.
struct volume_indexes {
  static constexpr keel::store::string_indexer name{&volume::name, keel::store::case_fold::lower};
  static constexpr keel::store::string_indexer driver{&volume::driver};
};

}  // namespace demo

template <>
struct keel::store::object_traits<demo::volume> {
  static constexpr std::string_view table = "volume";
  static std::string_view id(const demo::volume& v) { return v.id; }
  static std::uint64_t version(const demo::volume& v) { return v.version; }
  static void set_version(demo::volume& v, std::uint64_t version) { v.version = version; }

  static std::string encode(const demo::volume& v) {
    std::string out = "V\x01";
    demo::codec::put_string(out, v.id);
    demo::codec::put_string(out, v.name);
    demo::codec::put_string(out, v.driver);
    demo::codec::put_varint(out, v.size_mib);
    demo::codec::put_varint(out, v.version);
    return out;
  }

  static keel::result<demo::volume> decode(std::string_view in) {
    demo::volume v;
    if (!in.starts_with("V\x01")) return keel::errc::invalid_object;
    in.remove_prefix(2);
    if (!demo::codec::get_string(in, v.id) || !demo::codec::get_string(in, v.name) ||
        !demo::codec::get_string(in, v.driver) || !demo::codec::get_varint(in, v.size_mib) ||
        !demo::codec::get_varint(in, v.version) || !in.empty() || v.id.empty()) {
      return keel::errc::invalid_object;
    }
    return v;
  }

  static constexpr auto indexes() {
    using ix = demo::volume_indexes;
    return std::tuple{
        index_schema{.name = "name", .unique = true, .indexer = ix::name},
        index_schema{.name = "driver", .allow_missing = true, .indexer = ix::driver},
    };
  }
};

static_assert(keel::store::object<demo::volume>);
static_assert(keel::store::index_names_valid(keel::store::object_traits<demo::volume>::indexes()));

namespace {

using demo::volume;
using keel::examples::check;
using traits = keel::store::object_traits<volume>;
using runner = keel::node::runner<keel::node::steady_clock, keel::wal::posix_file_system,
                                  keel::transport::endpoint, volume>;
using namespace std::chrono_literals;

volume make_volume(std::string id, std::string name, std::string driver, std::uint64_t size) {
  return {
      .id = std::move(id), .name = std::move(name), .driver = std::move(driver), .size_mib = size};
}

/// "data(local) logs(local)" for the volumes a selector finds.
template <class Tx, class Selector>
std::string names(const Tx& tx, const Selector& sel) {
  std::string out;
  auto found = tx.template find<volume>(sel);
  if (!found) return "error: " + found.error().message();
  for (const auto& v : *found) out += (out.empty() ? "" : " ") + v->name + "(" + v->driver + ")";
  return out;
}

void local_store() {
  std::printf("1. A local store transaction with plain-struct objects.\n");
  keel::store::store<volume> store;
  auto ec = store.update([](auto& tx) -> std::error_code {
    if (auto e = tx.create(make_volume("vol-1", "data", "local", 512))) return e;
    return tx.create(make_volume("vol-2", "backup", "nfs", 4096));
  });
  check(!ec, "two volumes created in one transaction");
  store.view([](const auto& tx) {
    std::printf("  driver nfs: %s\n",
                names(tx, keel::store::by_index("driver", keel::store::query_mode::exact,
                                                std::string("nfs")))
                    .c_str());
    check(tx.template get<volume>("vol-1")->version == 1, "create stamped version 1");
    check(names(tx, keel::store::by_name("DATA")) == "data(local)",
          "the name index is case-insensitive");
  });
  auto dup =
      store.update([](auto& tx) { return tx.create(make_volume("vol-3", "Data", "nfs", 1)); });
  std::printf("  create another volume named \"Data\": %s\n", dup.message().c_str());
  check(dup == keel::errc::name_conflict, "the unique name index refuses a second \"data\"");
}

void codec_checks() {
  std::printf("2. The codec round-trips and refuses what is not a volume.\n");
  const volume v{
      .id = "vol-9", .name = "scratch", .driver = "tmpfs", .size_mib = 300, .version = 42};
  const std::string bytes = traits::encode(v);
  std::printf("  encoded in %zu bytes\n", bytes.size());
  auto back = traits::decode(bytes);
  check(back && *back == v, "decode(encode(v)) == v");
  check(traits::decode(bytes.substr(0, bytes.size() - 1)).error() == keel::errc::invalid_object,
        "a truncated encoding is invalid_object");
  check(traits::decode(bytes + "x").error() == keel::errc::invalid_object,
        "trailing bytes are invalid_object");
  check(traits::decode("V\x02").error() == keel::errc::invalid_object,
        "an unknown format version is invalid_object");
  check(traits::decode(std::string("V\x01\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 13))
                .error() == keel::errc::invalid_object,
        "an overlong varint is invalid_object");
}

void replicated() {
  std::printf("3. Three runners replicate the volumes (WALs on the real disk).\n");
  keel::examples::in_process_cluster<runner> cluster({1, 2, 3});
  const auto leader_id = cluster.await_leader();
  std::printf("  node %llu leads\n", static_cast<unsigned long long>(leader_id));

  // Writes go to whichever node leads (update_on_leader), and each reads
  // what it changes: a retry after an attempt that did commit finds it done.
  auto created = cluster.update_on_leader([](auto& tx) -> std::error_code {
    if (tx.template get<volume>("vol-1")) return {};  // Committed by an earlier attempt.
    if (auto e = tx.create(make_volume("vol-1", "data", "local", 512))) return e;
    if (auto e = tx.create(make_volume("vol-2", "backup", "nfs", 4096))) return e;
    return tx.create(make_volume("vol-3", "logs", "local", 128));
  });
  check(created.has_value(), "the leader committed three creates");
  std::printf("  committed at index %llu\n", static_cast<unsigned long long>(*created));

  const auto follower_id = cluster.await_leader() == 1 ? 2 : 1;
  auto local = cluster.read_linearizable(follower_id, [](const auto& tx) {
    return names(
        tx, keel::store::by_index("driver", keel::store::query_mode::exact, std::string("local")));
  });
  check(local.has_value(), "a linearizable read on follower " + std::to_string(follower_id));
  std::printf("  follower %llu, driver local: %s\n", static_cast<unsigned long long>(follower_id),
              local->c_str());
  check(*local == "data(local) logs(local)", "the driver index finds both local volumes");

  auto read = cluster.read_linearizable(
      follower_id, [](const auto& tx) { return *tx.template get<volume>("vol-3"); });
  check(read.has_value(), "logs read at version " + std::to_string(read ? read->version : 0));
  auto resized = cluster.update_on_leader([](auto& tx) {
    volume grown = *tx.template get<volume>("vol-3");  // Its current version.
    grown.size_mib = 256;
    return tx.update(grown);
  });
  check(resized.has_value() && *resized > read->version, "resize of logs from its current version");

  volume stale = *read;  // Still carries the version before the resize.
  stale.driver = "nfs";
  auto refused = cluster.update_on_leader([&](auto& tx) { return tx.update(stale); });
  std::printf("  update of logs from version %llu (stored: %llu): %s\n",
              static_cast<unsigned long long>(stale.version),
              static_cast<unsigned long long>(*resized),
              refused ? "accepted" : refused.error().message().c_str());
  check(!refused && refused.error() == keel::errc::sequence_conflict,
        "the stale update is refused with sequence_conflict");

  for (auto id : cluster.ids()) {
    auto v = cluster.read_linearizable(
        id, [](const auto& tx) { return *tx.template get<volume>("vol-3"); });
    check(v && v->size_mib == 256 && v->driver == "local" && v->version == *resized,
          "node " + std::to_string(id) + " holds logs at 256 MiB, version " +
              std::to_string(*resized));
  }
}

}  // namespace

int main() {
  return keel::examples::run_example([] {
    local_store();
    codec_checks();
    replicated();
  });
}
