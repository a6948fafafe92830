// SparseIndex on the host: download/upload, validation of invariants 1-8 (spec §2), the host
// wrapper of the shared normalization, the dense index, .sqidx files and block-mask interop.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "sparse/sparse_select.h"
#include "sparse_common.h"

namespace sparq {

using namespace sparse_detail;

namespace sparse_detail {

void seal_index(SparseIndex& idx) {
  auto s = std::make_shared<detail::SparseSeal>();
  auto st = [](const Tensor& t) { return t.defined() ? t.storage() : nullptr; };
  s->tile_count = st(idx.tile_count);
  s->tile_start = st(idx.tile_start);
  s->col_count = st(idx.col_count);
  s->col_index = st(idx.col_index);
  s->qpos = st(idx.qpos);
  s->kpos = st(idx.kpos);
  for (const Tensor* t :
       {&idx.tile_count, &idx.tile_start, &idx.col_count, &idx.col_index, &idx.qpos, &idx.kpos})
    s->descs.push_back(t->desc());
  s->B = idx.B;
  s->Hi = idx.Hi;
  s->nqb = idx.nqb;
  s->max_tiles = idx.max_tiles;
  s->max_cols = idx.max_cols;
  s->causal = idx.causal;
  s->Lq = idx.Lq;
  s->Lk = idx.Lk;
  s->off = idx.off;
  s->sharing = idx.sharing;
  s->sink_tokens = idx.sink_tokens;
  s->window_tokens = idx.window_tokens;
  idx.seal = std::move(s);
}

bool sealed(const SparseIndex& idx) {
  const auto* s = idx.seal.get();
  if (!s) return false;
  auto st = [](const Tensor& t) { return t.defined() ? t.storage() : nullptr; };
  const Tensor* ts[] = {&idx.tile_count, &idx.tile_start, &idx.col_count,
                        &idx.col_index,  &idx.qpos,       &idx.kpos};
  const std::shared_ptr<detail::Storage>* ss[] = {&s->tile_count, &s->tile_start, &s->col_count,
                                                  &s->col_index,  &s->qpos,       &s->kpos};
  for (int i = 0; i < 6; ++i) {
    if (st(*ts[i]) != *ss[i]) return false;
    const TensorDesc& a = ts[i]->desc();
    const TensorDesc& b = s->descs[static_cast<std::size_t>(i)];
    if (a.dtype != b.dtype || a.shape != b.shape || a.strides != b.strides || a.offset != b.offset)
      return false;
  }
  return s->B == idx.B && s->Hi == idx.Hi && s->nqb == idx.nqb && s->max_tiles == idx.max_tiles &&
         s->max_cols == idx.max_cols && s->causal == idx.causal && s->Lq == idx.Lq &&
         s->Lk == idx.Lk && s->off == idx.off && s->sharing == idx.sharing &&
         s->sink_tokens == idx.sink_tokens && s->window_tokens == idx.window_tokens;
}

SparseIndex make_index(Context& ctx, const HostIndex& h) {
  SparseIndex x;
  const std::int64_t B = h.B, Hi = h.Hi, n = h.nqb;
  auto up = [&ctx](const std::vector<std::int32_t>& v, std::vector<std::int64_t> shape) {
    if (v.empty()) return ctx.empty(DType::i32, std::move(shape));
    return ctx.upload(v, DType::i32, std::move(shape));
  };
  x.tile_count = up(h.tile_count, {B, Hi, n});
  x.tile_start = up(h.tile_start, {B, Hi, n, h.max_tiles});
  x.col_count = up(h.col_count, {B, Hi, n});
  x.col_index = up(h.col_index, {B, Hi, n, h.max_cols});
  if (!h.qpos.empty()) {
    x.qpos = up(h.qpos, {B, h.Lq});
    x.kpos = up(h.kpos, {B, h.Lk});
  }
  x.B = h.B;
  x.Hi = h.Hi;
  x.nqb = h.nqb;
  x.max_tiles = h.max_tiles;
  x.max_cols = h.max_cols;
  x.causal = h.causal;
  x.Lq = h.Lq;
  x.Lk = h.Lk;
  x.off = h.off;
  x.sharing = h.sharing;
  x.sink_tokens = h.sink_tokens;
  x.window_tokens = h.window_tokens;
  x.added_diagonal = h.added_diagonal;
  return x;
}

}  // namespace sparse_detail

namespace {

constexpr const char* kOp = "sparse index";

void check_meta(const HostIndex& x) {
  require(kOp, x.B >= 1 && x.Hi >= 1, "B = {} and Hi = {} must be >= 1", x.B, x.Hi);
  require(kOp, x.Lq >= 1 && x.Lq <= x.Lk && x.Lk <= kMaxLen,
          "lengths Lq = {}, Lk = {}: need 1 <= Lq <= Lk < 2^31 - 8192", x.Lq, x.Lk);
  require(kOp, x.off == x.Lk - x.Lq, "off = {}; expected Lk - Lq = {}", x.off, x.Lk - x.Lq);
  require(kOp, x.nqb == num_qblocks(x.Lq), "nqb = {}; expected ceil(Lq / 64) = {}", x.nqb,
          num_qblocks(x.Lq));
  require(kOp, x.max_tiles >= 1 && x.max_cols >= 0, "max_tiles = {} (>= 1), max_cols = {} (>= 0)",
          x.max_tiles, x.max_cols);
  require(kOp, x.sharing == IndexSharing::per_q_head || x.sharing == IndexSharing::kv_group,
          "sharing has an unknown value {}", static_cast<int>(x.sharing));
  require(kOp, x.sink_tokens >= 0 && x.window_tokens >= 0,
          "sink_tokens = {}, window_tokens = {} must be >= 0", x.sink_tokens, x.window_tokens);
  const auto rows = static_cast<std::size_t>(x.B) * static_cast<std::size_t>(x.Hi) *
                    static_cast<std::size_t>(x.nqb);
  require(kOp, x.tile_count.size() == rows && x.col_count.size() == rows,
          "tile_count/col_count have {}/{} entries; expected B * Hi * nQB = {}",
          x.tile_count.size(), x.col_count.size(), rows);
  require(kOp,
          x.tile_start.size() == rows * static_cast<std::size_t>(x.max_tiles) &&
              x.col_index.size() == rows * static_cast<std::size_t>(x.max_cols),
          "tile_start/col_index have {}/{} entries; expected {} and {}", x.tile_start.size(),
          x.col_index.size(), rows * static_cast<std::size_t>(x.max_tiles),
          rows * static_cast<std::size_t>(x.max_cols));
  require(kOp, x.qpos.empty() == x.kpos.empty(), "qpos and kpos come together");
  if (x.qpos.empty()) return;
  require(kOp,
          x.qpos.size() == static_cast<std::size_t>(x.B * x.Lq) &&
              x.kpos.size() == static_cast<std::size_t>(x.B * x.Lk),
          "qpos/kpos have {}/{} entries; expected [B, Lq] and [B, Lk]", x.qpos.size(),
          x.kpos.size());
  std::vector<char> seen(static_cast<std::size_t>(x.Lk));
  for (int b = 0; b < x.B; ++b) {
    std::fill(seen.begin(), seen.end(), 0);
    for (std::int64_t j = 0; j < x.Lk; ++j) {
      const std::int32_t p = x.kpos[static_cast<std::size_t>(b * x.Lk + j)];
      require(kOp, p >= 0 && p < x.Lk && !seen[static_cast<std::size_t>(p)],
              "kpos[b={}][{}] = {}: kpos must be a permutation of [0, Lk = {})", b, j, p, x.Lk);
      seen[static_cast<std::size_t>(p)] = 1;
    }
    for (std::int64_t i = 0; i < x.Lq; ++i) {
      const std::int32_t p = x.qpos[static_cast<std::size_t>(b * x.Lq + i)];
      require(kOp, p >= 0 && p < x.Lk, "qpos[b={}][{}] = {} is outside [0, Lk = {})", b, i, p,
              x.Lk);
    }
  }
}

}  // namespace

void validate_index(const HostIndex& x) {
  check_meta(x);
  const bool perm = !x.qpos.empty();
  std::vector<std::int32_t> kinv;
  for (int b = 0; b < x.B; ++b) {
    const std::int32_t* kp = perm ? x.kpos.data() + b * x.Lk : nullptr;
    if (perm) {
      kinv.assign(static_cast<std::size_t>(x.Lk), 0);
      for (std::int64_t j = 0; j < x.Lk; ++j)
        kinv[static_cast<std::size_t>(kp[j])] = static_cast<std::int32_t>(j);
    }
    auto kpos = [&](std::int64_t j) { return perm ? kp[j] : static_cast<std::int32_t>(j); };
    for (int h = 0; h < x.Hi; ++h)
      for (int qb = 0; qb < x.nqb; ++qb) {
        const std::int64_t row = row_of(x, b, h, qb);
        std::int32_t p0, p1;
        block_pos(x, b, qb, p0, p1);
        const std::int32_t nt = x.tile_count[static_cast<std::size_t>(row)];
        const std::int32_t nc = x.col_count[static_cast<std::size_t>(row)];
        const std::int32_t* ts = x.tile_start.data() + row * x.max_tiles;
        const std::int32_t* cs = x.col_index.data() + row * x.max_cols;
        require(kOp, nt >= 0 && nt <= x.max_tiles,
                "tile_count[b={}, h={}, qb={}] = {} is outside [0, max_tiles = {}] (invariant 1)",
                b, h, qb, nt, x.max_tiles);
        require(kOp, nc >= 0 && nc <= x.max_cols,
                "col_count[b={}, h={}, qb={}] = {} is outside [0, max_cols = {}] (invariant 1)", b,
                h, qb, nc, x.max_cols);
        for (int t = 0; t < x.max_tiles; ++t) {
          const std::int32_t s = ts[t];
          if (t >= nt) {
            require(kOp, s == -1,
                    "tile_start[b={}, h={}, qb={}, slot={}] = {}: unused slots must be -1 "
                    "(invariant 7)",
                    b, h, qb, t, s);
            continue;
          }
          require(kOp, s >= 0 && s < x.Lk,
                  "tile_start[b={}, h={}, qb={}, slot={}] = {} is outside [0, Lk = {}) "
                  "(invariant 3)",
                  b, h, qb, t, s, x.Lk);
          require(kOp, s % 16 == 0,
                  "tile_start[b={}, h={}, qb={}, slot={}] = {} is not a multiple of 16 "
                  "(invariant 8)",
                  b, h, qb, t, s);
          if (t > 0)
            require(kOp, s >= ts[t - 1] + kTile,
                    "tile_start[b={}, h={}, qb={}, slot={}] = {} overlaps or precedes the "
                    "previous tile at {} (invariant 2: start[t+1] >= start[t] + 64)",
                    b, h, qb, t, s, ts[t - 1]);
          if (x.causal) {
            std::int32_t mn = kpos(s);
            const std::int64_t te = std::min<std::int64_t>(s + kTile, x.Lk);
            for (std::int64_t j = s + 1; perm && j < te; ++j) mn = std::min(mn, kpos(j));
            require(kOp, mn <= p1,
                    "tile_start[b={}, h={}, qb={}, slot={}] = {}: no key of the tile is visible "
                    "to a row of the block (last position {}) (invariant 4)",
                    b, h, qb, t, s, p1);
          }
        }
        int ti = 0;
        for (int u = 0; u < x.max_cols; ++u) {
          const std::int32_t c = cs[u];
          if (u >= nc) {
            require(kOp, c == -1,
                    "col_index[b={}, h={}, qb={}, slot={}] = {}: unused slots must be -1 "
                    "(invariant 7)",
                    b, h, qb, u, c);
            continue;
          }
          require(kOp, c >= 0 && c < x.Lk,
                  "col_index[b={}, h={}, qb={}, slot={}] = {} is outside [0, Lk = {}) "
                  "(invariant 3)",
                  b, h, qb, u, c, x.Lk);
          if (u > 0)
            require(kOp, c > cs[u - 1],
                    "col_index[b={}, h={}, qb={}, slot={}] = {} is not above the previous "
                    "column {} (invariant 5)",
                    b, h, qb, u, c, cs[u - 1]);
          if (x.causal)
            require(kOp, kpos(c) <= p1,
                    "col_index[b={}, h={}, qb={}, slot={}] = {} is not visible to any row of "
                    "the block (invariant 4)",
                    b, h, qb, u, c);
          while (ti < nt && ts[ti] + kTile <= c) ++ti;
          require(kOp, !(ti < nt && ts[ti] <= c),
                  "col_index[b={}, h={}, qb={}, slot={}] = {} lies inside tile {} (invariant 5)", b,
                  h, qb, u, c, ti < nt ? ts[ti] : -1);
        }
        if (!x.causal) {
          require(kOp, nt >= 1,
                  "tile_count[b={}, h={}, qb={}] = 0: a non-causal block needs a tile "
                  "(invariant 6)",
                  b, h, qb);
          continue;
        }
        const std::int64_t r0 = std::int64_t{qb} * kTile;
        const std::int64_t r1 = std::min<std::int64_t>(r0 + kTile, x.Lq);
        for (std::int64_t i = r0; i < r1; ++i) {
          const std::int64_t pos =
              perm ? x.qpos[static_cast<std::size_t>(b * x.Lq + i)] : x.off + i;
          const std::int32_t j =
              perm ? kinv[static_cast<std::size_t>(pos)] : static_cast<std::int32_t>(pos);
          const std::int32_t* it = std::upper_bound(ts, ts + nt, j);  // first start > j
          const bool in = it != ts && *(it - 1) + kTile > j;
          require(kOp, in,
                  "tile_start[b={}, h={}, qb={}]: row {} (position {}, key {}) is not covered by "
                  "a tile (invariant 6: every row's own key lies in a tile)",
                  b, h, qb, i, pos, j);
        }
      }
  }
}

HostIndex download_index(const SparseIndex& idx) {
  require(kOp,
          idx.tile_count.defined() && idx.tile_start.defined() && idx.col_count.defined() &&
              idx.col_index.defined(),
          "tile_count, tile_start, col_count and col_index must be defined");
  HostIndex h;
  h.B = idx.B;
  h.Hi = idx.Hi;
  h.nqb = idx.nqb;
  h.max_tiles = idx.max_tiles;
  h.max_cols = idx.max_cols;
  h.causal = idx.causal;
  h.Lq = idx.Lq;
  h.Lk = idx.Lk;
  h.off = idx.off;
  h.sharing = idx.sharing;
  h.sink_tokens = idx.sink_tokens;
  h.window_tokens = idx.window_tokens;
  h.added_diagonal = idx.added_diagonal;
  auto get = [](const Tensor& t, const char* name, std::vector<std::int64_t> shape) {
    if (t.dtype() != DType::i32 || t.shape() != shape || !t.is_contiguous())
      rt::fail(ErrorCode::shape_mismatch, kOp, "{} is {}; expected contiguous i32[{}]", name,
               t.desc().describe(), fmt::join(shape, ", "));
    return t.download<std::int32_t>();
  };
  const std::int64_t B = idx.B, Hi = idx.Hi, n = idx.nqb;
  h.tile_count = get(idx.tile_count, "tile_count", {B, Hi, n});
  h.tile_start = get(idx.tile_start, "tile_start", {B, Hi, n, idx.max_tiles});
  h.col_count = get(idx.col_count, "col_count", {B, Hi, n});
  h.col_index = get(idx.col_index, "col_index", {B, Hi, n, idx.max_cols});
  require(kOp, idx.qpos.defined() == idx.kpos.defined(), "qpos and kpos come together");
  if (idx.qpos.defined()) {
    h.qpos = get(idx.qpos, "qpos", {B, idx.Lq});
    h.kpos = get(idx.kpos, "kpos", {B, idx.Lk});
  }
  return h;
}

SparseIndex upload_index(Context& ctx, const HostIndex& h) {
  validate_index(h);
  return make_index(ctx, h);
}

void validate_index(const SparseIndex& idx) {
  validate_index(download_index(idx));
}

NormalizedRow normalize_index_row(std::vector<std::pair<std::int32_t, std::int32_t>> intervals,
                                  std::vector<std::int32_t> columns, std::int32_t p1,
                                  std::int32_t lk, bool causal,
                                  const std::vector<std::int32_t>& kpos, int max_tiles,
                                  int max_cols) {
  require("normalize_index_row",
          max_tiles >= 0 && max_cols >= 0 && lk >= 1 &&
              (kpos.empty() || kpos.size() == static_cast<std::size_t>(lk)),
          "bad arguments (max_tiles {}, max_cols {}, lk {}, kpos size {})", max_tiles, max_cols, lk,
          kpos.size());
  std::vector<int> a(intervals.size()), e(intervals.size());
  for (std::size_t i = 0; i < intervals.size(); ++i) {
    a[i] = intervals[i].first;
    e[i] = intervals[i].second;
  }
  NormalizedRow r;
  r.tiles.resize(static_cast<std::size_t>(max_tiles));
  r.cols.resize(static_cast<std::size_t>(max_cols));
  int nt = 0, nc = 0;
  const int err =
      cl_common::sq_normalize_row(a.data(), e.data(), static_cast<int>(a.size()), columns.data(),
                                  static_cast<int>(columns.size()), p1, lk, causal ? 1 : 0,
                                  kpos.empty() ? nullptr : kpos.data(), r.tiles.data(), max_tiles,
                                  r.cols.data(), max_cols, &nt, &nc);
  if (err != SQ_NORM_OK)
    rt::fail(ErrorCode::internal, "normalize_index_row", "more {} than the capacity {}",
             err == SQ_NORM_TILE_OVERFLOW ? "tiles" : "columns",
             err == SQ_NORM_TILE_OVERFLOW ? max_tiles : max_cols);
  r.tiles.resize(static_cast<std::size_t>(nt));
  r.cols.resize(static_cast<std::size_t>(nc));
  return r;
}

SparseIndex dense_index(Context& ctx, int B, int Hi, std::int64_t Lq, std::int64_t Lk, bool causal,
                        IndexSharing sharing) {
  HostIndex h;
  h.B = B;
  h.Hi = Hi;
  h.Lq = Lq;
  h.Lk = Lk;
  h.off = Lk - Lq;
  h.causal = causal;
  h.sharing = sharing;
  require("dense_index", B >= 1 && Hi >= 1 && Lq >= 1 && Lq <= Lk && Lk <= kMaxLen,
          "B = {}, Hi = {}, Lq = {}, Lk = {}: need >= 1 and Lq <= Lk < 2^31 - 8192", B, Hi, Lq, Lk);
  h.nqb = num_qblocks(Lq);
  h.max_tiles = static_cast<int>((Lk + kTile - 1) / kTile);
  h.max_cols = 0;
  const auto rows =
      static_cast<std::size_t>(B) * static_cast<std::size_t>(Hi) * static_cast<std::size_t>(h.nqb);
  h.tile_count.resize(rows);
  h.col_count.assign(rows, 0);
  h.tile_start.assign(rows * static_cast<std::size_t>(h.max_tiles), -1);
  for (std::size_t row = 0; row < rows; ++row) {
    const int qb = static_cast<int>(row % static_cast<std::size_t>(h.nqb));
    std::int32_t p0, p1;
    block_pos(h, 0, qb, p0, p1);
    const std::int64_t end = causal ? std::min<std::int64_t>(p1 + 1, Lk) : Lk;
    const int nt = static_cast<int>((end + kTile - 1) / kTile);
    h.tile_count[row] = nt;
    for (int t = 0; t < nt; ++t)
      h.tile_start[row * static_cast<std::size_t>(h.max_tiles) + static_cast<std::size_t>(t)] =
          t * kTile;
  }
  SparseIndex x = make_index(ctx, h);
  seal_index(x);
  return x;
}

// ---- .sqidx ----

namespace {

constexpr char kMagic[8] = {'S', 'Q', 'I', 'D', 'X', '0', '0', '1'};

struct FileHeader {  // 128 bytes, little-endian
  char magic[8];
  std::int64_t Lq, Lk, off;
  std::int32_t B, Hi, nqb, max_tiles, max_cols;
  std::int32_t causal, sharing, has_pos, sink_tokens, window_tokens, added_diagonal;
  std::int32_t reserved[13];
};
static_assert(sizeof(FileHeader) == 128);

}  // namespace

void save_index(const SparseIndex& idx, const std::string& path) {
  constexpr const char* op = "save_index";
  const HostIndex h = download_index(idx);
  FileHeader f{};
  std::memcpy(f.magic, kMagic, 8);
  f.Lq = h.Lq;
  f.Lk = h.Lk;
  f.off = h.off;
  f.B = h.B;
  f.Hi = h.Hi;
  f.nqb = h.nqb;
  f.max_tiles = h.max_tiles;
  f.max_cols = h.max_cols;
  f.causal = h.causal;
  f.sharing = static_cast<std::int32_t>(h.sharing);
  f.has_pos = !h.qpos.empty();
  f.sink_tokens = h.sink_tokens;
  f.window_tokens = h.window_tokens;
  f.added_diagonal = h.added_diagonal;
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) rt::fail(ErrorCode::io_error, op, "cannot open '{}' for writing", tmp);
    out.write(reinterpret_cast<const char*>(&f), sizeof f);
    for (const auto* v :
         {&h.tile_count, &h.tile_start, &h.col_count, &h.col_index, &h.qpos, &h.kpos})
      out.write(reinterpret_cast<const char*>(v->data()),
                static_cast<std::streamsize>(v->size() * sizeof(std::int32_t)));
    out.flush();
    if (!out) rt::fail(ErrorCode::io_error, op, "writing '{}' failed", tmp);
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    rt::fail(ErrorCode::io_error, op, "cannot rename '{}' to '{}'", tmp, path);
  }
}

SparseIndex load_index(Context& ctx, const std::string& path) {
  constexpr const char* op = "load_index";
  std::ifstream in(path, std::ios::binary);
  if (!in) rt::fail(ErrorCode::io_error, op, "cannot open '{}'", path);
  FileHeader f{};
  in.read(reinterpret_cast<char*>(&f), sizeof f);
  if (!in || std::memcmp(f.magic, kMagic, 8) != 0)
    rt::fail(ErrorCode::io_error, op, "'{}' is not a .sqidx file (bad header)", path);
  HostIndex h;
  h.Lq = f.Lq;
  h.Lk = f.Lk;
  h.off = f.off;
  h.B = f.B;
  h.Hi = f.Hi;
  h.nqb = f.nqb;
  h.max_tiles = f.max_tiles;
  h.max_cols = f.max_cols;
  h.causal = f.causal != 0;
  h.sharing = static_cast<IndexSharing>(f.sharing);
  h.sink_tokens = f.sink_tokens;
  h.window_tokens = f.window_tokens;
  h.added_diagonal = f.added_diagonal != 0;
  if (h.B < 1 || h.Hi < 1 || h.nqb < 1 || h.max_tiles < 0 || h.max_cols < 0 || h.Lq < 1 ||
      h.Lk < h.Lq || h.Lk > kMaxLen || (f.sharing != 0 && f.sharing != 1))
    rt::fail(ErrorCode::io_error, op, "'{}' has an invalid header", path);
  const auto rows = static_cast<std::uint64_t>(h.B) * static_cast<std::uint64_t>(h.Hi) *
                    static_cast<std::uint64_t>(h.nqb);
  const std::uint64_t total =
      rows *
          (2 + static_cast<std::uint64_t>(h.max_tiles) + static_cast<std::uint64_t>(h.max_cols)) +
      (f.has_pos ? static_cast<std::uint64_t>(h.B) * static_cast<std::uint64_t>(h.Lq + h.Lk) : 0);
  std::error_code ec;
  const auto fsize = std::filesystem::file_size(path, ec);
  if (ec || fsize != sizeof f + total * 4)
    rt::fail(ErrorCode::io_error, op, "'{}' has {} bytes; the header describes {}", path, fsize,
             sizeof f + total * 4);
  auto rd = [&in](std::vector<std::int32_t>& v, std::uint64_t n) {
    v.resize(static_cast<std::size_t>(n));
    in.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(n * 4));
  };
  rd(h.tile_count, rows);
  rd(h.tile_start, rows * static_cast<std::uint64_t>(h.max_tiles));
  rd(h.col_count, rows);
  rd(h.col_index, rows * static_cast<std::uint64_t>(h.max_cols));
  if (f.has_pos) {
    rd(h.qpos, static_cast<std::uint64_t>(h.B * h.Lq));
    rd(h.kpos, static_cast<std::uint64_t>(h.B * h.Lk));
  }
  if (!in) rt::fail(ErrorCode::io_error, op, "reading '{}' failed", path);
  return upload_index(ctx, h);
}

// ---- block masks ----

Tensor to_block_mask(Context& ctx, const SparseIndex& idx, int block) {
  constexpr const char* op = "to_block_mask";
  require(op, block == 64 || block == 128, "block = {}; expected 64 or 128", block);
  const HostIndex h = download_index(idx);
  const std::int64_t nq = (h.Lq + block - 1) / block, nk = (h.Lk + block - 1) / block;
  std::vector<std::uint8_t> m(static_cast<std::size_t>(h.B * h.Hi * nq * nk), 0);
  for (int b = 0; b < h.B; ++b)
    for (int hi = 0; hi < h.Hi; ++hi)
      for (int qb = 0; qb < h.nqb; ++qb) {
        const std::int64_t row = row_of(h, b, hi, qb);
        const std::int64_t QB = std::int64_t{qb} * kTile / block;
        std::uint8_t* mr = m.data() + ((std::int64_t{b} * h.Hi + hi) * nq + QB) * nk;
        const std::int32_t nt = h.tile_count[static_cast<std::size_t>(row)];
        for (int t = 0; t < nt; ++t) {
          const std::int64_t s = h.tile_start[static_cast<std::size_t>(row * h.max_tiles + t)];
          const std::int64_t e = std::min<std::int64_t>(s + kTile, h.Lk);
          for (std::int64_t kb = s / block; kb * block < e; ++kb) mr[kb] = 1;
        }
        const std::int32_t nc = h.col_count[static_cast<std::size_t>(row)];
        for (int u = 0; u < nc; ++u)
          mr[h.col_index[static_cast<std::size_t>(row * h.max_cols + u)] / block] = 1;
      }
  return ctx.upload(m, DType::u8, {h.B, h.Hi, nq, nk});
}

SparseIndex from_block_mask(Context& ctx, const Tensor& mask, int block, std::int64_t Lq,
                            std::int64_t Lk, bool causal, IndexSharing sharing) {
  constexpr const char* op = "from_block_mask";
  require(op, block == 64 || block == 128, "block = {}; expected 64 or 128", block);
  require(op, Lq >= 1 && Lq <= Lk && Lk <= kMaxLen, "Lq = {}, Lk = {}: need 1 <= Lq <= Lk", Lq, Lk);
  const std::int64_t nq = (Lq + block - 1) / block, nk = (Lk + block - 1) / block;
  if ((mask.dtype() != DType::u8 && mask.dtype() != DType::i8) || mask.rank() != 4 ||
      mask.dim(2) != nq || mask.dim(3) != nk || mask.dim(0) < 1 || mask.dim(1) < 1)
    rt::fail(ErrorCode::shape_mismatch, op, "mask is {}; expected u8[B, Hi, {}, {}]",
             mask.desc().describe(), nq, nk);
  const auto m = mask.download<std::uint8_t>();
  HostIndex h;
  h.B = static_cast<int>(mask.dim(0));
  h.Hi = static_cast<int>(mask.dim(1));
  h.Lq = Lq;
  h.Lk = Lk;
  h.off = Lk - Lq;
  h.causal = causal;
  h.sharing = sharing;
  h.nqb = num_qblocks(Lq);
  h.max_tiles = static_cast<int>((Lk + kTile - 1) / kTile);
  h.max_cols = 0;
  const auto rows = static_cast<std::size_t>(h.B) * static_cast<std::size_t>(h.Hi) *
                    static_cast<std::size_t>(h.nqb);
  h.tile_count.resize(rows);
  h.col_count.assign(rows, 0);
  h.tile_start.resize(rows * static_cast<std::size_t>(h.max_tiles));
  for (int b = 0; b < h.B; ++b)
    for (int hi = 0; hi < h.Hi; ++hi)
      for (int qb = 0; qb < h.nqb; ++qb) {
        const std::int64_t row = row_of(h, b, hi, qb);
        std::int32_t p0, p1;
        block_pos(h, b, qb, p0, p1);
        const std::int64_t QB = std::int64_t{qb} * kTile / block;
        const std::uint8_t* mr = m.data() + ((std::int64_t{b} * h.Hi + hi) * nq + QB) * nk;
        std::vector<std::pair<std::int32_t, std::int32_t>> iv;
        for (std::int64_t kb = 0; kb < nk; ++kb)
          if (mr[kb])
            iv.emplace_back(static_cast<std::int32_t>(kb * block),
                            static_cast<std::int32_t>(std::min(kb * block + block, Lk)));
        const NormalizedRow without = normalize_index_row(iv, {}, p1, static_cast<std::int32_t>(Lk),
                                                          causal, {}, h.max_tiles, 0);
        if (causal)
          iv.emplace_back(p0, p1 + 1);
        else if (iv.empty())
          iv.emplace_back(p0, p1 + 1);
        const NormalizedRow r = normalize_index_row(iv, {}, p1, static_cast<std::int32_t>(Lk),
                                                    causal, {}, h.max_tiles, 0);
        if (r.tiles != without.tiles) h.added_diagonal = true;
        h.tile_count[static_cast<std::size_t>(row)] = static_cast<std::int32_t>(r.tiles.size());
        std::int32_t* ts = h.tile_start.data() + row * h.max_tiles;
        for (int t = 0; t < h.max_tiles; ++t)
          ts[t] = t < static_cast<int>(r.tiles.size()) ? r.tiles[static_cast<std::size_t>(t)] : -1;
      }
  SparseIndex x = make_index(ctx, h);
  seal_index(x);
  return x;
}

}  // namespace sparq
