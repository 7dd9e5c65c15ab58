// Human and machine output of `flowvi`: aligned text tables, proto3 JSON, and the short
// renderings of API values (targets, flow specs, durations, ages) the commands share.
#ifndef FLOWVI_CLIENT_OUTPUT_H_
#define FLOWVI_CLIENT_OUTPUT_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "flowvi/v1/service.pb.h"
#include "flowvi/v1/types.pb.h"
#include "google/protobuf/message.h"
#include "google/protobuf/timestamp.pb.h"

namespace flowvi::client {

// Writes to standard output / standard error (standard output is flushed first, so the two
// interleave in order on a terminal).
void Out(absl::string_view text);
void Err(absl::string_view text);

// Columns padded to their widest cell; cells that look like numbers are right-aligned.
class TextTable {
 public:
  explicit TextTable(std::vector<std::string> header, int indent = 0)
      : header_(std::move(header)), indent_(indent) {}
  void AddRow(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  bool empty() const { return rows_.empty(); }
  // Ends with a newline.
  std::string Render() const;

 private:
  std::vector<std::string> header_;
  int indent_;
  std::vector<std::vector<std::string>> rows_;
};

// "Key   value" lines with the keys padded to the same width.
class KeyValues {
 public:
  void Add(absl::string_view key, absl::string_view value);
  std::string Render(int indent = 0) const;

 private:
  std::vector<std::pair<std::string, std::string>> rows_;
};

// Proto3 JSON (snake_case field names, default values included), indented, with a final newline.
std::string ToJson(const google::protobuf::Message& message);

// printf-style number formatting for tables ("%.4f", ...) that prints "nan"/"inf" plainly.
std::string Fixed(double value, int decimals);
// Up to `digits` significant digits, no exponent for ordinary magnitudes.
std::string Sig(double value, int digits = 4);
// 12345 -> "12,345".
std::string Thousands(int64_t value);
// Seconds as "0.4s", "12s", "3m05s", "1h02m".
std::string Seconds(double seconds);
// How long ago (now - t): "12s", "3m", "2h", "4d"; "-" for an unset time.
std::string Age(const google::protobuf::Timestamp& t);
// RFC 3339 in UTC, "-" for an unset time.
std::string Time(const google::protobuf::Timestamp& t);

// "u1", "eight_schools(centered=false)".
std::string TargetText(const v1::Target& target);
std::string ParamText(const v1::ParamValue& value);
std::string FlowText(const v1::FlowSpec& flow);
// "queued", "running", "succeeded", "failed", "cancelled".
std::string StateText(v1::JobState state);
// "good" etc. from the k-hat value when the server sent no reading.
std::string KHatReading(const v1::Diagnostics& d);

// The diagnostics table printed after a fit and by `flowvi model`:
//   ELBO     -2.3456 ± 0.0012
//   k̂        0.31 (good: ...)
//   ESS      15,234 of 20,000 draws (76%)
//   log Ẑ    -2.3011 ± 0.0009
std::string DiagnosticsText(const v1::Diagnostics& d, int indent = 0);
// What a data-set (density) fit reports instead of diagnostics:
//   train LL     -3.2661 nats/point (1,800 points)
//   held-out LL  -3.2917 nats/point (200 points)
//   kept step    750 of 800
std::string DensityFitText(const v1::DensityFit& f, int indent = 0);
// Per-coordinate mean/sd of q and the PSIS-corrected ones (empty when there are none).
std::string CoordinatesText(const v1::Diagnostics& d);

}  // namespace flowvi::client

#endif  // FLOWVI_CLIENT_OUTPUT_H_
