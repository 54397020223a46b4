// Everything of ht::optim and ht::amp in one include: Adam, AdamW, SGD, the LR schedulers, GradScaler, autocast.
#pragma once
#include "halftorch/optim/adam.h"
#include "halftorch/core/autocast.h"
#include "halftorch/optim/grad_scaler.h"
#include "halftorch/optim/lr_scheduler.h"
#include "halftorch/optim/optimizer.h"
#include "halftorch/optim/sgd.h"
