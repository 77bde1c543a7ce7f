// keelctl, the operator's tool for keel nodes: offline commands over a data
// directory and online ones against a node's admin service. Its logic is
// in keelctl/*.hpp; `keelctl --help` lists the commands.
#include <unistd.h>

#include <iostream>
#include <string>
#include <vector>

#include "keelctl/commands.hpp"

int main(int argc, char** argv) {
  std::vector<std::string> words(argv + 1, argv + argc);
  const int rc = keelctl::run(words, std::cout, std::cerr, ::isatty(STDERR_FILENO) != 0);
  std::cout.flush();
  return rc;
}
