// keelctl store dump DIR: every object of a stopped node's store as JSON,
// one object per line (or one JSON array with --array), tables in name
// order and objects in id order; a summary goes to stderr.
//
// What it checks (store_image.hpp, store_stream.hpp): the WAL recovers; the
// snapshot file's framing, CRC, section and object counts, that no table
// has two sections, that ids increase within a table and that the snapshot
// was written at no version above its index; entries apply with a
// replica's exists / not-found / base-version checks. An object that does
// not parse as the type a schema gives its table is reported, and the exit
// status is 1. It does not check what needs the store's own types: indexes
// and the values a restore would refuse.
//
//   --descriptor-set FILE   the objects' types (protoc --include_imports
//                           --descriptor_set_out=FILE); default: the
//                           messages compiled into keelctl
//   --type TABLE=NAME       the message type of a table (repeatable)
//   --table NAME            only this table (repeatable); an unknown one is
//                           an error
//   --array                 one JSON array instead of JSON lines
//
// Thread safety: uses only its arguments.
#pragma once

#include <cinttypes>
#include <map>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "keelctl/object_printer.hpp"
#include "keelctl/progress.hpp"
#include "keelctl/store_image.hpp"
#include "keelctl/text.hpp"

namespace keelctl {

struct store_dump_options {
  std::string descriptor_set{};
  std::vector<std::string> types{};
  std::vector<std::string> tables{};
  bool array = false;
  progress_mode progress = progress_mode::off;
};

/// The schema the options ask for; nothing, with `error`, if it cannot be built.
inline std::optional<object_schema> schema_for(const store_dump_options& o, std::string& error) {
  std::optional<object_schema> schema =
      o.descriptor_set.empty() ? std::optional(object_schema::compiled())
                               : object_schema::from_descriptor_set(o.descriptor_set, error);
  if (!schema) return std::nullopt;
  for (const std::string& spec : o.types) {
    if (!schema->map_table(spec, error)) return std::nullopt;
  }
  return schema;
}

/// keelctl store dump DIR.
inline int store_dump(const std::string& dir, const store_dump_options& o, std::ostream& out,
                      std::ostream& err) {
  std::string error;
  auto schema = schema_for(o, error);
  if (!schema) {
    err << "keelctl: " << error << "\n";
    return 1;
  }
  const identify_fn identify = [&](std::string_view table, std::string_view bytes) {
    return schema->identify(table, bytes);
  };
  auto image = load_store_image(dir, identify, error, err, o.progress);
  if (!image) {
    err << "keelctl: " << error << "\n";
    return 1;
  }
  std::set<std::string> only(o.tables.begin(), o.tables.end());
  for (const std::string& t : only) {
    if (!image->tables.contains(t)) {
      std::string known;
      for (const auto& [name, objects] : image->tables) known += (known.empty() ? "" : ", ") + name;
      err << "keelctl: unknown table " << t << " (tables: " << (known.empty() ? "none" : known)
          << ")\n";
      return 1;
    }
  }
  if (o.array) out << "[";
  bool first = true;
  std::uint64_t objects = 0;
  std::map<std::string, std::uint64_t> unparsed;  // table -> objects that do not parse
  for (const auto& [table, rows] : image->tables) {
    if (!only.empty() && !only.contains(table)) continue;
    for (const auto& [id, bytes] : rows) {
      if (!schema->parses(table, bytes)) ++unparsed[table];
      if (o.array) out << (first ? "\n  " : ",\n  ");
      out << schema->to_json(table, bytes);
      if (!o.array) out << "\n";
      first = false;
      ++objects;
    }
  }
  if (o.array) out << (first ? "]\n" : "\n]\n");
  err << strf("keelctl: %" PRIu64 " objects at version %" PRIu64 " (snapshot %" PRIu64
              ", then %" PRIu64 " entries applied, %" PRIu64 " refused as a replica would)\n",
              objects, image->applied, image->snapshot_index, image->entries_applied,
              image->entries_refused);
  if (image->unchecked > 0) {
    err << strf("keelctl: %" PRIu64
                " base versions could not be checked (objects without a "
                "readable meta.version)\n",
                image->unchecked);
  }
  for (const auto& [table, count] : unparsed) {
    err << strf("keelctl: table %s: %" PRIu64
                " objects do not parse as the table's type (printed as bytes)\n",
                table.c_str(), count);
  }
  return unparsed.empty() ? 0 : 1;
}

}  // namespace keelctl
