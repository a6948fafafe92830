// sparq-bench: times every registered op case on one device, checks each result against the CPU
// fallback bit for bit in the same run, and reports GB/s, TFLOP/s, % of the measured roofline and
// the ratio to an anchor (docs/benchmarks.md). Exit status: 0 all cases ran and were exact,
// 1 a case failed (not exact, or an error), 2 the run itself could not start.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <regex>

#include "runner.h"

namespace sparq::bench {
namespace {

struct Flags {
  std::string device, filter, json_path, size = "auto";
  std::vector<std::string> anchor_paths;
  int repeat = 0, warmup = -1;  // 0 / -1: chosen for the device
  bool list = false;
};

// --filter is an ECMAScript regex searched in the name; text that is not a valid regex (case
// names contain parentheses) is matched as a plain substring.
bool matches(const std::string& name, const std::string& filter) {
  if (filter.empty()) return true;
  try {
    return std::regex_search(name, std::regex(filter));
  } catch (const std::regex_error&) {
    return name.find(filter) != std::string::npos;
  }
}

std::vector<const Case*> select(const std::string& filter, const std::string& size) {
  std::vector<const Case*> out;
  for (const auto& c : all_cases())
    if (matches(c.name, filter) && (size == "auto" || size == size_class_name(c.size)))
      out.push_back(&c);
  return out;
}

int list_cases(const std::vector<const Case*>& cases) {
  std::size_t width = 4;
  for (auto* c : cases) width = std::max(width, c->name.size());
  fmt::print("{:<{}}  {:>5}  {:>12}  {:>12}\n", "case", width, "size", "GFLOP", "MB moved");
  for (auto* c : cases)
    fmt::print("{:<{}}  {:>5}  {:>12.3f}  {:>12.2f}\n", c->name, width, size_class_name(c->size),
               c->flops / 1e9, c->bytes_moved / 1e6);
  return 0;
}

int run(const Flags& flags, const std::string& command_line) {
  if (flags.list) return list_cases(select(flags.filter, flags.size));
  std::vector<AnchorRow> anchors;
  for (const auto& path : flags.anchor_paths)
    for (auto& row : load_anchor(path)) anchors.push_back(std::move(row));

  // The first Context of the process is the cold one: ICD loading, platform query, cache set-up.
  const auto t0 = std::chrono::steady_clock::now();
  Context device = Context::create({.device = flags.device, .profile = true});
  const double create_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();

  RunReport rep;
  rep.command_line = command_line;
  rep.device = device.device();
  rep.size_class = flags.size != "auto" ? flags.size : rep.device.is_gpu ? "large" : "small";
  rep.repeat = flags.repeat > 0 ? flags.repeat : rep.device.is_gpu ? 20 : 5;
  rep.warmup = flags.warmup >= 0 ? flags.warmup : rep.device.is_gpu ? 3 : 1;
  const auto cases = select(flags.filter, rep.size_class);
  if (cases.empty()) {
    fmt::print(stderr, "sparq-bench: no {} case matches --filter '{}' (see --list)\n",
               rep.size_class, flags.filter);
    return 2;
  }

  fmt::print(stderr, "sparq-bench: {} on {}: cold start ...\n", rep.size_class, rep.device.name);
  try {
    rep.cold = measure_cold_start(device, create_ms, *cases.front());
  } catch (const std::exception& e) {
    fmt::print(stderr, "sparq-bench: cold start not measured: {}\n", e.what());
  }
  std::optional<Context> fallback;
  if (device.backend() == Backend::opencl) {
    fmt::print(stderr, "sparq-bench: measuring device peaks ...\n");
    rep.peaks = measure_peaks(device);
    fallback.emplace(Context::create({.device = "fallback"}));
  } else {
    rep.peaks.note = "not measured: the device is the CPU fallback (no OpenCL)";
  }

  for (std::size_t i = 0; i < cases.size(); ++i) {
    fmt::print(stderr, "[{}/{}] {}\n", i + 1, cases.size(), cases[i]->name);
    rep.results.push_back(run_case(*cases[i], device, fallback ? &*fallback : nullptr, rep.peaks,
                                   anchors, rep.warmup, rep.repeat));
  }
  print_report(rep);
  if (!flags.json_path.empty()) {
    write_json(rep, flags.json_path);
    fmt::print("JSON written to {}\n", flags.json_path);
  }
  for (const auto& r : rep.results)
    if (r.failed()) return 1;
  return 0;
}

}  // namespace
}  // namespace sparq::bench

int main(int argc, char** argv) {
  sparq::bench::Flags f;
  CLI::App app{
      "sparq-bench: times sparq's ops on one device and checks every result against the CPU "
      "fallback, bit for bit, in the same run (docs/benchmarks.md)."};
  app.add_option("--device", f.device,
                 "fallback | pocl | gpu | P:D | device-name substring (default: $SPARQ_DEVICE, "
                 "else the first capable GPU, else PoCL, else the fallback)");
  app.add_option("--filter", f.filter, "regex (or plain substring) on case names");
  app.add_option("--repeat", f.repeat, "timed calls per case (default: 20 on a GPU, else 5)")
      ->check(CLI::PositiveNumber);
  app.add_option("--warmup", f.warmup, "untimed calls before timing (default: 3 on a GPU, else 1)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--json", f.json_path, "write every number (device, peaks, cases) to FILE");
  app.add_option("--anchor", f.anchor_paths,
                 "JSON of attention_anchor.py or diffusion_anchor.py --json (repeatable): print "
                 "sparq/anchor ratios per matching case");
  app.add_option("--size", f.size, "case sizes: small (PoCL/CPU), large (GPU), auto (by device)")
      ->check(CLI::IsMember({"small", "large", "auto"}));
  app.add_flag("--list", f.list, "list the cases (after --filter/--size) and exit");
  CLI11_PARSE(app, argc, argv);

  std::string command_line = "sparq-bench";
  for (int i = 1; i < argc; ++i) command_line += std::string(" ") + argv[i];
  try {
    return sparq::bench::run(f, command_line);
  } catch (const std::exception& e) {
    fmt::print(stderr, "sparq-bench: {}\n", e.what());
    return 2;
  }
}
