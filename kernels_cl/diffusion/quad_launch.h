// quad_launch.h — the launch decomposition of the element-wise diffusion kernels (speed only;
// no value depends on it). A 1D range of work-groups of size L; each sample of s elements owns
// gps (a kernel argument: ceil(ceil(s / 4) / (L·SQ_QPT))) consecutive groups, and work-item t of
// its group r owns the quads q = (r·SQ_QPT + u)·L + t, u < SQ_QPT, i.e. the within-sample elements
// j = 4q .. min(4q + 4, s) - 1. One dimension, so any batch size fits the device's grid limits;
// the only division is a 32-bit one of group-uniform values.
#ifndef SPARQ_DIFFUSION_QUAD_LAUNCH_H
#define SPARQ_DIFFUSION_QUAD_LAUNCH_H

#ifndef SQ_QPT
#define SQ_QPT 1  // quads per work-item (the host passes its choice: SPARQ_TUNE_DIFFUSION)
#endif

// Sets b (sample) and q0 (the work-item's first quad; the u-th is q0 + u·L).
static inline void sq_quad_base(uint gps, long* b, long* q0) {
  const uint L = (uint)get_local_size(0);
  const uint g = (uint)get_group_id(0);
  const uint bb = g / gps;
  *b = (long)bb;
  *q0 = (long)(g - bb * gps) * (long)(L * SQ_QPT) + (long)get_local_id(0);
}

// Valid lanes of quad q of a sample of s elements (0 = past its end).
static inline int sq_quad_lanes(long s, long q) {
  const long j0 = 4 * q;
  if (j0 >= s) return 0;
  return s - j0 < 4 ? (int)(s - j0) : 4;
}

#endif  // SPARQ_DIFFUSION_QUAD_LAUNCH_H
