#include "client/output.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "google/protobuf/util/json_util.h"

namespace flowvi::client {
namespace {

// Terminal columns of UTF-8 text: code points, less combining marks (U+0300-U+036F).
size_t DisplayWidth(absl::string_view s) {
  size_t width = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if ((c & 0xC0) == 0x80) continue;  // continuation byte
    if (c == 0xCC && i + 1 < s.size()) {
      const auto next = static_cast<unsigned char>(s[i + 1]);
      if (next >= 0x80 && next <= 0xBF) continue;  // U+0300-U+033F
    }
    if (c == 0xCD && i + 1 < s.size()) {
      const auto next = static_cast<unsigned char>(s[i + 1]);
      if (next >= 0x80 && next <= 0xAF) continue;  // U+0340-U+036F
    }
    ++width;
  }
  return width;
}

std::string Pad(absl::string_view s, size_t width, bool right) {
  const size_t w = DisplayWidth(s);
  const std::string fill(width > w ? width - w : 0, ' ');
  return right ? absl::StrCat(fill, s) : absl::StrCat(s, fill);
}

bool LooksNumeric(absl::string_view s) {
  if (s.empty()) return false;
  double d = 0;
  std::string t(s);
  t.erase(std::remove(t.begin(), t.end(), ','), t.end());
  if (!t.empty() && t.back() == '%') t.pop_back();
  return absl::SimpleAtod(t, &d);
}

}  // namespace

void Out(absl::string_view text) { std::fwrite(text.data(), 1, text.size(), stdout); }

void Err(absl::string_view text) {
  std::fflush(stdout);
  std::fwrite(text.data(), 1, text.size(), stderr);
}

std::string TextTable::Render() const {
  std::vector<size_t> width(header_.size(), 0);
  std::vector<bool> numeric(header_.size(), true);
  for (size_t j = 0; j < header_.size(); ++j) width[j] = DisplayWidth(header_[j]);
  for (const auto& row : rows_) {
    for (size_t j = 0; j < row.size() && j < header_.size(); ++j) {
      width[j] = std::max(width[j], DisplayWidth(row[j]));
      if (row[j] != "-" && !LooksNumeric(row[j])) numeric[j] = false;
    }
  }
  std::string out;
  auto line = [&](const std::vector<std::string>& cells) {
    std::string l(indent_, ' ');
    for (size_t j = 0; j < header_.size(); ++j) {
      const std::string cell = j < cells.size() ? cells[j] : "";
      const bool last = j + 1 == header_.size();
      const bool right = numeric[j] && !rows_.empty();
      if (last && !right) {
        absl::StrAppend(&l, cell);
      } else {
        absl::StrAppend(&l, Pad(cell, width[j], right));
      }
      if (!last) l += "  ";
    }
    while (!l.empty() && l.back() == ' ') l.pop_back();
    absl::StrAppend(&out, l, "\n");
  };
  line(header_);
  for (const auto& row : rows_) line(row);
  return out;
}

void KeyValues::Add(absl::string_view key, absl::string_view value) {
  rows_.emplace_back(std::string(key), std::string(value));
}

std::string KeyValues::Render(int indent) const {
  size_t width = 0;
  for (const auto& [k, v] : rows_) width = std::max(width, DisplayWidth(k));
  std::string out;
  for (const auto& [k, v] : rows_) {
    absl::StrAppend(&out, std::string(indent, ' '), Pad(k, width + 2, false), v, "\n");
  }
  return out;
}

std::string ToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  std::string out;
  if (!google::protobuf::util::MessageToJsonString(message, &out, options).ok()) return "{}\n";
  if (out.empty() || out.back() != '\n') out.push_back('\n');
  return out;
}

std::string Fixed(double value, int decimals) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  return absl::StrFormat("%.*f", decimals, value);
}

std::string Sig(double value, int digits) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  return absl::StrFormat("%.*g", digits, value);
}

std::string Thousands(int64_t value) {
  std::string digits = absl::StrCat(value < 0 ? -value : value);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return value < 0 ? "-" + out : out;
}

std::string Seconds(double s) {
  if (!std::isfinite(s) || s < 0) return "-";
  if (s < 10) return absl::StrFormat("%.1fs", s);
  const auto total = static_cast<int64_t>(std::llround(s));
  if (total < 60) return absl::StrFormat("%ds", total);
  if (total < 3600) return absl::StrFormat("%dm%02ds", total / 60, total % 60);
  return absl::StrFormat("%dh%02dm", total / 3600, (total % 3600) / 60);
}

std::string Age(const google::protobuf::Timestamp& t) {
  if (t.seconds() == 0 && t.nanos() == 0) return "-";
  const double s = absl::ToDoubleSeconds(absl::Now() - absl::FromUnixSeconds(t.seconds()));
  if (s < 60) return absl::StrFormat("%ds", static_cast<int64_t>(std::max(0.0, s)));
  if (s < 3600) return absl::StrFormat("%dm", static_cast<int64_t>(s / 60));
  if (s < 86400) return absl::StrFormat("%dh", static_cast<int64_t>(s / 3600));
  return absl::StrFormat("%dd", static_cast<int64_t>(s / 86400));
}

std::string Time(const google::protobuf::Timestamp& t) {
  if (t.seconds() == 0 && t.nanos() == 0) return "-";
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixSeconds(t.seconds()),
                          absl::UTCTimeZone());
}

std::string ParamText(const v1::ParamValue& value) {
  switch (value.kind_case()) {
    case v1::ParamValue::kBoolValue:
      return value.bool_value() ? "true" : "false";
    case v1::ParamValue::kIntValue:
      return absl::StrCat(value.int_value());
    case v1::ParamValue::kRealValue:
      return Sig(value.real_value(), 6);
    case v1::ParamValue::kRealVector: {
      std::vector<std::string> parts;
      for (double v : value.real_vector().values()) parts.push_back(Sig(v, 6));
      return absl::StrCat("[", absl::StrJoin(parts, ","), "]");
    }
    case v1::ParamValue::kText:
      return value.text();
    case v1::ParamValue::KIND_NOT_SET:
      break;
  }
  return "";
}

std::string TargetText(const v1::Target& target) {
  if (target.has_expression()) return absl::StrCat("expression '", target.expression(), "'");
  if (target.has_program()) {
    const v1::ModelProgram& p = target.program();
    return absl::StrCat("program (", std::count(p.source().begin(), p.source().end(), '\n'),
                        " lines, ", p.data_json().size(), " bytes of data)");
  }
  if (target.has_data()) {
    return absl::StrCat("data (", target.data().num_points(), " points x ", target.data().dim(),
                        ")");
  }
  if (!target.has_builtin()) return "?";
  const v1::BuiltinTarget& b = target.builtin();
  if (b.params().empty()) return b.name();
  std::vector<std::string> keys;
  for (const auto& [k, v] : b.params()) keys.push_back(k);
  std::sort(keys.begin(), keys.end());
  std::vector<std::string> parts;
  for (const std::string& k : keys)
    parts.push_back(absl::StrCat(k, "=", ParamText(b.params().at(k))));
  return absl::StrCat(b.name(), "(", absl::StrJoin(parts, ","), ")");
}

std::string FlowText(const v1::FlowSpec& flow) {
  if (!flow.text().empty()) return flow.text();
  std::vector<std::string> parts;
  for (const v1::LayerGroup& g : flow.layers()) {
    parts.push_back(g.count() > 1 ? absl::StrCat(g.type(), "*", g.count()) : g.type());
  }
  return parts.empty() ? "meanfield" : absl::StrJoin(parts, ",");
}

std::string StateText(v1::JobState state) {
  switch (state) {
    case v1::JOB_STATE_QUEUED:
      return "queued";
    case v1::JOB_STATE_RUNNING:
      return "running";
    case v1::JOB_STATE_SUCCEEDED:
      return "succeeded";
    case v1::JOB_STATE_FAILED:
      return "failed";
    case v1::JOB_STATE_CANCELLED:
      return "cancelled";
    default:
      return "unknown";
  }
}

std::string KHatReading(const v1::Diagnostics& d) {
  if (!d.k_hat_reading().empty()) return d.k_hat_reading();
  const double k = d.k_hat();
  if (!std::isfinite(k)) return "unknown";
  if (k < 0.5) return "good";
  if (k <= 0.7) return "ok";
  if (k <= 1.0) return "bad";
  return "very bad";
}

std::string DiagnosticsText(const v1::Diagnostics& d, int indent) {
  const std::string reading = KHatReading(d);
  std::string meaning;
  if (reading == "good") {
    meaning = "q covers the target; importance-weighted estimates are reliable";
  } else if (reading == "ok") {
    meaning = "usable with care";
  } else if (reading == "bad") {
    meaning = "q misses parts of the target; do not trust its estimates";
  } else if (reading == "very bad") {
    meaning = "q is far from the target";
  }
  KeyValues kv;
  kv.Add("ELBO", absl::StrCat(Fixed(d.elbo(), 4), " ± ", Fixed(d.elbo_se(), 4)));
  kv.Add("k̂", absl::StrCat(Fixed(d.k_hat(), 2), " (", reading, meaning.empty() ? "" : ": ", meaning,
                           ")"));
  const double n = static_cast<double>(d.num_draws());
  kv.Add("ESS",
         absl::StrCat(Thousands(std::llround(d.ess())), " of ", Thousands(d.num_draws()), " draws",
                      n > 0 ? absl::StrFormat(" (%.0f%%)", 100 * d.ess() / n) : ""));
  kv.Add("log Ẑ", absl::StrCat(Fixed(d.log_z(), 4), " ± ", Fixed(d.log_z_se(), 4)));
  if (d.has_kl()) kv.Add("KL(q‖p)", absl::StrCat(Fixed(d.kl(), 4), " (from the known log Z)"));
  return kv.Render(indent);
}

std::string CoordinatesText(const v1::Diagnostics& d) {
  const int n = d.mean_size();
  if (n == 0) return "";
  TextTable t({"coordinate", "mean q", "sd q", "mean (PSIS)", "sd (PSIS)"}, 2);
  for (int j = 0; j < n; ++j) {
    const std::string name =
        j < d.coordinate_names_size() ? d.coordinate_names(j) : absl::StrCat("x", j + 1);
    t.AddRow({name, Fixed(d.mean(j), 3), j < d.sd_size() ? Fixed(d.sd(j), 3) : "-",
              j < d.psis_mean_size() ? Fixed(d.psis_mean(j), 3) : "-",
              j < d.psis_sd_size() ? Fixed(d.psis_sd(j), 3) : "-"});
  }
  return t.Render();
}

std::string DensityFitText(const v1::DensityFit& f, int indent) {
  const std::string pad(static_cast<size_t>(indent), ' ');
  std::string out = absl::StrCat(pad, "train LL     ", Fixed(f.train_log_likelihood(), 4),
                                 " nats/point (", Thousands(f.train_points()), " points)\n");
  if (f.has_held_out_log_likelihood()) {
    absl::StrAppend(&out, pad, "held-out LL  ", Fixed(f.held_out_log_likelihood(), 4),
                    " nats/point (", Thousands(f.held_out_points()), " points)\n");
  }
  absl::StrAppend(&out, pad, "kept step    ", Thousands(f.best_iteration()), " of ",
                  Thousands(f.iterations()), f.early_stopped() ? " (stopped early)" : "", "\n");
  return out;
}

}  // namespace flowvi::client
