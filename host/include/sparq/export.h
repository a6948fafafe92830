// Symbol visibility for libsparq.so: only what is marked SPARQ_API is exported.
#pragma once
#if defined(SPARQ_BUILDING_LIBRARY)
#define SPARQ_API __attribute__((visibility("default")))
#else
#define SPARQ_API
#endif
