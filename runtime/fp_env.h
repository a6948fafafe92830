// ScopedExactFpEnv: the floating-point environment the fallback's arithmetic needs
// (ARCHITECTURE §2: denormals kept). Some host apps (audio, games, other ML runtimes) run with
// flush-to-zero / denormals-are-zero switched on; the fallback would then differ from the
// device on tiny values. Construct one in every thread that runs fallback arithmetic: it clears
// FTZ/DAZ on entry and restores the caller's environment on exit.
#pragma once
#include <cstdint>

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif

namespace sparq::rt {

class ScopedExactFpEnv {
 public:
#if defined(__x86_64__) || defined(__i386__)
  // MXCSR bit 15 = FTZ (flush results), bit 6 = DAZ (treat denormal inputs as zero).
  static constexpr unsigned kFlushBits = (1u << 15) | (1u << 6);
  ScopedExactFpEnv() : saved_(_mm_getcsr()) {
    if (saved_ & kFlushBits) _mm_setcsr(saved_ & ~kFlushBits);
  }
  ~ScopedExactFpEnv() {
    if (saved_ & kFlushBits) _mm_setcsr(saved_);
  }
  static std::uint64_t current() {
    return _mm_getcsr();
  }
  static void set(std::uint64_t v) {
    _mm_setcsr(static_cast<unsigned>(v));
  }
#elif defined(__aarch64__)
  // FPCR bit 24 = FZ (flush fp32/fp64 denormals to zero); FZ16 (bit 19) only affects fp16 math.
  static constexpr std::uint64_t kFlushBits = std::uint64_t{1} << 24;
  ScopedExactFpEnv() : saved_(current()) {
    if (saved_ & kFlushBits) set(saved_ & ~kFlushBits);
  }
  ~ScopedExactFpEnv() {
    if (saved_ & kFlushBits) set(saved_);
  }
  static std::uint64_t current() {
    std::uint64_t v;
    __asm__ volatile("mrs %0, fpcr" : "=r"(v));
    return v;
  }
  static void set(std::uint64_t v) {
    __asm__ volatile("msr fpcr, %0" : : "r"(v));
  }
#else
  // Other targets: no known flush mode is set by default; nothing to do.
  static constexpr std::uint64_t kFlushBits = 0;
  static std::uint64_t current() {
    return 0;
  }
  static void set(std::uint64_t) {}
#endif
  ScopedExactFpEnv(const ScopedExactFpEnv&) = delete;
  ScopedExactFpEnv& operator=(const ScopedExactFpEnv&) = delete;

 private:
#if defined(__x86_64__) || defined(__i386__) || defined(__aarch64__)
  std::uint64_t saved_;
#endif
};

}  // namespace sparq::rt
