# bench_service: the service's load generator (see bench/bench_service.cc and
# bench/bench_service.sh, which runs it against loss_server and bench/peer/).
find_package(nlohmann_json CONFIG REQUIRED)
add_executable(bench_service ${CMAKE_CURRENT_LIST_DIR}/bench_service.cc)
target_link_libraries(bench_service PRIVATE loss_proto gRPC::grpc++ absl::flags
  absl::flags_parse absl::flags_usage absl::strings absl::str_format absl::synchronization
  nlohmann_json::nlohmann_json loss_warnings)
