// Everything of ht::optim and ht::amp in one include: Adam, AdamW, SGD, the LR schedulers, GradScaler, autocast.
#pragma once
#include "optim/adam.h"
#include "core/autocast.h"
#include "optim/grad_scaler.h"
#include "optim/lr_scheduler.h"
#include "optim/optimizer.h"
#include "optim/sgd.h"
