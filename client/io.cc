#include "client/io.h"

#include <unistd.h>

#include <bit>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "client/client.h"

namespace flowvi::client {
namespace {

constexpr absl::string_view kNpyMagic("\x93NUMPY", 6);

static_assert(std::endian::native == std::endian::little,
              ".npy reading and writing assume a little-endian machine");

std::string Quote(absl::string_view field) {
  std::string out(absl::StripAsciiWhitespace(field));
  if (out.size() >= 2 && out.front() == '"' && out.back() == '"') {
    out = out.substr(1, out.size() - 2);
  }
  return out;
}

bool ParseNumber(absl::string_view field, double* out) {
  absl::string_view f = absl::StripAsciiWhitespace(field);
  if (f.empty()) return false;
  return absl::SimpleAtod(f, out);
}

// Value of `key` in the .npy header dict, as raw text: "'<f8'", "False", "(3, 2)".
std::optional<std::string> NpyField(absl::string_view dict, absl::string_view key) {
  const std::string quoted = absl::StrCat("'", key, "'");
  size_t at = dict.find(quoted);
  if (at == absl::string_view::npos) return std::nullopt;
  at = dict.find(':', at + quoted.size());
  if (at == absl::string_view::npos) return std::nullopt;
  absl::string_view rest = absl::StripLeadingAsciiWhitespace(dict.substr(at + 1));
  if (rest.empty()) return std::nullopt;
  size_t end = 0;
  if (rest[0] == '(') {
    end = rest.find(')');
    if (end == absl::string_view::npos) return std::nullopt;
    ++end;
  } else if (rest[0] == '\'' || rest[0] == '"') {
    end = rest.find(rest[0], 1);
    if (end == absl::string_view::npos) return std::nullopt;
    ++end;
  } else {
    end = rest.find_first_of(",}");
    if (end == absl::string_view::npos) end = rest.size();
  }
  return std::string(absl::StripAsciiWhitespace(rest.substr(0, end)));
}

template <typename T>
T Load(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

}  // namespace

absl::StatusOr<Table> ParseCsv(absl::string_view text, absl::string_view name) {
  Table table;
  int line_number = 0;
  int first_line = 0;
  bool first = true;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    absl::ConsumeSuffix(&line, "\r");
    if (absl::StripAsciiWhitespace(line).empty() || absl::StartsWith(line, "#")) continue;
    std::vector<absl::string_view> fields = absl::StrSplit(line, ',');
    if (first) {
      first = false;
      first_line = line_number;
      table.cols = static_cast<int>(fields.size());
      bool header = false;
      double ignored = 0;
      for (absl::string_view f : fields) header |= !ParseNumber(f, &ignored);
      if (header) {
        for (absl::string_view f : fields) table.header.push_back(Quote(f));
        continue;
      }
    }
    if (static_cast<int>(fields.size()) != table.cols) {
      return BadInputError(absl::StrCat(name, " line ", line_number, ": ", fields.size(),
                                        fields.size() == 1 ? " column" : " columns", ", expected ",
                                        table.cols, " (as on line ", first_line, ")"));
    }
    for (size_t j = 0; j < fields.size(); ++j) {
      double v = 0;
      if (!ParseNumber(fields[j], &v)) {
        return BadInputError(absl::StrCat(name, " line ", line_number, " column ", j + 1, ": '",
                                          absl::StripAsciiWhitespace(fields[j]),
                                          "' is not a number"));
      }
      if (!std::isfinite(v)) {
        return BadInputError(absl::StrCat(name, " line ", line_number, " column ", j + 1, ": '",
                                          absl::StripAsciiWhitespace(fields[j]),
                                          "' is not a finite number"));
      }
      table.values.push_back(v);
    }
    ++table.rows;
  }
  if (table.rows == 0) return BadInputError(absl::StrCat(name, " has no rows of numbers"));
  return table;
}

absl::StatusOr<Table> ParseNpy(absl::string_view bytes, absl::string_view name) {
  auto bad = [&](absl::string_view why) {
    return BadInputError(absl::StrCat(name, ": not a usable .npy file (", why, ")"));
  };
  if (!absl::StartsWith(bytes, kNpyMagic) || bytes.size() < 10) return bad("no .npy magic");
  const int major = static_cast<unsigned char>(bytes[6]);
  size_t header_len = 0;
  size_t offset = 0;
  if (major == 1) {
    header_len = Load<uint16_t>(bytes.data() + 8);
    offset = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) return bad("truncated header");
    header_len = Load<uint32_t>(bytes.data() + 8);
    offset = 12;
  } else {
    return bad(absl::StrCat("format version ", major));
  }
  if (bytes.size() < offset + header_len) return bad("truncated header");
  const absl::string_view dict = bytes.substr(offset, header_len);
  std::optional<std::string> descr = NpyField(dict, "descr");
  std::optional<std::string> order = NpyField(dict, "fortran_order");
  std::optional<std::string> shape = NpyField(dict, "shape");
  if (!descr || !order || !shape) return bad("header lacks descr, fortran_order or shape");
  const std::string type =
      std::string(absl::StripAsciiWhitespace(Quote(absl::StrReplaceAll(*descr, {{"'", "\""}}))));
  size_t item = 0;
  if (type == "<f8" || type == "<i8") {
    item = 8;
  } else if (type == "<f4" || type == "<i4") {
    item = 4;
  } else {
    return bad(absl::StrCat("element type ", type, "; use float64"));
  }
  const bool fortran = *order == "True";
  std::vector<int64_t> dims;
  absl::string_view s = *shape;
  absl::ConsumePrefix(&s, "(");
  absl::ConsumeSuffix(&s, ")");
  for (absl::string_view d : absl::StrSplit(s, ',', absl::SkipWhitespace())) {
    int64_t v = 0;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(d), &v) || v < 0) {
      return bad(absl::StrCat("shape ", *shape));
    }
    dims.push_back(v);
  }
  if (dims.empty() || dims.size() > 2) {
    return bad(absl::StrCat("shape ", *shape, "; expected (n,) or (n, d)"));
  }
  Table table;
  table.from_npy = true;
  table.rows = dims[0];
  table.cols = dims.size() == 2 ? static_cast<int>(dims[1]) : 1;
  const uint64_t count = static_cast<uint64_t>(table.rows) * static_cast<uint64_t>(table.cols);
  const absl::string_view data = bytes.substr(offset + header_len);
  if (data.size() < count * item) {
    return bad(absl::StrCat("data holds ", data.size() / item, " values, the shape says ", count));
  }
  table.values.resize(count);
  for (uint64_t k = 0; k < count; ++k) {
    const char* p = data.data() + k * item;
    double v = 0;
    if (type == "<f8") v = Load<double>(p);
    if (type == "<f4") v = Load<float>(p);
    if (type == "<i8") v = static_cast<double>(Load<int64_t>(p));
    if (type == "<i4") v = Load<int32_t>(p);
    // Fortran order stores column after column.
    const uint64_t i = fortran ? k % static_cast<uint64_t>(table.rows) : k / table.cols;
    const uint64_t j = fortran ? k / static_cast<uint64_t>(table.rows) : k % table.cols;
    if (!std::isfinite(v)) {
      return BadInputError(absl::StrCat(name, " row ", i + 1, " column ", j + 1,
                                        ": not a finite number (", FormatDouble(v), ")"));
    }
    table.values[i * table.cols + j] = v;
  }
  if (table.rows == 0) return BadInputError(absl::StrCat(name, " has no rows of numbers"));
  return table;
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  FILE* f = path == "-" ? stdin : std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    return BadInputError(absl::StrCat("cannot open ", path, ": ", std::strerror(errno)));
  }
  std::string out;
  char buf[1 << 16];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) out.append(buf, n);
  const bool failed = std::ferror(f) != 0;
  if (f != stdin) std::fclose(f);
  if (failed) return BadInputError(absl::StrCat("cannot read ", path));
  return out;
}

absl::StatusOr<Table> ReadTable(const std::string& path) {
  absl::StatusOr<std::string> bytes = ReadFile(path);
  if (!bytes.ok()) return bytes.status();
  const std::string name = path == "-" ? "standard input" : path;
  if (absl::StartsWith(*bytes, kNpyMagic)) return ParseNpy(*bytes, name);
  if (absl::EndsWith(path, ".npy")) return ParseNpy(*bytes, name);
  return ParseCsv(*bytes, name);
}

std::string NpyHeader(int64_t rows, int cols) {
  const std::string shape =
      cols == 0 ? absl::StrCat("(", rows, ",)") : absl::StrCat("(", rows, ", ", cols, ")");
  std::string dict =
      absl::StrCat("{'descr': '<f8', 'fortran_order': False, 'shape': ", shape, ", }");
  // magic (6) + version (2) + length (2) + dict + padding + '\n' = a multiple of 64.
  const size_t unpadded = 10 + dict.size() + 1;
  dict.append((64 - unpadded % 64) % 64, ' ');
  dict.push_back('\n');
  std::string out(kNpyMagic);
  out.push_back('\x01');
  out.push_back('\x00');
  const uint16_t len = static_cast<uint16_t>(dict.size());
  out.push_back(static_cast<char>(len & 0xff));
  out.push_back(static_cast<char>(len >> 8));
  out += dict;
  return out;
}

std::string FormatDouble(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  char buf[64];
  const std::to_chars_result r = std::to_chars(buf, buf + sizeof(buf), value);
  return std::string(buf, r.ptr);
}

absl::StatusOr<Format> ParseFormat(absl::string_view name) {
  const std::string n = absl::AsciiStrToLower(name);
  if (n == "csv") return Format::kCsv;
  if (n == "jsonl" || n == "json" || n == "ndjson") return Format::kJsonLines;
  if (n == "npy") return Format::kNpy;
  return UsageError(absl::StrCat("unknown format '", name, "'; use csv, jsonl or npy"));
}

Format FormatForPath(absl::string_view path, Format fallback) {
  const std::string p = absl::AsciiStrToLower(path);
  if (absl::EndsWith(p, ".csv")) return Format::kCsv;
  if (absl::EndsWith(p, ".jsonl") || absl::EndsWith(p, ".json") || absl::EndsWith(p, ".ndjson")) {
    return Format::kJsonLines;
  }
  if (absl::EndsWith(p, ".npy")) return Format::kNpy;
  return fallback;
}

TableWriter::TableWriter(std::string path, FILE* file, bool owned, Options options)
    : path_(std::move(path)), file_(file), owned_(owned), options_(std::move(options)) {}

TableWriter::~TableWriter() {
  if (!closed_) Close().IgnoreError();
}

absl::StatusOr<std::unique_ptr<TableWriter>> TableWriter::Open(const std::string& path,
                                                               Options options) {
  if (options.format == Format::kNpy && path == "-" && isatty(STDOUT_FILENO)) {
    return UsageError("not writing binary .npy data to a terminal; use -o FILE.npy");
  }
  FILE* f = path == "-" ? stdout : std::fopen(path.c_str(), "wb");
  if (f == nullptr) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot write ", path, ": ", std::strerror(errno)));
  }
  std::unique_ptr<TableWriter> w(new TableWriter(path, f, path != "-", std::move(options)));
  const Options& o = w->options_;
  absl::Status s;
  switch (o.format) {
    case Format::kCsv:
      s = w->Put(absl::StrCat(absl::StrJoin(o.columns, ","), "\n"));
      break;
    case Format::kNpy:
      s = w->Put(NpyHeader(o.rows, o.columns.size() == 1 ? 0 : static_cast<int>(o.columns.size())));
      break;
    case Format::kJsonLines:
      break;
  }
  if (!s.ok()) return s;
  return w;
}

absl::Status TableWriter::Put(absl::string_view bytes) {
  if (std::fwrite(bytes.data(), 1, bytes.size(), file_) != bytes.size()) {
    return absl::DataLossError(
        absl::StrCat("cannot write ", path_ == "-" ? "output" : path_, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

absl::Status TableWriter::Write(const double* values, int64_t rows) {
  const size_t cols = options_.columns.size();
  if (options_.format == Format::kNpy) {
    if (written_ + rows > options_.rows) {
      return absl::InternalError("more rows than the .npy header announced");
    }
    written_ += rows;
    return Put(absl::string_view(reinterpret_cast<const char*>(values),
                                 static_cast<size_t>(rows) * cols * sizeof(double)));
  }
  std::string text;
  for (int64_t i = 0; i < rows; ++i) {
    const double* row = values + i * static_cast<int64_t>(cols);
    if (options_.format == Format::kCsv) {
      for (size_t j = 0; j < cols; ++j) {
        if (j > 0) text.push_back(',');
        text += FormatDouble(row[j]);
      }
    } else {
      auto json = [](double v) { return std::isfinite(v) ? FormatDouble(v) : std::string("null"); };
      text.push_back('{');
      size_t j = 0;
      if (options_.vector_columns > 0) {
        absl::StrAppend(&text, "\"", options_.vector_name, "\":[");
        for (; j < static_cast<size_t>(options_.vector_columns) && j < cols; ++j) {
          if (j > 0) text.push_back(',');
          text += json(row[j]);
        }
        text.push_back(']');
      }
      for (; j < cols; ++j) {
        if (j > 0) text.push_back(',');
        absl::StrAppend(&text, "\"", options_.columns[j], "\":", json(row[j]));
      }
      text.push_back('}');
    }
    text.push_back('\n');
    if (text.size() > (1 << 16)) {
      if (absl::Status s = Put(text); !s.ok()) return s;
      text.clear();
    }
  }
  written_ += rows;
  return Put(text);
}

absl::Status TableWriter::Close() {
  if (closed_) return absl::OkStatus();
  closed_ = true;
  absl::Status s;
  if (options_.format == Format::kNpy && written_ != options_.rows) {
    s = absl::DataLossError(
        absl::StrCat("wrote ", written_, " of ", options_.rows, " rows to ", path_));
  }
  if (std::fflush(file_) != 0 && s.ok()) {
    s = absl::DataLossError(absl::StrCat("cannot write ", path_, ": ", std::strerror(errno)));
  }
  if (owned_ && std::fclose(file_) != 0 && s.ok()) {
    s = absl::DataLossError(absl::StrCat("cannot write ", path_, ": ", std::strerror(errno)));
  }
  return s;
}

absl::Status WriteFile(const std::string& path, absl::string_view bytes) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot write ", path, ": ", std::strerror(errno)));
  }
  const bool ok = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  if (std::fclose(f) != 0 || !ok) {
    return absl::DataLossError(absl::StrCat("cannot write ", path, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace flowvi::client
