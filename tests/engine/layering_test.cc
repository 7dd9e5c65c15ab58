// The one rule between the layers (ARCHITECTURE.md): the engine knows nothing of the network.
// No file under engine/ may include gRPC, protobuf, prometheus-cpp, or server/ or client/ code.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace flowvi {
namespace {

std::vector<std::string> ForbiddenIncludes(const std::filesystem::path& root) {
  const std::regex forbidden(
      R"re(^\s*#\s*include\s*[<"](grpc|grpcpp|google/protobuf|prometheus|server/|client/|proto/)|\.pb\.h")re");
  std::vector<std::string> hits;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(root)) {
    if (!entry.is_regular_file()) continue;
    const std::string ext = entry.path().extension().string();
    if (ext != ".h" && ext != ".cc") continue;
    std::ifstream in(entry.path());
    std::string line;
    for (int n = 1; std::getline(in, line); ++n) {
      if (std::regex_search(line, forbidden)) {
        hits.push_back(entry.path().string() + ":" + std::to_string(n) + ": " + line);
      }
    }
  }
  return hits;
}

TEST(LayeringTest, EngineIncludesNoNetworkCode) {
  const std::filesystem::path engine = std::filesystem::path(FLOWVI_SOURCE_DIR) / "engine";
  ASSERT_TRUE(std::filesystem::exists(engine / "flows" / "flow.h")) << engine;
  EXPECT_THAT(ForbiddenIncludes(engine), ::testing::IsEmpty());
}

TEST(LayeringTest, CheckerCatchesAViolation) {
  // The check itself must be able to fail: plant a forbidden include in a scratch tree.
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("flowvi_layering_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "bad.cc") << "#include <grpcpp/grpcpp.h>\n#include \"engine/x.h\"\n";
  std::ofstream(dir / "bad2.h") << "#include \"proto/flowvi/v1/api.pb.h\"\n";
  EXPECT_EQ(ForbiddenIncludes(dir).size(), 2u);
  std::filesystem::remove_all(dir);
}

TEST(LayeringTest, EngineLinksOnlyEigenAndAbseil) {
  std::ifstream in(std::filesystem::path(FLOWVI_SOURCE_DIR) / "engine" / "CMakeLists.txt");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_FALSE(text.empty());
  for (const char* lib : {"gRPC", "grpc", "protobuf", "prometheus"}) {
    EXPECT_EQ(text.find(lib), std::string::npos) << "engine/CMakeLists.txt mentions " << lib;
  }
}

}  // namespace
}  // namespace flowvi
