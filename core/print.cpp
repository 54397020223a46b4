// Printing like PyTorch's repr: tensor([...], dtype=..., device=...), summarised above 1000 elements.
#include <cmath>
#include <cstdio>
#include <sstream>

#include "core/tensor.h"

namespace ht {

namespace {
struct Printer {
  std::vector<double> v;      // floating and bool values
  std::vector<int64_t> ints;  // integral values, exact (a double would round int64 beyond 2^53)
  Shape sizes;
  bool floating, summarize;
  bool boolean = false;  // printed True/False, as Python's bools
  int width = 1;
  bool all_int = true;  // every float is integral: print "1." like PyTorch
  bool sci = false;

  std::string fmt_at(size_t i) const {
    if (!floating && !boolean) return std::to_string(ints[i]);
    return fmt(v[i]);
  }
  std::string fmt(double x) const {
    char buf[64];
    if (boolean) std::snprintf(buf, sizeof buf, "%s", x != 0 ? "True" : "False");
    else if (std::isnan(x)) std::snprintf(buf, sizeof buf, "nan");
    else if (std::isinf(x)) std::snprintf(buf, sizeof buf, "%sinf", x < 0 ? "-" : "");
    else if (sci) std::snprintf(buf, sizeof buf, "%.4e", x);
    else if (all_int) std::snprintf(buf, sizeof buf, "%.0f.", x);
    else std::snprintf(buf, sizeof buf, "%.4f", x);
    return buf;
  }

  void rec(std::ostringstream& os, size_t dim, int64_t base, int64_t stride, int indent) const {
    if (dim == sizes.size()) {
      std::string s = fmt_at(size_t(base));
      os << std::string(size_t(std::max<int>(0, width - int(s.size()))), ' ') << s;
      return;
    }
    int64_t n = sizes[dim];
    int64_t inner = stride / std::max<int64_t>(n, 1);
    os << '[';
    for (int64_t i = 0; i < n; ++i) {
      if (summarize && n > 6 && i == 3) {
        os << "...";
        os << (dim + 1 == sizes.size() ? ", " : ",\n" + std::string(size_t(indent + 1), ' '));
        i = n - 3;
      }
      rec(os, dim + 1, base + i * inner, inner, indent + 1);
      if (i + 1 < n) {
        if (dim + 1 == sizes.size()) os << ", ";
        else os << ',' << std::string(sizes.size() - dim - 1, '\n') << std::string(size_t(indent + 1), ' ');
      }
    }
    os << ']';
  }
};
}  // namespace

std::string Tensor::str() const {
  if (!defined()) return "tensor(undefined)";
  Printer p;
  p.sizes = sizes();
  p.floating = is_floating_point();
  p.boolean = dtype() == kBool;
  if (p.floating || p.boolean) p.v = to_vector<double>();
  else p.ints = to_vector<int64_t>();
  p.summarize = numel() > 1000;
  double amax = 0;
  for (double x : p.v) {
    if (!std::isfinite(x)) continue;
    p.all_int = p.all_int && x == std::floor(x);
    amax = std::max(amax, std::fabs(x));
  }
  p.sci = p.floating && (amax >= 1e8 || (amax > 0 && amax < 1e-4));
  for (size_t i = 0; i < size_t(numel()); ++i) p.width = std::max(p.width, int(p.fmt_at(i).size()));
  std::ostringstream os;
  os << "tensor(";
  if (numel() == 0) os << "[]";
  else p.rec(os, 0, 0, numel(), 7);
  if (numel() == 0 && dim() != 1) os << ", size=" << shape_str(sizes());
  if (device().is_cuda()) os << ", device='" << device().str() << "'";
  if (dtype() != kFloat32 && dtype() != kInt64 && dtype() != kBool) os << ", dtype=torch." << dtype_name(dtype());
  if (grad_fn()) os << ", grad_fn=<" << grad_fn_name() << ">";
  else if (requires_grad()) os << ", requires_grad=True";
  os << ')';
  return os.str();
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << t.str(); }

}  // namespace ht
