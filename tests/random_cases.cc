#include "tests/random_cases.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <utility>
#include <vector>

namespace lossservice::testing {
namespace {

class Draw {
 public:
  Draw(uint64_t seed, DType dtype) : gen_(seed), dtype_(dtype) {}

  Tensor Normal(Shape shape, double scale = 1.0) {
    std::normal_distribution<double> d(0.0, scale);
    return Fill(std::move(shape), [&] { return d(gen_); });
  }
  Tensor Uniform(Shape shape, double lo, double hi) {
    std::uniform_real_distribution<double> d(lo, hi);
    return Fill(std::move(shape), [&] { return d(gen_); });
  }
  Tensor Signs(Shape shape) {
    std::bernoulli_distribution d(0.5);
    return Fill(std::move(shape), [&] { return d(gen_) ? 1.0 : -1.0; });
  }
  Tensor Counts(Shape shape) {
    std::poisson_distribution<int> d(2.0);
    return Fill(std::move(shape), [&] { return static_cast<double>(d(gen_)); });
  }
  Tensor Classes(Shape shape, int64_t lo, int64_t hi) {
    std::uniform_int_distribution<int64_t> d(lo, hi - 1);
    std::vector<double> v(static_cast<size_t>(NumElements(shape)));
    for (double& x : v) x = static_cast<double>(d(gen_));
    return Tensor::FromDoubles(DType::kInt64, std::move(shape), v);
  }
  std::mt19937_64& gen() { return gen_; }

 private:
  template <class F>
  Tensor Fill(Shape shape, F&& draw) {
    std::vector<double> v(static_cast<size_t>(NumElements(shape)));
    for (double& x : v) x = draw();
    return Tensor::FromDoubles(dtype_, std::move(shape), v);
  }
  std::mt19937_64 gen_;
  DType dtype_;
};

Tensor Int64s(Shape shape, const std::vector<double>& values) {
  return Tensor::FromDoubles(DType::kInt64, std::move(shape), values);
}

// log_softmax over the last dimension, in place.
void LogSoftmaxLastDim(Tensor& t) {
  std::vector<double> v = t.ToDoubles();
  const int64_t C = t.shape.back(), rows = t.numel() / C;
  for (int64_t r = 0; r < rows; ++r) {
    double* row = v.data() + r * C;
    const double m = *std::max_element(row, row + C);
    double s = 0;
    for (int64_t c = 0; c < C; ++c) s += std::exp(row[c] - m);
    for (int64_t c = 0; c < C; ++c) row[c] = (row[c] - m) - std::log(s);
  }
  t = Tensor::FromDoubles(t.dtype, t.shape, v);
}

}  // namespace

size_t OwnedRequest::bytes() const {
  size_t n = input.bytes.size();
  for (const Tensor& t : others) n += t.bytes.size();
  return n;
}

std::unique_ptr<OwnedRequest> RandomRequest(absl::string_view loss, int64_t elements,
                                            uint64_t seed, DType dtype, int64_t classes) {
  auto c = std::make_unique<OwnedRequest>();
  c->loss = std::string(loss);
  Draw draw(seed, dtype);
  LossRequest& r = c->request;
  r.reduction = Reduction::kMean;
  const int64_t C = classes;
  const int64_t N = std::max<int64_t>(1, elements / C);
  const Shape flat{elements};
  const Shape matrix{N, C};
  const auto other = [&](Tensor t) -> TensorView {
    c->others.push_back(std::move(t));
    return c->others.back().view();
  };
  if (loss == "mse" || loss == "l1" || loss == "rmse" || loss == "huber" || loss == "smooth_l1") {
    c->input = draw.Normal(flat);
    r.target = other(draw.Normal(flat));
    if (loss == "mse") r.options = MseOptions{};
    if (loss == "l1") r.options = L1Options{};
    if (loss == "rmse") r.options = RmseOptions{};
    if (loss == "huber") r.options = HuberOptions{};
    if (loss == "smooth_l1") r.options = SmoothL1Options{};
  } else if (loss == "cross_entropy" || loss == "nll") {
    c->input = draw.Normal(matrix, 2.0);
    r.target = other(draw.Classes({N}, 0, C));
    if (loss == "cross_entropy") r.options = CrossEntropyOptions{};
    if (loss == "nll") r.options = NllOptions{};
  } else if (loss == "bce") {
    c->input = draw.Uniform(flat, 0.001, 0.999);
    r.target = other(draw.Uniform(flat, 0, 1));
    r.options = BceOptions{};
  } else if (loss == "bce_with_logits") {
    c->input = draw.Normal(flat, 3.0);
    r.target = other(draw.Uniform(flat, 0, 1));
    r.options = BceWithLogitsOptions{};
  } else if (loss == "kl_div") {
    c->input = draw.Normal(flat);
    r.target = other(draw.Uniform(flat, 0, 1));
    r.options = KlDivOptions{};
  } else if (loss == "poisson_nll") {
    c->input = draw.Normal(flat);
    r.target = other(draw.Counts(flat));
    r.options = PoissonNllOptions{};
  } else if (loss == "gaussian_nll") {
    c->input = draw.Normal(flat);
    r.target = other(draw.Normal(flat));
    GaussianNllOptions o;
    o.var = other(draw.Uniform(flat, 0.1, 2.0));
    r.options = o;
  } else if (loss == "soft_margin") {
    c->input = draw.Normal(flat);
    r.target = other(draw.Signs(flat));
    r.options = SoftMarginOptions{};
  } else if (loss == "multilabel_soft_margin") {
    c->input = draw.Normal(matrix);
    r.target = other(draw.Uniform(matrix, 0, 1));
    r.options = MultiLabelSoftMarginOptions{};
  } else if (loss == "multi_margin") {
    c->input = draw.Normal(matrix);
    r.target = other(draw.Classes({N}, 0, C));
    r.options = MultiMarginOptions{};
  } else if (loss == "multilabel_margin") {
    c->input = draw.Normal(matrix);
    // Four labels per sample (when C allows), then -1.
    std::vector<double> labels(static_cast<size_t>(N * C), -1);
    std::uniform_int_distribution<int64_t> pick(0, C - 1);
    for (int64_t i = 0; i < N; ++i) {
      for (int64_t j = 0; j < std::min<int64_t>(4, C - 1); ++j) {
        labels[i * C + j] = static_cast<double>(pick(draw.gen()));
      }
    }
    r.target = other(Int64s(matrix, labels));
    r.options = MultiLabelMarginOptions{};
  } else if (loss == "hinge_embedding") {
    c->input = draw.Normal(flat);
    r.target = other(draw.Signs(flat));
    r.options = HingeEmbeddingOptions{};
  } else if (loss == "margin_ranking") {
    c->input = draw.Normal(flat);
    r.target = other(draw.Signs(flat));
    MarginRankingOptions o;
    o.input2 = other(draw.Normal(flat));
    r.options = o;
  } else if (loss == "cosine_embedding") {
    c->input = draw.Normal(matrix);
    r.target = other(draw.Signs({N}));
    CosineEmbeddingOptions o;
    o.input2 = other(draw.Normal(matrix));
    r.options = o;
  } else if (loss == "triplet_margin") {
    c->input = draw.Normal(matrix);
    TripletMarginOptions o;
    o.positive = other(draw.Normal(matrix));
    o.negative = other(draw.Normal(matrix));
    r.options = o;
  } else if (loss == "ctc") {
    // log_probs (T, B = 4, K = 32); targets of up to 16 labels, none blank.
    const int64_t B = 4, K = 32, T = std::max<int64_t>(2, elements / (B * K));
    const int64_t S = std::min<int64_t>(16, T / 2);
    c->input = draw.Normal({T, B, K});
    LogSoftmaxLastDim(c->input);
    r.target = other(draw.Classes({B, S}, 1, K));
    CtcOptions o;
    o.input_lengths = other(Int64s({B}, std::vector<double>(B, static_cast<double>(T))));
    o.target_lengths = other(Int64s({B}, std::vector<double>(B, static_cast<double>(S))));
    r.options = o;
  } else {
    return nullptr;
  }
  r.input = c->input.view();
  return c;
}

}  // namespace lossservice::testing
