// report_svg: the report as a chart, hand-written SVG (no dependencies).
//
//   top     the autoscaled cluster over time: its ready slots stacked by
//           market (on demand, spot) against its demand (running + pending
//           tasks), the highest of each chart bucket
//   bottom  what each of the four strategies has cost so far
//
// Element ids name the series ("demand", "capacity-on-demand",
// "capacity-spot", "cost-<strategy>") so tests and scripts can find them.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

#include "sim/report.h"

namespace kiln::sim {
namespace {

constexpr double kWidth = 1000, kLeft = 80, kRight = 30, kTop = 70, kPanel = 220, kGap = 110;

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// A round axis maximum: 1, 2, 2.5 or 5 times a power of ten, at least v.
double nice_max(double v) {
  if (v <= 0) return 1;
  const double p = std::pow(10, std::floor(std::log10(v)));
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0})
    if (m * p >= v * (1 + 1e-9)) return m * p;
  return 10 * p;
}

std::string label(double v) {
  char buf[32];
  if (v >= 1000 || v == std::floor(v)) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
  } else {
    std::snprintf(buf, sizeof buf, "%.1f", v);
  }
  return buf;
}

struct Axes {
  double x0, y0, w, h, days, vmax;
  double x(int64_t t_ms) const { return x0 + w * (static_cast<double>(t_ms) / 8.64e7) / days; }
  double y(double v) const { return y0 + h - h * v / vmax; }
};

std::string text(double x, double y, const std::string& s, const std::string& attrs = "") {
  return "<text x=\"" + num(x) + "\" y=\"" + num(y) + "\"" + (attrs.empty() ? "" : " " + attrs) +
         ">" + escape(s) + "</text>\n";
}

std::string axes(const Axes& a, const std::string& title, const std::string& y_unit) {
  std::string s = text(a.x0, a.y0 - 12, title, "font-size=\"15\" font-weight=\"bold\"");
  for (int i = 0; i <= 5; ++i) {
    const double v = a.vmax * i / 5, y = a.y(v);
    s += "<line x1=\"" + num(a.x0) + "\" x2=\"" + num(a.x0 + a.w) + "\" y1=\"" + num(y) +
         "\" y2=\"" + num(y) + "\" stroke=\"#e3e3e3\"/>\n";
    s += text(a.x0 - 6, y + 4, label(v), "font-size=\"11\" text-anchor=\"end\"");
  }
  const double mid = a.y0 + a.h / 2;
  s +=
      text(22, mid, y_unit,
           "font-size=\"12\" text-anchor=\"middle\" transform=\"rotate(-90 22 " + num(mid) + ")\"");
  const int step = a.days > 60 ? 10 : a.days > 20 ? 5 : a.days > 6 ? 1 : 0;
  if (step > 0) {
    for (int d = 0; d <= static_cast<int>(a.days); d += step) {
      const double x = a.x(static_cast<int64_t>(d) * 86400000);
      s += "<line x1=\"" + num(x) + "\" x2=\"" + num(x) + "\" y1=\"" + num(a.y0 + a.h) +
           "\" y2=\"" + num(a.y0 + a.h + 5) + "\" stroke=\"#333\"/>\n";
      if (d % (step == 1 ? 5 : step) == 0 || step > 1) {
        s += text(x, a.y0 + a.h + 18, std::to_string(d), "font-size=\"11\" text-anchor=\"middle\"");
      }
    }
  } else {  // under a week: ticks every 6 hours, labelled in hours
    for (int h = 0; h <= static_cast<int>(a.days * 24); h += 6) {
      const double x = a.x(static_cast<int64_t>(h) * 3600000);
      s += "<line x1=\"" + num(x) + "\" x2=\"" + num(x) + "\" y1=\"" + num(a.y0 + a.h) +
           "\" y2=\"" + num(a.y0 + a.h + 5) + "\" stroke=\"#333\"/>\n";
      s += text(x, a.y0 + a.h + 18, std::to_string(h) + " h",
                "font-size=\"11\" text-anchor=\"middle\"");
    }
  }
  s += text(a.x0 + a.w / 2, a.y0 + a.h + 36,
            step > 0 ? "time (days from the start of the trace)"
                     : "time (hours from the start of the trace)",
            "font-size=\"12\" text-anchor=\"middle\"");
  s += "<rect x=\"" + num(a.x0) + "\" y=\"" + num(a.y0) + "\" width=\"" + num(a.w) +
       "\" height=\"" + num(a.h) + "\" fill=\"none\" stroke=\"#333\"/>\n";
  return s;
}

using Series = std::vector<std::pair<int64_t, double>>;

std::string polyline(const Axes& a, const Series& pts, const std::string& color,
                     const std::string& id, double width) {
  std::string s = "<polyline id=\"" + id + "\" fill=\"none\" stroke=\"" + color +
                  "\" stroke-width=\"" + num(width) + "\" stroke-linejoin=\"round\" points=\"";
  for (const auto& [t, v] : pts) s += num(a.x(t)) + "," + num(a.y(v)) + " ";
  if (!pts.empty()) s.pop_back();
  return s + "\"/>\n";
}

// The band between two series with the same times.
std::string band(const Axes& a, const Series& lower, const Series& upper, const std::string& color,
                 const std::string& id) {
  std::string s = "<polygon id=\"" + id + "\" fill=\"" + color + "\" stroke=\"none\" points=\"";
  for (const auto& [t, v] : upper) s += num(a.x(t)) + "," + num(a.y(v)) + " ";
  for (auto it = lower.rbegin(); it != lower.rend(); ++it) {
    s += num(a.x(it->first)) + "," + num(a.y(it->second)) + " ";
  }
  if (!upper.empty()) s.pop_back();
  return s + "\"/>\n";
}

struct LegendItem {
  std::string color;
  std::string label;
  bool line = false;
};

std::string legend(double x, double y, const std::vector<LegendItem>& items) {
  std::string s;
  for (const LegendItem& it : items) {
    if (it.line) {
      s += "<line x1=\"" + num(x) + "\" x2=\"" + num(x + 14) + "\" y1=\"" + num(y - 4) +
           "\" y2=\"" + num(y - 4) + "\" stroke=\"" + it.color + "\" stroke-width=\"2.5\"/>\n";
    } else {
      s += "<rect x=\"" + num(x) + "\" y=\"" + num(y - 10) +
           "\" width=\"14\" height=\"11\" fill=\"" + it.color + "\"/>\n";
    }
    s += text(x + 19, y, it.label, "font-size=\"12\"");
    x += 34 + 6.6 * static_cast<double>(it.label.size());
  }
  return s;
}

std::string money(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0f", v);
  return buf;
}

}  // namespace

std::string report_svg(const Report& r) {
  const double height = kTop + 2 * kPanel + kGap + 90;
  std::string s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + label(kWidth) +
                  "\" height=\"" + label(height) + "\" viewBox=\"0 0 " + label(kWidth) + " " +
                  label(height) + "\" font-family=\"sans-serif\">\n";
  s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  int64_t t_end = 1;
  for (const auto& st : r.strategies)
    for (const auto& p : st.series) t_end = std::max(t_end, p.t_ms);
  const double days = static_cast<double>(t_end) / 8.64e7;
  const StrategyResult* autoscaled = nullptr;
  const StrategyResult* peak = nullptr;
  for (const auto& st : r.strategies) {
    if (st.name == "autoscaled") autoscaled = &st;
    if (st.name == "fixed-peak") peak = &st;
  }
  std::string headline = std::to_string(r.steps) + " steps";
  if (autoscaled != nullptr) {
    headline += "; autoscaled: cost " + money(autoscaled->cost);
    if (peak != nullptr && peak->cost > 0) {
      headline += " (" + money(100 * autoscaled->cost / peak->cost) + "% of fixed-peak)";
    }
    headline += ", step wait p95 " + money(autoscaled->wait_p95_s) + " s";
  }
  s += text(kLeft, 26, "kiln simulate: " + r.scenario, "font-size=\"17\" font-weight=\"bold\"");
  s += text(kLeft, 46, headline, "font-size=\"13\" fill=\"#444\"");

  // Top: the autoscaled cluster's capacity against its demand.
  if (autoscaled != nullptr) {
    // Steps: a bucket's highest value holds across the bucket.
    double vmax = 1;
    Series zero, od, total, demand;
    int64_t start = 0;
    for (const Point& p : autoscaled->series) {
      vmax = std::max({vmax, p.demand, p.on_demand_slots + p.spot_slots});
      for (int64_t t : {start, p.t_ms}) {
        zero.emplace_back(t, 0);
        od.emplace_back(t, p.on_demand_slots);
        total.emplace_back(t, p.on_demand_slots + p.spot_slots);
        demand.emplace_back(t, p.demand);
      }
      start = p.t_ms;
    }
    const Axes a{kLeft, kTop + 20, kWidth - kLeft - kRight, kPanel, days, nice_max(vmax)};
    const std::string bucket = r.chart_bucket_s % 3600 == 0
                                   ? std::to_string(r.chart_bucket_s / 3600) + " h"
                                   : std::to_string(r.chart_bucket_s / 60) + " min";
    s += axes(a, "Autoscaled cluster: demand and ready capacity (highest in each " + bucket + ")",
              "tasks / slots");
    s += band(a, zero, od, "#5b8fd1", "capacity-on-demand");
    s += band(a, od, total, "#f0b04a", "capacity-spot");
    s += polyline(a, demand, "#b03020", "demand", 1.2);
    s += legend(kLeft, a.y0 + a.h + 58,
                {{"#5b8fd1", "on-demand slots (ready)"},
                 {"#f0b04a", "spot slots (ready)"},
                 {"#c0392b", "demand: running + pending tasks", true}});
  }

  // Bottom: cumulative cost of every strategy.
  const char* colors[] = {"#7f8c8d", "#8e44ad", "#16a085", "#e67e22"};
  double cmax = 1;
  for (const auto& st : r.strategies)
    for (const auto& p : st.series) cmax = std::max(cmax, p.cost);
  const Axes b{kLeft,         kTop + 20 + kPanel + kGap, kWidth - kLeft - kRight, kPanel, days,
               nice_max(cmax)};
  s += axes(b, "Cost so far, by strategy", "cost (price-trace currency)");
  std::vector<LegendItem> items;
  for (size_t i = 0; i < r.strategies.size(); ++i) {
    const StrategyResult& st = r.strategies[i];
    Series pts;
    pts.emplace_back(0, 0);
    for (const Point& p : st.series) pts.emplace_back(p.t_ms, p.cost);
    const std::string color = colors[i % 4];
    s += polyline(b, pts, color, "cost-" + st.name, st.name == "autoscaled" ? 3 : 2);
    items.push_back({color, st.name + " " + money(st.cost), true});
  }
  s += legend(kLeft, b.y0 + b.h + 58, items);
  return s + "</svg>\n";
}

}  // namespace kiln::sim
