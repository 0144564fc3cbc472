// The table of losses behind ListLosses and the reduction check, built from
// LOSSSERVICE_FOR_EACH_LOSS and each options struct's kDoc and Fields().
#include <deque>
#include <string>
#include <variant>

#include "absl/strings/str_cat.h"
#include "core/loss.h"

namespace lossservice {
namespace {

template <class Options>
LossInfo MakeInfo(absl::string_view name, int field_number, std::deque<std::string>& strings) {
  LossInfo info{name, field_number, Options::kDoc.input, Options::kDoc.target, {}, {}, true};
  ForEachOptionField<Options>([&](const auto& field) {
    strings.push_back(absl::StrCat(field.name, " = ", field.doc));
    info.options.push_back(strings.back());
  });
  for (Reduction r : {Reduction::kMean, Reduction::kSum, Reduction::kNone, Reduction::kBatchMean}) {
    if (Options::kDoc.reductions & ReductionBit(r)) info.reductions.push_back(r);
  }
  return info;
}

struct Table {
  std::deque<std::string> strings;  // what the options' string_views point at
  std::vector<LossInfo> losses;
};

// Indexed by LossOptions::index(); the order of the EvaluateRequest oneof.
const Table& TheTable() {
  static const Table* const table = [] {
    auto* t = new Table;
#define LOSSSERVICE_INFO_(name, Camel, number) \
  t->losses.push_back(MakeInfo<Camel##Options>(#name, number, t->strings));
    LOSSSERVICE_FOR_EACH_LOSS(LOSSSERVICE_INFO_)
#undef LOSSSERVICE_INFO_
    return t;
  }();
  return *table;
}

}  // namespace

absl::Span<const LossInfo> AllLosses() { return TheTable().losses; }

const LossInfo& InfoFor(const LossOptions& options) {
  return TheTable().losses[options.index()];
}

}  // namespace lossservice
