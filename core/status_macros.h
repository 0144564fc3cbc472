// Status plumbing for the core: one macro instead of four-line
// `if (!s.ok()) return s;` blocks (as Arrow's RETURN_NOT_OK and tensorstore's
// TENSORSTORE_RETURN_IF_ERROR).
#ifndef LOSSSERVICE_CORE_STATUS_MACROS_H_
#define LOSSSERVICE_CORE_STATUS_MACROS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

/// Evaluates `expr` (an absl::Status) and returns it from the enclosing
/// function unless it is OK.
#define LOSS_RETURN_IF_ERROR(expr)                         \
  do {                                                     \
    if (::absl::Status loss_status_ = (expr); !loss_status_.ok()) { \
      return loss_status_;                                 \
    }                                                      \
  } while (false)

#define LOSS_STATUS_CONCAT_INNER_(a, b) a##b
#define LOSS_STATUS_CONCAT_(a, b) LOSS_STATUS_CONCAT_INNER_(a, b)

/// Evaluates `expr` (an absl::StatusOr<T>); returns its status from the
/// enclosing function unless it is OK, else moves the value into `lhs` (a
/// declaration such as `const Plan plan` or an existing variable).
#define LOSS_ASSIGN_OR_RETURN(lhs, expr) \
  LOSS_ASSIGN_OR_RETURN_IMPL_(LOSS_STATUS_CONCAT_(loss_statusor_, __LINE__), lhs, expr)

#define LOSS_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                \
  if (!tmp.ok()) return std::move(tmp).status();    \
  lhs = *std::move(tmp)

#endif  // LOSSSERVICE_CORE_STATUS_MACROS_H_
