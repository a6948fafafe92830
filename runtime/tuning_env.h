// The SPARQ_TUNE_* environment lists of the speed knobs (sparq-bench sweeps on a GPU): a comma
// list of key=value items. One parser for every op's knobs; each op checks its own keys.
#pragma once
#include <cstdlib>
#include <string>

namespace sparq::rt {

// Calls fn(key, value, item) for every item of $name in order (value -1 when the item has no
// '=' ; atol of the text after it otherwise). Nothing when $name is unset or empty.
template <class Fn>
void for_each_tuning_item(const char* name, Fn&& fn) {
  const char* env = std::getenv(name);
  if (env == nullptr || *env == '\0') return;
  const std::string spec = env;
  std::size_t pos = 0;
  while (pos < spec.size()) {
    std::size_t end = spec.find(',', pos);
    if (end == std::string::npos) end = spec.size();
    const std::string item = spec.substr(pos, end - pos);
    const std::size_t eq = item.find('=');
    const long value = eq == std::string::npos ? -1 : std::atol(item.c_str() + eq + 1);
    fn(item.substr(0, eq), value, item);
    pos = end + 1;
  }
}

}  // namespace sparq::rt
