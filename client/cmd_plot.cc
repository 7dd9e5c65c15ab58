// plot, figure: PNG pictures of fitted models.
#include <algorithm>
#include <cmath>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "client/commands.h"
#include "client/output.h"
#include "client/plot.h"

namespace flowvi::client {
namespace {

std::string Ref(const v1::Model& m) { return absl::StrCat(m.name(), "/", m.version()); }

std::string CoordinateName(const v1::Model& m, int j) {
  const auto& names = m.diagnostics().coordinate_names();
  return j < names.size() && !names[j].empty() ? names[j] : absl::StrCat("x", j + 1);
}

// "a:b" -> Range.
absl::StatusOr<Range> ParseRange(absl::string_view text, absl::string_view flag) {
  std::vector<absl::string_view> parts = absl::StrSplit(text, ':');
  Range r;
  if (parts.size() != 2 || !absl::SimpleAtod(parts[0], &r.min) ||
      !absl::SimpleAtod(parts[1], &r.max) || !std::isfinite(r.min) || !std::isfinite(r.max) ||
      !(r.max > r.min)) {
    return UsageError(absl::StrCat("--", flag, ": '", text, "' is not MIN:MAX with MIN < MAX"));
  }
  return r;
}

// --range: "a:b" for both axes or "a:b,c:d".
absl::Status ParseRanges(const Args& args, Range* x, Range* y, bool* given) {
  *given = false;
  std::optional<std::string> text = args.Value("range");
  if (!text.has_value()) return absl::OkStatus();
  std::vector<absl::string_view> parts = absl::StrSplit(*text, ',');
  if (parts.size() > 2) return UsageError("--range: give MIN:MAX or XMIN:XMAX,YMIN:YMAX");
  absl::StatusOr<Range> rx = ParseRange(parts[0], "range");
  if (!rx.ok()) return rx.status();
  absl::StatusOr<Range> ry = parts.size() == 2 ? ParseRange(parts[1], "range") : rx;
  if (!ry.ok()) return ry.status();
  *x = *rx;
  *y = *ry;
  *given = true;
  return absl::OkStatus();
}

// --size WxH.
absl::Status ParseSize(const Args& args, Figure* figure) {
  std::optional<std::string> text = args.Value("size");
  if (!text.has_value()) return absl::OkStatus();
  std::vector<absl::string_view> parts = absl::StrSplit(absl::AsciiStrToLower(*text), 'x');
  int w = 0;
  int h = 0;
  if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &w) || !absl::SimpleAtoi(parts[1], &h) ||
      w < 64 || h < 64 || w > 20000 || h > 20000) {
    return UsageError(
        absl::StrCat("--size: '", *text, "' is not WIDTHxHEIGHT in pixels (64 to 20000)"));
  }
  figure->width = w;
  figure->height = h;
  return absl::OkStatus();
}

absl::Status ParseGridSize(const Args& args, int* n) {
  if (absl::Status s = args.Get("grid", n); !s.ok()) return s;
  if (*n < 10 || *n > 1000) return UsageError("--grid must be between 10 and 1000");
  return absl::OkStatus();
}

// The output path, which must end in .png.
absl::StatusOr<std::string> OutputPath(const Args& args) {
  std::optional<std::string> path = args.Value("output");
  if (!path.has_value()) return UsageError("give the PNG file to write with -o FILE.png");
  if (!absl::EndsWithIgnoreCase(*path, ".png")) {
    return UsageError(absl::StrCat("-o ", *path, ": the output is a PNG; name it FILE.png"));
  }
  return *path;
}

// Row-major grid points, row 0 at y.min: point (i, j) = (x_j, y_i) at cell centres.
std::vector<double> GridPoints(const Range& x, const Range& y, int n) {
  std::vector<double> pts;
  pts.reserve(static_cast<size_t>(2 * n * n));
  for (int i = 0; i < n; ++i) {
    const double yy = y.min + (i + 0.5) * (y.max - y.min) / n;
    for (int j = 0; j < n; ++j) {
      pts.push_back(x.min + (j + 0.5) * (x.max - x.min) / n);
      pts.push_back(yy);
    }
  }
  return pts;
}

// exp(log d - max log d), 0 where the log-density is not finite.
std::vector<double> Relative(const std::vector<double>& log_d) {
  double peak = -INFINITY;
  for (double v : log_d) {
    if (std::isfinite(v)) peak = std::max(peak, v);
  }
  std::vector<double> out(log_d.size(), 0.0);
  if (!std::isfinite(peak)) return out;
  for (size_t k = 0; k < log_d.size(); ++k) {
    out[k] = std::isfinite(log_d[k]) ? std::exp(log_d[k] - peak) : 0.0;
  }
  return out;
}

absl::StatusOr<std::vector<double>> TargetLogDensity(Client& client, const v1::Target& target,
                                                     int dim, const std::vector<double>& pts) {
  v1::TargetLogDensityRequest request;
  *request.mutable_target() = target;
  request.set_dim(dim);
  request.mutable_points()->Add(pts.begin(), pts.end());
  absl::StatusOr<v1::TargetLogDensityResponse> r =
      client.Call(&v1::FlowVI::Stub::TargetLogDensity, request, "evaluating the target density");
  if (!r.ok()) return r.status();
  return std::vector<double>(r->log_p().begin(), r->log_p().end());
}

// log q at points [begin, end) of `pts` into out[begin, end). A request the server rejects
// (a layer inverse that fails at some point) is split in halves, so that only the points that
// fail are left out (NaN, drawn blank); `budget` bounds the number of requests.
absl::Status LogDensityRange(Client& client, const v1::Model& model, const std::vector<double>& pts,
                             int64_t begin, int64_t end, std::vector<double>* out, int* budget,
                             int64_t* failed) {
  const int d = model.dim();
  v1::LogDensityRequest request;
  request.set_model(Ref(model));
  request.set_dim(d);
  request.mutable_points()->Add(pts.begin() + begin * d, pts.begin() + end * d);
  --*budget;
  absl::StatusOr<v1::LogDensityResponse> r =
      client.Call(&v1::FlowVI::Stub::LogDensity, request, "evaluating the model density");
  if (r.ok() && r->log_q_size() == end - begin) {
    std::copy(r->log_q().begin(), r->log_q().end(), out->begin() + begin);
    return absl::OkStatus();
  }
  if (r.ok()) return absl::InternalError("the server answered the wrong number of log-densities");
  if (r.status().code() != absl::StatusCode::kInvalidArgument || *budget <= 0) return r.status();
  if (end - begin == 1) {
    (*out)[static_cast<size_t>(begin)] = NAN;
    ++*failed;
    return absl::OkStatus();
  }
  const int64_t mid = begin + (end - begin) / 2;
  if (absl::Status s = LogDensityRange(client, model, pts, begin, mid, out, budget, failed);
      !s.ok()) {
    return s;
  }
  return LogDensityRange(client, model, pts, mid, end, out, budget, failed);
}

absl::StatusOr<std::vector<double>> ModelLogDensity(Client& client, const v1::Model& model,
                                                    const std::vector<double>& pts) {
  const int64_t n = static_cast<int64_t>(pts.size()) / model.dim();
  std::vector<double> out(static_cast<size_t>(n), NAN);
  int budget = 2000;
  int64_t failed = 0;
  if (absl::Status s = LogDensityRange(client, model, pts, 0, n, &out, &budget, &failed); !s.ok()) {
    return s;
  }
  if (failed > 0) {
    Err(absl::StrCat("flowvi: note: the server could not evaluate log q of ", Ref(model), " at ",
                     failed, failed == 1 ? " grid point" : " grid points",
                     " (left blank in the picture)\n"));
  }
  return out;
}

// n draws from the model, row-major (n x dim).
absl::StatusOr<std::vector<double>> Draws(Client& client, const v1::Model& model, int64_t n,
                                          uint64_t seed) {
  v1::SampleRequest request;
  request.set_model(Ref(model));
  request.set_n(n);
  request.set_seed(seed);
  std::unique_ptr<grpc::ClientContext> rpc = client.NewContext(/*deadline=*/false);
  std::unique_ptr<grpc::ClientReader<v1::SampleChunk>> reader =
      client.stub()->Sample(rpc.get(), request);
  std::vector<double> out;
  out.reserve(static_cast<size_t>(n * model.dim()));
  v1::SampleChunk chunk;
  while (reader->Read(&chunk)) out.insert(out.end(), chunk.values().begin(), chunk.values().end());
  grpc::Status s = reader->Finish();
  if (!s.ok()) return client.FromRpc(s, "sampling");
  if (static_cast<int64_t>(out.size()) != n * model.dim()) {
    return absl::DataLossError("the server sent fewer draws than asked for");
  }
  return out;
}

double Quantile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  const size_t k = std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<ptrdiff_t>(k), v.end());
  return v[k];
}

// A range that holds the bulk of column j of the draws, with a margin.
Range BulkRange(const std::vector<double>& draws, int dim, int j, double margin) {
  std::vector<double> col;
  for (size_t k = static_cast<size_t>(j); k < draws.size(); k += static_cast<size_t>(dim)) {
    if (std::isfinite(draws[k])) col.push_back(draws[k]);
  }
  Range r{Quantile(col, 0.005), Quantile(col, 0.995)};
  const double span = std::max(r.max - r.min, 1e-6);
  r.min -= margin * span;
  r.max += margin * span;
  return r;
}

Panel TracePanel(const v1::Model& m) {
  Panel p;
  p.kind = Panel::Kind::kLines;
  p.title = "ELBO trace";
  p.x_label = "iteration";
  p.y_label = "ELBO";
  Series s;
  const int n = m.elbo_trace_size();
  const double stride = static_cast<double>(std::max<int64_t>(1, m.trace_stride()));
  std::vector<double> tail;
  for (int i = 0; i < n; ++i) {
    s.x.push_back((i + 1) * stride);
    s.y.push_back(m.elbo_trace(i));
    if (i >= n / 20 && std::isfinite(m.elbo_trace(i))) tail.push_back(m.elbo_trace(i));
  }
  if (n == 0) {
    p.kind = Panel::Kind::kEmpty;
    return p;
  }
  // Early iterations are far below the rest: scale to the bulk of the run.
  double lo = Quantile(tail, 0.02);
  double hi = tail.empty() ? 0 : *std::max_element(tail.begin(), tail.end());
  if (!(hi > lo)) {
    lo -= 1;
    hi += 1;
  }
  const double pad = 0.08 * (hi - lo);
  p.x = {0, n * stride};
  p.y = {lo - pad, hi + pad};
  p.note = absl::StrCat("final ", Fixed(m.diagnostics().elbo(), 3), " ± ",
                        Fixed(m.diagnostics().elbo_se(), 3));
  // The raw trace faint, a moving average over about 2% of the run on top.
  const int half = std::max(1, n / 100);
  Series smooth;
  smooth.color = 0;
  for (int i = 0; i < n; ++i) {
    double sum = 0;
    int count = 0;
    for (int k = std::max(0, i - half); k <= std::min(n - 1, i + half); ++k) {
      if (std::isfinite(m.elbo_trace(k))) {
        sum += m.elbo_trace(k);
        ++count;
      }
    }
    smooth.x.push_back(s.x[static_cast<size_t>(i)]);
    smooth.y.push_back(count > 0 ? sum / count : NAN);
  }
  s.color = 0;
  s.faint = true;
  p.series.push_back(std::move(s));
  p.series.push_back(std::move(smooth));
  return p;
}

std::string DiagNote(const v1::Diagnostics& d) {
  return absl::StrCat("ELBO ", Fixed(d.elbo(), 2), ", k̂ ", Fixed(d.k_hat(), 2), " (",
                      KHatReading(d), ")");
}

// 2-D: the target and the fitted density on the same grid.
absl::Status DensityPanels(Client& client, const v1::Model& m, const Range& x, const Range& y,
                           int n, std::vector<Panel>* out) {
  const std::vector<double> pts = GridPoints(x, y, n);
  absl::StatusOr<std::vector<double>> lp = TargetLogDensity(client, m.target(), 2, pts);
  if (!lp.ok()) return lp.status();
  absl::StatusOr<std::vector<double>> lq = ModelLogDensity(client, m, pts);
  if (!lq.ok()) return lq.status();
  for (int k = 0; k < 2; ++k) {
    Panel p;
    p.kind = Panel::Kind::kImage;
    p.x = x;
    p.y = y;
    p.nx = n;
    p.ny = n;
    p.x_label = CoordinateName(m, 0);
    p.y_label = CoordinateName(m, 1);
    if (k == 0) {
      p.title = absl::StrCat("target ", TargetText(m.target()));
      p.image = Relative(*lp);
    } else {
      p.title = absl::StrCat("fit ", FlowText(m.flow()));
      p.note = DiagNote(m.diagnostics());
      p.image = Relative(*lq);
    }
    out->push_back(std::move(p));
  }
  return absl::OkStatus();
}

// 1-D: target (normalized on the grid) and q as curves.
absl::Status CurvePanel(Client& client, const v1::Model& m, const Range& x, int n,
                        std::vector<Panel>* out) {
  std::vector<double> xs;
  for (int j = 0; j < n; ++j) xs.push_back(x.min + (j + 0.5) * (x.max - x.min) / n);
  absl::StatusOr<std::vector<double>> lp = TargetLogDensity(client, m.target(), 1, xs);
  if (!lp.ok()) return lp.status();
  absl::StatusOr<std::vector<double>> lq = ModelLogDensity(client, m, xs);
  if (!lq.ok()) return lq.status();
  std::vector<double> p = Relative(*lp);
  double mass = 0;
  for (double v : p) mass += v * (x.max - x.min) / n;
  Series target{xs, {}, "target"};
  Series fit{xs, {}, absl::StrCat("q ", FlowText(m.flow()))};
  double top = 0;
  for (int j = 0; j < n; ++j) {
    target.y.push_back(mass > 0 ? p[j] / mass : 0);
    fit.y.push_back(std::isfinite((*lq)[j]) ? std::exp((*lq)[j]) : 0);
    top = std::max({top, target.y.back(), fit.y.back()});
  }
  Panel panel;
  panel.kind = Panel::Kind::kLines;
  panel.title = absl::StrCat(TargetText(m.target()), " and the fit");
  panel.note = DiagNote(m.diagnostics());
  panel.x_label = CoordinateName(m, 0);
  panel.y_label = "density";
  panel.x = x;
  panel.y = {0, top > 0 ? top * 1.1 : 1};
  panel.series = {std::move(target), std::move(fit)};
  out->push_back(std::move(panel));
  return absl::OkStatus();
}

// "1:10,theta1:log_tau" -> 0-based pairs.
absl::StatusOr<std::vector<std::pair<int, int>>> ParsePairs(const std::string& text,
                                                            const v1::Model& m) {
  auto coordinate = [&](absl::string_view s) -> absl::StatusOr<int> {
    int index = 0;
    if (absl::SimpleAtoi(s, &index)) {
      if (index < 1 || index > m.dim()) {
        return UsageError(
            absl::StrCat("--pairs: coordinate ", index, " is not between 1 and ", m.dim()));
      }
      return index - 1;
    }
    for (int j = 0; j < m.dim(); ++j) {
      if (CoordinateName(m, j) == s) return j;
    }
    std::vector<std::string> names;
    for (int j = 0; j < m.dim(); ++j) names.push_back(CoordinateName(m, j));
    return UsageError(absl::StrCat("--pairs: '", s, "' is not a coordinate of ", Ref(m), " (",
                                   absl::StrJoin(names, " "), "; or 1-based numbers)"));
  };
  std::vector<std::pair<int, int>> out;
  for (absl::string_view pair : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    std::vector<absl::string_view> ab = absl::StrSplit(pair, ':');
    if (ab.size() != 2) {
      return UsageError(
          absl::StrCat("--pairs: '", pair, "' is not A:B (e.g. 1:10 or theta1:log_tau)"));
    }
    absl::StatusOr<int> a = coordinate(absl::StripAsciiWhitespace(ab[0]));
    if (!a.ok()) return a.status();
    absl::StatusOr<int> b = coordinate(absl::StripAsciiWhitespace(ab[1]));
    if (!b.ok()) return b.status();
    if (*a == *b) {
      return UsageError(absl::StrCat("--pairs: '", pair, "' pairs a coordinate with itself"));
    }
    out.emplace_back(*a, *b);
  }
  if (out.empty()) return UsageError("--pairs: no pairs given");
  return out;
}

Panel Histogram(const v1::Model& m, const std::vector<double>& draws, int a, int b, int bins,
                const Range& xr, const Range& yr) {
  const int d = m.dim();
  Panel p;
  p.kind = Panel::Kind::kImage;
  p.x = xr;
  p.y = yr;
  p.nx = bins;
  p.ny = bins;
  p.image.assign(static_cast<size_t>(bins) * bins, 0.0);
  for (size_t k = 0; k + static_cast<size_t>(d) <= draws.size(); k += static_cast<size_t>(d)) {
    const double x = draws[k + static_cast<size_t>(a)];
    const double y = draws[k + static_cast<size_t>(b)];
    const int j = static_cast<int>(std::floor((x - p.x.min) / (p.x.max - p.x.min) * bins));
    const int i = static_cast<int>(std::floor((y - p.y.min) / (p.y.max - p.y.min) * bins));
    if (i >= 0 && i < bins && j >= 0 && j < bins) p.image[static_cast<size_t>(i) * bins + j] += 1;
  }
  p.x_label = CoordinateName(m, a);
  p.y_label = CoordinateName(m, b);
  p.title = absl::StrCat(CoordinateName(m, b), " against ", CoordinateName(m, a));
  p.note = absl::StrCat(Ref(m), " (", FlowText(m.flow()), "), ",
                        Thousands(static_cast<int64_t>(draws.size()) / d), " draws");
  return p;
}

void Layout(std::vector<Panel> panels, int max_cols, Figure* figure) {
  const int n = static_cast<int>(panels.size());
  figure->cols = std::max(1, std::min(max_cols, n));
  figure->rows = std::max(1, (n + figure->cols - 1) / figure->cols);
  panels.resize(static_cast<size_t>(figure->rows * figure->cols));
  figure->panels = std::move(panels);
}

Range Union(const Range& a, const Range& b) {
  return {std::min(a.min, b.min), std::max(a.max, b.max)};
}

absl::Status RunPlot(Context& ctx) {
  const Args& a = ctx.args;
  absl::StatusOr<std::string> path = OutputPath(a);
  if (!path.ok()) return path.status();
  int grid = 200;
  int bins = 60;
  int64_t draws_n = 20000;
  uint64_t seed = 0;
  for (absl::Status s : {ParseGridSize(a, &grid), a.Get("bins", &bins), a.Get("draws", &draws_n),
                         a.Get("seed", &seed)}) {
    if (!s.ok()) return s;
  }
  if (bins < 5 || bins > 1000) return UsageError("--bins must be between 5 and 1000");
  if (draws_n < 100) return UsageError("--draws must be at least 100");
  Range x, y;
  bool range_given = false;
  if (absl::Status s = ParseRanges(a, &x, &y, &range_given); !s.ok()) return s;
  Figure figure;
  if (absl::Status s = ParseSize(a, &figure); !s.ok()) return s;

  std::vector<v1::Model> models;
  for (const std::string& ref : a.positional()) {
    absl::StatusOr<v1::Model> m = ctx.client.GetModel(ref);
    if (!m.ok()) return m.status();
    if (m->dim() < 1) {
      return absl::FailedPreconditionError(absl::StrCat(Ref(*m), " has no dimensions"));
    }
    if (!models.empty() && m->dim() != models[0].dim()) {
      return UsageError(absl::StrCat("models drawn together need the same dimension; ",
                                     Ref(models[0]), " has ", models[0].dim(), ", ", Ref(*m),
                                     " has ", m->dim()));
    }
    models.push_back(*std::move(m));
  }
  const v1::Model& first = models[0];
  const int dim = first.dim();
  const bool trace = !a.Switch("no-trace");
  // One row of panels per model: the densities (or the pairs' histograms), then the trace.
  std::vector<std::vector<Panel>> rows(models.size());
  if (dim <= 2 && !a.Has("pairs")) {
    if (!range_given) {
      // The bulk of q, with room around it to see what the fit misses; the union over models.
      for (size_t k = 0; k < models.size(); ++k) {
        absl::StatusOr<std::vector<double>> d = Draws(ctx.client, models[k], 5000, seed);
        if (!d.ok()) return d.status();
        const Range bx = BulkRange(*d, dim, 0, 0.25);
        const Range by = dim == 2 ? BulkRange(*d, 2, 1, 0.25) : Range{};
        x = k == 0 ? bx : Union(x, bx);
        y = k == 0 ? by : Union(y, by);
      }
    }
    for (size_t k = 0; k < models.size(); ++k) {
      absl::Status s = dim == 2 ? DensityPanels(ctx.client, models[k], x, y, grid, &rows[k])
                                : CurvePanel(ctx.client, models[k], x, grid * 2, &rows[k]);
      if (!s.ok()) return s;
    }
  } else {
    std::vector<std::pair<int, int>> pairs = {{0, dim - 1}};
    if (a.Has("pairs")) {
      absl::StatusOr<std::vector<std::pair<int, int>>> p =
          ParsePairs(a.ValueOr("pairs", ""), first);
      if (!p.ok()) return p.status();
      pairs = *std::move(p);
    }
    std::vector<std::vector<double>> draws;
    for (const v1::Model& m : models) {
      absl::StatusOr<std::vector<double>> d = Draws(ctx.client, m, draws_n, seed);
      if (!d.ok()) return d.status();
      draws.push_back(*std::move(d));
    }
    for (const auto& [i, j] : pairs) {
      // The same axes for every model, so that the rows compare.
      Range px = BulkRange(draws[0], dim, i, 0.08);
      Range py = BulkRange(draws[0], dim, j, 0.08);
      for (size_t k = 1; k < models.size(); ++k) {
        px = Union(px, BulkRange(draws[k], dim, i, 0.08));
        py = Union(py, BulkRange(draws[k], dim, j, 0.08));
      }
      for (size_t k = 0; k < models.size(); ++k) {
        rows[k].push_back(Histogram(models[k], draws[k], i, j, bins, px, py));
      }
    }
  }
  for (size_t k = 0; k < models.size() && trace; ++k) {
    Panel t = TracePanel(models[k]);
    if (t.kind != Panel::Kind::kEmpty) rows[k].push_back(std::move(t));
  }
  if (models.size() == 1) {
    figure.title = absl::StrCat(Ref(first), ": ", TargetText(first.target()), " with ",
                                FlowText(first.flow()));
    Layout(std::move(rows[0]), 3, &figure);
  } else {
    std::vector<std::string> flows;
    for (const v1::Model& m : models) flows.push_back(FlowText(m.flow()));
    figure.title = absl::StrCat(TargetText(first.target()), ": ", absl::StrJoin(flows, " vs "));
    size_t cols = 0;
    for (const auto& r : rows) cols = std::max(cols, r.size());
    figure.rows = static_cast<int>(rows.size());
    figure.cols = static_cast<int>(cols);
    for (auto& r : rows) {
      r.resize(cols);
      for (Panel& p : r) figure.panels.push_back(std::move(p));
    }
  }
  if (absl::Status s = WritePng(figure, *path); !s.ok()) return s;
  if (!ctx.json) {
    int w = 0, h = 0;
    FigureSize(figure, &w, &h);
    Err(absl::StrCat("wrote ", *path, " (", w, "x", h, ")\n"));
  }
  return absl::OkStatus();
}

absl::Status RunFigure(Context& ctx) {
  const Args& a = ctx.args;
  absl::StatusOr<std::string> path = OutputPath(a);
  if (!path.ok()) return path.status();
  int grid = 150;
  if (absl::Status s = ParseGridSize(a, &grid); !s.ok()) return s;
  Range x{-4, 4}, y{-4, 4};
  bool range_given = false;
  if (absl::Status s = ParseRanges(a, &x, &y, &range_given); !s.ok()) return s;
  Figure figure;
  figure.cell_size = 240;
  if (absl::Status s = ParseSize(a, &figure); !s.ok()) return s;

  // Rows by target, in the order first seen; columns: the target, then its models.
  std::vector<std::string> row_keys;
  std::map<std::string, std::vector<v1::Model>> rows;
  for (const std::string& ref : a.positional()) {
    absl::StatusOr<v1::Model> m = ctx.client.GetModel(ref);
    if (!m.ok()) return m.status();
    if (m->dim() != 2) {
      return UsageError(absl::StrCat("'flowvi figure' draws 2-D models; ", Ref(*m),
                                     " has dimension ", m->dim(), " (use 'flowvi plot' for it)"));
    }
    const std::string key = TargetText(m->target());
    if (rows.find(key) == rows.end()) row_keys.push_back(key);
    rows[key].push_back(*std::move(m));
  }
  size_t cols = 0;
  for (const auto& [k, models] : rows) cols = std::max(cols, models.size() + 1);
  figure.rows = static_cast<int>(row_keys.size());
  figure.cols = static_cast<int>(cols);
  figure.panels.resize(static_cast<size_t>(figure.rows * figure.cols));
  figure.title = a.ValueOr("title", "targets (first column) and the fitted flows' densities");
  const std::vector<double> pts = GridPoints(x, y, grid);
  for (int r = 0; r < figure.rows; ++r) {
    const std::vector<v1::Model>& models = rows[row_keys[r]];
    absl::StatusOr<std::vector<double>> lp =
        TargetLogDensity(ctx.client, models[0].target(), 2, pts);
    if (!lp.ok()) return lp.status();
    for (size_t c = 0; c <= models.size(); ++c) {
      Panel& p = figure.panels[static_cast<size_t>(r * figure.cols) + c];
      p.kind = Panel::Kind::kImage;
      p.x = x;
      p.y = y;
      p.nx = grid;
      p.ny = grid;
      if (c == 0) {
        p.title = row_keys[r];
        p.note = "target";
        p.image = Relative(*lp);
        continue;
      }
      const v1::Model& m = models[c - 1];
      absl::StatusOr<std::vector<double>> lq = ModelLogDensity(ctx.client, m, pts);
      if (!lq.ok()) return lq.status();
      p.title = FlowText(m.flow());
      p.note = DiagNote(m.diagnostics());
      p.image = Relative(*lq);
    }
  }
  if (absl::Status s = WritePng(figure, *path); !s.ok()) return s;
  if (!ctx.json) {
    int w = 0, h = 0;
    FigureSize(figure, &w, &h);
    Err(absl::StrCat("wrote ", *path, " (", w, "x", h, ")\n"));
  }
  return absl::OkStatus();
}

}  // namespace

void AddPlotCommands(std::vector<CommandEntry>* out) {
  Command plot("plot", "REF...",
               "draw models as a PNG: densities or pairwise marginals, ELBO trace", 1, -1);
  plot.description =
      "Draws the model REF into a PNG. For a 2-D model: the target's density and the fitted "
      "density side by side on the same grid (each normalized to its own peak), then the ELBO "
      "trace. For a 1-D model: both densities as curves. For more dimensions: 2-D histograms of "
      "--draws samples from q for the chosen pairs of coordinates (default: the first against "
      "the last), then the ELBO trace.\n\n"
      "Several models (of the same dimension) are drawn one row each, on shared axes, e.g. a "
      "mean-field fit above a flow. The grid's range defaults to the bulk of q with a margin; "
      "--range fixes it.";
  plot.flags = {{"output", "FILE.png", "the PNG to write (required)", 'o'},
                {"range", "A:B[,C:D]", "grid range for 1-D/2-D models: both axes, or x then y"},
                {"grid", "N", "grid points per axis (default 200)"},
                {"pairs", "A:B,...",
                 "coordinate pairs for D > 2, by 1-based number or name, "
                 "e.g. 1:10 or theta1:log_tau"},
                {"draws", "N", "samples for the histograms (default 20000)"},
                {"bins", "N", "histogram bins per axis (default 60)"},
                {"seed", "S", "seed of the draws (default 0)"},
                {"size", "WxH", "image size in pixels (default: 320 per panel)"},
                {"no-trace", "", "leave out the ELBO trace"}};
  plot.examples =
      "flowvi plot u1 -o u1.png --range=-4:4\n"
      "flowvi plot eight_schools --pairs theta1:log_tau,mu:log_tau -o es.png\n"
      "flowvi plot es-meanfield es-flow --pairs theta1:log_tau -o compare.png";
  out->push_back({plot, RunPlot});

  Command figure("figure", "REF...", "a grid of 2-D fits: targets in the first column (Figure 3)",
                 1, -1);
  figure.description =
      "Draws several 2-D models in one PNG, in the style of Figure 3 of Rezende & Mohamed "
      "(2015): one row per target (in the order first given), the target's density in the "
      "first column and each model's fitted density beside it, all on the same grid, with "
      "each fit's ELBO and k̂ under its title.";
  figure.flags = {{"output", "FILE.png", "the PNG to write (required)", 'o'},
                  {"range", "A:B[,C:D]", "grid range (default -4:4 on both axes, as the paper)"},
                  {"grid", "N", "grid points per axis (default 150)"},
                  {"size", "WxH", "image size in pixels (default: 240 per panel)"},
                  {"title", "TEXT", "the figure's title"}};
  figure.examples = "flowvi figure u1-k2 u1-k8 u2-k2 u2-k8 -o figure3.png";
  out->push_back({figure, RunFigure});
}

}  // namespace flowvi::client
