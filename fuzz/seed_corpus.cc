// fuzz_seed_corpus DIR: writes DIR/<target>/seed-N for every seed of every
// fuzz target and DIR/<target>.dict, its dictionary (fuzz/seeds.h).
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "fuzz/seeds.h"

namespace {

bool Write(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return static_cast<bool>(out);
}

}  // namespace

int main(int argc, char** argv) {
  using lossservice::fuzz::Target;
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  lossservice::fuzz::QuietLogs();
  const std::filesystem::path dir = argv[1];
  for (Target target : {Target::kEvaluate, Target::kActivate, Target::kStream}) {
    const std::string name(lossservice::fuzz::TargetName(target));
    const std::filesystem::path seeds = dir / name;
    std::filesystem::remove_all(seeds);
    std::filesystem::create_directories(seeds);
    const std::vector<std::string> all = lossservice::fuzz::Seeds(target);
    for (size_t i = 0; i < all.size(); ++i) {
      if (!Write(seeds / ("seed-" + std::to_string(i)), all[i])) {
        std::fprintf(stderr, "cannot write %s\n", seeds.c_str());
        return 1;
      }
    }
    if (!Write(dir / (name + ".dict"), lossservice::fuzz::Dictionary(target))) return 1;
    std::printf("%s: %zu seeds\n", name.c_str(), all.size());
  }
  return 0;
}
