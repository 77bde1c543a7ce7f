// Running a test body in a forked child process, like GoogleTest's death
// tests: a crash (a failed assert, a sanitizer report, a signal) fails the
// test case that caused it instead of ending the whole test run, and the
// child's last breadcrumb says where it was.
#pragma once

#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstring>
#include <exception>
#include <string>

namespace keel::test {

/// What the child shares with the parent: the last step it started (so a crash
/// can be replayed) and its verdict.
struct shared_page {
  char breadcrumb[2048];
  char verdict[4096];
};

/// Records `text` where the parent can read it even if the child then dies.
inline void write_shared(char* dst, std::size_t size, const std::string& text) {
  const std::size_t n = std::min(text.size(), size - 1);
  std::memcpy(dst, text.data(), n);
  dst[n] = '\0';
}

/// Runs body(page) in a forked child. body returns "" on success or what went
/// wrong, and may leave a breadcrumb in page->breadcrumb. Returns "" if the
/// child succeeded, else the verdict, the signal or exit status that ended it
/// and the last breadcrumb.
template <class Body>
std::string run_isolated(Body body) {
  void* mem =
      mmap(nullptr, sizeof(shared_page), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return "mmap failed";
  auto* page = static_cast<shared_page*>(mem);
  page->breadcrumb[0] = '\0';
  page->verdict[0] = '\0';
  const pid_t pid = fork();
  if (pid < 0) {
    munmap(mem, sizeof(shared_page));
    return "fork failed";
  }
  if (pid == 0) {
    // Catch2's handlers would report the crash again from the child.
    for (int sig : {SIGABRT, SIGSEGV, SIGILL, SIGFPE, SIGBUS, SIGTERM, SIGINT}) {
      std::signal(sig, SIG_DFL);
    }
    std::string verdict;
    try {
      verdict = body(page);
    } catch (const std::exception& e) {
      verdict = std::string("exception: ") + e.what();
    }
    write_shared(page->verdict, sizeof(page->verdict), verdict);
    _exit(verdict.empty() ? 0 : 1);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  std::string out;
  if (WIFSIGNALED(status)) {
    out = "crashed with signal " + std::to_string(WTERMSIG(status)) +
          (WTERMSIG(status) == SIGABRT ? " (SIGABRT: a failed assert, see stderr)" : "");
  } else if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
    out = page->verdict[0] != '\0' ? std::string(page->verdict)
                                   : "exited with status " + std::to_string(WEXITSTATUS(status)) +
                                         " (a sanitizer report? see stderr)";
  }
  if (!out.empty() && page->breadcrumb[0] != '\0') {
    out += "\nlast step: " + std::string(page->breadcrumb);
  }
  munmap(mem, sizeof(shared_page));
  return out;
}

}  // namespace keel::test
