// The sparq Python module: Context, Tensor (numpy in and out), DType, Error, device listing; the
// ops come from the other src/*.cpp files through SPARQ_PY_BIND (see common.h).
#include <algorithm>
#include <cstring>

#include "common.h"

namespace sparq::py {

std::vector<Binder>& binders() {
  static std::vector<Binder> b;
  return b;
}

pyb::module_ sub(pyb::module_& m, const char* name) {
  if (pyb::hasattr(m, name)) return m.attr(name).cast<pyb::module_>();
  return m.def_submodule(name);
}

namespace module {

std::optional<DType> numpy_dtype(const pyb::dtype& dt) {
  const char kind = dt.kind();
  const auto size = dt.itemsize();
  if (kind == 'f' && size == 4) return DType::f32;
  if (kind == 'f' && size == 2) return DType::f16;
  if (kind == 'i' && size == 1) return DType::i8;
  if (kind == 'u' && size == 1) return DType::u8;
  if (kind == 'i' && size == 4) return DType::i32;
  return std::nullopt;
}

pyb::dtype numpy_of(DType t) {
  switch (t) {
    case DType::f32:
      return pyb::dtype::of<float>();
    case DType::f16:
      return pyb::dtype("float16");
    case DType::bf16:
      return pyb::dtype::of<float>();  // widened on download
    case DType::i8:
      return pyb::dtype::of<std::int8_t>();
    case DType::u8:
      return pyb::dtype::of<std::uint8_t>();
    case DType::i32:
      return pyb::dtype::of<std::int32_t>();
  }
  return pyb::dtype::of<float>();
}

std::vector<std::int64_t> shape_of(const pyb::array& a) {
  return std::vector<std::int64_t>(a.shape(), a.shape() + a.ndim());
}

}  // namespace module

Tensor to_tensor(Context& ctx, const pyb::handle& obj, std::optional<DType> as) {
  using namespace module;
  if (pyb::isinstance<Tensor>(obj)) {
    Tensor t = obj.cast<Tensor>();
    if (as && t.dtype() != *as)
      throw Error(ErrorCode::invalid_argument, std::string("expected a ") + dtype_name(*as) +
                                                   " tensor, got " + t.desc().describe());
    return t;
  }
  pyb::array a = pyb::array::ensure(obj, pyb::array::c_style);
  if (!a) throw Error(ErrorCode::invalid_argument, "expected a sparq.Tensor or an array");
  const pyb::dtype dt = a.dtype();
  if (as) {  // explicit storage type: bf16/f16 from uint16 bits, or a matching array
    const bool bits16 =
        (*as == DType::bf16 || *as == DType::f16) && dt.kind() == 'u' && dt.itemsize() == 2;
    if (!bits16 && numpy_dtype(dt) != as) {
      if (*as == DType::f32 || *as == DType::i32)
        a = pyb::array::ensure(a.attr("astype")(numpy_of(*as)), pyb::array::c_style);
      else
        throw Error(ErrorCode::invalid_argument,
                    std::string("cannot upload a numpy ") + dt.attr("name").cast<std::string>() +
                        " array as " + dtype_name(*as) + " (bf16/f16 take uint16 bits)");
    }
    return ctx.upload(a.data(), *as, shape_of(a));
  }
  if (dt.kind() == 'f' && dt.itemsize() == 8)
    return ctx.upload(pyb::array_t<float, pyb::array::c_style | pyb::array::forcecast>(a).data(),
                      DType::f32, shape_of(a));
  if (dt.kind() == 'i' && dt.itemsize() == 8) {
    pyb::array_t<std::int64_t, pyb::array::c_style> w(a);
    std::vector<std::int32_t> v(static_cast<std::size_t>(w.size()));
    for (std::size_t i = 0; i < v.size(); ++i) {
      const std::int64_t x = w.data()[i];
      if (x < INT32_MIN || x > INT32_MAX)
        throw Error(ErrorCode::invalid_argument,
                    "int64 array value " + std::to_string(x) + " does not fit int32");
      v[i] = static_cast<std::int32_t>(x);
    }
    return ctx.upload(v.data(), DType::i32, shape_of(a));
  }
  const auto t = numpy_dtype(dt);
  if (!t)
    throw Error(ErrorCode::invalid_argument,
                "numpy dtype " + dt.attr("name").cast<std::string>() +
                    " is not a sparq storage type (float32, float16, int8, uint8, int32; float64 "
                    "and int64 are narrowed; bf16 as uint16 bits with dtype=sparq.bf16)");
  return ctx.upload(a.data(), *t, shape_of(a));
}

pyb::array to_numpy(const Tensor& t) {
  using namespace module;
  std::vector<pyb::ssize_t> shape(t.shape().begin(), t.shape().end());
  if (t.dtype() == DType::bf16) {
    const auto bits = t.download<std::uint16_t>();
    pyb::array_t<float> out(shape);
    float* p = out.mutable_data();
    for (std::size_t i = 0; i < bits.size(); ++i) {
      const std::uint32_t u = static_cast<std::uint32_t>(bits[i]) << 16;
      std::memcpy(p + i, &u, 4);
    }
    return out;
  }
  pyb::array out(numpy_of(t.dtype()), shape);
  {
    pyb::gil_scoped_release nogil;
    t.download_raw(out.mutable_data(), static_cast<std::size_t>(out.nbytes()));
  }
  return out;
}

InOut::InOut(Context& ctx, const pyb::object& obj, const char* what) {
  if (pyb::isinstance<Tensor>(obj)) {
    t_ = obj.cast<Tensor>();
    return;
  }
  if (!pyb::isinstance<pyb::array>(obj))
    throw Error(ErrorCode::invalid_argument,
                std::string(what) +
                    ": updated in place, so it must be a sparq.Tensor or a numpy "
                    "array (writable, C-contiguous)");
  auto a = obj.cast<pyb::array>();
  if (!a.writeable() || !(a.flags() & pyb::array::c_style) || !module::numpy_dtype(a.dtype()))
    throw Error(ErrorCode::invalid_argument,
                std::string(what) +
                    ": updated in place, so a numpy array must be writable, "
                    "C-contiguous and of a sparq dtype (got " +
                    a.dtype().attr("name").cast<std::string>() + ")");
  t_ = ctx.upload(a.data(), *module::numpy_dtype(a.dtype()), module::shape_of(a));
  array_ = obj;
}

void InOut::writeback() const {
  if (!array_ || array_.is_none()) return;
  auto a = array_.cast<pyb::array>();
  t_.download_raw(a.mutable_data(), static_cast<std::size_t>(a.nbytes()));
}

}  // namespace sparq::py

namespace sparq::py::module {
const char* backend_name(Backend b) {
  return b == Backend::opencl ? "opencl" : "fallback";
}
}  // namespace sparq::py::module

PYBIND11_MODULE(sparq, m) {
  using namespace sparq;
  using namespace sparq::py;
  using sparq::py::module::backend_name;
  m.doc() =
      "sparq: bit-exact OpenCL kernels with a bit-identical C++ CPU fallback. Ops take a Context "
      "first, then numpy arrays or sparq.Tensor objects; results are sparq.Tensor (np.asarray(t) "
      "or t.numpy() copies them to the host).";
  m.attr("__version__") = sparq::version();
  m.def("version", &sparq::version);
  m.def("default_cache_dir", &sparq::default_cache_dir);

  // sparq.Error(message) with .code, the ErrorCode name ("shape_mismatch", ...).
  static pyb::exception<Error> error(m, "Error", PyExc_RuntimeError);
  pyb::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const Error& e) {
      pyb::object inst = pyb::reinterpret_borrow<pyb::object>(error)(pyb::str(e.what()));
      inst.attr("code") = error_code_name(e.code());
      PyErr_SetObject(error.ptr(), inst.ptr());
    }
  });

  pyb::enum_<DType>(m, "DType")
      .value("f32", DType::f32)
      .value("f16", DType::f16)
      .value("bf16", DType::bf16)
      .value("i8", DType::i8)
      .value("u8", DType::u8)
      .value("i32", DType::i32)
      .export_values();

  pyb::class_<DeviceInfo>(m, "DeviceInfo")
      .def_property_readonly("backend", [](const DeviceInfo& d) { return backend_name(d.backend); })
      .def_readonly("name", &DeviceInfo::name)
      .def_readonly("vendor", &DeviceInfo::vendor)
      .def_readonly("platform", &DeviceInfo::platform)
      .def_readonly("driver_version", &DeviceInfo::driver_version)
      .def_readonly("is_gpu", &DeviceInfo::is_gpu)
      .def_readonly("global_mem_bytes", &DeviceInfo::global_mem_bytes)
      .def_readonly("max_alloc_bytes", &DeviceInfo::max_alloc_bytes)
      .def_readonly("compute_units", &DeviceInfo::compute_units)
      .def("__repr__", [](const DeviceInfo& d) {
        return "<sparq.DeviceInfo " + std::string(backend_name(d.backend)) + " '" + d.name + "'>";
      });

  m.def(
      "list_devices",
      [] {
        pyb::list out;
        for (const auto& r : list_devices())
          out.append(pyb::dict(pyb::arg("selector") = r.selector, pyb::arg("platform") = r.platform,
                               pyb::arg("name") = r.name, pyb::arg("is_gpu") = r.is_gpu,
                               pyb::arg("usable") = r.usable, pyb::arg("reason") = r.reason));
        return out;
      },
      "Every OpenCL device sparq sees, whether it is usable and why not (as sparq-info).");

  pyb::class_<Tensor>(m, "Tensor",
                      "A tensor on a Context's device (or the fallback's host memory). "
                      "np.asarray(t) / t.numpy() copy it to a new numpy array.")
      .def_property_readonly("shape",
                             [](const Tensor& t) { return pyb::tuple(pyb::cast(t.shape())); })
      .def_property_readonly("strides",
                             [](const Tensor& t) { return pyb::tuple(pyb::cast(t.strides())); })
      .def_property_readonly("offset", &Tensor::offset)
      .def_property_readonly("dtype", &Tensor::dtype)
      .def_property_readonly("ndim", &Tensor::rank)
      .def_property_readonly("size", &Tensor::numel)
      .def("numpy", &to_numpy)
      .def(
          "__array__",
          [](const Tensor& t, pyb::object dtype, pyb::object) {
            pyb::array a = to_numpy(t);
            return dtype.is_none() ? pyb::object(a) : a.attr("astype")(dtype);
          },
          pyb::arg("dtype") = pyb::none(), pyb::arg("copy") = pyb::none())
      .def("view", &Tensor::view, pyb::arg("shape"), pyb::arg("strides"), pyb::arg("offset") = 0,
           "Another shape/strides/offset (in elements) over the same storage, checked against it.")
      .def("__len__", [](const Tensor& t) { return t.rank() ? t.dim(0) : 0; })
      .def("__repr__", [](const Tensor& t) {
        return t.defined() ? "<sparq.Tensor " + t.desc().describe() + ">"
                           : std::string("<sparq.Tensor undefined>");
      });

  pyb::class_<Context>(m, "Context",
                       "The device ops run on (SPARQ_DEVICE rules; 'fallback' = the C++ executor).")
      .def(pyb::init([](const std::string& device, const std::string& cache_dir, bool disk_cache,
                        bool profile) {
             return Context::create({.device = device,
                                     .cache_dir = cache_dir,
                                     .disk_cache = disk_cache,
                                     .profile = profile});
           }),
           pyb::arg("device") = "", pyb::arg("cache_dir") = "", pyb::arg("disk_cache") = true,
           pyb::arg("profile") = false)
      .def_property_readonly("backend", [](const Context& c) { return backend_name(c.backend()); })
      .def_property_readonly("device", &Context::device, pyb::return_value_policy::copy)
      .def_property_readonly("cache_dir", &Context::cache_dir)
      .def(
          "upload",
          [](Context& c, const pyb::object& a, std::optional<DType> dtype) {
            return to_tensor(c, a, dtype);
          },
          pyb::arg("array"), pyb::arg("dtype") = pyb::none())
      .def("empty", &Context::empty, pyb::arg("dtype"), pyb::arg("shape"))
      .def("finish", &Context::finish, pyb::call_guard<pyb::gil_scoped_release>())
      .def("kernel_times",
           [](const Context& c) {
             pyb::list out;
             for (const auto& k : c.kernel_times())
               out.append(pyb::make_tuple(k.op, k.kernel, k.time_ms));
             return out;
           })
      .def("clear_kernel_times", &Context::clear_kernel_times)
      .def("warm_up", &Context::warm_up, pyb::call_guard<pyb::gil_scoped_release>())
      .def("__repr__", [](const Context& c) {
        return "<sparq.Context " + std::string(backend_name(c.backend())) + " '" + c.device().name +
               "'>";
      });

  auto& b = binders();
  std::stable_sort(b.begin(), b.end(), [](const Binder& x, const Binder& y) {
    return x.order != y.order ? x.order < y.order : x.name < y.name;
  });
  for (const auto& binder : b) binder.fn(m);
}
