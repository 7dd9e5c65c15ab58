// Figures for `flowvi plot` and `flowvi figure`: a grid of panels — density images (a grid of
// non-negative values drawn with a sequential colour map, normalized per panel) and line plots —
// with titles, axes and ticks, written as PNG through cairo.
//
// Knows nothing about the API: commands fill a Figure and call WritePng.
#ifndef FLOWVI_CLIENT_PLOT_H_
#define FLOWVI_CLIENT_PLOT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace flowvi::client {

struct Range {
  double min = 0;
  double max = 1;
};

struct Series {
  std::vector<double> x;
  std::vector<double> y;
  // Shown in a legend when any series of the panel has one.
  std::string label;
  // Index into the line palette (-1: the series' position in the panel).
  int color = -1;
  // Drawn thin and light (e.g. raw values under a smoothed line).
  bool faint = false;
};

struct Panel {
  enum class Kind { kEmpty, kImage, kLines };
  Kind kind = Kind::kEmpty;
  std::string title;
  std::string x_label;
  std::string y_label;
  Range x;
  Range y;
  // kImage: nx * ny values >= 0, row-major, row 0 at y.min, column 0 at x.min; shown divided
  // by their 99.8th percentile (the top 0.2% saturate; a panel of zeros stays blank).
  int nx = 0;
  int ny = 0;
  std::vector<double> image;
  // kLines.
  std::vector<Series> series;
  // A short line of text under the title (e.g. diagnostics).
  std::string note;
};

struct Figure {
  int rows = 1;
  int cols = 1;
  // Pixels; 0 picks cols x cell_size by rows x cell_size (plus the title band).
  int width = 0;
  int height = 0;
  int cell_size = 320;
  std::string title;
  // rows * cols panels, row-major.
  std::vector<Panel> panels;
};

// The image size WritePng produces for `figure`.
void FigureSize(const Figure& figure, int* width, int* height);

// Renders to PNG at `path`. InvalidArgument for an inconsistent figure; an error naming the
// file when it cannot be written.
absl::Status WritePng(const Figure& figure, const std::string& path);

// About `count` round tick positions (steps of 1, 2 or 5 times a power of ten) in [lo, hi].
std::vector<double> NiceTicks(double lo, double hi, int count);

// The colour map: t in [0, 1] to RGB in [0, 1] (white at 0, dark at 1).
void ColorMap(double t, double* r, double* g, double* b);

}  // namespace flowvi::client

#endif  // FLOWVI_CLIENT_PLOT_H_
