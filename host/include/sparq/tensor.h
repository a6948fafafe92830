// sparq::Tensor: a typed, strided view of memory owned by a Context (device buffer or, on the
// fallback, host memory). Storage dtypes fp32/fp16/bf16 are widened exactly to fp32 by every op.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sparq/export.h"

namespace sparq {

enum class DType : std::uint8_t { f32, f16, bf16, i8, u8, i32 };

SPARQ_API std::size_t dtype_size(DType t);
SPARQ_API const char* dtype_name(DType t);

namespace detail {
struct Storage;      // a device buffer or host bytes; defined inside the library
struct ContextImpl;  // defined inside the library
}  // namespace detail

// Shape + strides + dtype without memory: what sparq::supports() and validation look at.
struct SPARQ_API TensorDesc {
  DType dtype = DType::f32;
  std::vector<std::int64_t> shape;
  std::vector<std::int64_t> strides;  // in elements; empty = contiguous row-major
  std::int64_t offset = 0;            // in elements, from the start of the storage
  std::string describe() const;       // "f32[2, 8, 64, 128] strides [..]"
};

class SPARQ_API Tensor {
 public:
  Tensor() = default;

  bool defined() const { return storage_ != nullptr; }
  DType dtype() const { return desc_.dtype; }
  const std::vector<std::int64_t>& shape() const { return desc_.shape; }
  const std::vector<std::int64_t>& strides() const { return desc_.strides; }
  std::int64_t offset() const { return desc_.offset; }
  int rank() const { return static_cast<int>(desc_.shape.size()); }
  std::int64_t dim(int i) const { return desc_.shape.at(static_cast<std::size_t>(i)); }
  std::int64_t numel() const;
  bool is_contiguous() const;
  const TensorDesc& desc() const { return desc_; }
  std::size_t storage_bytes() const;

  // A view of the same storage with other shape/strides/offset (in elements), e.g. to read a
  // [B, L, H, D] buffer as [B, H, L, D] without a copy. Checked against the storage size.
  Tensor view(std::vector<std::int64_t> shape, std::vector<std::int64_t> strides,
              std::int64_t offset = 0) const;

  // Copies the viewed elements (row-major order of the view) to the host; waits for pending work.
  void download_raw(void* dst, std::size_t dst_bytes) const;
  template <class T>
  std::vector<T> download() const {
    std::vector<T> out(static_cast<std::size_t>(numel() * dtype_size(dtype()) / sizeof(T)));
    download_raw(out.data(), out.size() * sizeof(T));
    return out;
  }

  // Library-internal access.
  const std::shared_ptr<detail::Storage>& storage() const { return storage_; }
  Tensor(std::shared_ptr<detail::Storage> storage, TensorDesc desc);

 private:
  std::shared_ptr<detail::Storage> storage_;
  TensorDesc desc_;
};

}  // namespace sparq
