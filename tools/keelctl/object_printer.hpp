// How keelctl reads the objects of a store it knows only by table name:
// each table's protobuf message type, from a FileDescriptorSet the user
// gives (`protoc --include_imports --descriptor_set_out=FILE ...`, read
// into a DescriptorPool, objects parsed as DynamicMessages) or else from the
// messages compiled into keelctl (keel's example objects). A table's type
// is, in order: the one `--type TABLE=full.Name` names; the message whose
// full name is the table's name; the message whose simple name is the
// table's name in any case ("task" finds keel.objects.Task, as the example
// objects name their tables).
//
// Objects print as one JSON object each: {"table", "id", "version", and
// "object" (protobuf's JSON mapping, proto field names) or "bytes" (base64,
// for a table without a type)}. The id and version come from the message's
// `id` and `meta.version` fields (protobuf_traits' convention); without a
// type, from fields 1 and 2.1 on the wire, where the example objects keep
// them.
//
// Thread safety: an object_schema is immutable once built; use from one
// thread while --type mappings are added.
#pragma once

#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/message.h>
#include <google/protobuf/unknown_field_set.h>
#include <google/protobuf/util/json_util.h>

#include <cctype>
#include <climits>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "keel/objects.pb.h"
#include "keelctl/text.hpp"

namespace keelctl {

/// An object's primary key and version, when they can be read.
struct object_identity {
  std::string id{};
  std::optional<std::uint64_t> version{};
};

class object_schema {
 public:
  /// The messages compiled into keelctl: keel's example objects.
  static object_schema compiled() {
    object_schema s;
    s.pool_ = google::protobuf::DescriptorPool::generated_pool();
    s.factory_ = google::protobuf::MessageFactory::generated_factory();
    // Naming a generated type links its file and registers its descriptors.
    s.files_.push_back(keel::objects::Task::descriptor()->file());
    return s;
  }

  /// The messages of a FileDescriptorSet file; `error` says why not.
  static std::optional<object_schema> from_descriptor_set(const std::string& path,
                                                          std::string& error) {
    std::error_code ec;
    std::ifstream in(path, std::ios::binary);
    if (!in || !std::filesystem::is_regular_file(path, ec)) {
      error = path + ": cannot read the descriptor set";
      return std::nullopt;
    }
    auto set = std::make_shared<google::protobuf::FileDescriptorSet>();
    if (!set->ParseFromIstream(&in) || set->file_size() == 0) {
      error = path +
              ": not a FileDescriptorSet (make one with protoc --include_imports "
              "--descriptor_set_out=FILE)";
      return std::nullopt;
    }
    object_schema s;
    s.owned_pool_ = std::make_shared<google::protobuf::DescriptorPool>();
    s.pool_ = s.owned_pool_.get();
    struct collector final : google::protobuf::DescriptorPool::ErrorCollector {
      std::string first;
      void AddError(const std::string& file, const std::string& element,
                    const google::protobuf::Message*, ErrorLocation,
                    const std::string& message) override {
        if (first.empty()) first = file + ": " + element + ": " + message;
      }
    };
    for (const auto& file : set->file()) {
      collector errors;
      const auto* built = s.owned_pool_->BuildFileCollectingErrors(file, &errors);
      if (built == nullptr) {
        error = path + ": " + errors.first +
                " (was the set made with --include_imports, imports first?)";
        return std::nullopt;
      }
      s.files_.push_back(built);
    }
    s.owned_factory_ = std::make_shared<google::protobuf::DynamicMessageFactory>(s.pool_);
    s.factory_ = s.owned_factory_.get();
    return s;
  }

  /// `--type TABLE=full.Name`: false (with `error`) if the spec or the name is bad.
  bool map_table(std::string_view spec, std::string& error) {
    const auto eq = spec.find('=');
    if (eq == std::string_view::npos || eq == 0 || eq + 1 == spec.size()) {
      error = "--type wants TABLE=full.MessageName, not " + std::string(spec);
      return false;
    }
    const std::string name(spec.substr(eq + 1));
    const auto* d = pool_->FindMessageTypeByName(name);
    if (d == nullptr) {
      error = "--type: no message " + name + " in the descriptor set";
      return false;
    }
    explicit_[std::string(spec.substr(0, eq))] = d;
    return true;
  }

  /// The message type of `table`, or null when none is known.
  const google::protobuf::Descriptor* descriptor_for(std::string_view table) const {
    if (auto it = explicit_.find(std::string(table)); it != explicit_.end()) return it->second;
    if (const auto* d = pool_->FindMessageTypeByName(std::string(table))) return d;
    for (const auto* file : files_) {
      for (int i = 0; i < file->message_type_count(); ++i) {
        const auto* d = file->message_type(i);
        if (equal_folded(d->name(), table)) return d;
      }
    }
    return nullptr;
  }

  /// The id and version of an object of `table`, or nothing if its bytes do
  /// not parse or carry no id.
  std::optional<object_identity> identify(std::string_view table, std::string_view bytes) const {
    if (const auto* d = descriptor_for(table)) {
      auto msg = parse(d, bytes);
      if (!msg) return std::nullopt;
      return identify_message(*msg);
    }
    return identify_wire(bytes);
  }

  /// Whether `bytes` parse as `table`'s message type; true when no type
  /// covers the table (nothing to check them against).
  bool parses(std::string_view table, std::string_view bytes) const {
    const auto* d = descriptor_for(table);
    return d == nullptr || parse(d, bytes) != nullptr;
  }

  /// One object as a line of JSON (no newline).
  std::string to_json(std::string_view table, std::string_view bytes) const {
    std::string out = "{\"table\":" + json_string(table);
    const auto* d = descriptor_for(table);
    std::unique_ptr<google::protobuf::Message> msg = d ? parse(d, bytes) : nullptr;
    const auto who = msg ? identify_message(*msg) : identify_wire(bytes);
    if (who) {
      out += ",\"id\":" + json_string(who->id);
      if (who->version) out += ",\"version\":" + std::to_string(*who->version);
    }
    std::string body;
    if (msg) {
      google::protobuf::util::JsonPrintOptions options;
      options.preserve_proto_field_names = true;
      if (google::protobuf::util::MessageToJsonString(*msg, &body, options).ok()) {
        out += ",\"type\":" + json_string(d->full_name()) + ",\"object\":" + body + "}";
        return out;
      }
    }
    out += ",\"bytes\":\"" + base64(bytes) + "\"}";
    return out;
  }

 private:
  object_schema() = default;

  static bool equal_folded(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
      if (std::tolower(static_cast<unsigned char>(a[i])) !=
          std::tolower(static_cast<unsigned char>(b[i]))) {
        return false;
      }
    }
    return true;
  }

  std::unique_ptr<google::protobuf::Message> parse(const google::protobuf::Descriptor* d,
                                                   std::string_view bytes) const {
    const auto* prototype = factory_->GetPrototype(d);
    if (prototype == nullptr || bytes.size() > static_cast<std::size_t>(INT_MAX)) return nullptr;
    std::unique_ptr<google::protobuf::Message> msg(prototype->New());
    if (!msg->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) return nullptr;
    return msg;
  }

  static std::optional<object_identity> identify_message(const google::protobuf::Message& msg) {
    using google::protobuf::FieldDescriptor;
    const auto* d = msg.GetDescriptor();
    const auto* r = msg.GetReflection();
    const auto* id = d->FindFieldByName("id");
    if (id == nullptr || id->is_repeated() || id->cpp_type() != FieldDescriptor::CPPTYPE_STRING) {
      return std::nullopt;
    }
    object_identity out{.id = r->GetString(msg, id)};
    const auto* meta = d->FindFieldByName("meta");
    if (meta != nullptr && !meta->is_repeated() &&
        meta->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      const auto& m = r->GetMessage(msg, meta);
      const auto* version = m.GetDescriptor()->FindFieldByName("version");
      if (version != nullptr && !version->is_repeated() &&
          version->cpp_type() == FieldDescriptor::CPPTYPE_UINT64) {
        out.version = m.GetReflection()->GetUInt64(m, version);
      }
    }
    return out;
  }

  /// Field 1 (a string) as the id and field 2's field 1 (a varint) as the
  /// version, read off the wire without a schema.
  static std::optional<object_identity> identify_wire(std::string_view bytes) {
    using google::protobuf::UnknownField;
    google::protobuf::UnknownFieldSet fields;
    if (bytes.size() > static_cast<std::size_t>(INT_MAX) ||
        !fields.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
      return std::nullopt;
    }
    std::optional<object_identity> out;
    std::optional<std::uint64_t> version;
    for (int i = 0; i < fields.field_count(); ++i) {
      const UnknownField& f = fields.field(i);
      if (f.number() == 1 && f.type() == UnknownField::TYPE_LENGTH_DELIMITED) {
        out = object_identity{.id = f.length_delimited()};
      } else if (f.number() == 2 && f.type() == UnknownField::TYPE_LENGTH_DELIMITED) {
        google::protobuf::UnknownFieldSet meta;
        if (meta.ParseFromString(f.length_delimited())) {
          for (int j = 0; j < meta.field_count(); ++j) {
            if (meta.field(j).number() == 1 && meta.field(j).type() == UnknownField::TYPE_VARINT) {
              version = meta.field(j).varint();
            }
          }
        }
      }
    }
    if (out) out->version = version;
    return out;
  }

  const google::protobuf::DescriptorPool* pool_ = nullptr;
  google::protobuf::MessageFactory* factory_ = nullptr;
  std::shared_ptr<google::protobuf::DescriptorPool> owned_pool_{};
  std::shared_ptr<google::protobuf::DynamicMessageFactory> owned_factory_{};
  std::vector<const google::protobuf::FileDescriptor*> files_{};
  std::map<std::string, const google::protobuf::Descriptor*> explicit_{};
};

}  // namespace keelctl
