// BuildInfo from what the build knows: the project's version and git
// revision (server/build_revision.cmake writes them at every build), the
// compiler, the libraries, and Highway's targets when the core uses it.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/stubs/common.h"
#include "grpcpp/grpcpp.h"
#include "server/build_revision.h"
#include "server/metrics.h"
#ifdef LOSS_HAVE_HWY
#include "hwy/targets.h"
#endif

namespace lossservice {
namespace {

std::string HighwayTargets() {
#ifdef LOSS_HAVE_HWY
  // What the core's dispatch picks on this CPU, and what it was compiled for.
  std::vector<std::string> compiled;
  for (int64_t targets = HWY_TARGETS; targets != 0; targets &= targets - 1) {
    compiled.push_back(hwy::TargetName(targets & (~targets + 1)));
  }
  const std::vector<int64_t> usable = hwy::SupportedAndGeneratedTargets();
  return absl::StrCat(usable.empty() ? "none" : hwy::TargetName(usable.front()),
                      " (compiled: ", absl::StrJoin(compiled, " "), ")");
#else
  return "none (scalar core)";
#endif
}

}  // namespace

const BuildInfo& BuildInfo::Get() {
  static const BuildInfo* info = new BuildInfo{
      .version = LOSS_VERSION,
      .revision = LOSS_GIT_REVISION,
#if defined(__clang__)
      .compiler = absl::StrCat("clang ", __clang_version__),
#elif defined(__GNUC__)
      .compiler = absl::StrCat("gcc ", __VERSION__),
#else
      .compiler = "unknown",
#endif
      .grpc = grpc::Version(),
      .protobuf = google::protobuf::internal::VersionString(GOOGLE_PROTOBUF_VERSION),
      .highway = HighwayTargets(),
  };
  return *info;
}

}  // namespace lossservice
