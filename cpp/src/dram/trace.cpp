// Trace-file frontend: "<arrival_cycle> <R|W> <hex address>" per line.
#include <cerrno>
#include <cstdlib>
#include <fstream>

#include "reset_native/dram/simulate.hpp"
#include "reset_native/error.hpp"

namespace reset_native::dram {

Trace read_trace(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw InvalidArgument("cannot open trace file '" + path + "'");
  Trace trace;
  std::string line;
  size_t line_no = 0;
  auto fail = [&](const std::string& why) {
    throw InvalidArgument(path + ":" + std::to_string(line_no) + ": " + why +
                          " (expected '<arrival_cycle> <R|W> <hex address>', got '" + line + "')");
  };
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const size_t first = line.find_first_not_of(" \t");
    if (first == std::string::npos || line[first] == '#') continue;
    const char* p = line.c_str() + first;
    char* end = nullptr;
    errno = 0;
    const long long cycle = std::strtoll(p, &end, 10);
    if (end == p || errno == ERANGE || (*end != ' ' && *end != '\t')) fail("bad arrival cycle");
    if (cycle < 0) fail("negative arrival cycle");
    p = end;
    while (*p == ' ' || *p == '\t') ++p;
    const char kind = *p;
    if (kind != 'R' && kind != 'W' && kind != 'r' && kind != 'w') fail("request type must be R or W");
    ++p;
    if (*p != ' ' && *p != '\t') fail("request type must be R or W");
    while (*p == ' ' || *p == '\t') ++p;
    if (*p == '-' || *p == '+') fail("bad hex address");
    errno = 0;
    const unsigned long long addr = std::strtoull(p, &end, 16);
    if (end == p || errno == ERANGE) fail("bad hex address");
    while (*end == ' ' || *end == '\t') ++end;
    if (*end != '\0') fail("trailing characters");
    if (!trace.arrival.empty() && cycle < trace.arrival.back()) fail("arrival cycles must be non-decreasing");
    trace.arrival.push_back(cycle);
    trace.is_write.push_back(kind == 'W' || kind == 'w');
    trace.address.push_back(addr);
  }
  return trace;
}

}  // namespace reset_native::dram
