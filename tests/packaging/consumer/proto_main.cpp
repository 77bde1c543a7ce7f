// A downstream program whose objects are its own protobuf messages, generated
// by keel_protobuf_generate() and kept in a keel store through
// keel/store/protobuf_traits.hpp. Exits 0 when a widget survives a write
// transaction, the log encoding and an indexed lookup, 1 otherwise.
#include <shop/widget.pb.h>
#include <keel/store/protobuf_traits.hpp>
#include <keel/store/selector.hpp>
#include <keel/store/store.hpp>

#include <cstdlib>
#include <iostream>
#include <string>
#include <string_view>
#include <tuple>

namespace shop_indexes {
inline constexpr keel::store::string_indexer colour{&shop::Widget::colour};
}  // namespace shop_indexes

template <>
struct keel::store::object_traits<shop::Widget> : keel::store::protobuf_traits<shop::Widget> {
  static constexpr std::string_view table = "widget";
  static constexpr auto indexes() {
    return std::tuple{index_schema{.name = "colour", .indexer = shop_indexes::colour}};
  }
};

int main() {
  keel::store::store<shop::Widget> widgets;
  shop::Widget w;
  w.set_id("w1");
  w.set_colour("teal");
  if (auto ec = widgets.update([&](auto& tx) { return tx.create(w); })) {
    std::cerr << "proto consumer: FAILED: creating a widget: " << ec.message() << '\n';
    return EXIT_FAILURE;
  }
  const auto read = widgets.begin_read();
  const auto stored = read.get<shop::Widget>("w1");
  const auto teal = read.find<shop::Widget>(
      keel::store::by_index("colour", keel::store::query_mode::exact, std::string("teal")));
  using traits = keel::store::object_traits<shop::Widget>;
  const bool ok = stored != nullptr && stored->meta().version() == 1 && teal && teal->size() == 1;
  const auto decoded = ok ? traits::decode(traits::encode(*stored)) : keel::errc::invalid_object;
  if (!ok || !decoded || decoded->colour() != "teal") {
    std::cerr << "proto consumer: FAILED: the stored widget\n";
    return EXIT_FAILURE;
  }
  std::cout << "proto consumer: a generated message is a keel object\n";
  return EXIT_SUCCESS;
}
