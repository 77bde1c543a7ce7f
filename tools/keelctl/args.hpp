// keelctl's command line: words after the subcommand split into positional
// arguments and --options. An option named in `valued` takes the next word
// (or `--name=value`) and may repeat; any other option is a flag.
//
// Thread safety: pure functions and values.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace keelctl {

struct args {
  std::vector<std::string> positional{};
  std::map<std::string, std::vector<std::string>> values{};
  std::set<std::string> flags{};
  /// Set when the words did not parse: what was wrong.
  std::string error{};

  bool has(const std::string& flag) const { return flags.contains(flag) || values.contains(flag); }
  /// The last value of option `name`, or `fallback`.
  std::string value(const std::string& name, std::string fallback = {}) const {
    auto it = values.find(name);
    return it == values.end() || it->second.empty() ? fallback : it->second.back();
  }
  /// Every value of option `name`, in order.
  std::vector<std::string> all(const std::string& name) const {
    auto it = values.find(name);
    return it == values.end() ? std::vector<std::string>{} : it->second;
  }
};

/// Parses words; an option outside `valued` and `known_flags` is an error.
inline args parse_args(const std::vector<std::string>& words, const std::set<std::string>& valued,
                       const std::set<std::string>& known_flags) {
  args out;
  for (std::size_t i = 0; i < words.size(); ++i) {
    const std::string& w = words[i];
    if (w == "--") {
      out.positional.insert(out.positional.end(), words.begin() + static_cast<long>(i) + 1,
                            words.end());
      break;
    }
    if (!w.starts_with("--") || w.size() == 2) {
      out.positional.push_back(w);
      continue;
    }
    std::string name = w.substr(2);
    std::optional<std::string> inline_value;
    if (const auto eq = name.find('='); eq != std::string::npos) {
      inline_value = name.substr(eq + 1);
      name.resize(eq);
    }
    if (valued.contains(name)) {
      if (inline_value) {
        out.values[name].push_back(*inline_value);
      } else if (i + 1 < words.size()) {
        out.values[name].push_back(words[++i]);
      } else {
        out.error = "option --" + name + " needs a value";
        return out;
      }
    } else if (known_flags.contains(name) && !inline_value) {
      out.flags.insert(name);
    } else {
      out.error = "unknown option --" + name;
      return out;
    }
  }
  return out;
}

}  // namespace keelctl
