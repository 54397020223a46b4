// The umbrella header: #include <halftorch/halftorch.h> brings in the whole public API.
#pragma once
#include "core/autograd.h"
#include "core/device.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/ops.h"
#include "core/random.h"
#include "core/tensor.h"
