// Cross-entropy of two samples over three classes, with its gradient, from a
// lossservice server: cross_entropy HOST:PORT
#include <cstdint>
#include <iostream>
#include <vector>

#include "client/client.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: cross_entropy HOST:PORT\n";
    return 2;
  }
  lossservice::Client client(argv[1]);
  std::vector<float> logits = {0.1f, 2.0f, -1.0f, 0.5f, 0.5f, 0.0f};
  std::vector<int64_t> labels = {1, 0};
  auto r = client.CrossEntropy(lossservice::View(logits, {2, 3}), lossservice::View(labels), {},
                               {.grad = true});
  if (!r.ok()) {
    std::cerr << r.status() << "\n";
    return 1;
  }
  std::cout << "loss " << r->item() << "\n";

  const float* grad = r->grad->data_as<float>();
  std::cout << "grad";
  for (int64_t i = 0; i < r->grad->numel(); ++i) std::cout << " " << grad[i];
  std::cout << "\n";
  return 0;
}
