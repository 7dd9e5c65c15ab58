#include "client/io.h"

#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <string>

#include "client/client.h"
#include "client/plot.h"
#include "gtest/gtest.h"

namespace flowvi::client {
namespace {

std::string TempPath(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  return std::string(dir != nullptr ? dir : "/tmp") + "/flowvi-io-test-" +
         std::to_string(getpid()) + "-" + name;
}

TEST(CsvTest, HeaderIsOptional) {
  absl::StatusOr<Table> t = ParseCsv("x,y\n1,2\n3.5,-4e-3\n", "p.csv");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->rows, 2);
  EXPECT_EQ(t->cols, 2);
  EXPECT_EQ(t->header, (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(t->values, (std::vector<double>{1, 2, 3.5, -4e-3}));
  t = ParseCsv("1, 2\r\n\n# comment\n 3 ,4\n", "p.csv");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_TRUE(t->header.empty());
  EXPECT_EQ(t->values, (std::vector<double>{1, 2, 3, 4}));
}

TEST(CsvTest, WrongColumnCountNamesTheLine) {
  absl::StatusOr<Table> t = ParseCsv("x,y\n1,2\n3\n", "p.csv");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(ExitCodeOf(t.status()), kExitBadInput);
  EXPECT_EQ(t.status().message(), "p.csv line 3: 1 column, expected 2 (as on line 1)");
}

TEST(CsvTest, NonNumericAndNonFiniteAreErrors) {
  absl::StatusOr<Table> t = ParseCsv("1,2\n3,abc\n", "p.csv");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(ExitCodeOf(t.status()), kExitBadInput);
  EXPECT_EQ(t.status().message(), "p.csv line 2 column 2: 'abc' is not a number");
  t = ParseCsv("1,2\nnan,1\n", "p.csv");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().message(), "p.csv line 2 column 1: 'nan' is not a finite number");
  t = ParseCsv("1,inf\n", "p.csv");
  ASSERT_FALSE(t.ok());
  t = ParseCsv("x,y\n", "p.csv");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().message(), "p.csv has no rows of numbers");
}

TEST(NpyTest, HeaderIsAlignedAndParsesBack) {
  const std::string h = NpyHeader(3, 2);
  EXPECT_EQ(h.size() % 64, 0u);
  EXPECT_EQ(h.substr(0, 6), std::string("\x93NUMPY", 6));
  EXPECT_NE(h.find("'shape': (3, 2)"), std::string::npos);
  EXPECT_EQ(h.back(), '\n');
  EXPECT_NE(NpyHeader(5, 0).find("'shape': (5,)"), std::string::npos);
}

TEST(NpyTest, WriterAndReaderRoundTrip) {
  const std::string path = TempPath("rt.npy");
  TableWriter::Options o;
  o.format = Format::kNpy;
  o.columns = {"a", "b", "log_q"};
  o.rows = 2;
  absl::StatusOr<std::unique_ptr<TableWriter>> w = TableWriter::Open(path, o);
  ASSERT_TRUE(w.ok()) << w.status();
  const double values[] = {1.5, -2, 3, 0.1, 1e-300, -7};
  ASSERT_TRUE((*w)->Write(values, 1).ok());
  ASSERT_TRUE((*w)->Write(values + 3, 1).ok());
  ASSERT_TRUE((*w)->Close().ok());
  absl::StatusOr<Table> t = ReadTable(path);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->rows, 2);
  EXPECT_EQ(t->cols, 3);
  EXPECT_EQ(t->values, std::vector<double>(values, values + 6));
  unlink(path.c_str());
}

TEST(NpyTest, ShortWriteIsAnError) {
  const std::string path = TempPath("short.npy");
  TableWriter::Options o;
  o.format = Format::kNpy;
  o.columns = {"a"};
  o.rows = 3;
  absl::StatusOr<std::unique_ptr<TableWriter>> w = TableWriter::Open(path, o);
  ASSERT_TRUE(w.ok());
  const double v = 1;
  ASSERT_TRUE((*w)->Write(&v, 1).ok());
  EXPECT_FALSE((*w)->Close().ok());
  unlink(path.c_str());
}

TEST(NpyTest, FortranOrderAndOtherTypes) {
  // A 2 x 2 int64 array in Fortran order: [[1, 2], [3, 4]] is stored 1, 3, 2, 4.
  std::string dict = "{'descr': '<i8', 'fortran_order': True, 'shape': (2, 2), }";
  dict.append(64 - (10 + dict.size() + 1) % 64, ' ');
  dict.push_back('\n');
  std::string bytes("\x93NUMPY\x01\x00", 8);
  bytes.push_back(static_cast<char>(dict.size()));
  bytes.push_back(0);
  bytes += dict;
  for (int64_t v : {1, 3, 2, 4}) bytes.append(reinterpret_cast<const char*>(&v), 8);
  absl::StatusOr<Table> t = ParseNpy(bytes, "f.npy");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->values, (std::vector<double>{1, 2, 3, 4}));
}

TEST(NpyTest, BadFilesAreBadInput) {
  EXPECT_EQ(ExitCodeOf(ParseNpy("not npy", "x.npy").status()), kExitBadInput);
  std::string bytes = NpyHeader(4, 2);  // no data
  absl::StatusOr<Table> t = ParseNpy(bytes, "x.npy");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(ExitCodeOf(t.status()), kExitBadInput);
  bytes = NpyHeader(1, 2);
  const double nan_row[] = {1, NAN};
  bytes.append(reinterpret_cast<const char*>(nan_row), sizeof(nan_row));
  t = ParseNpy(bytes, "x.npy");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().message(), "x.npy row 1 column 2: not a finite number (nan)");
}

TEST(WriterTest, CsvAndJsonLines) {
  const std::string path = TempPath("w.csv");
  TableWriter::Options o;
  o.columns = {"theta1", "log_tau", "log_q"};
  o.vector_columns = 2;
  for (Format f : {Format::kCsv, Format::kJsonLines}) {
    o.format = f;
    absl::StatusOr<std::unique_ptr<TableWriter>> w = TableWriter::Open(path, o);
    ASSERT_TRUE(w.ok());
    const double values[] = {0.1, -2, -1.25, 3, 4, NAN};
    ASSERT_TRUE((*w)->Write(values, 2).ok());
    ASSERT_TRUE((*w)->Close().ok());
    absl::StatusOr<std::string> text = ReadFile(path);
    ASSERT_TRUE(text.ok());
    if (f == Format::kCsv) {
      EXPECT_EQ(*text, "theta1,log_tau,log_q\n0.1,-2,-1.25\n3,4,nan\n");
    } else {
      EXPECT_EQ(*text, "{\"z\":[0.1,-2],\"log_q\":-1.25}\n{\"z\":[3,4],\"log_q\":null}\n");
    }
  }
  unlink(path.c_str());
}

TEST(FormatTest, ShortestRoundTrip) {
  for (double v : {0.1, 1.0 / 3, -2.5e-300, 12345678.9, 1e22}) {
    EXPECT_EQ(std::strtod(FormatDouble(v).c_str(), nullptr), v);
  }
  EXPECT_EQ(FormatDouble(0.1), "0.1");
  EXPECT_EQ(FormatForPath("a/b.NPY", Format::kCsv), Format::kNpy);
  EXPECT_EQ(FormatForPath("out.jsonl", Format::kCsv), Format::kJsonLines);
  EXPECT_EQ(FormatForPath("out.txt", Format::kCsv), Format::kCsv);
  EXPECT_FALSE(ParseFormat("xml").ok());
}

TEST(PlotTest, TicksAreRound) {
  EXPECT_EQ(NiceTicks(-4, 4, 5), (std::vector<double>{-4, -2, 0, 2, 4}));
  EXPECT_EQ(NiceTicks(0, 1, 5), (std::vector<double>{0, 0.2, 0.4, 0.6000000000000001, 0.8, 1}));
  EXPECT_TRUE(NiceTicks(1, 1, 5).empty());
}

TEST(PlotTest, WritesAPngOfTheRequestedSize) {
  Figure f;
  f.rows = 1;
  f.cols = 2;
  f.width = 400;
  f.height = 200;
  f.title = "t";
  Panel image;
  image.kind = Panel::Kind::kImage;
  image.nx = 2;
  image.ny = 2;
  image.image = {0, 1, 2, 3};
  image.x = {0, 1};
  image.y = {0, 1};
  Panel lines;
  lines.kind = Panel::Kind::kLines;
  lines.x = {0, 2};
  lines.y = {-1, 1};
  lines.series.push_back({{0, 1, 2}, {-1, 0, 1}, "s"});
  f.panels = {image, lines};
  const std::string path = TempPath("fig.png");
  ASSERT_TRUE(WritePng(f, path).ok());
  absl::StatusOr<std::string> png = ReadFile(path);
  ASSERT_TRUE(png.ok());
  ASSERT_GT(png->size(), 24u);
  EXPECT_EQ(png->substr(1, 3), "PNG");
  auto be32 = [&](size_t at) {
    return (static_cast<uint32_t>(static_cast<unsigned char>((*png)[at])) << 24) |
           (static_cast<uint32_t>(static_cast<unsigned char>((*png)[at + 1])) << 16) |
           (static_cast<uint32_t>(static_cast<unsigned char>((*png)[at + 2])) << 8) |
           static_cast<uint32_t>(static_cast<unsigned char>((*png)[at + 3]));
  };
  EXPECT_EQ(be32(16), 400u);
  EXPECT_EQ(be32(20), 200u);
  unlink(path.c_str());

  f.panels.pop_back();
  EXPECT_FALSE(WritePng(f, path).ok());  // rows * cols panels needed
}

}  // namespace
}  // namespace flowvi::client
