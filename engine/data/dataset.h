// Dataset: N points in R^D for fitting a density (maximum likelihood), stored like every batch of
// the engine as a D x N matrix, one column per point.
//
// Points arrive as rows (a CSV line, an inline list, a streamed chunk): DatasetBuilder takes them
// one row at a time and checks each as it comes, so a bad value is reported with the row and
// column a user would look up in the file — both 1-based, counting data rows only. Every error
// is InvalidArgument; a Dataset that exists holds only finite numbers and at least one point.
//
// Ownership: a Dataset owns its points (a plain value type). Thread-safety: const methods may be
// called concurrently; a DatasetBuilder belongs to one thread.
#ifndef FLOWVI_ENGINE_DATA_DATASET_H_
#define FLOWVI_ENGINE_DATA_DATASET_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "engine/core/types.h"

namespace flowvi {

class Dataset {
 public:
  // From rows (each one point). `dim` > 0: every row must have exactly dim values (e.g. the
  // flow's dimension); dim = 0: the first row sets it. InvalidArgument naming the row and
  // column of the first ragged row, missing or extra value, or NaN/infinite value; also for no
  // rows at all.
  static absl::StatusOr<Dataset> FromRows(absl::Span<const std::vector<double>> rows, int dim = 0);
  // From a D x N matrix (column j is row j + 1 of the user's data); same checks.
  static absl::StatusOr<Dataset> FromPoints(const Matrix& points, int dim = 0);

  int dim() const { return static_cast<int>(points_.rows()); }
  int64_t size() const { return points_.cols(); }
  const Matrix& points() const { return points_; }

  // OK if the data live in R^dim (e.g. the flow's dimension), else InvalidArgument naming the
  // first row and the column that is missing or extra.
  absl::Status CheckDim(int dim) const;

 private:
  explicit Dataset(Matrix points) : points_(std::move(points)) {}
  Matrix points_;
};

// Collects rows one by one (for data streamed in chunks), checking each on arrival.
class DatasetBuilder {
 public:
  // dim as in Dataset::FromRows.
  explicit DatasetBuilder(int dim = 0) : dim_(dim) {}

  // Appends one point. InvalidArgument naming this row (1-based, counting every row added so
  // far) and the offending column; the builder is unchanged then, so a caller may stop there.
  absl::Status AddRow(absl::Span<const double> row);
  int64_t rows() const { return rows_; }

  // The data set; InvalidArgument when no row was added. Leaves the builder empty.
  absl::StatusOr<Dataset> Build();

 private:
  int dim_;
  int64_t rows_ = 0;
  std::vector<double> values_;  // row-major N x D, which is the column-major D x N matrix
};

}  // namespace flowvi

#endif  // FLOWVI_ENGINE_DATA_DATASET_H_
