// The one list of losses. Everything that enumerates losses derives from it:
// the LossOptions variant (core/loss.h), the registry behind ListLosses
// (core/registry.cc), the check and compute steps (core/internal.h), the
// request codec's mapping (server/request_codec.cc) and the golden builder
// (tests/golden.cc).
//
// Adding a loss: one X(...) line here, in the order of the EvaluateRequest
// oneof, a `<Camel>Options` struct in core/loss.h (its kDoc and Fields()),
// and its Check / Compute pair.
#ifndef LOSSSERVICE_CORE_LOSS_LIST_H_
#define LOSSSERVICE_CORE_LOSS_LIST_H_

// X(name, Camel, field_number): `name` is the EvaluateRequest oneof field
// name (also the golden files' and ListLosses' name), `Camel##Options` the
// options struct, `field_number` its number in EvaluateRequest.loss.
#define LOSSSERVICE_FOR_EACH_LOSS(X)                  \
  X(mse, Mse, 10)                                     \
  X(l1, L1, 11)                                       \
  X(rmse, Rmse, 12)                                   \
  X(huber, Huber, 13)                                 \
  X(smooth_l1, SmoothL1, 14)                          \
  X(cross_entropy, CrossEntropy, 15)                  \
  X(nll, Nll, 16)                                     \
  X(bce, Bce, 17)                                     \
  X(bce_with_logits, BceWithLogits, 18)               \
  X(kl_div, KlDiv, 19)                                \
  X(poisson_nll, PoissonNll, 20)                      \
  X(gaussian_nll, GaussianNll, 21)                    \
  X(soft_margin, SoftMargin, 22)                      \
  X(multilabel_soft_margin, MultiLabelSoftMargin, 23) \
  X(multi_margin, MultiMargin, 24)                    \
  X(multilabel_margin, MultiLabelMargin, 25)          \
  X(hinge_embedding, HingeEmbedding, 26)              \
  X(margin_ranking, MarginRanking, 27)                \
  X(cosine_embedding, CosineEmbedding, 28)            \
  X(triplet_margin, TripletMargin, 29)                \
  X(ctc, Ctc, 30)

#endif  // LOSSSERVICE_CORE_LOSS_LIST_H_
