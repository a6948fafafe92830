// ptx_check_shim.cl — definitions of the few OpenCL built-ins a kernel calls, for compiling a
// kernel to PTX with clang (no libclc) and assembling it with ptxas to check inline PTX off the
// GPU (tools/ptx_check.sh). Not part of the library; never loaded by sparq.
#define OVL __attribute__((overloadable))
OVL size_t get_local_id(uint d) {
  return d == 0   ? __nvvm_read_ptx_sreg_tid_x()
         : d == 1 ? __nvvm_read_ptx_sreg_tid_y()
                  : __nvvm_read_ptx_sreg_tid_z();
}
OVL size_t get_group_id(uint d) {
  return d == 0   ? __nvvm_read_ptx_sreg_ctaid_x()
         : d == 1 ? __nvvm_read_ptx_sreg_ctaid_y()
                  : __nvvm_read_ptx_sreg_ctaid_z();
}
OVL size_t get_num_groups(uint d) {
  return d == 0   ? __nvvm_read_ptx_sreg_nctaid_x()
         : d == 1 ? __nvvm_read_ptx_sreg_nctaid_y()
                  : __nvvm_read_ptx_sreg_nctaid_z();
}
OVL size_t get_local_size(uint d) {
  return d == 0   ? __nvvm_read_ptx_sreg_ntid_x()
         : d == 1 ? __nvvm_read_ptx_sreg_ntid_y()
                  : __nvvm_read_ptx_sreg_ntid_z();
}
OVL size_t get_global_id(uint d) {
  return get_group_id(d) * get_local_size(d) + get_local_id(d);
}
OVL void barrier(cl_mem_fence_flags f) {
  __nvvm_bar_sync(0);
}
OVL float fma(float a, float b, float c) {
  return __builtin_fmaf(a, b, c);
}
OVL uint max(uint a, uint b) {
  return a > b ? a : b;
}
OVL int min(int a, int b) {
  return a < b ? a : b;
}
OVL int max(int a, int b) {
  return a > b ? a : b;
}
OVL int isnan(float x) {
  return x != x;
}
OVL uint4 vload4(size_t i, const __global uint* p) {
  p += 4 * i;
  return (uint4)(p[0], p[1], p[2], p[3]);
}
OVL float4 vload4(size_t i, const __local float* p) {
  p += 4 * i;
  return (float4)(p[0], p[1], p[2], p[3]);
}
OVL float fmax(float a, float b) {
  return __builtin_fmaxf(a, b);
}
OVL float2 vload2(size_t i, const __local float* p) {
  p += 2 * i;
  return (float2)(p[0], p[1]);
}
OVL char4 vload4(size_t i, const __local char* p) {
  p += 4 * i;
  return (char4)(p[0], p[1], p[2], p[3]);
}
OVL int isinf(float x) {
  return x == __builtin_inff() || x == -__builtin_inff();
}
OVL int clamp(int x, int lo, int hi) {
  return x < lo ? lo : x > hi ? hi : x;
}
OVL float4 vload4(size_t i, const __global float* p) {
  p += 4 * i;
  return (float4)(p[0], p[1], p[2], p[3]);
}
OVL ushort4 vload4(size_t i, const __global ushort* p) {
  p += 4 * i;
  return (ushort4)(p[0], p[1], p[2], p[3]);
}
OVL uint clz(uint x) {
  return x == 0 ? 32 : __builtin_clz(x);
}
