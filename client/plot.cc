#include "client/plot.h"

#include <cairo.h>
#include <fontconfig/fontconfig.h>

#include <algorithm>
#include <cmath>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace flowvi::client {
namespace {

constexpr int kTitleBand = 36;
constexpr double kMarginLeft = 52;
constexpr double kMarginRight = 24;
constexpr double kMarginTop = 40;
constexpr double kMarginBottom = 40;
constexpr char kFont[] = "DejaVu Sans";

struct Rgb {
  double r, g, b;
};

// A sequential map from white through warm yellows and reds to a dark purple.
constexpr Rgb kStops[] = {{1.00, 1.00, 1.00}, {0.99, 0.91, 0.62}, {0.98, 0.65, 0.33},
                          {0.86, 0.32, 0.27}, {0.58, 0.12, 0.36}, {0.22, 0.05, 0.28}};

// Line colours: dark blue, orange, green, red, grey.
constexpr Rgb kLineColors[] = {{0.12, 0.30, 0.60},
                               {0.90, 0.45, 0.10},
                               {0.20, 0.55, 0.25},
                               {0.80, 0.15, 0.15},
                               {0.40, 0.40, 0.40}};

struct CairoDeleter {
  void operator()(cairo_t* cr) const { cairo_destroy(cr); }
  void operator()(cairo_surface_t* s) const { cairo_surface_destroy(s); }
};
using CairoPtr = std::unique_ptr<cairo_t, CairoDeleter>;
using SurfacePtr = std::unique_ptr<cairo_surface_t, CairoDeleter>;

std::string TickLabel(double v, double step) {
  if (std::fabs(v) < step * 1e-9) v = 0;
  const double mag = std::fabs(v);
  if (mag != 0 && (mag >= 1e5 || mag < 1e-3)) return absl::StrFormat("%.1e", v);
  const int decimals = step >= 1 ? 0 : static_cast<int>(std::ceil(-std::log10(step) - 1e-9));
  return absl::StrFormat("%.*f", decimals, v);
}

// Draws `text` anchored at (x, y) (align 0: left/top, 0.5: centre, 1: right/bottom), shrunk to
// `max_width` pixels when it is wider.
void Text(cairo_t* cr, const std::string& text, double x, double y, double size, double align_x,
          double align_y, bool bold = false, double max_width = 0) {
  cairo_select_font_face(cr, kFont, CAIRO_FONT_SLANT_NORMAL,
                         bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, size);
  cairo_text_extents_t ext;
  cairo_text_extents(cr, text.c_str(), &ext);
  if (max_width > 0 && ext.x_advance > max_width) {
    size *= max_width / ext.x_advance;
    cairo_set_font_size(cr, size);
    cairo_text_extents(cr, text.c_str(), &ext);
  }
  cairo_move_to(cr, x - ext.x_advance * align_x, y + size * 0.35 - size * (align_y - 0.5) * 0.9);
  cairo_show_text(cr, text.c_str());
}

// Draws `panel` inside the cell whose top-left corner is (x0, y0).
void DrawPanel(cairo_t* cr, const Panel& panel, double x0, double y0, double w, double h) {
  if (panel.kind == Panel::Kind::kEmpty) return;
  const double left = x0 + kMarginLeft;
  const double top = y0 + kMarginTop;
  const double pw = std::max(10.0, w - kMarginLeft - kMarginRight);
  const double ph = std::max(10.0, h - kMarginTop - kMarginBottom);
  const Range xr = panel.x;
  const Range yr = panel.y;
  auto px = [&](double x) { return left + (x - xr.min) / (xr.max - xr.min) * pw; };
  auto py = [&](double y) { return top + ph - (y - yr.min) / (yr.max - yr.min) * ph; };

  cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
  Text(cr, panel.title, left + pw / 2, y0 + 13, 13, 0.5, 0.5, true, w - 8);
  if (!panel.note.empty()) {
    cairo_set_source_rgb(cr, 0.35, 0.35, 0.35);
    Text(cr, panel.note, left + pw / 2, y0 + 29, 10.5, 0.5, 0.5, false, w - 8);
  }

  cairo_save(cr);
  cairo_rectangle(cr, left, top, pw, ph);
  cairo_clip(cr);
  if (panel.kind == Panel::Kind::kImage && panel.nx > 0 && panel.ny > 0) {
    // The colour scale tops out at the 99.8th percentile, so that a few spikes (a flow's log q
    // can have narrow, very high peaks) saturate instead of washing out the rest.
    std::vector<double> finite;
    finite.reserve(panel.image.size());
    for (double v : panel.image) {
      if (std::isfinite(v) && v > 0) finite.push_back(v);
    }
    double peak = 0;
    if (!finite.empty()) {
      const size_t total = panel.image.size();
      const size_t skip = total / 500;  // the top 0.2% of all cells
      if (skip >= finite.size()) {
        peak = *std::max_element(finite.begin(), finite.end());
      } else {
        const auto k = finite.end() - 1 - static_cast<ptrdiff_t>(skip);
        std::nth_element(finite.begin(), k, finite.end());
        peak = *k;
      }
    }
    SurfacePtr img(cairo_image_surface_create(CAIRO_FORMAT_RGB24, panel.nx, panel.ny));
    cairo_surface_flush(img.get());
    unsigned char* data = cairo_image_surface_get_data(img.get());
    const int stride = cairo_image_surface_get_stride(img.get());
    for (int i = 0; i < panel.ny; ++i) {
      auto* row =
          reinterpret_cast<uint32_t*>(data + static_cast<ptrdiff_t>(panel.ny - 1 - i) * stride);
      for (int j = 0; j < panel.nx; ++j) {
        double v = panel.image[static_cast<size_t>(i) * panel.nx + j];
        const double t = (peak > 0 && std::isfinite(v)) ? std::clamp(v / peak, 0.0, 1.0) : 0.0;
        double r, g, b;
        ColorMap(t, &r, &g, &b);
        row[j] = (static_cast<uint32_t>(std::lround(r * 255)) << 16) |
                 (static_cast<uint32_t>(std::lround(g * 255)) << 8) |
                 static_cast<uint32_t>(std::lround(b * 255));
      }
    }
    cairo_surface_mark_dirty(img.get());
    cairo_save(cr);
    cairo_translate(cr, left, top);
    cairo_scale(cr, pw / panel.nx, ph / panel.ny);
    cairo_set_source_surface(cr, img.get(), 0, 0);
    cairo_pattern_set_filter(cairo_get_source(cr), CAIRO_FILTER_GOOD);
    cairo_pattern_set_extend(cairo_get_source(cr), CAIRO_EXTEND_PAD);
    cairo_paint(cr);
    cairo_restore(cr);
  } else if (panel.kind == Panel::Kind::kLines) {
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    // Light grid at the y ticks.
    cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
    cairo_set_line_width(cr, 1);
    for (double t : NiceTicks(yr.min, yr.max, 5)) {
      cairo_move_to(cr, left, std::round(py(t)) + 0.5);
      cairo_line_to(cr, left + pw, std::round(py(t)) + 0.5);
    }
    cairo_stroke(cr);
    for (size_t k = 0; k < panel.series.size(); ++k) {
      const Series& s = panel.series[k];
      const Rgb c = kLineColors[static_cast<size_t>(s.color >= 0 ? s.color : static_cast<int>(k)) %
                                std::size(kLineColors)];
      cairo_set_source_rgba(cr, c.r, c.g, c.b, s.faint ? 0.3 : 1.0);
      cairo_set_line_width(cr, s.faint ? 1.0 : 1.6);
      cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
      bool pen_down = false;
      for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
        if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) {
          pen_down = false;
          continue;
        }
        // Keep far-off points near the panel so cairo's fixed point does not overflow.
        const double yy = std::clamp(py(s.y[i]), top - ph, top + 2 * ph);
        if (pen_down) {
          cairo_line_to(cr, px(s.x[i]), yy);
        } else {
          cairo_move_to(cr, px(s.x[i]), yy);
        }
        pen_down = true;
      }
      cairo_stroke(cr);
    }
  }
  cairo_restore(cr);

  // Legend.
  if (panel.kind == Panel::Kind::kLines) {
    double ly = top + 14;
    for (size_t k = 0; k < panel.series.size(); ++k) {
      const Series& s = panel.series[k];
      if (s.label.empty()) continue;
      const Rgb c = kLineColors[static_cast<size_t>(s.color >= 0 ? s.color : static_cast<int>(k)) %
                                std::size(kLineColors)];
      cairo_set_source_rgb(cr, c.r, c.g, c.b);
      cairo_set_line_width(cr, 2);
      cairo_move_to(cr, left + pw - 90, ly);
      cairo_line_to(cr, left + pw - 70, ly);
      cairo_stroke(cr);
      cairo_set_source_rgb(cr, 0.15, 0.15, 0.15);
      Text(cr, s.label, left + pw - 64, ly, 10.5, 0, 0.5);
      ly += 15;
    }
  }

  // Frame, ticks, labels.
  cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
  cairo_set_line_width(cr, 1);
  cairo_rectangle(cr, std::round(left) + 0.5, std::round(top) + 0.5, std::round(pw),
                  std::round(ph));
  cairo_stroke(cr);
  const std::vector<double> xt = NiceTicks(xr.min, xr.max, 5);
  const std::vector<double> yt = NiceTicks(yr.min, yr.max, 5);
  const double xstep = xt.size() > 1 ? xt[1] - xt[0] : 1;
  const double ystep = yt.size() > 1 ? yt[1] - yt[0] : 1;
  for (double t : xt) {
    const double x = std::round(px(t)) + 0.5;
    cairo_move_to(cr, x, top + ph);
    cairo_line_to(cr, x, top + ph + 4);
    cairo_stroke(cr);
    Text(cr, TickLabel(t, xstep), x, top + ph + 12, 10, 0.5, 0.5);
  }
  for (double t : yt) {
    const double y = std::round(py(t)) + 0.5;
    cairo_move_to(cr, left - 4, y);
    cairo_line_to(cr, left, y);
    cairo_stroke(cr);
    Text(cr, TickLabel(t, ystep), left - 6, y, 10, 1, 0.5);
  }
  if (!panel.x_label.empty()) Text(cr, panel.x_label, left + pw / 2, top + ph + 28, 11, 0.5, 0.5);
  if (!panel.y_label.empty()) {
    cairo_save(cr);
    cairo_translate(cr, x0 + 11, top + ph / 2);
    cairo_rotate(cr, -M_PI / 2);
    Text(cr, panel.y_label, 0, 0, 11, 0.5, 0.5);
    cairo_restore(cr);
  }
}

}  // namespace

void ColorMap(double t, double* r, double* g, double* b) {
  constexpr int n = static_cast<int>(std::size(kStops));
  t = std::clamp(std::isfinite(t) ? t : 0.0, 0.0, 1.0);
  const double s = t * (n - 1);
  const int i = std::min(n - 2, static_cast<int>(s));
  const double f = s - i;
  *r = kStops[i].r + f * (kStops[i + 1].r - kStops[i].r);
  *g = kStops[i].g + f * (kStops[i + 1].g - kStops[i].g);
  *b = kStops[i].b + f * (kStops[i + 1].b - kStops[i].b);
}

std::vector<double> NiceTicks(double lo, double hi, int count) {
  std::vector<double> out;
  if (!std::isfinite(lo) || !std::isfinite(hi) || hi <= lo || count < 1) return out;
  const double raw = (hi - lo) / count;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    step = m * mag;
    if (step >= raw) break;
  }
  const double first = std::ceil(lo / step - 1e-9) * step;
  for (double v = first; v <= hi + step * 1e-9 && out.size() < 50; v += step) out.push_back(v);
  return out;
}

void FigureSize(const Figure& figure, int* width, int* height) {
  const int band = figure.title.empty() ? 0 : kTitleBand;
  *width = figure.width > 0 ? figure.width : figure.cols * figure.cell_size;
  *height = figure.height > 0 ? figure.height : figure.rows * figure.cell_size + band;
}

namespace {

absl::Status Render(const Figure& figure, const std::string& path);

}  // namespace

absl::Status WritePng(const Figure& figure, const std::string& path) {
  absl::Status status = Render(figure, path);
  // No cairo object is alive any more: release cairo's and fontconfig's caches, so a process
  // that drew a figure ends with nothing allocated (LeakSanitizer would report them).
  cairo_debug_reset_static_data();
  FcFini();
  return status;
}

namespace {

absl::Status Render(const Figure& figure, const std::string& path) {
  if (figure.rows < 1 || figure.cols < 1 ||
      static_cast<int>(figure.panels.size()) != figure.rows * figure.cols) {
    return absl::InvalidArgumentError("a figure needs rows * cols panels");
  }
  for (const Panel& p : figure.panels) {
    if (p.kind == Panel::Kind::kEmpty) continue;
    if (!(p.x.max > p.x.min) || !(p.y.max > p.y.min) || !std::isfinite(p.x.min) ||
        !std::isfinite(p.x.max) || !std::isfinite(p.y.min) || !std::isfinite(p.y.max)) {
      return absl::InvalidArgumentError(absl::StrCat("panel '", p.title, "' has an empty range"));
    }
    if (p.kind == Panel::Kind::kImage &&
        static_cast<int64_t>(p.image.size()) != static_cast<int64_t>(p.nx) * p.ny) {
      return absl::InvalidArgumentError(absl::StrCat("panel '", p.title, "': image size"));
    }
  }
  int width = 0;
  int height = 0;
  FigureSize(figure, &width, &height);
  if (width < 16 || height < 16 || width > 20000 || height > 20000) {
    return absl::InvalidArgumentError(
        absl::StrCat("image size ", width, "x", height, " is out of range (16 to 20000 pixels)"));
  }
  SurfacePtr surface(cairo_image_surface_create(CAIRO_FORMAT_RGB24, width, height));
  CairoPtr cr(cairo_create(surface.get()));
  cairo_set_source_rgb(cr.get(), 1, 1, 1);
  cairo_paint(cr.get());
  const int band = figure.title.empty() ? 0 : kTitleBand;
  if (band > 0) {
    cairo_set_source_rgb(cr.get(), 0.05, 0.05, 0.05);
    Text(cr.get(), figure.title, width / 2.0, band / 2.0 + 2, 15, 0.5, 0.5, true, width - 16);
  }
  const double cw = static_cast<double>(width) / figure.cols;
  const double ch = static_cast<double>(height - band) / figure.rows;
  for (int i = 0; i < figure.rows; ++i) {
    for (int j = 0; j < figure.cols; ++j) {
      DrawPanel(cr.get(), figure.panels[static_cast<size_t>(i) * figure.cols + j], j * cw,
                band + i * ch, cw, ch);
    }
  }
  if (cairo_status(cr.get()) != CAIRO_STATUS_SUCCESS) {
    return absl::InternalError(
        absl::StrCat("drawing failed: ", cairo_status_to_string(cairo_status(cr.get()))));
  }
  cairo_surface_flush(surface.get());
  const cairo_status_t s = cairo_surface_write_to_png(surface.get(), path.c_str());
  if (s != CAIRO_STATUS_SUCCESS) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot write ", path, ": ", cairo_status_to_string(s)));
  }
  return absl::OkStatus();
}

}  // namespace
}  // namespace flowvi::client
