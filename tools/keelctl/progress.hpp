// Progress of a long operation on stderr: a redrawn bar with rate and ETA
// when stderr is a terminal (or --progress forces it), a percentage line
// every tenth when forced onto a pipe or file, nothing otherwise, so
// scripts reading stdout never see it.
//
// Thread safety: one progress object per operation, used by one thread.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ostream>
#include <string>
#include <string_view>

#include "keelctl/text.hpp"

namespace keelctl {

enum class progress_mode { off, bar, lines };

/// The mode for stderr: a bar on a terminal; when forced elsewhere, lines.
/// Pure: the caller (main) says whether stderr is a terminal.
constexpr progress_mode choose_progress(bool forced, bool stderr_is_terminal) {
  if (stderr_is_terminal) return progress_mode::bar;
  return forced ? progress_mode::lines : progress_mode::off;
}

/// "12.3 MiB" and the like.
inline std::string human_bytes(double bytes) {
  static constexpr const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) {
    bytes /= 1024;
    ++u;
  }
  return u == 0 ? strf("%.0f %s", bytes, units[u]) : strf("%.1f %s", bytes, units[u]);
}

/// One bar: "label [#####.....]  42%  4.2 MiB/10.0 MiB  1.1 MiB/s  ETA 5s".
/// `rate` in bytes per second and `eta` in seconds, 0 when unknown.
inline std::string render_bar(std::string_view label, std::uint64_t done, std::uint64_t total,
                              double rate, double eta, int width = 30) {
  const double share =
      total == 0 ? 1.0 : std::min(1.0, static_cast<double>(done) / static_cast<double>(total));
  const int filled = static_cast<int>(share * width);
  std::string bar(static_cast<std::size_t>(filled), '#');
  bar.append(static_cast<std::size_t>(width - filled), '.');
  std::string out =
      strf("%.*s [%s] %3d%%  %s/%s", static_cast<int>(label.size()), label.data(), bar.c_str(),
           static_cast<int>(share * 100), human_bytes(static_cast<double>(done)).c_str(),
           human_bytes(static_cast<double>(total)).c_str());
  if (rate > 0) out += "  " + human_bytes(rate) + "/s";
  if (eta > 0) out += strf("  ETA %.0fs", eta);
  return out;
}

/// A bar or percentage lines for one operation over `total` bytes.
class progress {
 public:
  progress(std::ostream& err, progress_mode mode, std::string label, std::uint64_t total)
      : err_(err),
        mode_(mode),
        label_(std::move(label)),
        total_(total),
        start_(std::chrono::steady_clock::now()) {}
  progress(const progress&) = delete;
  progress& operator=(const progress&) = delete;
  ~progress() { finish(); }

  /// `done` of the total is finished; redraws when it moved enough.
  void update(std::uint64_t done) {
    if (mode_ == progress_mode::off || finished_) return;
    const int percent = total_ == 0 ? 100
                                    : static_cast<int>(std::min<std::uint64_t>(
                                          100, done * 100 / std::max<std::uint64_t>(1, total_)));
    if (mode_ == progress_mode::lines) {
      if (percent / 10 > shown_ / 10 || shown_ < 0) {
        shown_ = percent;
        err_ << label_ << ": " << percent << "%\n";
      }
      return;
    }
    const auto now = std::chrono::steady_clock::now();
    if (percent == shown_ && now - drawn_ < std::chrono::milliseconds(100)) return;
    shown_ = percent;
    drawn_ = now;
    const double seconds = std::chrono::duration<double>(now - start_).count();
    const double rate = seconds > 0 ? static_cast<double>(done) / seconds : 0;
    const double eta = rate > 0 && total_ > done ? static_cast<double>(total_ - done) / rate : 0;
    err_ << '\r' << render_bar(label_, done, total_, rate, eta) << "\033[K" << std::flush;
  }

  /// Draws the end state once; later updates are ignored.
  void finish() {
    if (mode_ == progress_mode::off || finished_) return;
    update(total_);
    finished_ = true;
    if (mode_ == progress_mode::bar) err_ << '\n' << std::flush;
  }

 private:
  std::ostream& err_;
  progress_mode mode_;
  std::string label_;
  std::uint64_t total_;
  int shown_ = -1;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point drawn_{};
};

}  // namespace keelctl
