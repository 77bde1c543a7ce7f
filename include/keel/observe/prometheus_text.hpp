// A writer of the Prometheus text exposition format, version 0.0.4
// (https://prometheus.io/docs/instrumenting/exposition_formats/): what a
// scrape of GET /metrics returns with Content-Type
// `text/plain; version=0.0.4; charset=utf-8`.
//
// Ours rather than prometheus-cpp's: Debian 12 ships no prometheus-cpp
// package, and the format is a few lines of text per metric.
//
// Format, as written here:
//   # HELP <name> <help, with \ and newline escaped>
//   # TYPE <name> counter|gauge|histogram
//   <name>{<label>="<value>",...} <number>
// Label values escape backslash, double quote and newline (\\, \", \n).
// Numbers: integral values as integers ("1", "42"); others in the shortest
// form that reads back the same, fixed-point ("0.0001", "2.5") unless the
// exponent is below -4 ("1e-05"), as Go's Prometheus client writes them;
// infinities as +Inf and -Inf, NaN as NaN.
// A histogram's buckets are cumulative, each `<name>_bucket{le="<bound>"}`
// counting the observations at or below its bound, the last `le="+Inf"`
// counting them all, followed by `<name>_sum` and `<name>_count`.
//
// Thread safety: none; a writer appends to one string.
#pragma once

#include <charconv>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace keel::observe {

/// One label of a sample: name="value".
struct label {
  std::string name;
  std::string value;
};

/// A label written for one sample only (type="app", le="0.5").
struct label_view {
  std::string_view name;
  std::string_view value;
};

class prometheus_text {
 public:
  /// Appends to `out`; every sample gets the `common` labels first (the
  /// node's id, say). Requires: label names match [a-zA-Z_][a-zA-Z0-9_]*.
  explicit prometheus_text(std::string& out, std::span<const label> common = {})
      : out_(out), common_(common) {}

  /// The # HELP and # TYPE lines that start a metric family.
  void family(std::string_view name, std::string_view type, std::string_view help) {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    for (const char c : help) {
      if (c == '\\') {
        out_ += "\\\\";
      } else if (c == '\n') {
        out_ += "\\n";
      } else {
        out_ += c;
      }
    }
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
  }

  /// One sample line with an integer value.
  void sample(std::string_view name, std::uint64_t value,
              std::initializer_list<label_view> extra = {}) {
    start(name, extra);
    char buf[24];
    const auto r = std::to_chars(buf, buf + sizeof buf, value);
    out_.append(buf, r.ptr);
    out_ += '\n';
  }

  /// One sample line with a floating-point value.
  void sample_double(std::string_view name, double value,
                     std::initializer_list<label_view> extra = {}) {
    start(name, extra);
    append_number(value);
    out_ += '\n';
  }

  /// A whole histogram family: `bounds` ascending, `counts[i]` the
  /// observations in (bounds[i-1], bounds[i]] (not cumulative; this writes
  /// the running sums), `count` all observations (those above the last
  /// bound included), `sum` their total. The counts may come from a
  /// snapshot taken while another thread records (one relaxed load each, not
  /// one consistent cut), so the written buckets are clamped to stay
  /// monotonic: the +Inf bucket and `_count` are max(count, running total).
  void histogram(std::string_view name, std::string_view help, std::span<const double> bounds,
                 std::span<const std::uint64_t> counts, double sum, std::uint64_t count) {
    family(name, "histogram", help);
    const std::string bucket = std::string(name) + "_bucket";
    std::uint64_t running = 0;
    std::string le;
    for (std::size_t i = 0; i < bounds.size() && i < counts.size(); ++i) {
      running += counts[i];
      le.clear();
      append_number(le, bounds[i]);
      sample(bucket, running, {{"le", le}});
    }
    const std::uint64_t total = count < running ? running : count;
    sample(bucket, total, {{"le", "+Inf"}});
    sample_double(std::string(name) + "_sum", sum);
    sample(std::string(name) + "_count", total);
  }

  /// Appends `v` escaped as a label value must be.
  static void escape_label_value(std::string& out, std::string_view v) {
    for (const char c : v) {
      if (c == '\\') {
        out += "\\\\";
      } else if (c == '"') {
        out += "\\\"";
      } else if (c == '\n') {
        out += "\\n";
      } else {
        out += c;
      }
    }
  }

  /// Appends `v` as the format writes numbers.
  static void append_number(std::string& out, double v) {
    if (std::isnan(v)) {
      out += "NaN";
      return;
    }
    if (std::isinf(v)) {
      out += v > 0 ? "+Inf" : "-Inf";
      return;
    }
    char buf[400];  // The longest fixed-point double has a few hundred digits.
    if (v == std::trunc(v) && std::fabs(v) < 9007199254740992.0) {
      const auto r = std::to_chars(buf, buf + sizeof buf, static_cast<std::int64_t>(v));
      out.append(buf, r.ptr);
      return;
    }
    auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
    const std::string_view sci(buf, static_cast<std::size_t>(r.ptr - buf));
    int exponent = 0;
    const std::string_view exp = sci.substr(sci.find('e') + 1);
    (void)std::from_chars(exp.data() + (exp.front() == '+' ? 1 : 0), exp.data() + exp.size(),
                          exponent);
    if (exponent >= -4) r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed);
    out.append(buf, r.ptr);
  }

 private:
  void append_number(double v) { append_number(out_, v); }

  void start(std::string_view name, std::initializer_list<label_view> extra) {
    out_ += name;
    if (common_.empty() && extra.size() == 0) {
      out_ += ' ';
      return;
    }
    out_ += '{';
    bool first = true;
    auto put = [&](std::string_view n, std::string_view v) {
      if (!first) out_ += ',';
      first = false;
      out_ += n;
      out_ += "=\"";
      escape_label_value(out_, v);
      out_ += '"';
    };
    for (const label& l : common_) put(l.name, l.value);
    for (const label_view& l : extra) put(l.name, l.value);
    out_ += "} ";
  }

  std::string& out_;
  std::span<const label> common_;
};

}  // namespace keel::observe
