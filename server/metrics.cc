#include "server/metrics.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/descriptor.h"
#include "lossservice/v1/loss_service.pb.h"
#include "prometheus/collectable.h"
#include "prometheus/exposer.h"
#include "prometheus/metric_family.h"
#include "server/status_util.h"

namespace lossservice {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

// The loss labels: "" first, then the loss oneof's field names, then the
// activations' names, from the contract's descriptors.
struct LossLabels {
  std::vector<std::string> names{""};
  std::vector<uint8_t> by_field;       // EvaluateRequest field number -> label
  std::vector<uint8_t> by_activation;  // Activation value -> label

  static const LossLabels& Get() {
    static const LossLabels* labels = new LossLabels();
    return *labels;
  }

 private:
  LossLabels() {
    const google::protobuf::OneofDescriptor* loss =
        v1::EvaluateRequest::descriptor()->FindOneofByName("loss");
    for (int i = 0; i < loss->field_count(); ++i) {
      const google::protobuf::FieldDescriptor* f = loss->field(i);
      if (static_cast<size_t>(f->number()) >= by_field.size()) by_field.resize(f->number() + 1);
      by_field[f->number()] = Add(f->name());
    }
    const google::protobuf::EnumDescriptor* activation = v1::Activation_descriptor();
    for (int i = 0; i < activation->value_count(); ++i) {
      const google::protobuf::EnumValueDescriptor* v = activation->value(i);
      if (v->number() <= 0) continue;  // ACTIVATION_UNSPECIFIED
      if (static_cast<size_t>(v->number()) >= by_activation.size()) {
        by_activation.resize(v->number() + 1);
      }
      // ACTIVATION_LOG_SOFTMAX -> log_softmax
      by_activation[v->number()] =
          Add(absl::AsciiStrToLower(absl::string_view(v->name()).substr(sizeof("ACTIVATION_") - 1)));
    }
  }
  uint8_t Add(std::string name) {
    names.push_back(std::move(name));
    return static_cast<uint8_t>(names.size() - 1);
  }
};

ClientMetric::Label L(std::string name, std::string value) {
  return {std::move(name), std::move(value)};
}

MetricFamily Family(std::string name, std::string help, MetricType type) {
  MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = type;
  return f;
}

void AddValue(MetricFamily* f, double value, std::vector<ClientMetric::Label> labels = {}) {
  ClientMetric m;
  m.label = std::move(labels);
  if (f->type == MetricType::Counter) {
    m.counter.value = value;
  } else {
    m.gauge.value = value;
  }
  f->metric.push_back(std::move(m));
}

// The process's own figures, from /proc (the names Prometheus' client
// libraries use).
void AddProcessFamilies(std::vector<MetricFamily>* out) {
  const long ticks = sysconf(_SC_CLK_TCK);
  const long page = sysconf(_SC_PAGESIZE);
  std::ifstream stat_file("/proc/self/stat");
  std::string stat((std::istreambuf_iterator<char>(stat_file)), std::istreambuf_iterator<char>());
  // Fields after the command name, which is in parentheses and may hold spaces.
  const size_t close = stat.rfind(')');
  if (close == std::string::npos || ticks <= 0) return;
  std::vector<std::string> f = absl::StrSplit(stat.substr(close + 2), ' ');
  // f[0] is field 3 (state): utime is field 14, stime 15, starttime 22,
  // vsize 23, rss 24.
  auto field = [&](int number) -> double {
    double v = 0;
    const size_t i = static_cast<size_t>(number - 3);
    return i < f.size() && absl::SimpleAtod(f[i], &v) ? v : 0;
  };
  double boot_time = 0;
  std::ifstream proc_stat("/proc/stat");
  for (std::string line; std::getline(proc_stat, line);) {
    if (absl::StartsWith(line, "btime ")) {
      absl::SimpleAtod(absl::string_view(line).substr(6), &boot_time);
    }
  }
  MetricFamily cpu = Family("process_cpu_seconds_total",
                            "User and system CPU time spent in seconds.", MetricType::Counter);
  AddValue(&cpu, (field(14) + field(15)) / static_cast<double>(ticks));
  out->push_back(std::move(cpu));
  MetricFamily rss = Family("process_resident_memory_bytes", "Resident memory size in bytes.",
                            MetricType::Gauge);
  AddValue(&rss, field(24) * static_cast<double>(page));
  out->push_back(std::move(rss));
  MetricFamily vsz = Family("process_virtual_memory_bytes", "Virtual memory size in bytes.",
                            MetricType::Gauge);
  AddValue(&vsz, field(23));
  out->push_back(std::move(vsz));
  MetricFamily start = Family("process_start_time_seconds",
                              "Start time of the process since unix epoch in seconds.",
                              MetricType::Gauge);
  AddValue(&start, boot_time + field(22) / static_cast<double>(ticks));
  out->push_back(std::move(start));
  int fds = 0;
  if (DIR* dir = opendir("/proc/self/fd")) {
    while (const dirent* e = readdir(dir)) fds += e->d_name[0] != '.';
    closedir(dir);
    --fds;  // the directory's own descriptor
  }
  MetricFamily open = Family("process_open_fds", "Number of open file descriptors.",
                             MetricType::Gauge);
  AddValue(&open, fds);
  out->push_back(std::move(open));
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    MetricFamily max = Family("process_max_fds", "Maximum number of open file descriptors.",
                              MetricType::Gauge);
    AddValue(&max, static_cast<double>(limit.rlim_cur));
    out->push_back(std::move(max));
  }
}

}  // namespace

absl::string_view MethodName(Method method) {
  switch (method) {
    case Method::kEvaluate: return "Evaluate";
    case Method::kEvaluateStream: return "EvaluateStream";
    case Method::kActivate: return "Activate";
    case Method::kListLosses: return "ListLosses";
    case Method::kHealthCheck: return "Check";
    case Method::kHealthWatch: return "Watch";
    case Method::kReflectionV1:
    case Method::kReflectionV1alpha: return "ServerReflectionInfo";
    case Method::kUnknown: break;
  }
  return "unknown";
}

absl::string_view ServiceName(Method method) {
  switch (method) {
    case Method::kEvaluate:
    case Method::kEvaluateStream:
    case Method::kActivate:
    case Method::kListLosses: return "lossservice.v1.LossService";
    case Method::kHealthCheck:
    case Method::kHealthWatch: return "grpc.health.v1.Health";
    case Method::kReflectionV1: return "grpc.reflection.v1.ServerReflection";
    case Method::kReflectionV1alpha: return "grpc.reflection.v1alpha.ServerReflection";
    case Method::kUnknown: break;
  }
  return "unknown";
}

uint8_t LossLabel::OfLoss(int field_number) {
  const auto& by_field = LossLabels::Get().by_field;
  return field_number > 0 && static_cast<size_t>(field_number) < by_field.size()
             ? by_field[field_number]
             : kNone;
}

uint8_t LossLabel::OfActivation(int value) {
  const auto& by_activation = LossLabels::Get().by_activation;
  return value > 0 && static_cast<size_t>(value) < by_activation.size() ? by_activation[value]
                                                                         : kNone;
}

absl::string_view LossLabel::Name(uint8_t label) {
  const auto& names = LossLabels::Get().names;
  return label < names.size() ? absl::string_view(names[label]) : absl::string_view();
}

size_t LossLabel::Count() { return LossLabels::Get().names.size(); }

std::string BuildInfo::ToString() const {
  return absl::StrCat("loss_server ", version, "\n  revision: ", revision,
                      "\n  compiler: ", compiler, "\n  grpc: ", grpc, "\n  protobuf: ", protobuf,
                      "\n  highway: ", highway, "\n");
}

// What the exposer scrapes: the tables, read at scrape time.
class Metrics::Collectable final : public prometheus::Collectable {
 public:
  explicit Collectable(const Metrics& metrics) : metrics_(metrics) {}
  std::vector<MetricFamily> Collect() const override { return metrics_.Collect(); }

 private:
  const Metrics& metrics_;
};

Metrics::Metrics(Sources sources)
    : sources_(std::move(sources)), collectable_(std::make_shared<Collectable>(*this)) {
  // Every label fits the tables (a contract with more losses than this
  // needs a larger kMaxLabels).
  if (LossLabel::Count() > kMaxLabels) std::abort();
}

Metrics::~Metrics() = default;

void Metrics::RecordRequest(Method rpc, uint8_t loss, grpc::StatusCode code,
                            absl::Duration latency, size_t request_bytes, size_t response_bytes) {
  const size_t r = Index(rpc);
  if (r >= kRpcs || loss >= kMaxLabels) return;
  PerLoss& p = requests_[r][loss];
  p.requests[Code(code)].fetch_add(1, std::memory_order_relaxed);
  if (request_bytes) p.request_bytes.fetch_add(request_bytes, std::memory_order_relaxed);
  if (response_bytes) p.response_bytes.fetch_add(response_bytes, std::memory_order_relaxed);
  const double seconds = absl::ToDoubleSeconds(latency);
  const size_t bucket =
      std::lower_bound(kLatencyBuckets.begin(), kLatencyBuckets.end(), seconds) -
      kLatencyBuckets.begin();
  p.latency.buckets[bucket].fetch_add(1, std::memory_order_relaxed);
  p.latency.sum_ns.fetch_add(absl::ToInt64Nanoseconds(latency), std::memory_order_relaxed);
  p.latency.count.fetch_add(1, std::memory_order_relaxed);
}

std::vector<MetricFamily> Metrics::Collect() const {
  std::vector<MetricFamily> out;
  auto load = [](const std::atomic<uint64_t>& a) {
    return static_cast<double>(a.load(std::memory_order_relaxed));
  };

  MetricFamily handled = Family(
      "grpc_server_handled_total",
      "Calls completed on the server, by service, method, type and status code (a stream "
      "counts once, when it ends).",
      MetricType::Counter);
  for (size_t m = 0; m < kMethods; ++m) {
    const Method method = static_cast<Method>(m);
    const char* type = method == Method::kEvaluateStream || method == Method::kReflectionV1 ||
                               method == Method::kReflectionV1alpha || method == Method::kUnknown
                           ? "bidi_stream"
                       : method == Method::kHealthWatch ? "server_stream"
                                                        : "unary";
    for (size_t c = 0; c < kCodes; ++c) {
      const double v = load(calls_[m][c]);
      if (v == 0) continue;
      AddValue(&handled, v,
               {L("grpc_service", std::string(ServiceName(method))),
                L("grpc_method", std::string(MethodName(method))), L("grpc_type", type),
                L("grpc_code", StatusCodeName(static_cast<grpc::StatusCode>(c)))});
    }
  }
  out.push_back(std::move(handled));

  MetricFamily requests = Family(
      "lossservice_requests_total",
      "Requests of lossservice.v1.LossService by RPC, loss (or activation) and status code: "
      "each Evaluate, Activate and ListLosses call, and each request of an EvaluateStream "
      "(its code: the in-band error's, or OK). loss is empty when the request did not say one.",
      MetricType::Counter);
  MetricFamily in_bytes =
      Family("lossservice_request_bytes_total",
             "Serialized request message bytes, by RPC and loss.", MetricType::Counter);
  MetricFamily out_bytes =
      Family("lossservice_response_bytes_total",
             "Serialized response message bytes, by RPC and loss.", MetricType::Counter);
  MetricFamily latency = Family(
      "lossservice_request_duration_seconds",
      "Time from a request's arrival (a call's headers; a stream's message) to its answer, by "
      "RPC and loss.",
      MetricType::Histogram);
  for (size_t r = 0; r < kRpcs; ++r) {
    const std::string rpc(MethodName(static_cast<Method>(r)));
    for (size_t l = 0; l < LossLabel::Count(); ++l) {
      const PerLoss& p = requests_[r][l];
      const std::string loss(LossLabel::Name(static_cast<uint8_t>(l)));
      for (size_t c = 0; c < kCodes; ++c) {
        const double v = load(p.requests[c]);
        if (v == 0) continue;
        AddValue(&requests, v,
                 {L("rpc", rpc), L("loss", loss),
                  L("code", StatusCodeName(static_cast<grpc::StatusCode>(c)))});
      }
      const uint64_t count = p.latency.count.load(std::memory_order_relaxed);
      if (count == 0) continue;
      AddValue(&in_bytes, load(p.request_bytes), {L("rpc", rpc), L("loss", loss)});
      AddValue(&out_bytes, load(p.response_bytes), {L("rpc", rpc), L("loss", loss)});
      ClientMetric h;
      h.label = {L("rpc", rpc), L("loss", loss)};
      uint64_t cumulative = 0;
      for (size_t b = 0; b <= kLatencyBuckets.size(); ++b) {
        cumulative += p.latency.buckets[b].load(std::memory_order_relaxed);
        h.histogram.bucket.push_back(
            {cumulative, b < kLatencyBuckets.size() ? kLatencyBuckets[b]
                                                    : std::numeric_limits<double>::infinity()});
      }
      // Buckets and count are read one after the other while requests go
      // on: the count is the +Inf bucket's, so that the two agree.
      h.histogram.sample_count = cumulative;
      h.histogram.sample_sum = static_cast<double>(p.latency.sum_ns.load()) * 1e-9;
      latency.metric.push_back(std::move(h));
    }
  }
  out.push_back(std::move(requests));
  out.push_back(std::move(latency));
  out.push_back(std::move(in_bytes));
  out.push_back(std::move(out_bytes));

  const CallStats* s = sources_.stats;
  struct Counter {
    const char* name;
    const std::atomic<int64_t>* value;
    const char* help;
  };
  const Counter counters[] = {
      {"lossservice_admitted_total", &s->admitted,
       "Requests admitted under --max_inflight when they arrived."},
      {"lossservice_refused_total", &s->refused,
       "Requests refused when they arrived, over --max_inflight (RESOURCE_EXHAUSTED)."},
      {"lossservice_started_total", &s->started, "Evaluations started on a compute thread."},
      {"lossservice_computed_total", &s->computed,
       "Evaluations run to their end (results and client mistakes)."},
      {"lossservice_not_started_total", &s->not_started,
       "Requests that ended before their computation started (cancelled, past their deadline, "
       "or no message)."},
      {"lossservice_cancelled_total", &s->cancelled,
       "Calls that ended before their answer: the client cancelled or went away, the deadline "
       "passed, or the drain's grace ran out."},
      {"lossservice_stopped_total", &s->stopped,
       "Evaluations stopped while computing (cancelled or past their deadline)."},
      {"lossservice_too_large_total", &s->too_large,
       "Request messages over --max_message_mb (RESOURCE_EXHAUSTED)."},
      {"lossservice_unparsable_total", &s->unparsable,
       "Request messages that did not parse (INVALID_ARGUMENT)."},
      {"lossservice_draining_refused_total", &s->draining_refused,
       "Calls refused while the server drained (UNAVAILABLE)."},
  };
  for (const Counter& c : counters) {
    MetricFamily f = Family(c.name, c.help, MetricType::Counter);
    AddValue(&f, static_cast<double>(c.value->load(std::memory_order_relaxed)));
    out.push_back(std::move(f));
  }
  MetricFamily unauthenticated =
      Family("lossservice_unauthenticated_total",
             "Calls refused without the bearer token of --auth_token_file (UNAUTHENTICATED).",
             MetricType::Counter);
  AddValue(&unauthenticated, load(unauthenticated_));
  out.push_back(std::move(unauthenticated));

  struct Gauge {
    const char* name;
    double value;
    const char* help;
  };
  const Gauge gauges[] = {
      {"lossservice_in_flight", static_cast<double>(s->in_flight.load()),
       "Requests admitted and not yet computed (queued or computing)."},
      {"lossservice_queued", static_cast<double>(sources_.queued ? sources_.queued() : 0),
       "Requests waiting for a compute thread."},
      {"lossservice_compute_threads", static_cast<double>(sources_.compute_threads),
       "Threads of the compute pool (--compute_threads)."},
      {"lossservice_max_inflight", static_cast<double>(sources_.max_inflight),
       "The in-flight limit (--max_inflight; 0: none)."},
      {"lossservice_draining", sources_.draining && sources_.draining() ? 1.0 : 0.0,
       "1 while the server drains (health NOT_SERVING, new calls refused)."},
  };
  for (const Gauge& g : gauges) {
    MetricFamily f = Family(g.name, g.help, MetricType::Gauge);
    AddValue(&f, g.value);
    out.push_back(std::move(f));
  }

  const BuildInfo& build = BuildInfo::Get();
  MetricFamily info =
      Family("lossservice_build_info",
             "1, labelled with the server's version, git revision, compiler, gRPC and Protobuf "
             "versions and the core's SIMD targets.",
             MetricType::Gauge);
  AddValue(&info, 1,
           {L("version", build.version), L("revision", build.revision),
            L("compiler", build.compiler), L("grpc", build.grpc), L("protobuf", build.protobuf),
            L("highway", build.highway)});
  out.push_back(std::move(info));
  AddProcessFamilies(&out);
  return out;
}

absl::StatusOr<std::unique_ptr<prometheus::Exposer>> Metrics::Serve(const std::string& address,
                                                                     int* port) {
  std::unique_ptr<prometheus::Exposer> exposer;
  try {
    exposer = std::make_unique<prometheus::Exposer>(
        std::vector<std::string>{"listening_ports", address, "num_threads", "2"});
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("cannot serve metrics on ", address, " (--metrics_address): ", e.what()));
  }
  exposer->RegisterCollectable(collectable_);
  const std::vector<int> ports = exposer->GetListeningPorts();
  *port = ports.empty() ? 0 : ports[0];
  return exposer;
}

}  // namespace lossservice
