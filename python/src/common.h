// Shared helpers of the sparq Python module: numpy <-> sparq::Tensor, optional arguments, in-place
// (state) arguments, and the registration of one binding file per op group.
//
// Adding ops: one new src/<name>.cpp with
//   SPARQ_PY_BIND(<name>, sparq::py::kOps) { m.def(...); }
// (`m` is the top-level module; use sub(m, "mamba") for a submodule). No CMake edit: sources are
// globbed. Keep file-local helpers in a namespace named after the file.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <sparq/sparq.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace sparq::py {
namespace pyb = pybind11;

// Registration order: types (enums, classes used as default arguments) before ops.
inline constexpr int kTypes = 0, kOps = 1;

struct Binder {
  int order;
  std::string name;
  std::function<void(pyb::module_&)> fn;
};
std::vector<Binder>& binders();
struct Register {
  Register(int order, const char* name, void (*fn)(pyb::module_&)) {
    binders().push_back({order, name, fn});
  }
};
#define SPARQ_PY_BIND(NAME, ORDER)                                                                 \
  static void sparq_py_bind_##NAME(pybind11::module_& m);                                          \
  static const ::sparq::py::Register sparq_py_register_##NAME(ORDER, #NAME, sparq_py_bind_##NAME); \
  static void sparq_py_bind_##NAME(pybind11::module_& m)

// The submodule `name` of m (created on first use): sparq.diffusion, sparq.mamba.
pyb::module_ sub(pyb::module_& m, const char* name);

// A numpy array (or anything np.asarray takes) uploaded to ctx, or a sparq.Tensor as is. Storage
// dtype: float32 -> f32, float16 -> f16, int8/uint8/int32 as such; float64 is rounded to float32,
// int64 (np.array([0, 3]) on Linux) narrowed to int32 with a range check; `as` forces a dtype
// (bf16 from uint16 bits, or f16 from uint16 bits). Non-contiguous arrays are copied first.
Tensor to_tensor(Context& ctx, const pyb::handle& obj, std::optional<DType> as = std::nullopt);
// None -> an empty (undefined) Tensor.
inline Tensor opt_tensor(Context& ctx, const pyb::object& obj) {
  return obj.is_none() ? Tensor() : to_tensor(ctx, obj);
}
// A Tensor's elements (row-major order of its view) as a new numpy array: f32/f16/i8/u8/i32 as
// such, bf16 widened exactly to float32.
pyb::array to_numpy(const Tensor& t);
inline pyb::object opt_numpy_or_tensor(const Tensor& t) {
  return t.defined() ? pyb::cast(t) : pyb::none();
}

// A tensor an op updates in place (a recurrent state, the latent): a sparq.Tensor is updated on
// the device; a writable C-contiguous numpy array of the exact dtype is uploaded and, after the
// op, overwritten with the result (writeback()).
class InOut {
 public:
  InOut(Context& ctx, const pyb::object& obj, const char* what);
  const Tensor& tensor() const { return t_; }
  void writeback() const;

 private:
  Tensor t_;
  pyb::object array_;  // None when obj was a sparq.Tensor
};

}  // namespace sparq::py
