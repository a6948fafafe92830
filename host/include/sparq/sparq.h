// Umbrella header: the whole public API of sparq.
#pragma once
#include "sparq/attention.h"
#include "sparq/context.h"
#include "sparq/diffusion.h"
#include "sparq/error.h"
#include "sparq/int8_attention.h"
#include "sparq/mamba.h"
#include "sparq/mminference.h"
#include "sparq/nvfp4.h"
#include "sparq/quest.h"
#include "sparq/support.h"
#include "sparq/tensor.h"
