// sample, logpdf.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "client/commands.h"
#include "client/io.h"
#include "client/output.h"

namespace flowvi::client {
namespace {

// Values of one LogDensity request at most (8 MB of doubles, well under the server's limits).
constexpr int64_t kValuesPerRequest = 1 << 20;

std::string Ref(const v1::Model& m) { return absl::StrCat(m.name(), "/", m.version()); }

std::vector<std::string> CoordinateNames(const v1::Model& m) {
  std::vector<std::string> names;
  // A data set's column names (its CSV header), else the target's coordinate names.
  const auto& given =
      m.target().has_data() ? m.target().data().column_names() : m.diagnostics().coordinate_names();
  for (int j = 0; j < m.dim(); ++j) {
    names.push_back(j < given.size() && !given[j].empty() ? given[j] : absl::StrCat("x", j + 1));
  }
  return names;
}

// --format, else the output file's extension, else JSON lines with --json, else CSV.
absl::StatusOr<Format> OutputFormat(const Context& ctx, const std::string& path) {
  if (std::optional<std::string> f = ctx.args.Value("format")) return ParseFormat(*f);
  const Format fallback = ctx.json ? Format::kJsonLines : Format::kCsv;
  return path == "-" ? fallback : FormatForPath(path, fallback);
}

absl::Status RunSample(Context& ctx) {
  int64_t n = 0;
  uint64_t seed = 0;
  if (absl::Status s = ctx.args.Get("draws", &n); !s.ok()) return s;
  if (absl::Status s = ctx.args.Get("seed", &seed); !s.ok()) return s;
  if (!ctx.args.Has("draws")) return UsageError("'flowvi sample' needs -n N (the number of draws)");
  if (n < 1) return UsageError(absl::StrCat("-n must be at least 1, got ", n));
  absl::StatusOr<v1::Model> model = ctx.client.GetModel(ctx.args.positional()[0]);
  if (!model.ok()) return model.status();
  const std::string path = ctx.args.ValueOr("output", "-");
  absl::StatusOr<Format> format = OutputFormat(ctx, path);
  if (!format.ok()) return format.status();

  const int dim = model->dim();
  TableWriter::Options options;
  options.format = *format;
  options.columns = CoordinateNames(*model);
  options.columns.push_back("log_q");
  options.rows = n;
  options.vector_columns = dim;
  absl::StatusOr<std::unique_ptr<TableWriter>> writer = TableWriter::Open(path, options);
  if (!writer.ok()) return writer.status();

  v1::SampleRequest request;
  request.set_model(Ref(*model));
  request.set_n(n);
  request.set_seed(seed);
  std::unique_ptr<grpc::ClientContext> rpc = ctx.client.NewContext(/*deadline=*/false);
  std::unique_ptr<grpc::ClientReader<v1::SampleChunk>> reader =
      ctx.client.stub()->Sample(rpc.get(), request);
  v1::SampleChunk chunk;
  std::vector<double> rows;
  int64_t received = 0;
  absl::Status write_status;
  while (reader->Read(&chunk)) {
    const int64_t m = chunk.log_q_size();
    if (chunk.dim() != dim || chunk.values_size() != m * dim) {
      rpc->TryCancel();
      reader->Finish();
      return absl::InternalError("the server sent a malformed sample chunk");
    }
    rows.resize(static_cast<size_t>(m * (dim + 1)));
    for (int64_t i = 0; i < m; ++i) {
      std::copy_n(chunk.values().data() + i * dim, dim, rows.data() + i * (dim + 1));
      rows[i * (dim + 1) + dim] = chunk.log_q(static_cast<int>(i));
    }
    write_status = (*writer)->Write(rows.data(), m);
    if (!write_status.ok()) {
      rpc->TryCancel();
      break;
    }
    received += m;
  }
  grpc::Status status = reader->Finish();
  if (!write_status.ok()) return write_status;
  if (!status.ok()) return ctx.client.FromRpc(status, "sampling");
  if (received != n) {
    return absl::DataLossError(absl::StrCat("the server sent ", received, " of ", n, " draws"));
  }
  if (absl::Status s = (*writer)->Close(); !s.ok()) return s;
  if (path != "-" && !ctx.json) {
    Err(absl::StrCat("wrote ", Thousands(n), " draws of ", Ref(*model), " to ", path, "\n"));
  }
  return absl::OkStatus();
}

absl::Status RunLogpdf(Context& ctx) {
  std::optional<std::string> points_path = ctx.args.Value("points");
  if (!points_path.has_value()) {
    return UsageError(
        "'flowvi logpdf' needs --points FILE (CSV or .npy; '-' reads standard input)");
  }
  absl::StatusOr<v1::Model> model = ctx.client.GetModel(ctx.args.positional()[0]);
  if (!model.ok()) return model.status();
  absl::StatusOr<Table> table = ReadTable(*points_path);
  if (!table.ok()) return table.status();
  const int dim = model->dim();
  const std::string name = *points_path == "-" ? "standard input" : *points_path;
  // D columns, or D + 1 with log_q last, as `flowvi sample` writes them: a CSV says so in its
  // header; a .npy file has no header, so D + 1 columns are taken as that layout.
  const bool is_npy = table->header.empty() && table->from_npy;
  const bool trailing_log_q =
      table->cols == dim + 1 &&
      (is_npy || (!table->header.empty() && table->header.back() == "log_q"));
  if (table->cols != dim && !trailing_log_q) {
    return BadInputError(
        absl::StrCat(name, " has ", table->cols, table->cols == 1 ? " column" : " columns",
                     "; model ", Ref(*model), " has dimension ", dim, " (give ", dim,
                     dim == 1 ? " column" : " columns", ", optionally followed by log_q)"));
  }
  const std::string path = ctx.args.ValueOr("output", "-");
  absl::StatusOr<Format> format = OutputFormat(ctx, path);
  if (!format.ok()) return format.status();
  TableWriter::Options options;
  options.format = *format;
  options.columns = {"log_q"};
  options.rows = table->rows;
  absl::StatusOr<std::unique_ptr<TableWriter>> writer = TableWriter::Open(path, options);
  if (!writer.ok()) return writer.status();

  const int64_t per_request = std::max<int64_t>(1, kValuesPerRequest / std::max(1, dim));
  for (int64_t start = 0; start < table->rows; start += per_request) {
    const int64_t m = std::min(per_request, table->rows - start);
    v1::LogDensityRequest request;
    request.set_model(Ref(*model));
    request.set_dim(dim);
    request.mutable_points()->Reserve(static_cast<int>(m * dim));
    for (int64_t i = start; i < start + m; ++i) {
      const double* row = table->values.data() + i * table->cols;
      request.mutable_points()->Add(row, row + dim);
    }
    absl::StatusOr<v1::LogDensityResponse> r =
        ctx.client.Call(&v1::FlowVI::Stub::LogDensity, request, "evaluating the log-density");
    if (!r.ok()) return r.status();
    if (r->log_q_size() != m) {
      return absl::InternalError(absl::StrCat("the server answered ", r->log_q_size(),
                                              " log-densities for ", m, " points"));
    }
    if (absl::Status s = (*writer)->Write(r->log_q().data(), m); !s.ok()) return s;
  }
  return (*writer)->Close();
}

}  // namespace

void AddDataCommands(std::vector<CommandEntry>* out) {
  Command sample("sample", "REF", "draw samples (and their log q) from a model", 1, 1);
  sample.description =
      "Draws N samples from the model REF ('name', 'name/3' or 'name@alias'). The same model, "
      "N and seed give the same draws.\n\n"
      "Formats: CSV (default: a header with one column per coordinate, named as the target "
      "names them, then log_q), JSON lines ({\"z\":[...],\"log_q\":...} per draw), or NumPy "
      ".npy (float64, shape (N, D+1): the CSV's columns). The format follows --format, else "
      "the -o file's extension, else --json (JSON lines), else CSV.";
  sample.flags = {{"draws", "N", "number of draws (required)", 'n'},
                  {"seed", "S", "random seed (default 0)"},
                  {"output", "FILE", "write to FILE instead of standard output", 'o'},
                  {"format", "F", "csv, jsonl or npy"}};
  sample.examples =
      "flowvi sample u1 -n 1000 > draws.csv\n"
      "flowvi sample eight_schools@prod -n 20000 -o draws.npy\n"
      "flowvi sample u1 -n 5 --format jsonl";
  out->push_back({sample, RunSample});

  Command logpdf("logpdf", "REF", "evaluate a model's log q at given points", 1, 1);
  logpdf.description =
      "Evaluates log q of the model REF at the points in --points: a CSV file (one point a row, "
      "D comma-separated numbers, an optional header line) or a .npy file (shape (n, D)). A "
      "trailing log_q column, as 'flowvi sample' writes it (in a CSV, named so in the header; "
      "in a .npy file, shape (n, D+1)), is ignored, so samples can be fed back as they are. Prints "
      "one log_q per point, in the same formats as 'flowvi sample'.";
  logpdf.flags = {{"points", "FILE", "points to evaluate: CSV or .npy; '-' reads standard input"},
                  {"output", "FILE", "write to FILE instead of standard output", 'o'},
                  {"format", "F", "csv, jsonl or npy"}};
  logpdf.examples =
      "flowvi logpdf u1 --points grid.csv\n"
      "flowvi sample u1 -n 100 | flowvi logpdf u1 --points -";
  out->push_back({logpdf, RunLogpdf});
}

}  // namespace flowvi::client
