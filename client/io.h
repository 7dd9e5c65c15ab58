// Tables of numbers in and out of files: CSV, JSON lines and NumPy .npy (format version 1.0,
// little-endian float64, C order).
//
// Readers return bad-input errors (exit code 6) whose one-line message names the file, the
// line (CSV) and the problem. Writers stream rows, so a large sample never sits in memory.
#ifndef FLOWVI_CLIENT_IO_H_
#define FLOWVI_CLIENT_IO_H_

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace flowvi::client {

// Row-major numbers with optional column names (CSV header).
struct Table {
  int64_t rows = 0;
  int cols = 0;
  std::vector<double> values;       // rows * cols
  std::vector<std::string> header;  // empty, or cols names
  bool from_npy = false;
};

// CSV: comma-separated numbers, one row a line; an optional header line (any field that is not
// a number makes the first line a header); blank lines and lines starting with '#' are skipped.
// Every row must have the same number of fields, every field a finite number. `name` is used
// in messages ("points.csv").
absl::StatusOr<Table> ParseCsv(absl::string_view text, absl::string_view name);

// A .npy file's bytes: a 1-D (n) or 2-D (n, d) array of little-endian float64, float32, int32
// or int64, C or Fortran order; a 1-D array is n rows of one column. Values must be finite.
absl::StatusOr<Table> ParseNpy(absl::string_view bytes, absl::string_view name);

// Reads `path` ("-": standard input) as .npy when its bytes start with the .npy magic string,
// else as CSV.
absl::StatusOr<Table> ReadTable(const std::string& path);

// The .npy header (magic, version 1.0, dict, padding to a multiple of 64 bytes) for a float64
// C-order array of `rows` x `cols` (`cols` 0: a 1-D array of `rows`).
std::string NpyHeader(int64_t rows, int cols);

// Shortest text that reads back to the same double ("nan", "inf", "-inf" for non-finite).
std::string FormatDouble(double value);

enum class Format { kCsv, kJsonLines, kNpy };

// "csv", "jsonl" (or "json"), "npy".
absl::StatusOr<Format> ParseFormat(absl::string_view name);
// By the file's extension (.csv, .jsonl/.json/.ndjson, .npy); `fallback` otherwise.
Format FormatForPath(absl::string_view path, Format fallback);

// Streams rows of `columns.size()` numbers to a file or standard output.
//
// CSV: a header line with the column names, then one line per row.
// JSON lines: one object per row; the first `vector_columns` columns go into one array named
// `vector_name` ({"z":[...],"log_q":-1.2}), the rest are keyed by column name. Non-finite
// numbers are written as null.
// NPY: a 2-D float64 array (rows, columns) — or 1-D when there is one column — whose row count
// must be given up front.
class TableWriter {
 public:
  struct Options {
    Format format = Format::kCsv;
    std::vector<std::string> columns;
    // NPY: the number of rows that will be written.
    int64_t rows = 0;
    int vector_columns = 0;
    std::string vector_name = "z";
  };

  // `path` "-" writes to standard output.
  static absl::StatusOr<std::unique_ptr<TableWriter>> Open(const std::string& path,
                                                           Options options);
  ~TableWriter();

  // `values` holds `rows` rows of columns.size() numbers, row-major.
  absl::Status Write(const double* values, int64_t rows);
  // Flushes and closes; an error when fewer rows than promised were written (NPY) or the
  // file could not be written.
  absl::Status Close();

 private:
  TableWriter(std::string path, FILE* file, bool owned, Options options);
  absl::Status Put(absl::string_view bytes);

  std::string path_;
  FILE* file_;
  bool owned_;
  Options options_;
  int64_t written_ = 0;
  bool closed_ = false;
};

// Whole-file helpers for the plot and the tests of this library.
absl::Status WriteFile(const std::string& path, absl::string_view bytes);
absl::StatusOr<std::string> ReadFile(const std::string& path);

}  // namespace flowvi::client

#endif  // FLOWVI_CLIENT_IO_H_
