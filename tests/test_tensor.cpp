// Tensor basics: factories, views sharing storage, copies and casts between all dtypes, printing, errors.
#include "tests/helpers.h"

using namespace ht;
using testing::check_equal;

TEST_CASE("factories fill as asked on every device", "[cuda]") {
  for (Device dev : testing::test_devices()) {
    REQUIRE(zeros({2, 3}, {.device = dev}).to_vector<float>() == std::vector<float>(6, 0.f));
    REQUIRE(ones({4}, {.dtype = kInt32, .device = dev}).to_vector<int32_t>() == std::vector<int32_t>(4, 1));
    REQUIRE(full({2}, 2.5, {.dtype = kFloat16, .device = dev}).to_vector<float>() == std::vector<float>{2.5f, 2.5f});
    REQUIRE(arange(5, {.dtype = kInt64, .device = dev}).to_vector<int64_t>() == std::vector<int64_t>{0, 1, 2, 3, 4});
    REQUIRE(arange(0.0, 1.0, 0.25, {.device = dev}).to_vector<float>() == std::vector<float>{0, 0.25f, 0.5f, 0.75f});
    Tensor e = empty({0, 3}, {.device = dev});
    REQUIRE(e.numel() == 0);
    REQUIRE(e.sizes() == Shape{0, 3});
  }
}

TEST_CASE("seeded random draws are reproducible, device independent and well distributed", "[cuda]") {
  Generator g1(7), g2(7);
  Tensor a = rand({1000}, g1), b = rand({1000}, g2);
  check_equal(a, b);
  Tensor n = randn({200000}, g1);
  REQUIRE(std::fabs(mean(n).item<double>()) < 0.01);
  REQUIRE(std::fabs(mean(square(n)).item<double>() - 1.0) < 0.02);
  std::vector<float> u = rand({100000}, g1).to_vector<float>();
  REQUIRE(*std::min_element(u.begin(), u.end()) >= 0.f);
  REQUIRE(*std::max_element(u.begin(), u.end()) < 1.f);
  for (Device dev : testing::test_devices()) {
    Generator g3(7);
    check_equal(rand({1000}, g3, {.device = dev}), a, "same stream on " + dev.str());
  }
  manual_seed(3);
  Tensor c = randn({5});
  manual_seed(3);
  check_equal(randn({5}), c);
}

TEST_CASE("views share storage and index like PyTorch's", "[cuda]") {
  for (Device dev : testing::test_devices()) {
    Tensor x = arange(0.0, 24.0, 1.0, {.device = dev}).view({2, 3, 4});
    REQUIRE(x.is_contiguous());
    Tensor p = x.permute({2, 0, 1});
    REQUIRE(p.sizes() == Shape{4, 2, 3});
    REQUIRE(p.strides() == Shape{1, 12, 4});
    REQUIRE_FALSE(p.is_contiguous());
    REQUIRE(p.storage() == x.storage());
    REQUIRE(p.contiguous().to_vector<float>()[1] == 4.f);  // p[0][0][1] = x[0][1][0]
    Tensor t = x.transpose(0, 2);
    REQUIRE(t.sizes() == Shape{4, 3, 2});
    REQUIRE(x.select(1, 2).to_vector<float>() == std::vector<float>{8, 9, 10, 11, 20, 21, 22, 23});
    REQUIRE(x.slice(2, 1, 4, 2).to_vector<float>() == std::vector<float>{1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23});
    REQUIRE(x.narrow(0, 1, 1).storage_offset() == 12);
    REQUIRE(x.flatten(1).sizes() == Shape{2, 12});
    REQUIRE(x.reshape({-1, 6}).sizes() == Shape{4, 6});
    REQUIRE(x.unsqueeze(1).sizes() == Shape{2, 1, 3, 4});
    REQUIRE(x.unsqueeze(-1).sizes() == Shape{2, 3, 4, 1});
    REQUIRE(x.unsqueeze(1).squeeze(1).sizes() == Shape{2, 3, 4});
    REQUIRE(ones({1, 3, 1}).squeeze().sizes() == Shape{3});
    Tensor col = arange(0.0, 3.0, 1.0, {.device = dev}).view({3, 1});
    Tensor e = col.expand({3, 4});
    REQUIRE(e.strides() == Shape{1, 0});
    REQUIRE(e.to_vector<float>() == std::vector<float>{0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2});
    // a view of a permuted tensor cannot always be made: reshape copies, view refuses with a clear message
    REQUIRE_THROWS_WITH(p.view({8, 3}), Catch::Contains("use reshape instead"));
    Tensor r = p.reshape({8, 3});
    REQUIRE(r.storage() != x.storage());
    REQUIRE(r.to_vector<float>() == p.contiguous().to_vector<float>());
    // writes through a view land in the base
    x.select(0, 1).select(0, 0).fill_(-1);
    REQUIRE(x.to_vector<float>()[12] == -1.f);
  }
}

TEST_CASE("copies and casts between all dtypes and devices", "[cuda]") {
  const DType all[] = {kFloat32, kFloat16, kBFloat16, kFloat64, kInt64, kInt32, kInt16, kInt8, kUInt8, kBool};
  std::vector<double> vals{0, 1, 2, 3, 7, 100, 0, 1};
  for (Device dev : testing::test_devices()) {
    for (DType from : all) {
      Tensor src = from_vector(vals, {2, 4}).to(dev, from);
      for (DType to : all) {
        Tensor dst = src.to(to);
        REQUIRE(dst.dtype() == to);
        std::vector<double> want = vals;
        if (from == kBool || to == kBool)
          for (double& w : want) w = w != 0;
        check_equal(dst.cpu(), from_vector(want, {2, 4}), std::string(dtype_name(from)) + " -> " + dtype_name(to));
      }
    }
    // strided destination and source, across dtypes
    Tensor a = arange(0.0, 12.0, 1.0, {.device = dev}).view({3, 4});
    Tensor b = zeros({4, 3}, {.dtype = kFloat16, .device = dev});
    b.t().copy_(a);
    check_equal(b.cpu(), a.t().contiguous().cpu());
    // broadcasting copy
    Tensor c = zeros({2, 3}, {.device = dev});
    c.copy_(tensor<float>({1, 2, 3}).to(dev));
    REQUIRE(c.to_vector<float>() == std::vector<float>{1, 2, 3, 1, 2, 3});
  }
  REQUIRE(full({}, 300.0).to(kUInt8).item<int64_t>() == int64_t(uint8_t(300)));
  REQUIRE(full({}, 2.7).to(kInt32).item<int32_t>() == 2);  // truncation toward zero
  REQUIRE(full({}, -2.7).to(kInt32).item<int32_t>() == -2);
}

TEST_CASE("item, data_ptr and to_vector check their arguments") {
  Tensor x = ones({2});
  REQUIRE_THROWS_WITH(x.item<float>(), Catch::Contains("2 elements cannot be converted to a scalar"));
  REQUIRE_THROWS_WITH(x.data_ptr<double>(), Catch::Contains("has dtype float32, asked for float64"));
  REQUIRE(x.data_ptr<float>()[1] == 1.f);
  REQUIRE(full({1, 1}, 4.0).item<double>() == 4.0);
}

TEST_CASE("printing follows PyTorch's repr") {
  REQUIRE(tensor<float>({1, 2, 3}).str() == "tensor([1., 2., 3.])");
  REQUIRE(tensor<int64_t>({1, 2}).str() == "tensor([1, 2])");
  REQUIRE(arange(0.0, 4.0, 1.0).view({2, 2}).str() == "tensor([[0., 1.],\n        [2., 3.]])");
  REQUIRE(tensor<float>({0.5f, 1.25f}).half().str() == "tensor([0.5000, 1.2500], dtype=torch.float16)");
  REQUIRE(ones({2}, {.requires_grad = true}).str() == "tensor([1., 1.], requires_grad=True)");
  REQUIRE(full({}, 3.0).str() == "tensor(3.)");
  REQUIRE(zeros({0}).str() == "tensor([])");
  std::string big = arange(0.0, 2000.0, 1.0).str();
  REQUIRE(big.find("...") != std::string::npos);
}

TEST_CASE("bad shapes, dims and devices give clear errors") {
  Tensor x = ones({2, 3});
  REQUIRE_THROWS_WITH(x.view({4, 2}), Catch::Contains("[view] shape [4, 2] is invalid for input of size 6"));
  REQUIRE_THROWS_WITH(x.permute({0}), Catch::Contains("[permute] expected 2 dims"));
  REQUIRE_THROWS_WITH(x.select(2, 0), Catch::Contains("dim 2 out of range for a 2-d tensor"));
  REQUIRE_THROWS_WITH(x.expand({4, 3}), Catch::Contains("must match the existing size 2"));
  REQUIRE_THROWS_WITH(empty({-1}), Catch::Contains("negative dimension"));
  REQUIRE_THROWS_WITH(Device("gpu"), Catch::Contains("expected 'cpu', 'cuda' or 'cuda:N'"));
  REQUIRE(Device("cuda:1").index == 1);
  if (!cuda::is_available()) {
    REQUIRE_THROWS_WITH(x.to(kCUDA), Catch::Contains("[cuda]"));
  }
  REQUIRE_THROWS_WITH(ones({2}, {.dtype = kInt64}).set_requires_grad(true),
                      Catch::Contains("only floating-point tensors can require gradients"));
}
