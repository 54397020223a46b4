// Readers for the image datasets the examples use: Fashion-MNIST (IDX files, gzip or plain) and CIFAR-10 (the
// binary version), giving uint8 images [N, C, H, W] and int64 labels, plus per-channel normalisation.
#pragma once
#include <string>
#include <vector>

#include "halftorch/core/tensor.h"

namespace ht::io {

struct ImageDataset {
  Tensor images;  // uint8 [N, C, H, W], CPU
  Tensor labels;  // int64 [N], CPU
};

// {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] from `dir` (Debian's dataset-fashion-mnist layout).
ImageDataset load_fashion_mnist(const std::string& dir, bool train = false);
// data_batch_1..5.bin or test_batch.bin from `dir` (or from `dir`/cifar-10-batches-bin).
ImageDataset load_cifar10(const std::string& dir, bool train = false);

// float32 [N, C, H, W]: (pixel / 255 - mean[c]) / std[c].
Tensor normalize_images(const Tensor& images, const std::vector<double>& mean, const std::vector<double>& std);

}  // namespace ht::io
