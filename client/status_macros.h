// Status plumbing of the client code (not installed).
#ifndef LOSSSERVICE_CLIENT_STATUS_MACROS_H_
#define LOSSSERVICE_CLIENT_STATUS_MACROS_H_

#include <utility>

#include "absl/status/status.h"

#define LOSS_CLIENT_CONCAT_INNER(a, b) a##b
#define LOSS_CLIENT_CONCAT(a, b) LOSS_CLIENT_CONCAT_INNER(a, b)
#define LOSS_CLIENT_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                      \
  if (!tmp.ok()) return std::move(tmp).status();          \
  lhs = *std::move(tmp)

/// Assigns the value of an absl::StatusOr expression to `lhs`, or returns
/// its status.
#define LOSS_CLIENT_ASSIGN_OR_RETURN(lhs, expr) \
  LOSS_CLIENT_ASSIGN_OR_RETURN_IMPL(LOSS_CLIENT_CONCAT(status_or_, __LINE__), lhs, expr)

/// Returns the status of `expr` unless it is OK.
#define LOSS_CLIENT_RETURN_IF_ERROR(expr)              \
  do {                                                 \
    if (absl::Status s_ = (expr); !s_.ok()) return s_; \
  } while (false)

#endif  // LOSSSERVICE_CLIENT_STATUS_MACROS_H_
