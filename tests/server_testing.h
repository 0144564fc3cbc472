// What the codec, service and server tests share: proto builders (from
// golden cases too), byte-buffer helpers, and a server started for a test.
#ifndef LOSSSERVICE_TESTS_SERVER_TESTING_H_
#define LOSSSERVICE_TESTS_SERVER_TESTING_H_

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "google/protobuf/message.h"
#include "grpcpp/grpcpp.h"
#include "lossservice/v1/loss_service.grpc.pb.h"
#include "server/loss_server.h"
#include "server/tensor_codec.h"
#include "tests/golden.h"

namespace lossservice::test {

// ---- protos ----------------------------------------------------------------------------

/// `t` as a proto tensor in `encoding`.
v1::Tensor ToProto(const Tensor& t, Encoding encoding);
v1::Tensor Floats(std::vector<int64_t> shape, std::vector<float> values);
v1::Tensor Int64s(std::vector<int64_t> shape, std::vector<int64_t> values);
/// float32 values as raw_data.
v1::Tensor RawFloats(std::vector<int64_t> shape, const std::vector<float>& values);
v1::EvaluateRequest Mse(v1::Tensor input, v1::Tensor target);
/// cross_entropy of `rows` x `classes` logits (all 0.5: the loss is
/// log(classes)) as raw_data, targets 3 (int64), with the gradient.
v1::EvaluateRequest BigCrossEntropy(int rows, int classes);

/// Every case of tests/golden/core_cases.json.
const std::vector<golden::GoldenCase>& GoldenCases();
/// The request of a golden loss / activation case.
v1::EvaluateRequest EvaluateRequestFor(const golden::GoldenCase& c, Encoding e);
v1::ActivateRequest ActivateRequestFor(const golden::GoldenCase& c, Encoding e);
/// A response tensor as a core Tensor, checking that it uses `encoding`.
Tensor FromProto(const v1::Tensor& p, Encoding encoding);

// ---- bytes -------------------------------------------------------------------------------

/// `bytes` as one slice.
grpc::ByteBuffer ToBuffer(const std::string& bytes);
grpc::ByteBuffer ToBuffer(const google::protobuf::Message& message);
std::string ToString(const grpc::ByteBuffer& buffer);
/// Parses `buffer` with protobuf's own parser.
bool ParseBuffer(const grpc::ByteBuffer& buffer, google::protobuf::Message* message);

// ---- a server -------------------------------------------------------------------------------

/// A LossServer on 127.0.0.1:0, serving once Health/Check answers SERVING.
class TestServer {
 public:
  explicit TestServer(LossServer::Options options = {});
  LossServer& server() { return *server_; }
  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }
  /// A channel of its own TCP connection.
  std::shared_ptr<grpc::Channel> NewConnection() const;
  std::unique_ptr<v1::LossService::Stub> Stub() const { return v1::LossService::NewStub(channel_); }
  std::string address() const;

 private:
  std::unique_ptr<LossServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
};

/// Calls a unary method with raw bytes and waits for the answer (`out`:
/// the response bytes, when OK). `timeout` 0: no deadline.
grpc::Status RawUnary(const std::shared_ptr<grpc::Channel>& channel, const std::string& method,
                      const grpc::ByteBuffer& request, std::string* out,
                      std::chrono::milliseconds timeout = std::chrono::milliseconds(30000));

}  // namespace lossservice::test

#endif  // LOSSSERVICE_TESTS_SERVER_TESTING_H_
