// bench_core: every loss of the core against libtorch's own implementation,
// in the same process, on the same data, at one thread and at all cores.
//
//   bench_core [--benchmark_filter=REGEX] [--benchmark_min_time=S]
//              [--benchmark_repetitions=N] [--out=FILE.json] [--no_avx512]
//              [--our_target=AVX3|AVX2|SSE4|SCALAR]
//
// --our_target runs our kernels on that Highway target instead of the best
// one this CPU supports (the targets' own speeds, side by side with libtorch).
//
// Cases are "<loss>/<size>/<fwd|grad>/t<threads>": every loss at 1K, 64K and
// 1M input elements (reduction mean, forward and forward + gradient),
// cross_entropy and nll at [64, 10], [4096, 1000] and [512, 32000], and mse
// of 16 floats. Each case runs up to four benchmarks: ours (EvaluateLoss with
// a preallocated output and, for t2, a ThreadPool), torch (the ATen loss;
// forward + gradient through autograd, as a libtorch user calls it), read
// (a plain AVX2 loop that only reads the case's input bytes: the memory
// bandwidth at that size; run once per loss and size, at fwd/t1) and, for
// mse and l1, fused (a plain fused AVX2 loop of the same loss over the same
// data).
//
// libtorch reads ATEN_CPU_CAPABILITY once, at start-up, so the torch
// benchmarks are run a second time in a child process (this binary again,
// with --torch_only and ATEN_CPU_CAPABILITY=avx512); the table and the JSON
// count each ratio against the faster of the two dispatches. The table shows
// the best of the repetitions; the JSON has every repetition's time.
#include <immintrin.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <ATen/Version.h>
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include <benchmark/benchmark.h>
#include <hwy/targets.h>
#include <torch/torch.h>

#include "core/loss.h"
#include "core/parallel.h"
#include "core/tensor.h"
#include "nlohmann/json.hpp"
#include "tests/random_cases.h"

namespace lossservice::bench {
namespace {

using Json = nlohmann::json;

// ---- cases ---------------------------------------------------------------------

// torch's view of a tensor (from_blob: the same bytes, no copy).
torch::Tensor ToTorch(const Tensor& t) {
  std::vector<int64_t> shape(t.shape.begin(), t.shape.end());
  const auto dtype = t.dtype == DType::kFloat32   ? torch::kFloat32
                     : t.dtype == DType::kFloat64 ? torch::kFloat64
                     : t.dtype == DType::kInt64   ? torch::kInt64
                                                  : torch::kInt32;
  return torch::from_blob(const_cast<std::byte*>(t.bytes.data()), shape,
                          torch::TensorOptions().dtype(dtype));
}

using TorchFn = std::function<torch::Tensor(const torch::Tensor& input)>;

// One benchmark case: the data (tests/random_cases), our request and the
// torch call on the same bytes.
struct Case {
  std::string name;
  bool grad = false;
  std::unique_ptr<testing::OwnedRequest> data;
  LossRequest request;
  TorchFn torch_loss;  // the loss (reduction mean) of torch's input
  size_t read_bytes = 0;
  size_t bytes() const { return read_bytes + (grad ? data->input.bytes.size() : 0); }
};

// Holds the outputs; sized by the first call, reused afterwards.
class FixedAllocator final : public OutputAllocator {
 public:
  void* Allocate(Slot slot, DType dtype, absl::Span<const int64_t> shape) override {
    auto& buf = slot == Slot::kLoss ? loss_ : slot == Slot::kGrad ? grad_ : out_;
    const size_t need = static_cast<size_t>(NumElements(shape)) * DTypeSize(dtype);
    if (buf.size() < need) buf.resize(need);
    return buf.data();
  }

 private:
  std::vector<std::byte> loss_, grad_, out_;
};

constexpr int64_t kK = 1024;

struct Size {
  std::string label;
  int64_t elements;
};

const std::vector<Size>& Sizes() {
  static const std::vector<Size> sizes = {{"1K", kK}, {"64K", 64 * kK}, {"1M", kK * kK}};
  return sizes;
}

// libtorch's call for `loss`; t(i) is torch's others[i] of
// testing::OwnedRequest (the target first, then the option tensors).
TorchFn TorchLoss(const std::string& loss, std::function<torch::Tensor(size_t)> t) {
  namespace F = torch::nn::functional;
  if (loss == "mse") return [=](const torch::Tensor& x) { return at::mse_loss(x, t(0)); };
  if (loss == "l1") return [=](const torch::Tensor& x) { return at::l1_loss(x, t(0)); };
  if (loss == "rmse") {
    return [=](const torch::Tensor& x) { return at::sqrt(at::mse_loss(x, t(0)) + 1e-7); };
  }
  if (loss == "huber") {
    return [=](const torch::Tensor& x) { return at::huber_loss(x, t(0), at::Reduction::Mean, 1.0); };
  }
  if (loss == "smooth_l1") {
    return [=](const torch::Tensor& x) {
      return at::smooth_l1_loss(x, t(0), at::Reduction::Mean, 1.0);
    };
  }
  if (loss == "cross_entropy") {
    return [=](const torch::Tensor& x) { return at::cross_entropy_loss(x, t(0)); };
  }
  if (loss == "nll") return [=](const torch::Tensor& x) { return at::nll_loss(x, t(0)); };
  if (loss == "bce") {
    return [=](const torch::Tensor& x) { return at::binary_cross_entropy(x, t(0)); };
  }
  if (loss == "bce_with_logits") {
    return [=](const torch::Tensor& x) { return at::binary_cross_entropy_with_logits(x, t(0)); };
  }
  if (loss == "kl_div") return [=](const torch::Tensor& x) { return at::kl_div(x, t(0)); };
  if (loss == "poisson_nll") {
    return [=](const torch::Tensor& x) {
      return at::poisson_nll_loss(x, t(0), true, false, 1e-8, at::Reduction::Mean);
    };
  }
  if (loss == "gaussian_nll") {
    // torch.nn.functional.gaussian_nll_loss is Python only: the same ops.
    return [=](const torch::Tensor& x) {
      torch::Tensor var = t(1).clone();
      {
        torch::NoGradGuard no_grad;
        var.clamp_(1e-6);
      }
      return (0.5 * (torch::log(var) + (x - t(0)).pow(2) / var)).mean();
    };
  }
  if (loss == "soft_margin") {
    return [=](const torch::Tensor& x) { return at::soft_margin_loss(x, t(0)); };
  }
  if (loss == "multilabel_soft_margin") {
    return [=](const torch::Tensor& x) { return F::multilabel_soft_margin_loss(x, t(0)); };
  }
  if (loss == "multi_margin") {
    return [=](const torch::Tensor& x) { return at::multi_margin_loss(x, t(0)); };
  }
  if (loss == "multilabel_margin") {
    return [=](const torch::Tensor& x) { return at::multilabel_margin_loss(x, t(0)); };
  }
  if (loss == "hinge_embedding") {
    return [=](const torch::Tensor& x) { return at::hinge_embedding_loss(x, t(0)); };
  }
  if (loss == "margin_ranking") {
    return [=](const torch::Tensor& x) { return at::margin_ranking_loss(x, t(1), t(0)); };
  }
  if (loss == "cosine_embedding") {
    return [=](const torch::Tensor& x) { return at::cosine_embedding_loss(x, t(1), t(0)); };
  }
  if (loss == "triplet_margin") {
    return [=](const torch::Tensor& x) { return at::triplet_margin_loss(x, t(0), t(1)); };
  }
  if (loss == "ctc") {
    return [=](const torch::Tensor& x) { return at::ctc_loss(x, t(0), t(1), t(2)); };
  }
  return nullptr;
}

// The case `loss` at `elements` input elements: rows of `classes` for the
// row-wise losses (128 unless given).
std::unique_ptr<Case> MakeCase(const std::string& loss, int64_t elements, int64_t classes) {
  auto c = std::make_unique<Case>();
  c->data = testing::RandomRequest(loss, elements, std::hash<std::string>{}(loss) ^ elements,
                                   DType::kFloat32, classes > 0 ? classes : 128);
  c->request = c->data->request;
  const testing::OwnedRequest* d = c->data.get();
  c->torch_loss = TorchLoss(loss, [d](size_t i) { return ToTorch(d->others[i]); });
  c->read_bytes = c->data->bytes();
  return c;
}

// ---- the plain loops -------------------------------------------------------------

// Reads every byte of `d` (32-bit integer sums, four accumulators).
__attribute__((target("avx2"))) int64_t ReadAll(const Tensor& d) {
  const auto* p = reinterpret_cast<const int32_t*>(d.bytes.data());
  const size_t n = d.bytes.size() / 4;
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    a0 = _mm256_add_epi32(a0, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i)));
    a1 = _mm256_add_epi32(a1, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 8)));
    a2 = _mm256_add_epi32(a2, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 16)));
    a3 = _mm256_add_epi32(a3, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 24)));
  }
  int64_t s = 0;
  for (; i < n; ++i) s += p[i];
  alignas(32) int32_t lanes[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes),
                     _mm256_add_epi32(_mm256_add_epi32(a0, a1), _mm256_add_epi32(a2, a3)));
  for (int32_t v : lanes) s += v;
  return s;
}

__attribute__((target("avx2,fma"))) float HorizontalSum(__m256 v) {
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, v);
  float s = 0;
  for (float x : lanes) s += x;
  return s;
}

// mean((x - y)^2) or mean(|x - y|), and optionally its gradient: one pass,
// four float accumulators, AVX2.
template <bool kL1>
__attribute__((target("avx2,fma"))) float FusedLoop(const float* x, const float* y, float* grad,
                                                    size_t n) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  const __m256 scale = _mm256_set1_ps((kL1 ? 1.0f : 2.0f) / static_cast<float>(n));
  __m256 a[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                 _mm256_setzero_ps()};
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    for (int k = 0; k < 4; ++k) {
      const __m256 d =
          _mm256_sub_ps(_mm256_loadu_ps(x + i + 8 * k), _mm256_loadu_ps(y + i + 8 * k));
      if (kL1) {
        a[k] = _mm256_add_ps(a[k], _mm256_andnot_ps(sign, d));
        if (grad) {
          const __m256 one = _mm256_or_ps(_mm256_and_ps(d, sign), _mm256_set1_ps(1.0f));
          _mm256_storeu_ps(grad + i + 8 * k, _mm256_mul_ps(one, scale));
        }
      } else {
        a[k] = _mm256_fmadd_ps(d, d, a[k]);
        if (grad) _mm256_storeu_ps(grad + i + 8 * k, _mm256_mul_ps(d, scale));
      }
    }
  }
  float s = HorizontalSum(_mm256_add_ps(_mm256_add_ps(a[0], a[1]), _mm256_add_ps(a[2], a[3])));
  for (; i < n; ++i) {
    const float d = x[i] - y[i];
    s += kL1 ? std::abs(d) : d * d;
    if (grad) grad[i] = (kL1 ? (d < 0 ? -1.0f : 1.0f) : d) * scale[0];
  }
  return s / static_cast<float>(n);
}

// ---- the benchmarks ------------------------------------------------------------------

struct CaseSpec {
  std::string name;
  std::string loss;
  int64_t elements;
  int64_t classes = 0;  // 0: the default rows of 128
  bool grad;
  int threads;
};

// Bytes of every case built: {inputs read, inputs read + gradient written}.
std::map<std::string, std::pair<size_t, size_t>>& CaseBytes() {
  static auto* bytes = new std::map<std::string, std::pair<size_t, size_t>>();
  return *bytes;
}

// The case being measured; rebuilt when the next benchmark names another.
Case& CurrentCase(const CaseSpec& spec) {
  static std::unique_ptr<Case> current;
  if (!current || current->name != spec.name) {
    current.reset();
    current = MakeCase(spec.loss, spec.elements, spec.classes);
    current->name = spec.name;
    current->grad = spec.grad;
    current->request.compute_grad = spec.grad;
    CaseBytes()[spec.name] = {current->read_bytes, current->bytes()};
  }
  return *current;
}

ThreadPool* PoolFor(int threads) {
  static auto* pools = new std::map<int, std::unique_ptr<ThreadPool>>();
  if (threads <= 1) return nullptr;
  auto& p = (*pools)[threads];
  if (!p) p = std::make_unique<ThreadPool>(threads);
  return p.get();
}

void SetBytes(benchmark::State& state, size_t bytes) {
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(bytes));
}

void BM_Ours(benchmark::State& state, const CaseSpec& spec) {
  Case& c = CurrentCase(spec);
  FixedAllocator out;
  const ComputeContext ctx{.pool = PoolFor(spec.threads)};
  if (absl::Status s = EvaluateLoss(c.request, out, ctx); !s.ok()) {
    state.SkipWithError(std::string(s.message()).c_str());
    return;
  }
  for (auto _ : state) {
    absl::Status s = EvaluateLoss(c.request, out, ctx);
    benchmark::DoNotOptimize(s);
    benchmark::ClobberMemory();
  }
  SetBytes(state, c.bytes());
}

void BM_Torch(benchmark::State& state, const CaseSpec& spec) {
  Case& c = CurrentCase(spec);
  at::set_num_threads(spec.threads);
  const torch::Tensor x = ToTorch(c.data->input);
  if (spec.grad) {
    const torch::Tensor leaf = x.detach().requires_grad_(true);
    for (auto _ : state) {
      torch::Tensor loss = c.torch_loss(leaf);
      auto grads = torch::autograd::grad({loss}, {leaf});
      benchmark::DoNotOptimize(grads[0].data_ptr());
    }
  } else {
    torch::NoGradGuard no_grad;
    for (auto _ : state) {
      torch::Tensor loss = c.torch_loss(x);
      benchmark::DoNotOptimize(loss.data_ptr());
    }
  }
  SetBytes(state, c.bytes());
}

void BM_Read(benchmark::State& state, const CaseSpec& spec) {
  Case& c = CurrentCase(spec);
  for (auto _ : state) {
    int64_t s = ReadAll(c.data->input);
    for (const Tensor& d : c.data->others) s += ReadAll(d);
    benchmark::DoNotOptimize(s);
  }
  SetBytes(state, c.read_bytes);
}

void BM_Fused(benchmark::State& state, const CaseSpec& spec) {
  Case& c = CurrentCase(spec);
  const float* x = c.data->input.data_as<float>();
  const float* y = c.data->others[0].data_as<float>();
  const size_t n = static_cast<size_t>(c.data->input.numel());
  std::vector<float> grad(spec.grad ? n : 0);
  for (auto _ : state) {
    const float v = spec.loss == "l1" ? FusedLoop<true>(x, y, spec.grad ? grad.data() : nullptr, n)
                                      : FusedLoop<false>(x, y, spec.grad ? grad.data() : nullptr, n);
    benchmark::DoNotOptimize(v);
    benchmark::ClobberMemory();
  }
  SetBytes(state, c.bytes());
}

const std::vector<std::string>& LossNames() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (const LossInfo& info : AllLosses()) out.emplace_back(info.name);
    return out;
  }();
  return names;
}

std::vector<CaseSpec> AllCases() {
  std::vector<CaseSpec> out;
  const int all = static_cast<int>(std::max(2u, std::thread::hardware_concurrency()));
  for (int threads : {1, all}) {
    for (bool grad : {false, true}) {
      const std::string mode = grad ? "grad" : "fwd";
      const std::string t = absl::StrCat("t", threads);
      for (const std::string& loss : LossNames()) {
        for (const Size& s : Sizes()) {
          out.push_back({absl::StrCat(loss, "/", s.label, "/", mode, "/", t), loss, s.elements, 0,
                         grad, threads});
        }
      }
      for (const std::string loss : {"cross_entropy", "nll"}) {
        for (auto [n, c] : {std::pair<int64_t, int64_t>{64, 10}, {4096, 1000}, {512, 32000}}) {
          out.push_back({absl::StrCat(loss, "/", n, "x", c, "/", mode, "/", t), loss, n * c, c,
                         grad, threads});
        }
      }
      out.push_back({absl::StrCat("mse/16/", mode, "/", t), "mse", 16, 0, grad, threads});
    }
  }
  return out;
}

// The case whose read benchmark measures spec's input bytes: the same loss
// and size, forward, one thread.
std::string ReadCaseName(const CaseSpec& spec) {
  const size_t size_end = spec.name.find('/', spec.loss.size() + 1);
  return absl::StrCat(spec.name.substr(0, size_end), "/fwd/t1");
}

void Register(bool torch_only) {
  for (const CaseSpec& spec : AllCases()) {
    const auto reg = [&](const char* impl, void (*fn)(benchmark::State&, const CaseSpec&)) {
      benchmark::RegisterBenchmark((spec.name + "/" + impl).c_str(), fn, spec)->UseRealTime();
    };
    if (!torch_only) reg("ours", BM_Ours);
    reg("torch", BM_Torch);
    if (torch_only) continue;
    // The read loop depends only on the input bytes: once per loss and size
    // (at fwd/t1), its figure shown beside the grad and all-cores rows too.
    if (ReadCaseName(spec) == spec.name) reg("read", BM_Read);
    if ((spec.loss == "mse" || spec.loss == "l1") && spec.elements >= 1024) reg("fused", BM_Fused);
  }
}

// ---- collecting and reporting ---------------------------------------------------------

// Every run's time per iteration (ns), by "case/impl".
class Collector : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& run : runs) {
      if (run.error_occurred || run.run_type != Run::RT_Iteration) continue;
      std::string name = run.benchmark_name();
      if (const size_t at = name.find("/real_time"); at != std::string::npos) name.erase(at);
      times[name].push_back(run.GetAdjustedRealTime() *
                                            (run.time_unit == benchmark::kNanosecond ? 1.0
                                             : run.time_unit == benchmark::kMicrosecond ? 1e3
                                             : run.time_unit == benchmark::kMillisecond ? 1e6
                                                                                        : 1e9));
    }
    ConsoleReporter::ReportRuns(runs);
  }
  std::map<std::string, std::vector<double>> times;
};

// What libtorch dispatches to in this process, as at::show_config() says
// ("CPU capability usage: AVX2"), in lower case.
std::string CapabilityName() {
  const std::string config = at::show_config();
  const std::string key = "CPU capability usage: ";
  const size_t at = config.find(key);
  if (at == std::string::npos) return "unknown";
  std::string name = config.substr(at + key.size(), config.find('\n', at) - at - key.size());
  for (char& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return name;
}

// Runs this binary again with `args` and ATEN_CPU_CAPABILITY=avx512; returns
// the JSON it writes, or null.
Json RunAvx512Child(const std::vector<std::string>& args) {
  char path[4096];
  const ssize_t len = readlink("/proc/self/exe", path, sizeof(path) - 1);
  if (len <= 0) return nullptr;
  path[len] = 0;
  char tmpl[] = "/tmp/bench_core_avx512_XXXXXX";
  const int fd = mkstemp(tmpl);
  if (fd < 0) return nullptr;
  close(fd);
  std::vector<std::string> argv_s = {path, "--torch_only", std::string("--out=") + tmpl};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_s;
  for (char** e = environ; *e; ++e) {
    if (std::strncmp(*e, "ATEN_CPU_CAPABILITY=", 20) != 0) env_s.emplace_back(*e);
  }
  env_s.emplace_back("ATEN_CPU_CAPABILITY=avx512");
  std::vector<char*> envp;
  for (std::string& e : env_s) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::fprintf(stderr, "bench_core: libtorch with ATEN_CPU_CAPABILITY=avx512 (child process)\n");
  pid_t pid;
  if (posix_spawn(&pid, path, nullptr, nullptr, argv.data(), envp.data()) != 0) return nullptr;
  int status = 0;
  waitpid(pid, &status, 0);
  std::ifstream in(tmpl);
  Json j = Json::parse(in, nullptr, false);
  std::remove(tmpl);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || j.is_discarded()) return nullptr;
  return j;
}

double Best(const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); }
double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

std::string Fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), f, v);
  return buf;
}

std::string TimeString(double ns) {
  if (ns < 1e3) return Fmt("%.0f ns", ns);
  if (ns < 1e6) return Fmt("%.1f us", ns / 1e3);
  return Fmt("%.2f ms", ns / 1e6);
}

int Main(int argc, char** argv) {
  std::string out_path = "bench_core.json";
  bool torch_only = false, avx512 = true;
  std::vector<std::string> passthrough;  // benchmark flags for the child
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--out=", 0) == 0) {
      out_path = a.substr(6);
    } else if (a == "--torch_only") {
      torch_only = true;
    } else if (a == "--no_avx512") {
      avx512 = false;
    } else if (a.rfind("--our_target=", 0) == 0) {
      int64_t chosen = 0;
      for (int64_t t : hwy::SupportedAndGeneratedTargets()) {
        if (absl::EqualsIgnoreCase(hwy::TargetName(t), a.substr(13))) chosen = t;
      }
      if (chosen == 0) {
        std::fprintf(stderr, "bench_core: %s: not a target compiled and supported here\n",
                     a.c_str());
        return 2;
      }
      hwy::SetSupportedTargetsForTest(chosen);
    } else {
      if (i > 0 && a.rfind("--benchmark_", 0) == 0 && a.rfind("--benchmark_out", 0) != 0) {
        passthrough.push_back(a);
      }
      args.push_back(argv[i]);
    }
  }
  int bargc = static_cast<int>(args.size());
  benchmark::Initialize(&bargc, args.data());
  if (!torch_only && std::getenv("ATEN_CPU_CAPABILITY") != nullptr) {
    std::fprintf(stderr, "bench_core: unset ATEN_CPU_CAPABILITY (the child sets avx512)\n");
    return 2;
  }
  Register(torch_only);
  Collector collector;
  benchmark::RunSpecifiedBenchmarks(&collector);

  Json result;
  result["torch_capability"] = CapabilityName();
  result["torch_version"] = std::to_string(TORCH_VERSION_MAJOR) + "." +
                            std::to_string(TORCH_VERSION_MINOR) + "." +
                            std::to_string(TORCH_VERSION_PATCH);
  result["times_ns"] = collector.times;
  if (torch_only) {
    std::ofstream(out_path) << result.dump();
    return 0;
  }
  Json child = avx512 ? RunAvx512Child(passthrough) : Json(nullptr);
  if (avx512 && child.is_null()) std::fprintf(stderr, "bench_core: the avx512 child failed\n");
  if (!child.is_null() && child.value("torch_capability", "") != "avx512") {
    std::fprintf(stderr, "bench_core: the child ran libtorch at %s, not avx512\n",
                 child.value("torch_capability", "?").c_str());
  }

  // One row per case: best of the repetitions.
  Json cases = Json::array();
  std::printf("\n%-34s %10s %10s %10s %7s %8s %8s %8s\n", "case", "ours", "torch", "torch512",
              "ratio", "GB/s", "read", "/fused");
  for (const CaseSpec& spec : AllCases()) {
    const auto get = [&](const Json& times, const std::string& impl) -> std::vector<double> {
      const std::string key = spec.name + "/" + impl;
      if (!times.contains(key)) return {};
      return times[key].get<std::vector<double>>();
    };
    const Json times = collector.times;
    const std::vector<double> ours = get(times, "ours");
    if (ours.empty()) continue;
    const std::vector<double> torch_def = get(times, "torch");
    const std::vector<double> torch512 = child.is_null() ? std::vector<double>{}
                                                         : get(child["times_ns"], "torch");
    const std::vector<double> read =
        times.contains(ReadCaseName(spec) + "/read")
            ? times[ReadCaseName(spec) + "/read"].get<std::vector<double>>()
            : std::vector<double>{};
    const std::vector<double> fused = get(times, "fused");
    const auto [read_bytes, all_bytes] = CaseBytes()[spec.name];
    const double bytes = static_cast<double>(all_bytes);
    const double best_ours = Best(ours);
    double best_torch = torch_def.empty() ? NAN : Best(torch_def);
    if (!torch512.empty()) best_torch = std::isnan(best_torch) ? Best(torch512)
                                                               : std::min(best_torch, Best(torch512));
    Json row;
    row["case"] = spec.name;
    row["loss"] = spec.loss;
    row["size"] = spec.name.substr(spec.loss.size() + 1, spec.name.find('/', spec.loss.size() + 1) -
                                                             spec.loss.size() - 1);
    row["mode"] = spec.grad ? "grad" : "fwd";
    row["threads"] = spec.threads;
    row["bytes"] = bytes;
    row["ours_ns"] = ours;
    row["torch_ns"] = torch_def;
    row["torch_avx512_ns"] = torch512;
    row["read_ns"] = read;
    row["fused_ns"] = fused;
    row["best_ours_ns"] = best_ours;
    row["median_ours_ns"] = Median(ours);
    row["best_torch_ns"] = best_torch;
    row["ratio"] = best_torch / best_ours;
    row["gbps"] = bytes / best_ours;
    if (!read.empty()) row["read_gbps"] = static_cast<double>(read_bytes) / Best(read);
    if (!fused.empty()) row["fused_fraction"] = Best(fused) / best_ours;
    cases.push_back(row);
    std::printf("%-34s %10s %10s %10s %6.2fx %8.2f %8s %8s\n", spec.name.c_str(),
                TimeString(best_ours).c_str(),
                torch_def.empty() ? "-" : TimeString(Best(torch_def)).c_str(),
                torch512.empty() ? "-" : TimeString(Best(torch512)).c_str(), best_torch / best_ours,
                bytes / best_ours,
                read.empty() ? "-" : Fmt("%.2f", static_cast<double>(read_bytes) / Best(read)).c_str(),
                fused.empty() ? "-" : Fmt("%.0f%%", 100 * Best(fused) / best_ours).c_str());
  }
  std::printf(
      "\nratio: libtorch's best time (the faster dispatch) / ours; GB/s: the case's bytes (inputs,\n"
      "plus the gradient written) per our time; read: GB/s of a plain AVX2 loop reading the inputs;\n"
      "/fused: our speed as a share of a plain fused AVX2 loop's on the same data (100%%: as fast).\n");
  // Accuracy of the forward losses at one thread: ours and libtorch's in
  // float32 against libtorch in float64 on the same (float32) values.
  std::printf("\n%-34s %12s %12s\n", "accuracy (|x - ref64| / |ref64|)", "ours", "torch f32");
  const std::vector<CaseSpec> specs = AllCases();
  for (Json& row : cases) {
    if (row["threads"] != 1 || row["mode"] != "fwd") continue;
    const std::string size = row["size"];
    if (size == "1K" || size == "16") continue;
    const CaseSpec* spec = nullptr;
    for (const CaseSpec& s : specs) {
      if (s.name == row["case"]) spec = &s;
    }
    if (spec == nullptr) continue;
    std::unique_ptr<Case> c = MakeCase(spec->loss, spec->elements, spec->classes);
    TensorAllocator out;
    if (!EvaluateLoss(c->request, out).ok()) continue;
    const double ours = out.loss->ToDoubles()[0];
    torch::NoGradGuard no_grad;
    at::set_num_threads(1);
    const double t32 = c->torch_loss(ToTorch(c->data->input)).item<double>();
    const testing::OwnedRequest* d = c->data.get();
    const auto as64 = [](torch::Tensor x) {
      return x.is_floating_point() ? x.to(torch::kFloat64) : x;
    };
    const TorchFn ref = TorchLoss(spec->loss, [d, as64](size_t i) { return as64(ToTorch(d->others[i])); });
    const double t64 = ref(as64(ToTorch(d->input))).item<double>();
    const double e_ours = std::fabs(ours - t64) / std::fabs(t64);
    const double e_torch = std::fabs(t32 - t64) / std::fabs(t64);
    row["rel_error_ours"] = e_ours;
    row["rel_error_torch32"] = e_torch;
    std::printf("%-34s %12.3g %12.3g\n", row["case"].get<std::string>().c_str(), e_ours, e_torch);
  }
  result["cases"] = cases;
  result["torch_avx512_capability"] = child.is_null() ? Json(nullptr) : child["torch_capability"];
  result["hardware_concurrency"] = std::thread::hardware_concurrency();
  std::ofstream(out_path) << result.dump(1);
  std::printf("wrote %s\n", out_path.c_str());
  return 0;
}

}  // namespace
}  // namespace lossservice::bench

int main(int argc, char** argv) { return lossservice::bench::Main(argc, argv); }
