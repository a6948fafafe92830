// The report: an aligned table on stdout, and JSON with everything; plus reading anchor JSON.
#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <utility>

#include "runner.h"

namespace sparq::bench {
namespace {

using nlohmann::json;

std::string exact_cell(const CaseResult& r) {
  if (!r.error.empty()) return "ERROR";
  if (!r.validated) return "n/a";
  if (!r.validation.exact) return "NO";
  return r.validation.scope == "full" ? "yes" : "yes*";
}

// Four significant digits, without exponents: "2412", "42.31", "0.002345".
std::string number(double v) {
  if (v <= 0) return "-";
  return v >= 1000 ? fmt::format("{:.0f}", v) : fmt::format("{:.4g}", v);
}

// "64.2 T" / "48.1 G": a CPU's rate in TFLOP/s would show as 0.05.
std::string scaled(double per_second) {
  return per_second >= 1e12 ? fmt::format("{:.2f} T", per_second / 1e12)
                            : fmt::format("{:.1f} G", per_second / 1e9);
}

// Decimals that keep 3-4 significant digits for times from microseconds to seconds.
std::string time_cell(double ms) {
  if (ms <= 0) return "-";
  return fmt::format("{:.{}f}", ms, ms < 1 ? 4 : ms < 100 ? 3 : 1);
}

json device_json(const DeviceInfo& d) {
  return {{"backend", d.backend == Backend::opencl ? "opencl" : "fallback"},
          {"name", d.name},
          {"vendor", d.vendor},
          {"platform", d.platform},
          {"driver_version", d.driver_version},
          {"opencl_c_version", d.opencl_c_version},
          {"is_gpu", d.is_gpu},
          {"compute_units", d.compute_units},
          {"global_mem_bytes", d.global_mem_bytes},
          {"max_alloc_bytes", d.max_alloc_bytes},
          {"local_mem_bytes", d.local_mem_bytes}};
}

json case_json(const CaseResult& r) {
  const Case& c = *r.c;
  json params = json::object();
  for (const auto& [k, v] : c.params) params[k] = v;
  json j = {{"name", c.name},
            {"family", c.family},
            {"op", c.op},
            {"size", size_class_name(c.size)},
            {"seed", c.seed},
            {"params", params},
            {"bytes_moved", c.bytes_moved},
            {"flops", c.flops}};
  if (!r.error.empty()) {
    j["error"] = r.error;
    return j;
  }
  j["timing"] = {{"source", r.timing.source},
                 {"median_ms", r.timing.median_ms},
                 {"min_ms", r.timing.min_ms},
                 {"ms", r.timing.ms},
                 {"wall_ms", r.timing.wall_ms}};
  if (r.host_us_per_call) j["host_us_per_call"] = *r.host_us_per_call;
  j["gbps"] = r.gbps;
  j["tflops"] = r.tflops;
  j["roofline_pct"] = r.roofline_pct;
  j["roofline_bound"] = r.bound;
  j["exact"] = r.validated ? json(r.validation.exact) : json(nullptr);
  if (r.validated)
    j["validation"] = {{"scope", r.validation.scope},
                       {"values_compared", r.validation.values_compared},
                       {"detail", r.validation.detail}};
  json anchors = json::array();
  for (const auto& a : r.anchors)
    anchors.push_back({{"backend", a.anchor.backend},
                       {"shape", a.anchor.shape},
                       {"step", a.anchor.step},
                       {"sparq_ms_per_step", a.sparq_ms_per_step},
                       {"dtype", a.anchor.dtype},
                       {"anchor_ms", a.anchor.ms},
                       {"anchor_tflops", a.anchor.tflops},
                       {"ratio", a.ratio}});
  j["anchors"] = anchors;
  return j;
}

}  // namespace

std::vector<AnchorRow> load_anchor(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("--anchor: cannot read " + path);
  std::vector<AnchorRow> rows;
  try {
    const json doc = json::parse(in);
    if (doc.is_object() && doc.contains("rows")) {  // diffusion_anchor.py --json
      for (const auto& j : doc.at("rows"))
        for (const auto& [key, backend] :
             {std::pair{"eager_ms", "eager"}, std::pair{"compiled_ms", "torch.compile"}}) {
          AnchorRow a;
          a.shape = j.at("shape").get<std::string>();
          a.step = j.at("step").get<std::string>();
          a.backend = backend;
          a.dtype = "fp32";
          a.ms = j.at(key).get<double>();
          rows.push_back(a);
        }
      return rows;
    }
    if (!doc.is_array())
      throw std::runtime_error("expected a list of rows as attention_anchor.py --json writes");
    for (const auto& j : doc) {
      AnchorRow a;
      a.length = j.at("L").get<std::int64_t>();
      a.batch = j.at("B").get<std::int64_t>();
      a.heads = j.at("H").get<std::int64_t>();
      a.head_dim = j.at("D").get<std::int64_t>();
      a.causal = j.at("causal").get<int>() != 0;
      a.backend = j.at("backend").get<std::string>();
      a.dtype = j.at("dtype").get<std::string>();
      a.ms = j.at("ms").get<double>();
      a.tflops = j.at("tflops").get<double>();
      rows.push_back(a);
    }
  } catch (const std::exception& e) {
    throw std::runtime_error(fmt::format("--anchor {}: {}", path, e.what()));
  }
  return rows;
}

void print_report(const RunReport& rep) {
  const DeviceInfo& d = rep.device;
  fmt::print("sparq {}  device: {}", version(), d.name);
  if (d.backend == Backend::opencl)
    fmt::print(" ({}, {}, {} compute units, driver {})", d.platform, d.is_gpu ? "GPU" : "CPU",
               d.compute_units, d.driver_version);
  fmt::print("\nsizes: {}  warm-up: {}  repeats: {}\n", rep.size_class, rep.warmup, rep.repeat);
  if (rep.peaks.measured)
    fmt::print(
        "peaks (kernels_cl/bench/peaks.cl): copy {:.1f} GB/s, fp32 fma {}FLOP/s, "
        "int32 mul-add {}OP/s\n",
        rep.peaks.copy_gbps, scaled(rep.peaks.fp32_tflops * 1e12),
        scaled(rep.peaks.int32_tops * 1e12));
  else
    fmt::print("peaks: {}\n", rep.peaks.note);
  if (rep.cold) {
    const ColdStart& c = *rep.cold;
    const std::string programs = d.backend == Backend::opencl
                                     ? fmt::format(" (programs built {}, from disk cache {})",
                                                   c.programs_built, c.programs_from_disk)
                                     : "";
    fmt::print(
        "start: context {:.1f} ms + first call {:.1f} ms{} = cold {:.1f} ms; second call "
        "(warm) {:.3f} ms  [{}]\n",
        c.create_ms, c.first_op_ms, programs, c.create_ms + c.first_op_ms, c.second_op_ms,
        c.case_name);
  }

  const std::vector<std::string> head{"case",    "median ms", "min ms", "GB/s",
                                      "TFLOP/s", "roofline",  "exact"};
  std::vector<std::vector<std::string>> rows;
  for (const auto& r : rep.results) {
    const bool ok = r.error.empty();
    rows.push_back({r.c->name, ok ? time_cell(r.timing.median_ms) : "-",
                    ok ? time_cell(r.timing.min_ms) : "-", number(r.gbps), number(r.tflops),
                    r.roofline_pct > 0 ? fmt::format("{:.1f}% {}", r.roofline_pct, r.bound) : "-",
                    exact_cell(r)});
  }
  std::vector<std::size_t> width(head.size());
  for (std::size_t i = 0; i < head.size(); ++i) {
    width[i] = head[i].size();
    for (const auto& row : rows) width[i] = std::max(width[i], row[i].size());
  }
  auto print_row = [&](const std::vector<std::string>& row) {
    fmt::print("{:<{}}", row[0], width[0]);
    for (std::size_t i = 1; i < row.size(); ++i) fmt::print("  {:>{}}", row[i], width[i]);
    fmt::print("\n");
  };
  fmt::print("\n");
  print_row(head);
  std::size_t total = head.size() * 2 - 2;
  for (auto w : width) total += w;
  fmt::print("{}\n", std::string(total, '-'));
  for (const auto& row : rows) print_row(row);

  bool notes = false;
  auto note = [&](const std::string& text) {
    if (!notes) fmt::print("\n");
    notes = true;
    fmt::print("{}\n", text);
  };
  for (const auto& r : rep.results) {
    if (!r.error.empty())
      note(fmt::format("ERROR {}: {}", r.c->name, r.error));
    else if (r.validated && !r.validation.exact)
      note(fmt::format("NOT EXACT {}: {}", r.c->name, r.validation.detail));
    else if (r.validated && r.validation.scope != "full")
      note(fmt::format("yes* {}: fallback compared on a {} ({} values)", r.c->name,
                       r.validation.scope, r.validation.values_compared));
    if (r.host_us_per_call)
      note(fmt::format("host {}: {:.1f} us/call enqueue (no wait), {:.1f} us/call with the device",
                       r.c->name, *r.host_us_per_call,
                       r.timing.median_ms * 1000.0 / std::max(1, r.c->steps_per_call)));
    for (const auto& a : r.anchors)
      if (!a.anchor.step.empty())
        note(fmt::format("anchor {}: {:.4f} ms/step ({}) vs {} {} {:.4f} ms/step -> ratio {:.2f}x",
                         r.c->name, a.sparq_ms_per_step, r.timing.source, a.anchor.backend,
                         a.anchor.step, a.anchor.ms, a.ratio));
      else
        note(fmt::format("anchor {}: {} TFLOP/s vs {} {} {:.3f} ms = {} TFLOP/s -> ratio {:.3f}x",
                         r.c->name, number(r.tflops), a.anchor.backend, a.anchor.dtype, a.anchor.ms,
                         number(a.anchor.tflops), a.ratio));
  }
  if (!rep.results.empty() && !rep.results.front().validated && rep.results.front().error.empty())
    note("exact n/a: the device is the fallback itself; nothing to compare against");
  const auto failures =
      std::count_if(rep.results.begin(), rep.results.end(), [](auto& r) { return r.failed(); });
  fmt::print("\n{} case{}, {} failed\n", rep.results.size(), rep.results.size() == 1 ? "" : "s",
             failures);
}

void write_json(const RunReport& rep, const std::string& path) {
  json cases = json::array();
  bool all_ok = true;
  for (const auto& r : rep.results) {
    cases.push_back(case_json(r));
    all_ok = all_ok && !r.failed();
  }
  json doc = {{"sparq_version", version()},
              {"command", rep.command_line},
              {"size", rep.size_class},
              {"warmup", rep.warmup},
              {"repeat", rep.repeat},
              {"device", device_json(rep.device)},
              {"peaks",
               {{"measured", rep.peaks.measured},
                {"copy_gbps", rep.peaks.copy_gbps},
                {"fp32_tflops", rep.peaks.fp32_tflops},
                {"int32_tops", rep.peaks.int32_tops},
                {"note", rep.peaks.note}}},
              {"cases", cases},
              {"all_ok", all_ok}};
  if (rep.cold)
    doc["cold_start"] = {{"case", rep.cold->case_name},
                         {"create_ms", rep.cold->create_ms},
                         {"first_call_ms", rep.cold->first_op_ms},
                         {"second_call_ms", rep.cold->second_op_ms},
                         {"programs_built", rep.cold->programs_built},
                         {"programs_from_disk", rep.cold->programs_from_disk},
                         {"cache_dir", rep.cold->cache_dir}};
  std::ofstream out(path);
  out << doc.dump(1) << "\n";
  if (!out) throw std::runtime_error("--json: cannot write " + path);
}

}  // namespace sparq::bench
