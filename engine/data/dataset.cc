#include "engine/data/dataset.h"

#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"

namespace flowvi {
namespace {

// The message for a row whose length differs from the expected dimension: which column is the
// first missing or extra one.
absl::Status WrongLength(int64_t row, int64_t length, int dim, absl::string_view expected_from) {
  if (length < dim) {
    return absl::InvalidArgumentError(absl::StrCat(
        "row ", row, ": column ", length + 1, " is missing; the row has ", length, " value(s) but ",
        expected_from, " ", dim, " (every row must have the same number)"));
  }
  return absl::InvalidArgumentError(absl::StrCat("row ", row, ", column ", dim + 1,
                                                 ": extra value; the row has ", length,
                                                 " values but ", expected_from, " ", dim));
}

}  // namespace

absl::Status DatasetBuilder::AddRow(absl::Span<const double> row) {
  const int64_t index = rows_ + 1;
  if (row.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("row ", index, " is empty"));
  }
  if (dim_ == 0) {
    dim_ = static_cast<int>(row.size());
  } else if (static_cast<int64_t>(row.size()) != dim_) {
    return WrongLength(index, static_cast<int64_t>(row.size()), dim_,
                       rows_ == 0 ? "the data set must have dimension" : "row 1 has");
  }
  for (size_t c = 0; c < row.size(); ++c) {
    if (!std::isfinite(row[c])) {
      return absl::InvalidArgumentError(
          absl::StrCat("row ", index, ", column ", c + 1, ": value ", row[c],
                       " is not a finite number; remove or impute missing and infinite values"));
    }
  }
  values_.insert(values_.end(), row.begin(), row.end());
  ++rows_;
  return absl::OkStatus();
}

absl::StatusOr<Dataset> DatasetBuilder::Build() {
  if (rows_ == 0) {
    return absl::InvalidArgumentError("the data set has no rows; at least one point is needed");
  }
  Matrix points = Eigen::Map<const Matrix>(values_.data(), dim_, rows_);
  values_.clear();
  rows_ = 0;
  return Dataset::FromPoints(points);
}

absl::StatusOr<Dataset> Dataset::FromRows(absl::Span<const std::vector<double>> rows, int dim) {
  DatasetBuilder builder(dim);
  for (const std::vector<double>& row : rows) {
    if (absl::Status s = builder.AddRow(row); !s.ok()) return s;
  }
  return builder.Build();
}

absl::StatusOr<Dataset> Dataset::FromPoints(const Matrix& points, int dim) {
  if (points.cols() == 0 || points.rows() == 0) {
    return absl::InvalidArgumentError("the data set has no points; at least one is needed");
  }
  Dataset data{Matrix(points)};
  if (dim > 0) {
    if (absl::Status s = data.CheckDim(dim); !s.ok()) return s;
  }
  for (Eigen::Index j = 0; j < points.cols(); ++j) {
    for (Eigen::Index i = 0; i < points.rows(); ++i) {
      if (!std::isfinite(points(i, j))) {
        return absl::InvalidArgumentError(
            absl::StrCat("row ", j + 1, ", column ", i + 1, ": value ", points(i, j),
                         " is not a finite number; remove or impute missing and infinite values"));
      }
    }
  }
  return data;
}

absl::Status Dataset::CheckDim(int dim) const {
  if (this->dim() == dim) return absl::OkStatus();
  return WrongLength(1, this->dim(), dim, "the flow has dimension");
}

}  // namespace flowvi
